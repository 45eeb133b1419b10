/** Ownership: fencing, lease expiry and recovery, graceful stop, crashes and several worker processes. */
import { describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/index.js";
import { UNWRITTEN_SLACK } from "../../src/runtime/fetch-loop.js";
import { overrideStore } from "../support/store-proxy.js";
import type { ConformanceContext } from "./context.js";
import { deferred, until } from "./context.js";

export function leaseTests(ctx: ConformanceContext): void {
  describe("leases", () => {
    it("refuses complete, fail, release, progress and extend with a stale lease token", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const { id } = await sluice.enqueue("fenced", {}, { queue });
      const store = await sluice.store();
      const [first] = await store.claim({ queues: [queue], limit: 1, workerId: "old/1/a", leaseMs: 50 });
      expect(first).toMatchObject({ id, state: "active", workerId: "old/1/a", attempt: 1 });
      if (!first) throw new Error("nothing claimed");
      await until(
        "lease expired and recovered",
        async () =>
          (await store.recover({ mode: { kind: "expired" }, dryRun: false, limit: 10 })).length === 1,
      );
      const [second] = await store.claim({ queues: [queue], limit: 1, workerId: "new/2/b", leaseMs: 30_000 });
      expect(second?.id).toBe(first.id);
      expect(second?.leaseToken).not.toBe(first.leaseToken);
      const stale = { id: first.id, token: first.leaseToken };
      expect(await store.complete([{ ...stale, result: '"stale"' }])).toEqual([false]);
      const error = {
        attempt: 1,
        outcome: "error" as const,
        name: "Error",
        message: "stale",
        at: Date.now(),
      };
      expect(await store.fail([{ ...stale, error, next: { state: "dead", reason: "stale" } }])).toEqual([
        false,
      ]);
      expect(await store.release([{ ...stale, reason: "stale" }])).toEqual([false]);
      expect(await store.saveProgress([{ ...stale, progress: "1" }])).toEqual([false]);
      expect((await store.extendLeases([stale], 1_000)).lost).toEqual([stale]);
      // Both claims of the job in one call (a worker that has not yet learned the first was recovered):
      // the report names the stale lease by its token, and the fresh one is extended, not reported.
      const fresh = { id: first.id, token: second?.leaseToken ?? -1 };
      expect(await store.extendLeases([stale, fresh], 1_000)).toEqual({
        lost: [stale],
        cancelRequested: [],
        paused: [],
      });
      const current = await store.getJob(first.id);
      expect(current).toMatchObject({ state: "active", workerId: "new/2/b", attempt: 2, result: null });
      expect(
        await store.complete([{ id: first.id, token: second?.leaseToken ?? -1, result: '"fresh"' }]),
      ).toEqual([true]);
      expect((await store.getJob(first.id))?.result).toBe("fresh");
    });

    it("never hands the same job to two concurrent claimers", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      await sluice.enqueueMany(
        "contended",
        Array.from({ length: 200 }, (_, n) => ({ payload: { n }, options: { queue } })),
      );
      const stores = await Promise.all([ctx.sluice(), ctx.sluice(), ctx.sluice()].map((s) => s.store()));
      const seen: string[] = [];
      await Promise.all(
        stores.map(async (store, i) => {
          for (;;) {
            const jobs = await store.claim({
              queues: [queue],
              limit: 7,
              workerId: `claimer/${i}/x`,
              leaseMs: 30_000,
            });
            if (jobs.length === 0) return;
            seen.push(...jobs.map((j) => j.id));
          }
        }),
      );
      expect(seen).toHaveLength(200);
      expect(new Set(seen).size).toBe(200);
    });

    it("cancels, instead of putting back, a released job whose cancel was requested while it ran", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const { id } = await sluice.enqueue("released-cancel", {}, { queue });
      const store = await sluice.store();
      const [job] = await store.claim({ queues: [queue], limit: 1, workerId: "w/1/a", leaseMs: 30_000 });
      expect((await sluice.admin.cancel(id)).requested).toEqual([id]);
      // The worker gives it back (shutdown, rate limit) before it saw the cancel.
      expect(
        await store.release([{ id, token: job!.leaseToken, reason: "released: worker stopping" }]),
      ).toEqual([true]);
      expect(await sluice.admin.getJob(id)).toMatchObject({
        state: "cancelled",
        reason: "cancelled by operator while active",
      });
      expect(await store.claim({ queues: [queue], limit: 1, workerId: "w/2/b", leaseMs: 30_000 })).toEqual(
        [],
      );
    });

    it("recovers a job whose worker stopped heartbeating, counts the attempt, stores the reason, and runs it again", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("orphan", {
        queue,
        attempts: 3,
        run: (_p, job) => ({ attempt: job.attempt }),
      });
      const { id } = await task.enqueue({});
      const store = await sluice.store();
      const [claimed] = await store.claim({
        queues: [queue],
        limit: 1,
        workerId: "crashed-host/4242/zz",
        leaseMs: 200,
      });
      expect(claimed?.id).toBe(id);
      const recovered: string[] = [];
      sluice.on("recovered", (e) => recovered.push(e.reason));
      const worker = sluice.worker({ queues: [queue], maintenanceMs: 50, pollMs: 50 });
      await worker.start();
      const job = await until("recovered job completed", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(job.result).toEqual({ attempt: 2 });
      expect(job.errors[0]).toMatchObject({
        attempt: 1,
        outcome: "lease-expired",
        message: "lease expired: worker crashed-host/4242/zz stopped heartbeating",
      });
      // The event is emitted by the process that recovered, once the store has answered; another worker may
      // already have run the job by then, so wait for it instead of expecting it first.
      await until("the recovered event", () =>
        recovered.includes("lease expired: worker crashed-host/4242/zz stopped heartbeating"),
      );
    });

    it("recovers by age a job whose lease is still valid, only past the cutoff, dry run first", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const { id } = await sluice.enqueue("hangs-but-heartbeats", {}, { queue, attempts: 3 });
      const store = await sluice.store();
      // A live lease: recovery by expiry must leave it alone, recovery by age must not.
      const [claimed] = await store.claim({
        queues: [queue],
        limit: 1,
        workerId: "stuck/7/a",
        leaseMs: 60_000,
      });
      expect(claimed?.id).toBe(id);
      expect((await sluice.admin.recover({ dryRun: true })).map((j) => j.id)).not.toContain(id);
      expect(
        (await sluice.admin.recover({ olderThanMs: 60_000, dryRun: true })).map((j) => j.id),
      ).not.toContain(id);
      const dry = await until("the job past a cutoff of 1 ms", async () =>
        (await sluice.admin.recover({ olderThanMs: 1, dryRun: true })).find((j) => j.id === id),
      );
      expect(dry).toMatchObject({ to: "waiting", workerId: "stuck/7/a" });
      expect((await sluice.admin.getJob(id)).state).toBe("active");
      const done = await sluice.admin.recover({ olderThanMs: 1 });
      expect(done.map((j) => j.id)).toContain(id);
      const job = await sluice.admin.getJob(id);
      expect(job.state).toBe("waiting");
      expect(job.errors.at(-1)).toMatchObject({
        attempt: 1,
        outcome: "lease-expired",
        message: "recovered by operator: worker stuck/7/a held it past the cutoff",
      });
      // The old holder is fenced off.
      expect(await store.complete([{ id, token: claimed!.leaseToken, result: null }])).toEqual([false]);
    });

    it("sends an orphaned job on its last attempt to dead with the lease reason", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const { id } = await sluice.enqueue("last-try", {}, { queue, attempts: 1 });
      const store = await sluice.store();
      await store.claim({ queues: [queue], limit: 1, workerId: "gone/1/a", leaseMs: 30 });
      const dry = await until("expired lease visible", async () => {
        const r = await sluice.admin.recover({ dryRun: true });
        return r.find((j) => j.id === id);
      });
      expect(dry.to).toBe("dead");
      expect((await sluice.admin.getJob(id)).state).toBe("active");
      const recovered: string[] = [];
      sluice.on("recovered", (e) => recovered.push(`${e.jobId} ${e.to}`));
      const started = Date.now();
      const done = await sluice.admin.recover();
      expect(done.map((j) => j.id)).toContain(id);
      const job = await sluice.admin.getJob(id);
      expect(job.state).toBe("dead");
      expect(job.reason).toBe("lease expired: worker gone/1/a stopped heartbeating");
      expect(recovered).toContain(`${id} dead`);
      // No worker saw this attempt end: the recovery itself counts it in the roll-up (failed and dead).
      const rows = (await sluice.admin.stats({ sinceMs: Date.now() - started + 3_600_000 })).filter(
        (r) => r.queue === queue,
      );
      expect([rows.reduce((n, r) => n + r.failed, 0), rows.reduce((n, r) => n + r.dead, 0)]).toEqual([1, 1]);
    });

    it("keeps a long job alive through heartbeats (no false recovery)", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const release = deferred();
      const task = sluice.task("long", { queue, run: () => release.promise.then(() => "finished") });
      // Heartbeats every 100 ms renew a 1 s lease: only a stall of ~900 ms could expire it, so a busy CI
      // machine cannot fake a failure, while the job outlives the lease several times over.
      const worker = sluice.worker({ queues: [queue], leaseMs: 1_000, heartbeatMs: 100, maintenanceMs: 100 });
      await worker.start();
      const { id } = await task.enqueue({});
      await until("active", async () => (await sluice.admin.getJob(id)).state === "active");
      const store = await sluice.store();
      // Several lease lengths pass; each recovery pass must find nothing to take.
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline) {
        expect(await store.recover({ mode: { kind: "expired" }, dryRun: true, limit: 10 })).toEqual([]);
        await new Promise((r) => setTimeout(r, 200));
      }
      release.resolve();
      const job = await until("completed", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(job.attempt).toBe(1);
      expect(job.errors).toEqual([]);
    });

    it("on graceful stop lets running jobs finish within the grace period", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const started = deferred();
      const task = sluice.task("finishes", {
        queue,
        async run() {
          started.resolve();
          await new Promise((r) => setTimeout(r, 100));
          return "done";
        },
      });
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      const { id } = await task.enqueue({});
      await started.promise;
      await worker.stop({ graceMs: 5_000 });
      expect((await sluice.admin.getJob(id)).state).toBe("completed");
    });

    it("on graceful stop past the grace aborts handlers and releases jobs to waiting without charging an attempt", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const started = deferred();
      let aborted = false;
      const task = sluice.task("stubborn", {
        queue,
        async run(_p, job) {
          started.resolve();
          await new Promise((resolve) => job.signal.addEventListener("abort", resolve));
          aborted = true;
        },
      });
      const worker = sluice.worker({ queues: [queue] });
      await worker.start();
      const { id } = await task.enqueue({});
      await started.promise;
      await worker.stop({ graceMs: 50 });
      expect(aborted).toBe(true);
      const job = await sluice.admin.getJob(id);
      expect(job).toMatchObject({ state: "waiting", attempt: 0, errors: [] });
      expect(job.reason).toContain("released at shutdown");
      // The next worker runs it as attempt 1.
      const next = ctx.sluice();
      next.task("stubborn", { queue, run: (_p, j) => j.attempt });
      await next.worker({ queues: [queue] }).start();
      const done = await until("rerun", async () => {
        const j = await next.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(done.result).toBe(1);
    });

    it("on stop hands back the jobs of a claim still in flight, without charging an attempt", async () => {
      const base = ctx.sluice();
      const real = await base.store();
      const gate = deferred();
      const entered = deferred();
      let holdClaims = false;
      // The same store, with claims held at a gate while the test stops the worker.
      const store = overrideStore(real, {
        claim: async (request) => {
          if (holdClaims) {
            entered.resolve();
            await gate.promise;
          }
          return real.claim(request);
        },
      });
      const sluice = ctx.sluice({ store });
      const queue = ctx.queue();
      let ran = 0;
      const task = sluice.task("in-flight", { queue, run: () => void ran++ });
      const worker = sluice.worker({ queues: [queue], pollMs: 60_000 });
      const drained = new Promise<void>((resolve) => sluice.on("drained", () => resolve()));
      await worker.start();
      await drained;
      holdClaims = true;
      const { id } = await task.enqueue({});
      await entered.promise; // the wake-up's claim is on its way
      const stopping = worker.stop({ graceMs: 1_000 });
      gate.resolve(); // it takes the job after stop() began
      await stopping;
      // The job went back before stop() returned: nothing is left active for lease expiry to charge.
      expect(await base.admin.getJob(id)).toMatchObject({ state: "waiting", attempt: 0 });
      expect(ran).toBe(0);
    });

    it("keeps extending the lease of a job whose completion waits for the store, so it never runs twice", async () => {
      const base = ctx.sluice();
      const real = await base.store();
      let refuse = true;
      let refused = 0;
      // The same store, whose completions fail as if it were unreachable until the test lets them through.
      const store = overrideStore(real, {
        complete: async (requests) => {
          if (refuse) {
            refused++;
            throw new StoreUnavailableError("store unreachable (simulated)");
          }
          return real.complete(requests);
        },
      });
      const sluice = ctx.sluice({ store });
      const queue = ctx.queue();
      let runs = 0;
      const task = sluice.task("slow-to-record", { queue, run: () => void runs++ });
      await sluice.worker({ queues: [queue], leaseMs: 600, heartbeatMs: 100, maintenanceMs: 100 }).start();
      const { id } = await task.enqueue({});
      await until("the completion was refused a few times", () => refused >= 3);
      // Several lease lengths pass while the outcome waits; recovery must find nothing to take.
      const deadline = Date.now() + 1_500;
      while (Date.now() < deadline) {
        expect(await real.recover({ mode: { kind: "expired" }, dryRun: true, limit: 10 })).toEqual([]);
        await new Promise((r) => setTimeout(r, 100));
      }
      refuse = false;
      const job = await until("completed", async () => {
        const j = await base.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(job).toMatchObject({ attempt: 1, errors: [] });
      expect(runs).toBe(1);
    });

    it("stops claiming while outcomes are written slower than jobs finish (a bounded backlog of writes)", async () => {
      const base = ctx.sluice();
      const real = await base.store();
      const gate = deferred();
      // The same store, whose completions wait at a gate: a store that writes slower than handlers finish.
      const store = overrideStore(real, {
        complete: async (requests) => {
          await gate.promise;
          return real.complete(requests);
        },
      });
      const sluice = ctx.sluice({ store });
      const queue = ctx.queue();
      let started = 0;
      const total = 3 * UNWRITTEN_SLACK;
      const task = sluice.task("quick", { queue, run: () => void started++ });
      await task.enqueueMany(Array.from({ length: total }, () => ({ payload: {} })));
      const concurrency = 2;
      await sluice.worker({ queues: [queue], concurrency, prefetch: 0, pollMs: 20 }).start();
      // The slots plus the claim's allowance of unwritten outcomes (one per slot, at least UNWRITTEN_SLACK),
      // then it waits: past the allowance each unwritten outcome takes a slot.
      const bound = concurrency + Math.max(concurrency, UNWRITTEN_SLACK);
      await until("the bound started", () => started >= bound);
      const deadline = Date.now() + 500;
      while (Date.now() < deadline) {
        expect(started).toBe(bound);
        await new Promise((r) => setTimeout(r, 25));
      }
      gate.resolve();
      await until(
        "all completed once the store keeps up",
        async () => (await base.admin.queues()).find((q) => q.queue === queue)?.counts.completed === total,
      );
      expect(started).toBe(total);
    });

    it("registers again when its registry entry was pruned while it could not reach the store", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const worker = sluice.worker({ queues: [queue], leaseMs: 3_000, heartbeatMs: 100 });
      await worker.start();
      const store = await sluice.store();
      await until("registered", async () => (await sluice.admin.workers()).some((w) => w.id === worker.id));
      await store.unregisterWorker(worker.id); // what the leader's prune does to a silent worker
      expect((await sluice.admin.workers()).some((w) => w.id === worker.id)).toBe(false);
      const back = await until("registered again", async () =>
        (await sluice.admin.workers()).find((w) => w.id === worker.id),
      );
      expect(back).toMatchObject({ queues: [queue], alive: true });
    });

    it("completes a job on another worker after its worker process is killed with SIGKILL mid-job", async () => {
      const queue = ctx.queue("kill");
      const producer = ctx.sluice();
      const victim = ctx.spawnWorker({ queue, mode: "hang", leaseMs: 600 });
      await victim.waitFor("ready");
      const { id } = await producer.enqueue(queue, { doc: "big.pdf" }, { queue, attempts: 3 });
      expect(await victim.waitFor("started ")).toBe(id);
      victim.child.kill("SIGKILL");
      expect(await victim.exited).toBe("SIGKILL");
      const rescuer = ctx.sluice();
      rescuer.task(queue, { queue, run: (_p, job) => ({ attempt: job.attempt, pid: process.pid }) });
      await rescuer.worker({ queues: [queue], maintenanceMs: 100, pollMs: 100 }).start();
      const job = await until("completed by the rescuer", async () => {
        const j = await rescuer.admin.getJob(id);
        return j.state === "completed" ? j : null;
      });
      expect(job.result).toEqual({ attempt: 2, pid: process.pid });
      expect(job.errors[0]?.outcome).toBe("lease-expired");
      expect(job.errors[0]?.message).toMatch(
        new RegExp(`^lease expired: worker [^/]+/${victim.child.pid}/\\w+ stopped heartbeating$`),
      );
    });

    it("runs each job exactly once when two worker processes drain the same queue", async () => {
      const queue = ctx.queue("pair");
      const producer = ctx.sluice();
      const total = 600;
      const a = ctx.spawnWorker({ queue, mode: "record", concurrency: 8 });
      const b = ctx.spawnWorker({ queue, mode: "record", concurrency: 8 });
      await Promise.all([a.waitFor("ready"), b.waitFor("ready")]);
      // Enqueued once both are up (in several batches, each a wake-up), so both really compete.
      for (let n = 0; n < total; n += 100) {
        await producer.enqueueMany(
          queue,
          Array.from({ length: 100 }, (_, i) => ({ payload: { n: n + i }, options: { queue } })),
        );
      }
      await until(
        "queue drained",
        async () => {
          const q = (await producer.admin.queues()).find((s) => s.queue === queue);
          return q?.counts.completed === total;
        },
        60_000,
        50,
      );
      a.child.kill("SIGTERM");
      b.child.kill("SIGTERM");
      const perProcess = [
        JSON.parse(await a.waitFor("ran ")) as string[],
        JSON.parse(await b.waitFor("ran ")) as string[],
      ];
      expect(perProcess.map((ids) => ids.length > 0)).toEqual([true, true]);
      const ran = perProcess.flat();
      expect(ran).toHaveLength(total);
      expect(new Set(ran).size).toBe(total);
      const page = await producer.admin.listJobs({ queue }, { limit: total });
      expect(page.jobs.every((j) => j.attempt === 1 && j.errors.length === 0)).toBe(true);
    });
  });
}
