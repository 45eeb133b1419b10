/** The admin API: counts, latency, listing with cursors, retry / cancel / delete by filter, pause, retention. */
import { describe, expect, it } from "vitest";
import { JobNotFoundError, silentLogger } from "../../src/index.js";
import { Maintenance } from "../../src/runtime/maintenance.js";
import type { ConformanceContext } from "./context.js";
import { until } from "./context.js";

export function adminTests(ctx: ConformanceContext): void {
  describe("admin", () => {
    it("counts jobs by queue and state and reports the age of the oldest waiting job", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      await sluice.enqueueMany("counted", [
        { payload: {}, options: { queue } },
        { payload: {}, options: { queue } },
        { payload: {}, options: { queue, delayMs: 60_000 } },
      ]);
      const before = Date.now();
      const stats = await until("queue listed", async () =>
        (await sluice.admin.queues()).find((q) => q.queue === queue),
      );
      expect(stats.counts).toEqual({
        scheduled: 1,
        waiting: 2,
        active: 0,
        completed: 0,
        dead: 0,
        cancelled: 0,
        blocked: 0,
      });
      expect(stats.latencyMs).toBeGreaterThanOrEqual(0);
      expect(stats.oldestWaitingAt).toBeLessThanOrEqual(before);
      expect(stats.due).toBe(0);
      expect(stats.paused).toBe(false);
    });

    it("lists jobs with cursor pagination, newest or oldest first, with filters", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const created = await sluice.enqueueMany(
        "listed",
        Array.from({ length: 25 }, (_, n) => ({
          payload: { n },
          options: { queue, tags: n % 2 ? ["odd"] : ["even"] },
        })),
      );
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { jobs: { id: string }[]; nextCursor: string | null } = await sluice.admin.listJobs(
          { queue, state: "waiting" },
          { limit: 10, cursor, order: "asc" },
        );
        seen.push(...page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(created.map((c) => c.id));
      const newest = await sluice.admin.listJobs({ queue }, { limit: 1 });
      expect(newest.jobs[0]?.id).toBe(created[24]?.id);
      const odd = await sluice.admin.listJobs({ queue, tag: "odd" }, { limit: 100 });
      expect(odd.jobs).toHaveLength(12);
      const none = await sluice.admin.listJobs({ queue, task: "other" });
      expect(none.jobs).toEqual([]);
      await expect(sluice.admin.listJobs({ queue }, { cursor: "not-a-cursor" })).rejects.toMatchObject({
        code: "INVALID_OPTION",
        field: "cursor",
      });
    });

    it("gets a job with every attempt's error, and throws JobNotFoundError for an unknown id", async () => {
      const sluice = ctx.sluice();
      await expect(sluice.admin.getJob("no-such-job")).rejects.toBeInstanceOf(JobNotFoundError);
      await expect(sluice.admin.getJob("no-such-job")).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
    });

    it("requeues dead jobs (retry by filter) with a fresh attempt count", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      let fail = true;
      const task = sluice.task("dlq", {
        queue,
        attempts: 1,
        run: () => {
          if (fail) throw new Error("upstream down");
          return "recovered";
        },
      });
      const worker = sluice.worker({ queues: [queue], concurrency: 5 });
      await worker.start();
      await task.enqueueMany(Array.from({ length: 5 }, () => ({ payload: {} })));
      await until(
        "five dead",
        async () => (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.dead === 5,
      );
      fail = false;
      const progress: number[] = [];
      const result = await sluice.admin.retry(
        { queue, state: "dead" },
        { batchSize: 2, onProgress: (n) => progress.push(n) },
      );
      expect(result.count).toBe(5);
      expect(progress).toEqual([2, 4, 5]);
      await until(
        "five completed",
        async () => (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.completed === 5,
      );
      const [job] = (await sluice.admin.listJobs({ queue })).jobs;
      expect(job?.attempt).toBe(1);
      expect(job?.errors).toHaveLength(1);
    });

    it("deletes and cancels by filter, never touching other queues or active jobs", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const other = ctx.queue();
      await sluice.enqueueMany(
        "bulk",
        Array.from({ length: 6 }, () => ({ payload: {}, options: { queue } })),
      );
      await sluice.enqueue("bulk", {}, { queue: other });
      const cancelled = await sluice.admin.cancel({ queue, state: "waiting" });
      expect(cancelled.count).toBe(6);
      const removed = await sluice.admin.delete({ queue, state: ["cancelled"] });
      expect(removed.count).toBe(6);
      expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
      expect((await sluice.admin.listJobs({ queue: other })).jobs).toHaveLength(1);
    });

    it("moves matching waiting jobs to another queue and reprioritizes jobs that have not started", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue("docs");
      const large = ctx.queue("large");
      const created = await sluice.enqueueMany(
        "doc",
        [5, 12, 30, 1].map((mb) => ({ payload: { fileSizeMb: mb }, options: { queue } })),
      );
      const ids = [created[1]?.id ?? "", created[2]?.id ?? ""];
      if (ctx.harness.crossSlotRefused) {
        // Redis Cluster: a move is one script over two queues' slots, refused with nothing changed.
        await expect(sluice.admin.move({ ids }, large)).rejects.toMatchObject({ code: "CLUSTER_CROSS_SLOT" });
        expect((await sluice.admin.listJobs({ queue })).jobs).toHaveLength(4);
        expect((await sluice.admin.listJobs({ queue: large })).jobs).toEqual([]);
        return;
      }
      const moved = await sluice.admin.move({ ids }, large);
      expect(moved.count).toBe(2);
      expect(
        (await sluice.admin.listJobs({ queue: large }, { order: "asc" })).jobs.map((j) => j.payload),
      ).toEqual([{ fileSizeMb: 12 }, { fileSizeMb: 30 }]);
      expect((await sluice.admin.listJobs({ queue })).jobs).toHaveLength(2);
      // Moving by a filter that still matches after the move terminates (jobs already there are skipped).
      expect(
        (await sluice.admin.move({ task: "doc", state: "waiting" }, large, { batchSize: 1 })).count,
      ).toBe(2);
      expect((await sluice.admin.listJobs({ queue: large })).jobs).toHaveLength(4);
      const re = await sluice.admin.reprioritize({ queue: large }, -10, { batchSize: 3 });
      expect(re.count).toBe(4);
      expect((await sluice.admin.listJobs({ queue: large })).jobs.every((j) => j.priority === -10)).toBe(
        true,
      );
      await expect(sluice.admin.move({ queue: large }, "bad queue name")).rejects.toMatchObject({
        code: "INVALID_OPTION",
      });
      const order: number[] = [];
      sluice.task<{ fileSizeMb: number }>("doc", { queue: large, run: (p) => void order.push(p.fileSizeMb) });
      await sluice.admin.reprioritize({ ids: [created[3]?.id ?? ""] }, -20);
      await sluice.worker({ queues: [large], concurrency: 1 }).start();
      await until("all ran in the new queue", () => order.length === 4);
      expect(order).toEqual([1, 5, 12, 30]);
    });

    it("walks each matching job once in bulk actions: past a batch, while jobs change, by ids", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const hanging = sluice.task("hangs", {
        queue,
        run: (_p, job) => new Promise((r) => job.signal.addEventListener("abort", r)),
      });
      await hanging.enqueueMany(Array.from({ length: 7 }, (_, n) => ({ payload: { n } })));
      const worker = sluice.worker({ queues: [queue], concurrency: 2, prefetch: 0 });
      await worker.start();
      await until(
        "two running",
        async () => (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.active === 2,
      );
      // Batches of 2 over 5 waiting and 2 active jobs: every one is cancelled or asked to stop, once. (A job
      // the worker starts while the cancel runs, in the slot of an aborted one, is asked to stop instead.)
      const cancelled = await sluice.admin.cancel({ queue }, { batchSize: 2 });
      expect(cancelled.count + cancelled.requested.length).toBe(7);
      expect(cancelled.requested.length).toBeGreaterThanOrEqual(2);
      expect(new Set([...cancelled.ids, ...cancelled.requested]).size).toBe(7);
      await until(
        "all cancelled",
        async () => (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.cancelled === 7,
      );

      // A retry by filter while a worker fails the retried jobs again: each job is retried once.
      const again = ctx.queue();
      const failing = sluice.task("fails-again", {
        queue: again,
        attempts: 1,
        run: () => {
          throw new Error("still down");
        },
      });
      await failing.enqueueMany(Array.from({ length: 6 }, () => ({ payload: {} })));
      await sluice.worker({ queues: [again], concurrency: 3 }).start();
      const deadCount = async () => (await sluice.admin.queues()).find((q) => q.queue === again)?.counts.dead;
      await until("six dead", async () => (await deadCount()) === 6);
      const retried = await sluice.admin.retry({ queue: again, state: "dead" }, { batchSize: 2 });
      expect(retried.count).toBe(6);
      expect(new Set(retried.ids).size).toBe(6);
      await until("six dead again", async () => (await deadCount()) === 6);

      // By ids: more ids than a batch, all acted on; one id that names no job is an error.
      const ids = (await sluice.admin.listJobs({ queue: again }, { limit: 10 })).jobs.map((j) => j.id);
      await worker.stop({ graceMs: 0 });
      expect((await sluice.admin.delete({ ids }, { batchSize: 4 })).count).toBe(6);
      await expect(sluice.admin.retry("no-such-job")).rejects.toBeInstanceOf(JobNotFoundError);
      await expect(sluice.admin.cancel("no-such-job")).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
    });

    it("counts scheduled jobs whose time has come as due backlog, in the latency too", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      await sluice.store(); // opened first, so the delay is not used up by connecting
      const enqueuedAt = Date.now();
      await sluice.enqueueMany("later", [
        { payload: {}, options: { queue, delayMs: 300 } },
        { payload: {}, options: { queue, delayMs: 300 } },
        { payload: {}, options: { queue, delayMs: 600_000 } },
      ]);
      // No worker runs, so nothing promotes them: they stay scheduled, and count as due once their time passed.
      // Latency is counted in whole ms: the first read can land in the very ms the jobs fell due.
      const stats = await until("two due, with latency", async () => {
        const q = (await sluice.admin.queues()).find((s) => s.queue === queue);
        return q?.due === 2 && q.latencyMs > 0 ? q : null;
      });
      expect(stats.counts).toMatchObject({ scheduled: 3, waiting: 0 });
      expect(stats.oldestWaitingAt).toBeGreaterThanOrEqual(enqueuedAt + 300);
      expect(stats.oldestWaitingAt).toBeLessThan(enqueuedAt + 600_000);
      expect(stats.latencyMs).toBeGreaterThan(0);
    });

    it("reports the schema current after opening, and what opening applied", async () => {
      const first = await ctx.sluice().admin.migrations();
      expect(first.current).toBe(first.latest);
      expect(first.applied.every((v) => v <= first.latest)).toBe(true);
      // A second process finds nothing left to apply.
      expect(await ctx.sluice().admin.migrations()).toEqual({ ...first, applied: [] });
    });

    it("never lets a rate limit lift an operator's pause, and only lets it extend an earlier limit", async () => {
      const sluice = ctx.sluice();
      const store = await sluice.store();
      const paused = ctx.queue();
      await sluice.enqueue("held", {}, { queue: paused });
      await sluice.admin.pause(paused);
      await store.pauseQueue(paused, Date.now() + 20); // a handler met a 429 meanwhile
      const claim = (queue: string) =>
        store.claim({ queues: [queue], limit: 5, workerId: "probe/1/p", leaseMs: 1_000 });
      await until("the rate limit is over", async () => {
        const q = (await sluice.admin.queues()).find((x) => x.queue === paused);
        return q?.pausedUntil === null;
      });
      expect((await sluice.admin.queues()).find((x) => x.queue === paused)?.paused).toBe(true);
      expect(await claim(paused)).toEqual([]);
      const limited = ctx.queue();
      const later = Date.now() + 60_000;
      await store.pauseQueue(limited, later);
      await store.pauseQueue(limited, Date.now() + 10);
      expect((await sluice.admin.queues()).find((x) => x.queue === limited)).toMatchObject({
        paused: false,
        pausedUntil: later,
      });
      await sluice.admin.resume(paused);
      await sluice.admin.resume(limited);
      expect(await claim(paused)).toHaveLength(1);
      expect((await sluice.admin.queues()).find((x) => x.queue === limited)?.pausedUntil).toBeNull();
    });

    it("does not fetch from a paused queue until it is resumed", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      let ran = 0;
      const task = sluice.task("pausable", { queue, run: () => void ran++ });
      await sluice.admin.pause(queue);
      const worker = sluice.worker({ queues: [queue], pollMs: 20 });
      await worker.start();
      await task.enqueue({});
      const store = await sluice.store();
      // A claim straight from the store proves the queue is skipped (no timing involved).
      expect(await store.claim({ queues: [queue], limit: 5, workerId: "probe/1/p", leaseMs: 1_000 })).toEqual(
        [],
      );
      expect((await sluice.admin.queues()).find((q) => q.queue === queue)?.paused).toBe(true);
      expect(ran).toBe(0);
      await sluice.admin.resume(queue);
      await until("ran after resume", () => ran === 1);
    });

    it("keeps an hourly roll-up of outcomes per queue that workers from many processes add to", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const store = await sluice.store();
      // The previous hour: its synthetic completion times (hour + 400, hour + 900) are always in the past,
      // even when the test starts in the first second of an hour.
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
      const durations = (slot: number, n: number) =>
        Array.from({ length: 21 }, (_, i) => (i === slot ? n : 0));
      const base = { queue, hour, lastCompletedAt: null };
      await store.addHourlyStats([
        {
          ...base,
          completed: 4,
          failed: 1,
          dead: 0,
          durations: durations(3, 4),
          lastCompletedAt: hour + 900,
        },
      ]);
      // The latest completion is a maximum: an earlier one flushed later does not move it back.
      await store.addHourlyStats([
        {
          ...base,
          completed: 2,
          failed: 0,
          dead: 1,
          durations: durations(9, 2),
          lastCompletedAt: hour + 400,
        },
      ]);
      await store.addHourlyStats([{ ...base, completed: 0, failed: 1, dead: 0, durations: durations(0, 0) }]);
      const rows = (await store.readHourlyStats(hour)).filter((r) => r.queue === queue);
      expect(rows).toEqual([
        {
          queue,
          hour,
          completed: 6,
          failed: 2,
          dead: 1,
          durations: durations(3, 4).map((n, i) => n + (durations(9, 2)[i] ?? 0)),
          lastCompletedAt: hour + 900,
        },
      ]);
      const started = Date.now();
      const task = sluice.task("measured", {
        queue,
        attempts: 1,
        run: (p: { fail?: boolean }) => {
          if (p.fail) throw new Error("no");
        },
      });
      const worker = sluice.worker({ queues: [queue], concurrency: 2 });
      await worker.start();
      await task.enqueueMany([{ payload: {} }, { payload: { fail: true } }]);
      await until("both finished", async () => {
        const q = (await sluice.admin.queues()).find((s) => s.queue === queue);
        return q?.counts.completed === 1 && q.counts.dead === 1;
      });
      await worker.stop(); // flushes the worker's counts
      // Summed over rows: the worker's outcomes land in the current hour (or the next, if the test straddles
      // an hour boundary); two hours back always reaches the synthetic rows of the previous hour.
      const mine = (await sluice.admin.stats({ sinceMs: 2 * 3_600_000 })).filter((r) => r.queue === queue);
      const sum = (k: "completed" | "failed" | "dead") => mine.reduce((n, r) => n + r[k], 0);
      expect([sum("completed"), sum("failed"), sum("dead")]).toEqual([7, 3, 2]);
      // The worker's completion is the queue's latest (stagnation checks read it).
      const last = (await sluice.admin.lastCompletions({ sinceMs: 2 * 3_600_000 })).get(queue);
      expect(last).toBeGreaterThanOrEqual(started);
      expect(last).toBeLessThanOrEqual(Date.now());
      // That hour holds four durations ≤ 10 ms and two ≤ 1 s (the worker's job lands in a later hour): the median is 10 ms.
      expect(mine.find((r) => r.hour === hour)?.p50Ms).toBe(10);
      // Rows past the 30-day retention go at the next prune; recent ones stay.
      const old = hour - 31 * 86_400_000;
      await store.addHourlyStats([
        { ...base, hour: old, completed: 1, failed: 0, dead: 0, durations: durations(0, 1) },
      ]);
      expect((await store.readHourlyStats(old)).some((r) => r.queue === queue && r.hour === old)).toBe(true);
      await store.prune({ limit: 1_000, workersSilentSince: 0 });
      const after = (await store.readHourlyStats(old)).filter((r) => r.queue === queue);
      expect(after.some((r) => r.hour === old)).toBe(false);
      expect(after.some((r) => r.hour === hour)).toBe(true);
    });

    it("applies retention: delete at once, keep the newest N, or keep for a duration", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("retained", { queue, run: () => "ok" });
      const worker = sluice.worker({ queues: [queue], concurrency: 5 });
      await worker.start();
      const gone = await task.enqueue({}, { retention: false });
      const counted = await task.enqueueMany(
        Array.from({ length: 4 }, () => ({ payload: {}, options: { retention: { count: 2 } } })),
      );
      const aged = await task.enqueue({}, { retention: { ageMs: 0 } });
      const kept = await task.enqueue({}, { retention: true });
      const store = await sluice.store();
      await until("all finished", async () => {
        const q = (await sluice.admin.queues()).find((s) => s.queue === queue);
        return (
          q !== undefined &&
          q.counts.waiting + q.counts.active === 0 &&
          (await store.getJob(kept.id))?.state === "completed"
        );
      });
      expect(await store.getJob(gone.id)).toBeNull();
      await until("pruned", async () => {
        await store.prune({ limit: 1_000, workersSilentSince: 0 });
        return (await store.getJob(aged.id)) === null;
      });
      const left = await Promise.all(counted.map((c) => store.getJob(c.id)));
      expect(left.filter((j) => j !== null)).toHaveLength(2);
      expect((await store.getJob(kept.id))?.state).toBe("completed");
    });

    it("keeps up with retention in one maintenance pass when more jobs expired than one prune batch", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const store = await sluice.store();
      const total = 12_000; // more than one prune batch (5,000) of the maintenance pass
      for (let n = 0; n < total; n += 2_000) {
        await sluice.enqueueMany(
          "expiring",
          Array.from({ length: 2_000 }, () => ({ payload: {}, options: { queue, retention: { ageMs: 0 } } })),
        );
        const jobs = await store.claim({ queues: [queue], limit: 2_000, workerId: "w/1/a", leaseMs: 60_000 });
        await store.complete(jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
      }
      const completed = async () =>
        (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.completed ?? 0;
      expect(await completed()).toBe(total);
      const maintenance = new Maintenance(store, sluice.emitter, silentLogger(), {
        owner: "retention-test",
        intervalMs: 5_000,
      });
      await maintenance.pass();
      expect(await completed()).toBe(0);
      await maintenance.stop();
    });
  });
}
