/**
 * Jobs claimed ahead (prefetch), on every engine with prefetch on: a worker holds them under its lease
 * before it starts them, and operators must not be able to tell. They count and list as waiting, delete,
 * move and cancel take them, a unique key limited to waiting states sees them, and a pause or a stop gives
 * them back at once; the holder never runs a job an operator took.
 */
import { describe, expect, it } from "vitest";
import { CANCELLED_REASON } from "../../src/core/states.js";
import type { Sluice } from "../../src/index.js";
import { newJob } from "../support/new-job.js";
import { overrideStore } from "../support/store-proxy.js";
import { deferred, until } from "../support/wait.js";
import type { ConformanceContext } from "./context.js";

/** A Sluice whose store records the ids of every job it claims (held jobs look waiting to admin reads). */
async function tracking(ctx: ConformanceContext): Promise<{ sluice: Sluice; claimed: Set<string> }> {
  const real = await ctx.sluice().store();
  const claimed = new Set<string>();
  const store = overrideStore(real, {
    claim: async (request) => {
      const jobs = await real.claim(request);
      for (const job of jobs) claimed.add(job.id);
      return jobs;
    },
  });
  return { sluice: ctx.sluice({ store }), claimed };
}

/**
 * A worker with one slot and `prefetch` held ahead, heartbeats an hour apart (only signals make it look),
 * running a task of `queue` whose handler waits for `gate`; `started` lists the jobs whose handler ran.
 */
function oneSlot(sluice: Sluice, queues: string[], prefetch: number) {
  const gate = deferred();
  const started: string[] = [];
  const run = async (_p: unknown, job: { id: string }) => {
    started.push(job.id);
    await gate.promise;
  };
  const worker = () =>
    sluice.worker({
      queues,
      concurrency: 1,
      prefetch,
      pollMs: 60_000,
      heartbeatMs: 60_000,
      leaseMs: 600_000,
    });
  return { gate, started, run, worker };
}

