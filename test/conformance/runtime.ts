/**
 * The worker runtime against every engine: what its roles (fetch loop, lease keeper, outcome writer) must
 * do at the edges — a lease lost under a running handler, a stale lease report, a store that never answers
 * while the worker stops. Jobs claimed ahead: held.ts.
 */
import { describe, expect, it } from "vitest";
import { LeaseLostError } from "../../src/index.js";
import type { ExtendResult, LeaseRef } from "../../src/store/contract.js";
import { capturingLogger, ERROR, linesWith } from "../support/fault-logs.js";
import { overrideStore } from "../support/store-proxy.js";
import { deferred, until } from "../support/wait.js";
import type { ConformanceContext } from "./context.js";

export function runtimeTests(ctx: ConformanceContext): void {
  describe("worker runtime", () => {
    it("aborts the handler with LeaseLostError when its lease is lost, and never writes its outcome", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const started = deferred<string>();
      const reasons: unknown[] = [];
      let returned = false;
      const task = sluice.task("loses-lease", {
        queue,
        attempts: 5,
        async run(_p, job) {
          started.resolve(job.id);
          reasons.push(
            await new Promise((resolve) =>
              job.signal.addEventListener("abort", () => resolve(job.signal.reason)),
            ),
          );
          returned = true;
          return "late";
        },
      });
      await task.enqueue({});
      // Heartbeats every 50 ms find the loss; maintenance off, so only the test recovers the job.
      const worker = sluice.worker({ queues: [queue], leaseMs: 10_000, heartbeatMs: 50, maintenance: false });
      await worker.start();
      const id = await started.promise;
      // An operator recovers it by age while the handler runs: the lease now belongs to nobody. The queue
      // is paused first, so this worker does not claim the recovered job again.
      await sluice.admin.pause(queue);
      const store = await sluice.store();
      // A recovery that meets the row locked by a heartbeat skips it (PostgreSQL: SKIP LOCKED): try again.
      const recovered = await until("the operator's recovery to take the job", async () => {
        const taken = await store.recover({
          mode: { kind: "startedBefore", at: Date.now() + 60_000 },
          dryRun: false,
          limit: 10,
        });
        return taken.length > 0 ? taken : null;
      });
      expect(recovered.map((r) => r.id)).toEqual([id]);
      await until("the handler saw the abort", () => returned);
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toBeInstanceOf(LeaseLostError);
      await worker.stop({ graceMs: 1_000 });
      // The late "late" result was not written: the job is where recovery put it, its attempt charged once.
      const job = await sluice.admin.getJob(id);
      expect(job).toMatchObject({ state: "waiting", result: null, attempt: 1 });
      expect(job.errors).toHaveLength(1);
    });

    it("a lease-lost report about an older claim never drops the same worker's newer claim of the job", async () => {
      // The race: a heartbeat leaves with the job's first lease, an operator recovers the job (its handler
      // ignores the abort), the same worker claims it again, and only then does the heartbeat's answer
      // arrive, saying the first lease is lost. It must not abort the second run.
      const base = ctx.sluice();
      const real = await base.store();
      let holding = false;
      const gate = deferred();
      const held: LeaseRef[][] = [];
      const answers: ExtendResult[] = [];
      const store = overrideStore(real, {
        extendLeases: async (leases, leaseMs) => {
          if (!holding) return real.extendLeases(leases, leaseMs);
          held.push([...leases]);
          await gate.promise; // asked before the re-claim, answered after it
          const answer = await real.extendLeases(leases, leaseMs);
          answers.push(answer);
          return answer;
        },
      });
      const sluice = ctx.sluice({ store });
      const queue = ctx.queue();
      const firstRun = deferred();
      const stuck = deferred();
      const secondRun = deferred<AbortSignal>();
      const finish = deferred();
      const task = sluice.task("reclaimed", {
        queue,
        attempts: 3,
        async run(_p, job) {
          if (job.attempt === 1) {
            firstRun.resolve();
            await stuck.promise; // ignores its signal
            return "first";
          }
          secondRun.resolve(job.signal);
          await finish.promise;
          return "second";
        },
      });
      const { id } = await task.enqueue({});
      const worker = sluice.worker({
        queues: [queue],
        concurrency: 2,
        leaseMs: 10_000,
        heartbeatMs: 50,
        pollMs: 50,
        maintenance: false,
      });
      await worker.start();
      await firstRun.promise;
      const first = await real.getJob(id);
      holding = true;
      await until("a heartbeat with the first lease on its way", () =>
        held.some((leases) => leases.some((l) => l.id === id && l.token === first?.leaseToken)),
      );
      await until("the operator's recovery to take the job", async () => {
        const taken = await real.recover({
          mode: { kind: "startedBefore", at: Date.now() + 60_000 },
          dryRun: false,
          limit: 10,
        });
        return taken.length > 0;
      });
      const signal = await secondRun.promise;
      const second = await real.getJob(id);
      expect(second).toMatchObject({ state: "active", attempt: 2 });
      gate.resolve();
      await until("every held heartbeat answered", () => answers.length === held.length);
      // The race happened: an answer said the first lease was lost after the second claim was made.
      expect(answers.flatMap((a) => a.lost)).toContainEqual({ id, token: first?.leaseToken });
      holding = false;
      expect(signal.aborted).toBe(false);
      finish.resolve();
      await until("the second run completed", async () => (await real.getJob(id))?.state === "completed");
      expect(await real.getJob(id)).toMatchObject({ result: "second", attempt: 2 });
      stuck.resolve();
      await worker.stop({ graceMs: 1_000 });
    });

    it("returns from stop within storeGraceMs when a claim never settles, and logs why", async () => {
      const base = ctx.sluice();
      const real = await base.store();
      const entered = deferred();
      let hang = false;
      const store = overrideStore(real, {
        claim: (request) => {
          if (!hang) return real.claim(request);
          entered.resolve();
          return new Promise(() => {}); // a dead connection: never answers
        },
      });
      const { logger, lines } = capturingLogger();
      const sluice = ctx.sluice({ store, logger });
      const queue = ctx.queue();
      const task = sluice.task("never-claimed", { queue, run: () => "ok" });
      const worker = sluice.worker({ queues: [queue], pollMs: 60_000, storeGraceMs: 200 });
      const drained = new Promise<void>((resolve) => sluice.on("drained", () => resolve()));
      await worker.start();
      await drained;
      hang = true;
      await task.enqueue({});
      await entered.promise;
      await worker.stop({ graceMs: 0 });
      const logged = linesWith(
        lines,
        "claim still in flight at shutdown; its jobs are recovered when their leases expire",
      );
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: ERROR, waitedMs: 200 });
    });

    it("returns from stop within storeGraceMs when the last outcome writes never settle, and logs why", async () => {
      const base = ctx.sluice();
      const real = await base.store();
      const entered = deferred();
      const store = overrideStore(real, {
        complete: () => {
          entered.resolve();
          return new Promise(() => {}); // the store went away mid-write
        },
      });
      const { logger, lines } = capturingLogger();
      const sluice = ctx.sluice({ store, logger });
      const queue = ctx.queue();
      const task = sluice.task("never-written", { queue, run: () => "ok" });
      const worker = sluice.worker({ queues: [queue], storeGraceMs: 200 });
      await worker.start();
      const { id } = await task.enqueue({});
      await entered.promise;
      await worker.stop({ graceMs: 0 });
      const logged = linesWith(
        lines,
        "store unreachable at shutdown: unwritten outcomes are given up; those jobs are recovered when their leases expire",
      );
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: ERROR, waitedMs: 200 });
      // Nothing was stored: the job stays active under its lease, for recovery (at-least-once).
      expect((await base.admin.getJob(id)).state).toBe("active");
    });

    it("reports from stop the handlers that ignore their abort signal, after releasing their jobs", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const started: string[] = [];
      let finish!: () => void;
      const stubborn = new Promise<void>((resolve) => {
        finish = resolve;
      });
      const task = sluice.task("ignores-signal", {
        queue,
        async run(payload: { listens: boolean }, job) {
          started.push(job.id);
          if (payload.listens) {
            await new Promise((resolve) => job.signal.addEventListener("abort", resolve));
          } else {
            await stubborn; // never reads ctx.signal
          }
        },
      });
      const deaf = await task.enqueue({ listens: false });
      const listening = await task.enqueue({ listens: true });
      const worker = sluice.worker({ queues: [queue], concurrency: 2 });
      await worker.start();
      await until("both running", () => started.length === 2);
      const report = await worker.stop({ graceMs: 50 });
      expect([...report.released].sort()).toEqual([deaf.id, listening.id].sort());
      expect(report.unsettled.map((u) => u.jobId)).toEqual([deaf.id]);
      expect(report.unsettled[0]).toMatchObject({ task: "ignores-signal", queue });
      expect(report.unsettled[0]?.runningMs).toBeGreaterThanOrEqual(50);
      // Its job is back in the queue, uncharged, while the handler still runs.
      expect(await sluice.admin.getJob(deaf.id)).toMatchObject({ state: "waiting", attempt: 0 });
      // A second call gets the same report.
      expect(await worker.stop()).toBe(report);
      finish();
    });

    it("stops cleanly after a start that failed because the store was unreachable", async () => {
      const base = ctx.sluice();
      const real = await base.store();
      const store = overrideStore(real, {
        registerWorker: async () => {
          throw new Error("connection refused");
        },
      });
      const { logger, lines } = capturingLogger();
      const sluice = ctx.sluice({ store, logger });
      const worker = sluice.worker({ queues: [ctx.queue()] });
      await expect(worker.start()).rejects.toThrow("connection refused");
      expect(await worker.stop()).toEqual({ released: [], unsettled: [] });
      expect(lines.filter((l) => l.level >= ERROR)).toEqual([]);
      await expect(worker.start()).rejects.toMatchObject({ code: "CLOSED" });
    });
  });
}
