/** Failure paths: retries with backoff, dead letters, discard, timeouts, cancel, no handler, rate limits. */
import { describe, expect, it } from "vitest";
import { DiscardError, RateLimitedError, TimeoutError } from "../../src/index.js";
import type { ConformanceContext } from "./context.js";
import { deferred, until } from "./context.js";

class BadDocumentError extends Error {}

export function failureTests(ctx: ConformanceContext): void {
  describe("failures", () => {
    it("retries a failing job with backoff and keeps every attempt's error", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const starts: number[] = [];
      const task = sluice.task("flaky", {
        queue,
        attempts: 3,
        backoff: { type: "fixed", delayMs: 150 },
        run: (_p, job) => {
          starts.push(Date.now());
          if (job.attempt < 3) throw new Error(`boom ${job.attempt}`);
          return "ok";
        },
      });
      const retrying: number[] = [];
      sluice.on("retrying", (e) => retrying.push(e.attempt));
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      const { id } = await task.enqueue({});
      const done = await until("completed after retries", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(done.attempt).toBe(3);
      expect(done.errors.map((e) => [e.attempt, e.outcome, e.message])).toEqual([
        [1, "error", "boom 1"],
        [2, "error", "boom 2"],
      ]);
      expect(done.errors[0]?.stack).toContain("boom 1");
      expect(retrying).toEqual([1, 2]);
      expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(140);
    });

    it("sends a job to dead when attempts are exhausted, with the reason", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("doomed", {
        queue,
        attempts: 2,
        backoff: () => 0,
        run: () => {
          throw new TypeError("always");
        },
      });
      const dead: string[] = [];
      sluice.on("dead", (e) => dead.push(e.jobId));
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      const { id } = await task.enqueue({});
      const job = await until("dead", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "dead" ? j : null;
      });
      expect(job.attempt).toBe(2);
      expect(job.errors).toHaveLength(2);
      expect(job.errors[1]).toMatchObject({ name: "TypeError", message: "always", outcome: "error" });
      expect(job.reason).toContain("attempts exhausted (2/2)");
      expect(job.finishedAt).not.toBeNull();
      await until("dead event", () => dead.includes(id));
    });

    it("discards at once on discardOn errors and DiscardError; retryOn limits what is retried", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const t1 = sluice.task("discard-on", {
        queue,
        attempts: 5,
        discardOn: [BadDocumentError],
        run: () => {
          throw new BadDocumentError("corrupt pdf");
        },
      });
      const t2 = sluice.task("discard-error", {
        queue,
        attempts: 5,
        run: () => {
          throw new DiscardError("not worth retrying");
        },
      });
      const t3 = sluice.task("retry-on", {
        queue,
        attempts: 5,
        retryOn: [TimeoutError],
        run: () => {
          throw new Error("not a timeout");
        },
      });
      const worker = sluice.worker({ queues: [queue], concurrency: 3 });
      await worker.start();
      const ids = [(await t1.enqueue({})).id, (await t2.enqueue({})).id, (await t3.enqueue({})).id];
      for (const id of ids) {
        const job = await until(`dead ${id}`, async () => {
          const j = await sluice.admin.getJob(id);
          return j.state === "dead" ? j : null;
        });
        expect(job.attempt).toBe(1);
        expect(job.reason).toMatch(/^discarded: /);
      }
    });

    it("aborts the handler's signal with TimeoutError when timeoutMs elapses and retries", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const reasons: unknown[] = [];
      const task = sluice.task("slow", {
        queue,
        attempts: 2,
        timeoutMs: 100,
        backoff: () => 0,
        async run(_p, job) {
          if (job.attempt === 2) return "fast enough";
          await new Promise((resolve) => job.signal.addEventListener("abort", resolve));
          reasons.push(job.signal.reason);
        },
      });
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      const { id } = await task.enqueue({});
      const job = await until("completed on attempt 2", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(reasons[0]).toBeInstanceOf(TimeoutError);
      expect(job.errors[0]).toMatchObject({ outcome: "timeout", name: "TimeoutError", code: "JOB_TIMEOUT" });
    });

    it("cancels a waiting job at once and aborts an active job's handler", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const started = deferred();
      let abortReason: unknown;
      const task = sluice.task("cancellable", {
        queue,
        async run(_p, job) {
          started.resolve();
          await new Promise((resolve) => job.signal.addEventListener("abort", resolve));
          abortReason = job.signal.reason;
        },
      });
      const waiting = await task.enqueue({}, { delayMs: 60_000 });
      const cancelWaiting = await sluice.admin.cancel(waiting.id);
      expect(cancelWaiting.count).toBe(1);
      expect((await sluice.admin.getJob(waiting.id)).state).toBe("cancelled");

      const worker = sluice.worker({ queues: [queue], heartbeatMs: 100, leaseMs: 5_000 });
      await worker.start();
      const active = await task.enqueue({});
      await started.promise;
      const result = await sluice.admin.cancel(active.id);
      expect(result.requested).toEqual([active.id]);
      const job = await until("active job cancelled", async () => {
        const j = await sluice.admin.getJob(active.id);
        return j.state === "cancelled" ? j : null;
      });
      expect((abortReason as Error).name).toBe("CancelledError");
      expect(job.errors.at(-1)?.outcome).toBe("cancelled");
    });

    it("delivers back-to-back cancels to running handlers long before the next heartbeat", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const started = new Set<string>();
      const aborted = new Set<string>();
      const task = sluice.task("hangs", {
        queue,
        async run(_p, job) {
          started.add(job.id);
          await new Promise((resolve) => job.signal.addEventListener("abort", resolve));
          aborted.add(job.id);
        },
      });
      // Default lease 30 s: the heartbeat (which would also find the cancels) runs only every 10 s.
      const worker = sluice.worker({ queues: [queue], concurrency: 2, prefetch: 0 });
      await worker.start();
      const a = await task.enqueue({});
      const b = await task.enqueue({});
      await until("both jobs running", () => started.size === 2);
      const requested = Date.now();
      // The second cancel lands inside the worker's throttle window after the first: it must not be lost.
      expect((await sluice.admin.cancel(a.id)).requested).toEqual([a.id]);
      expect((await sluice.admin.cancel(b.id)).requested).toEqual([b.id]);
      await until(
        "both jobs cancelled",
        async () => {
          const jobs = await Promise.all([sluice.admin.getJob(a.id), sluice.admin.getJob(b.id)]);
          return jobs.every((j) => j.state === "cancelled");
        },
        5_000,
      );
      expect(Date.now() - requested).toBeLessThan(5_000);
      expect([...aborted].sort()).toEqual([a.id, b.id].sort());
    });

    it("delivers a cancel to a worker in another process long before its next heartbeat", async () => {
      const queue = ctx.queue("xcancel");
      const producer = ctx.sluice();
      // Default lease 30 s, so the worker's heartbeat (and its cancel check) runs only every 10 s.
      const worker = ctx.spawnWorker({ queue, mode: "hang" });
      await worker.waitFor("ready");
      const { id } = await producer.enqueue(queue, {}, { queue });
      expect(await worker.waitFor("started ")).toBe(id);
      const requested = Date.now();
      expect((await producer.admin.cancel(id)).requested).toEqual([id]);
      await until(
        "job cancelled by the other process",
        async () => (await producer.admin.getJob(id)).state === "cancelled",
        5_000,
      );
      expect(Date.now() - requested).toBeLessThan(5_000);
    });

    it("fails a job whose task has no handler on the worker, with that reason, then dead", async () => {
      const producer = ctx.sluice();
      const queue = ctx.queue();
      await producer.enqueue(
        "nobody-handles-this",
        { x: 1 },
        { queue, attempts: 2, backoff: { type: "fixed", delayMs: 0 } },
      );
      const worker = ctx.sluice().worker({ queues: [queue] });
      await worker.start();
      const job = await until("dead for lack of handler", async () => {
        const [j] = (await producer.admin.listJobs({ queue })).jobs;
        return j?.state === "dead" ? j : null;
      });
      expect(job.errors.map((e) => e.outcome)).toEqual(["no-handler", "no-handler"]);
      expect(job.errors[0]?.message).toContain('no handler for task "nobody-handles-this"');
    });

    it("puts a rate-limited job back without using an attempt and pauses its queue for retryAfterMs", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const attempts: number[] = [];
      const task = sluice.task("limited", {
        queue,
        attempts: 1,
        run: (_p, job) => {
          attempts.push(job.attempt);
          if (attempts.length === 1) throw new RateLimitedError(300);
          return "ok";
        },
      });
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      const first = Date.now();
      const { id } = await task.enqueue({});
      const job = await until("completed after the rate limit", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(attempts).toEqual([1, 1]);
      expect(job.attempt).toBe(1);
      expect((job.finishedAt ?? 0) - first).toBeGreaterThanOrEqual(290);
    });

    it("stores the outcome of an attempt whose error and log lines contain NUL characters", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("nul", {
        queue,
        attempts: 1,
        async run(_p, job) {
          await job.log("line with \u0000 inside");
          throw new Error("bad \u0000 byte");
        },
      });
      // Another job in the same write batches: one odd job must not hold up its neighbours.
      const plain = sluice.task("plain", { queue, run: () => "fine" });
      await sluice.worker({ queues: [queue], concurrency: 4 }).start();
      const [{ id }, { id: other }] = [await task.enqueue({}), await plain.enqueue({})];
      const job = await until("dead with its error stored", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "dead" ? j : null;
      });
      // Stored as is, or with the NUL replaced (PostgreSQL text cannot hold it): never lost.
      expect(job.errors[0]?.message).toMatch(/^bad .? byte$/u);
      expect(job.reason).toMatch(/bad .? byte/u);
      expect(job.logs.map((l) => l.message)).toEqual([expect.stringMatching(/^line with .? inside$/u)]);
      await until(
        "the other job completed",
        async () => (await sluice.admin.getJob(other)).state === "completed",
      );
    });

    it("sends a job whose stored payload fails the task schema to dead (never crashes the worker)", async () => {
      const { z } = await import("zod");
      const producer = ctx.sluice();
      const queue = ctx.queue();
      await producer.enqueue("schema-checked", { docId: 42 }, { queue });
      const worker = ctx.sluice();
      worker.task("schema-checked", { queue, schema: z.object({ docId: z.string() }), run: () => "never" });
      await worker.worker({ queues: [queue] }).start();
      const job = await until("dead on schema", async () => {
        const [j] = (await producer.admin.listJobs({ queue })).jobs;
        return j?.state === "dead" ? j : null;
      });
      expect(job.errors[0]?.outcome).toBe("invalid-payload");
    });
  });
}
