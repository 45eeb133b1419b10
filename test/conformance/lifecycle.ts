/** Happy paths: enqueue → run → completed, order, delays, dedup, progress, logs, events, registry. */
import { describe, expect, it } from "vitest";
import type { ConformanceContext } from "./context.js";
import { deferred, until } from "./context.js";

export function lifecycleTests(ctx: ConformanceContext): void {
  describe("lifecycle", () => {
    it("runs an enqueued job to completed, stores its result, and emits events in order", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      // Recorded in the handler, asserted by the test: an expect() thrown in a handler would only fail the
      // attempt (and retry the job), never the test.
      const attemptsSeen: number[] = [];
      const task = sluice.task<{ docId: string }, { chunks: number }>("ingest", {
        queue,
        async run(payload, job) {
          attemptsSeen.push(job.attempt);
          return { chunks: payload.docId.length };
        },
      });
      const events: string[] = [];
      for (const name of ["enqueued", "active", "completed"] as const)
        sluice.on(name, () => events.push(name));
      const worker = sluice.worker({ queues: [queue], concurrency: 2 });
      await worker.start();
      const job = await task.enqueue({ docId: "doc-1" });
      expect(job.created).toBe(true);
      expect(job.state).toBe("waiting");
      const done = await until("job completed", async () => {
        const j = await sluice.admin.getJob(job.id);
        return j.state === "completed" ? j : null;
      });
      expect(done.result).toEqual({ chunks: 5 });
      expect(done.attempt).toBe(1);
      expect(attemptsSeen).toEqual([1]);
      expect(done.finishedAt).toBeGreaterThanOrEqual(done.startedAt ?? Number.POSITIVE_INFINITY);
      await until("completed event", () => events.includes("completed"));
      expect(events).toEqual(["enqueued", "active", "completed"]);
    });

    it("takes jobs by priority, then run time, then enqueue order", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const order: number[] = [];
      const task = sluice.task<{ n: number }>("ordered", {
        queue,
        run: (p) => {
          order.push(p.n);
        },
      });
      const now = Date.now();
      await task.enqueueMany([
        { payload: { n: 5 }, options: { priority: 10 } },
        { payload: { n: 2 }, options: { priority: 0, runAt: now - 5_000 } },
        { payload: { n: 3 }, options: { priority: 0 } },
        { payload: { n: 4 }, options: { priority: 0 } },
        { payload: { n: 1 }, options: { priority: -5 } },
        { payload: { n: 0 }, options: { priority: -5, runAt: now - 10_000 } },
      ]);
      const worker = sluice.worker({ queues: [queue], concurrency: 1 });
      await worker.start();
      await until("all six ran", () => order.length === 6);
      expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it("holds a delayed job as scheduled until its run time, then runs it without a separate scheduler", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      let startedAt = 0;
      const task = sluice.task("delayed", {
        queue,
        run: () => {
          startedAt = Date.now();
        },
      });
      const worker = sluice.worker({ queues: [queue], pollMs: 60_000 });
      const drained = new Promise<void>((resolve) => sluice.on("drained", () => resolve()));
      await worker.start();
      // Idle first, so the worker learns of the delayed job only from the store's wake-up (its poll is a
      // minute away), not from a claim that happened to follow the enqueue.
      await drained;
      const enqueuedAt = Date.now();
      const job = await task.enqueue({}, { delayMs: 400 });
      expect(job.state).toBe("scheduled");
      expect((await sluice.admin.getJob(job.id)).state).toBe("scheduled");
      await until("delayed job ran", () => startedAt > 0, 10_000);
      expect(startedAt - enqueuedAt).toBeGreaterThanOrEqual(390);
    });

    it("returns the existing job for a repeated jobId and for a live uniqueKey, and allows the key again once done", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("dedup", { queue, run: () => "ok" });
      const a = await task.enqueue({ v: 1 }, { jobId: `job-${queue}` });
      const b = await task.enqueue({ v: 2 }, { jobId: `job-${queue}` });
      expect(b).toEqual({ id: a.id, state: "waiting", created: false });
      expect((await sluice.admin.getJob(a.id)).payload).toEqual({ v: 1 });

      const u1 = await task.enqueue({ doc: 1 }, { uniqueKey: "doc:1" });
      const u2 = await task.enqueue({ doc: 1 }, { uniqueKey: "doc:1" });
      expect(u2.id).toBe(u1.id);
      expect(u2.created).toBe(false);
      const [m1, m2] = await task.enqueueMany([
        { payload: { doc: 2 }, options: { uniqueKey: "doc:2" } },
        { payload: { doc: 2 }, options: { uniqueKey: "doc:2" } },
      ]);
      expect(m2?.id).toBe(m1?.id);

      const elsewhere = await sluice.enqueue(
        "dedup",
        { doc: 1 },
        { queue: ctx.queue("other"), uniqueKey: "doc:1" },
      );
      expect(elsewhere.created).toBe(true); // unique keys are scoped to their queue
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      await until("unique job done", async () => (await sluice.admin.getJob(u1.id)).state === "completed");
      const u3 = await task.enqueue({ doc: 1 }, { uniqueKey: "doc:1" });
      expect(u3.created).toBe(true);
      expect(u3.id).not.toBe(u1.id);
      const windowed = await task.enqueue(
        {},
        {
          uniqueKey: { key: "w", windowMs: 60_000, states: ["completed", "waiting", "active", "scheduled"] },
        },
      );
      await until(
        "windowed done",
        async () => (await sluice.admin.getJob(windowed.id)).state === "completed",
      );
      const again = await task.enqueue(
        {},
        {
          uniqueKey: { key: "w", windowMs: 60_000, states: ["completed", "waiting", "active", "scheduled"] },
        },
      );
      expect(again).toMatchObject({ id: windowed.id, created: false });
      // Once its window has passed, a key no longer deduplicates, whatever state its job is in.
      const brief = {
        key: "brief",
        windowMs: 50,
        states: ["completed", "waiting", "active", "scheduled"],
      } as const;
      const first = await task.enqueue({}, { uniqueKey: { ...brief, states: [...brief.states] } });
      const later = await until("the window passed", async () => {
        const r = await task.enqueue({}, { uniqueKey: { ...brief, states: [...brief.states] } });
        return r.created ? r : null;
      });
      expect(later.id).not.toBe(first.id);
    });

    it("stores progress and log lines written by the handler", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const progress: unknown[] = [];
      sluice.on("progress", (e) => progress.push(e.progress));
      const task = sluice.task("progressive", {
        queue,
        async run(_p, job) {
          await job.progress(0.5);
          await job.log("halfway");
          await job.progress({ done: 2, total: 2 });
          await job.log("done");
        },
      });
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      const job = await task.enqueue({});
      const done = await until("job done", async () => {
        const j = await sluice.admin.getJob(job.id);
        return j.state === "completed" ? j : null;
      });
      expect(done.progress).toEqual({ done: 2, total: 2 });
      expect(done.logs.map((l) => l.message)).toEqual(["halfway", "done"]);
      expect(done.logs[0]?.attempt).toBe(1);
      expect(progress).toEqual([0.5, { done: 2, total: 2 }]);
    });

    it("serves queues in strict order, and weighted order serves every queue", async () => {
      const sluice = ctx.sluice();
      const high = ctx.queue("high");
      const low = ctx.queue("low");
      const ran: string[] = [];
      const hi = sluice.task("hi", { queue: high, run: () => void ran.push("high") });
      const lo = sluice.task("lo", { queue: low, run: () => void ran.push("low") });
      await lo.enqueueMany(Array.from({ length: 3 }, () => ({ payload: {} })));
      await hi.enqueueMany(Array.from({ length: 3 }, () => ({ payload: {} })));
      const worker = sluice.worker({ queues: [high, low], concurrency: 1 });
      await worker.start();
      await until("six ran", () => ran.length === 6);
      expect(ran).toEqual(["high", "high", "high", "low", "low", "low"]);
      await worker.stop();

      const a = ctx.queue("wa");
      const b = ctx.queue("wb");
      const order: string[] = [];
      const ta = sluice.task("wa", { queue: a, run: () => void order.push("a") });
      const tb = sluice.task("wb", { queue: b, run: () => void order.push("b") });
      await ta.enqueueMany(Array.from({ length: 20 }, () => ({ payload: {} })));
      await tb.enqueueMany(Array.from({ length: 20 }, () => ({ payload: {} })));
      // One job per claim, each claim's queue order drawn 1:1. Strict order would run twenty a's first; a
      // fair draw interleaves them (all twenty first runs from one queue: p = 2^-19).
      const weighted = sluice.worker({
        queues: [
          [a, 1],
          [b, 1],
        ],
        concurrency: 1,
        prefetch: 0,
      });
      await weighted.start();
      await until("every weighted job ran", () => order.length === 40);
      expect(new Set(order.slice(0, 20))).toEqual(new Set(["a", "b"]));
    });

    it("registers workers with host, pid, queues, concurrency and busy count, and removes them on stop", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const release = deferred();
      const task = sluice.task("busy", { queue, run: () => release.promise });
      const worker = sluice.worker({ queues: [queue], concurrency: 3, heartbeatMs: 50, leaseMs: 5_000 });
      await worker.start();
      await task.enqueue({});
      const entry = await until("worker registered busy", async () =>
        (await sluice.admin.workers()).find((w) => w.id === worker.id && w.busy === 1),
      );
      expect(entry).toMatchObject({ pid: process.pid, queues: [queue], concurrency: 3, alive: true });
      release.resolve();
      await worker.stop();
      expect((await sluice.admin.workers()).some((w) => w.id === worker.id)).toBe(false);
    });

    it("runs a task inline with runNow, without the store", async () => {
      const sluice = ctx.sluice();
      const task = sluice.task<{ a: number; b: number }, number>("add", {
        queue: ctx.queue(),
        run: (p) => p.a + p.b,
      });
      await expect(task.runNow({ a: 2, b: 3 })).resolves.toBe(5);
      const failing = sluice.task("inline-fail", {
        queue: ctx.queue(),
        run: () => {
          throw new Error("inline boom");
        },
      });
      await expect(failing.runNow({})).rejects.toThrow("inline boom");
    });

    it("wakes an idle worker in another process without polling (its safety poll is 10 minutes)", async () => {
      const queue = ctx.queue("wake");
      const producer = ctx.sluice();
      const worker = ctx.spawnWorker({ queue, mode: "record", pollMs: 600_000 });
      await worker.waitFor("ready");
      // Let the worker's first claim find nothing so it is idle, waiting on the store's wake-up.
      await until("worker idle", async () =>
        (await producer.admin.workers()).some((w) => w.queues.includes(queue)),
      );
      for (let n = 0; n < 3; n++) {
        const { id } = await producer.enqueue(queue, { n }, { queue });
        expect(await worker.waitFor(`ran-one ${id}`, 10_000)).toBe("");
      }
    });

    it("fans out from a handler with ctx.enqueue", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const children: number[] = [];
      sluice.task<{ n: number }>("child", { queue, run: (p) => void children.push(p.n) });
      const parent = sluice.task("parent", {
        queue,
        async run(_p, job) {
          for (let n = 0; n < 3; n++) await job.enqueue("child", { n });
        },
      });
      const worker = sluice.worker({ queues: [queue], concurrency: 4 });
      await worker.start();
      await parent.enqueue({});
      await until("children ran", () => children.length === 3);
      expect(children.sort()).toEqual([0, 1, 2]);
    });
  });
}