export function heldTests(ctx: ConformanceContext): void {
  describe("jobs claimed ahead", () => {
    it("count and list as waiting (never active), with no attempt charged, until they start", async () => {
      const { sluice, claimed } = await tracking(ctx);
      const queue = ctx.queue();
      const { gate, started, run, worker: make } = oneSlot(sluice, [queue], 3);
      const task = sluice.task("held-counted", { queue, run });
      const ids = (await task.enqueueMany(Array.from({ length: 4 }, () => ({ payload: {} })))).map(
        (j) => j.id,
      );
      const worker = make();
      await worker.start();
      await until("one running and three held", () => started.length === 1 && claimed.size === 4);
      const [running, ...held] = ids as [string, ...string[]];
      expect(started).toEqual([running]);
      const stats = (await sluice.admin.queues()).find((q) => q.queue === queue);
      expect(stats?.counts).toMatchObject({ active: 1, waiting: 3 });
      const active = await sluice.admin.listJobs({ queue, state: "active" });
      expect(active.jobs.map((j) => j.id)).toEqual([running]);
      const waiting = await sluice.admin.listJobs({ queue, state: "waiting" }, { order: "asc" });
      expect(waiting.jobs.map((j) => j.id)).toEqual(held);
      for (const job of waiting.jobs) expect(job).toMatchObject({ state: "waiting", attempt: 0 });
      expect(await sluice.admin.getJob(held[0] as string)).toMatchObject({ state: "waiting", attempt: 0 });
      gate.resolve();
      await until("all four completed", async () => {
        const stats = (await sluice.admin.queues()).find((q) => q.queue === queue);
        return stats?.counts.completed === 4;
      });
      expect(started).toEqual(ids);
      for (const id of ids) expect(await sluice.admin.getJob(id)).toMatchObject({ attempt: 1 });
      await worker.stop({ graceMs: 1_000 });
    });

    it("delete and move take them, and their holder never runs them", async () => {
      const { sluice, claimed } = await tracking(ctx);
      const queue = ctx.queue();
      const elsewhere = ctx.queue();
      const { gate, started, run, worker: make } = oneSlot(sluice, [queue], 3);
      const task = sluice.task("held-taken", { queue, run });
      const ids = (await task.enqueueMany(Array.from({ length: 4 }, () => ({ payload: {} })))).map(
        (j) => j.id,
      );
      const [running, deleted, moved, kept] = ids as [string, string, string, string];
      const worker = make();
      await worker.start();
      await until("one running and three held", () => started.length === 1 && claimed.size === 4);
      expect(await sluice.admin.delete(deleted)).toMatchObject({ count: 1, ids: [deleted] });
      if (ctx.harness.crossSlotRefused) {
        // Redis Cluster refuses a move (two queues' slots); the held job is taken by a delete instead.
        await expect(sluice.admin.move(moved, elsewhere)).rejects.toMatchObject({
          code: "CLUSTER_CROSS_SLOT",
        });
        expect(await sluice.admin.delete(moved)).toMatchObject({ count: 1, ids: [moved] });
      } else {
        expect(await sluice.admin.move(moved, elsewhere)).toMatchObject({ count: 1, ids: [moved] });
      }
      await expect(sluice.admin.getJob(deleted)).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
      if (!ctx.harness.crossSlotRefused)
        expect(await sluice.admin.getJob(moved)).toMatchObject({
          queue: elsewhere,
          state: "waiting",
          attempt: 0,
        });
      gate.resolve();
      await until("the running and the kept job completed", async () => {
        const jobs = await Promise.all([running, kept].map((id) => sluice.admin.getJob(id)));
        return jobs.every((j) => j.state === "completed");
      });
      // The worker reached the deleted and the moved job before the kept one (claim order) and ran neither.
      expect(started).toEqual([running, kept]);
      if (!ctx.harness.crossSlotRefused)
        expect(await sluice.admin.getJob(moved)).toMatchObject({
          queue: elsewhere,
          state: "waiting",
          attempt: 0,
        });
      await worker.stop({ graceMs: 1_000 });
    });

    it("a cancel takes them at once, and their holder never runs them", async () => {
      const { sluice, claimed } = await tracking(ctx);
      const queue = ctx.queue();
      const { gate, started, run, worker: make } = oneSlot(sluice, [queue], 1);
      const task = sluice.task("held-cancelled", { queue, run });
      const [first, ahead] = (await task.enqueueMany([{ payload: {} }, { payload: {} }])).map(
        (j) => j.id,
      ) as [string, string];
      const worker = make();
      await worker.start();
      await until("one running and one held", () => started.length === 1 && claimed.size === 2);
      expect(await sluice.admin.cancel(ahead)).toMatchObject({ count: 1, ids: [ahead], requested: [] });
      expect(await sluice.admin.getJob(ahead)).toMatchObject({
        state: "cancelled",
        reason: CANCELLED_REASON,
        attempt: 0,
      });
      gate.resolve();
      // A job enqueued now is reached after the cancelled one (claim order).
      const { id: later } = await task.enqueue({});
      await until("the first and the later job completed", async () => {
        const jobs = await Promise.all([first, later].map((id) => sluice.admin.getJob(id)));
        return jobs.every((j) => j.state === "completed");
      });
      expect(started).toEqual([first, later]);
      expect((await sluice.admin.getJob(ahead)).state).toBe("cancelled");
      await worker.stop({ graceMs: 1_000 });
    });

    it("a retried job claimed ahead is held like a new one: not started until it starts again", async () => {
      const sluice = ctx.sluice();
      const store = await sluice.store();
      const queue = ctx.queue();
      const job = newJob({ queue, maxAttempts: 3 });
      await store.enqueue([job]);
      const [first] = await store.claim({ queues: [queue], limit: 1, workerId: "w", leaseMs: 60_000 });
      expect(first?.startedAt).not.toBeNull();
      const error = { attempt: 1, outcome: "error" as const, message: "boom", name: "Error", at: Date.now() };
      const retry = { id: job.id, token: first?.leaseToken as number, error };
      expect(await store.fail([{ ...retry, next: { state: "waiting" } }])).toEqual([true]);
      // Its first attempt's start is history: the claim ahead must not return it, or the holder would take
      // the job for started and run it without its start being written.
      const [held] = await store.claim({
        queues: [queue],
        limit: 1,
        workerId: "w",
        leaseMs: 60_000,
        start: 0,
      });
      expect(held).toMatchObject({ id: job.id, attempt: 2, startedAt: null });
      expect(await sluice.admin.getJob(job.id)).toMatchObject({ state: "waiting", startedAt: null });
      expect(await store.start([{ id: job.id, token: held?.leaseToken as number }])).toEqual([true]);
      const started = await sluice.admin.getJob(job.id);
      expect(started).toMatchObject({ state: "active", attempt: 2 });
      // Counted and listed as the active job it now is, no longer as a held (waiting) one.
      const stats = (await sluice.admin.queues()).find((q) => q.queue === queue);
      expect(stats?.counts).toMatchObject({ active: 1, waiting: 0 });
      const waiting = await sluice.admin.listJobs({ queue, state: "waiting" });
      expect(waiting.jobs).toEqual([]);
      expect(started.startedAt).toBeGreaterThanOrEqual(first?.startedAt as number);
    });

    it("a job released with a reason and claimed again, ahead or at once, no longer has that reason", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const job = newJob({ queue });
      await store.enqueue([job]);
      for (const start of [undefined, 0]) {
        const [claimed] = await store.claim({ queues: [queue], limit: 1, workerId: "w", leaseMs: 60_000 });
        const release = { id: job.id, token: claimed?.leaseToken as number, reason: "shutdown" };
        expect(await store.release([{ ...release, runAt: Date.now() }])).toEqual([true]);
        expect(await store.getJob(job.id)).toMatchObject({ state: "waiting", reason: "shutdown" });
        const request = { queues: [queue], limit: 1, workerId: "w", leaseMs: 60_000 };
        const [again] = await store.claim(start === undefined ? request : { ...request, start });
        expect(again).toMatchObject({ id: job.id, reason: null });
        expect(await store.getJob(job.id)).toMatchObject({ reason: null });
        const back = { id: job.id, token: again?.leaseToken as number, reason: "test" };
        expect(await store.release([{ ...back, runAt: Date.now() }])).toEqual([true]);
      }
    });

    it("a unique key limited to waiting states finds them", async () => {
      const { sluice, claimed } = await tracking(ctx);
      const queue = ctx.queue();
      const { gate, started, run, worker: make } = oneSlot(sluice, [queue], 1);
      const task = sluice.task("held-unique", { queue, run });
      const first = await task.enqueue({});
      const unique = { uniqueKey: { key: "report-42", states: ["waiting" as const] } };
      const ahead = await task.enqueue({}, unique);
      const worker = make();
      await worker.start();
      await until("one running and one held", () => started.length === 1 && claimed.size === 2);
      expect(started).toEqual([first.id]);
      const again = await task.enqueue({}, unique);
      expect(again).toMatchObject({ id: ahead.id, created: false });
      gate.resolve();
      await until("both completed", async () => {
        const jobs = await Promise.all([first.id, ahead.id].map((id) => sluice.admin.getJob(id)));
        return jobs.every((j) => j.state === "completed");
      });
      // Once it ran, the key (waiting only) no longer holds.
      expect(await task.enqueue({}, unique)).toMatchObject({ created: true });
      await worker.stop({ graceMs: 1_000 });
    });

    it("an operator's pause gives back at once the held jobs of that queue; the running one finishes", async () => {
      const { sluice, claimed } = await tracking(ctx);
      const queue = ctx.queue();
      const other = ctx.queue();
      const { gate, started, run, worker: make } = oneSlot(sluice, [queue, other], 3);
      const paused = sluice.task("paused-ahead", { queue, run });
      const kept = sluice.task("kept-ahead", { queue: other, run });
      const ids = (await paused.enqueueMany(Array.from({ length: 3 }, () => ({ payload: {} })))).map(
        (j) => j.id,
      );
      const { id: keptId } = await kept.enqueue({});
      const worker = make();
      await worker.start();
      await until("one running and three held", () => started.length === 1 && claimed.size === 4);
      expect(started).toEqual([ids[0]]);
      await sluice.admin.pause(queue);
      // Heartbeats are an hour apart: the pause's signal is what makes the worker give them back.
      const held = ids.slice(1);
      await until("the paused queue's held jobs given back", async () => {
        const jobs = await Promise.all(held.map((id) => sluice.admin.getJob(id)));
        return jobs.every((j) => j.reason === "released: queue paused");
      });
      for (const id of held) {
        expect(await sluice.admin.getJob(id)).toMatchObject({ state: "waiting", attempt: 0, errors: [] });
      }
      gate.resolve();
      await until("the running job and the other queue's job completed", async () => {
        const jobs = await Promise.all([ids[0] as string, keptId].map((id) => sluice.admin.getJob(id)));
        return jobs.every((j) => j.state === "completed");
      });
      expect(started).toEqual([ids[0], keptId]);
      await sluice.admin.resume(queue);
      await until("the paused queue's jobs ran after the resume", () => started.length === 4);
      await worker.stop({ graceMs: 1_000 });
    });

    it("on stop go back at once and without charging an attempt", async () => {
      const { sluice, claimed } = await tracking(ctx);
      const queue = ctx.queue();
      const { gate, started, run, worker: make } = oneSlot(sluice, [queue], 3);
      const task = sluice.task("ahead", { queue, run });
      const ids = (await task.enqueueMany(Array.from({ length: 4 }, () => ({ payload: {} })))).map(
        (j) => j.id,
      );
      const worker = make();
      await worker.start();
      await until("one running and three held", () => started.length === 1 && claimed.size === 4);
      const [running, ...held] = ids as [string, ...string[]];
      const stopping = worker.stop({ graceMs: 10_000 });
      // The held jobs go back while the running one is still inside its grace.
      await until("held jobs given back", async () => {
        const jobs = await Promise.all(held.map((id) => sluice.admin.getJob(id)));
        return jobs.every((j) => j.reason === "released: worker stopping");
      });
      gate.resolve();
      await stopping;
      for (const id of held) {
        expect(await sluice.admin.getJob(id)).toMatchObject({ state: "waiting", attempt: 0, errors: [] });
      }
      expect((await sluice.admin.getJob(running)).state).toBe("completed");
      expect(started).toEqual([running]);
    });
  });
}
