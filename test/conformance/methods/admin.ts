/**
 * Method cases for the admin methods, straight on the store. Each bulk method meets one job in every state
 * (made by the factory) and must change exactly the states it acts on, and report exactly those jobs.
 */
import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../../src/core/job.js";
import type { Store } from "../../../src/store/contract.js";
import type { ConformanceContext } from "../context.js";
import { until } from "../context.js";
import { changedStates, type MakeableState, makeJob, makeJobInEveryState } from "./factory.js";

const sorted = (ids: readonly string[]) => [...ids].sort();
const idsOf = (made: Record<MakeableState, JobRecord>, states: readonly MakeableState[]) =>
  sorted(states.map((s) => made[s].id));
const claimOne = (store: Store, queue: string) =>
  store.claim({ queues: [queue], limit: 1, workerId: "probe/1/p", leaseMs: 60_000 });

export function adminMethodTests(ctx: ConformanceContext): void {
  describe("admin methods", () => {
    it("factory: makes a job in every state through the contract", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const made = await makeJobInEveryState(store, queue, { priority: 3, tags: ["made"] });
      for (const job of Object.values(made))
        expect(job).toMatchObject({ queue, priority: 3, tags: ["made"] });
      expect(made.scheduled).toMatchObject({ attempt: 0, startedAt: null, workerId: null });
      expect(made.scheduled.runAt).toBeGreaterThan(Date.now());
      expect(made.waiting).toMatchObject({ attempt: 0, startedAt: null, errors: [] });
      expect(made.active).toMatchObject({ attempt: 1, workerId: "factory/1/f", cancelRequested: false });
      expect(made.active.leaseToken).toBeGreaterThan(0);
      expect(made.active.leaseExpiresAt).toBeGreaterThan(Date.now());
      expect(made.completed).toMatchObject({
        attempt: 1,
        result: { made: "completed" },
        leaseExpiresAt: null,
      });
      expect(made.dead).toMatchObject({ attempt: 1, reason: "made dead", leaseExpiresAt: null });
      expect(made.dead.errors.map((e) => e.message)).toEqual(["made dead"]);
      expect(made.cancelled).toMatchObject({ attempt: 1, reason: "made cancelled" });
      for (const state of ["completed", "dead", "cancelled"] as const) {
        expect(made[state].finishedAt, state).toEqual(expect.any(Number));
      }
      // A due scheduled job: a failed attempt whose backoff is over (claims would promote it).
      const due = await makeJob(store, {
        state: "scheduled",
        queue: ctx.queue(),
        runAt: Date.now() - 60_000,
      });
      expect(due).toMatchObject({ state: "scheduled", attempt: 1 });
      expect(due.runAt).toBeLessThan(Date.now());
    });

    it("queueStats: counts every state, the due backlog, the oldest ready job, and the pause", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      for (const state of ["active", "completed", "dead", "cancelled"] as const)
        await makeJob(store, { state, queue });
      const due = await makeJob(store, { state: "scheduled", queue, runAt: Date.now() - 60_000 });
      const waiting = await makeJob(store, { state: "waiting", queue });
      await makeJob(store, { state: "scheduled", queue });
      const stats = (await store.queueStats()).find((s) => s.queue === queue);
      expect(stats).toEqual({
        queue,
        counts: { scheduled: 2, waiting: 1, active: 1, completed: 1, dead: 1, cancelled: 1, blocked: 0 },
        due: 1,
        oldestWaitingAt: Math.min(due.runAt, waiting.runAt),
        paused: false,
        pausedUntil: null,
        limits: null,
        limitedActive: 1,
        heldKeys: 0,
      });
      await store.pauseQueue(queue, null);
      expect((await store.queueStats()).find((s) => s.queue === queue)).toMatchObject({ paused: true });
      expect((await store.queueStats()).filter((s) => s.queue === queue)).toHaveLength(1);
    });

    it("queueStats: the oldest ready job is the earliest of every priority and queue, held jobs included", async () => {
      const store = await ctx.sluice().store();
      const [one, two, three, four] = [ctx.queue(), ctx.queue(), ctx.queue(), ctx.queue()];
      const now = Date.now();
      // Queue one: the earliest run time sits under neither the first nor the last priority.
      await makeJob(store, { state: "waiting", queue: one, priority: -3, runAt: now - 2_000 });
      const earliest = await makeJob(store, {
        state: "waiting",
        queue: one,
        priority: 0,
        runAt: now - 7_000,
      });
      await makeJob(store, { state: "waiting", queue: one, priority: 5, runAt: now - 1_000 });
      // Queue two: its earliest job is claimed ahead (held, not started): still waiting for users.
      const held = await makeJob(store, { state: "waiting", queue: two, runAt: now - 9_000 });
      await makeJob(store, { state: "waiting", queue: two, runAt: now - 4_000 });
      // Queue three: two priorities, nothing held (whichever queue sorts first, the others are found by
      // stepping on to the next queue).
      const third = await makeJob(store, { state: "waiting", queue: three, priority: 2, runAt: now - 3_000 });
      await makeJob(store, { state: "waiting", queue: three, priority: 1, runAt: now - 500 });
      // Queue four: a started job older than its waiting one is not waiting: its run time does not count.
      const running = await makeJob(store, { state: "active", queue: four });
      await until("the clock passes the running job's run time", () => Date.now() > running.runAt);
      const fourth = await makeJob(store, { state: "waiting", queue: four, runAt: Date.now() });
      const [claimed] = await store.claim({
        queues: [two],
        limit: 1,
        workerId: "w/1/x",
        leaseMs: 60_000,
        start: 0,
      });
      expect(claimed?.id).toBe(held.id);
      const stats = await store.queueStats();
      expect(stats.find((s) => s.queue === one)).toMatchObject({
        counts: { waiting: 3 },
        oldestWaitingAt: earliest.runAt,
      });
      expect(stats.find((s) => s.queue === two)).toMatchObject({
        counts: { waiting: 2, active: 0 },
        oldestWaitingAt: held.runAt,
      });
      expect(stats.find((s) => s.queue === three)).toMatchObject({
        counts: { waiting: 2 },
        oldestWaitingAt: third.runAt,
      });
      expect(stats.find((s) => s.queue === four)).toMatchObject({
        counts: { waiting: 1, active: 1 },
        oldestWaitingAt: fourth.runAt,
      });
    });

    it("listJobs: filters by queue, states, task, tag, ids and creation time, newest or oldest first, by cursor", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const made = await makeJobInEveryState(store, queue, { tags: ["tagged"] });
      const extra = await makeJob(store, { state: "waiting", queue, task: "other-task", tags: [] });
      const creation = [
        made.active,
        made.completed,
        made.dead,
        made.cancelled,
        made.waiting,
        made.scheduled,
        extra,
      ].map((j) => j.id);
      const list = async (filter: Parameters<Store["listJobs"]>[0]["filter"], order?: "asc" | "desc") =>
        (await store.listJobs({ filter, limit: 100, ...(order ? { order } : {}) })).jobs.map((j) => j.id);

      expect(await list({ queue })).toEqual([...creation].reverse()); // newest first by default
      expect(await list({ queue }, "asc")).toEqual(creation);
      for (const state of ["active", "completed", "dead", "cancelled", "scheduled"] as const) {
        expect(await list({ queue, states: [state] }), state).toEqual([made[state].id]);
      }
      expect(await list({ queue, states: ["waiting"] }, "asc")).toEqual([made.waiting.id, extra.id]);
      expect(await list({ queue, states: ["blocked"] })).toEqual([]);
      expect(sorted(await list({ queue, states: ["dead", "cancelled"] }))).toEqual(
        idsOf(made, ["dead", "cancelled"]),
      );
      expect(await list({ queue, task: "other-task" })).toEqual([extra.id]);
      expect(await list({ queue, task: "no-such-task" })).toEqual([]);
      expect(await list({ queue, tag: "tagged" }, "asc")).toEqual(creation.slice(0, 6));
      expect(await list({ queue, tag: "tagged", states: ["waiting"] })).toEqual([made.waiting.id]);
      expect(sorted(await list({ ids: [made.dead.id, extra.id, "no-such-id"] }))).toEqual(
        sorted([made.dead.id, extra.id]),
      );
      expect(await list({ ids: [made.dead.id], queue: ctx.queue("elsewhere") })).toEqual([]);
      expect(await list({ queue: ctx.queue("empty") })).toEqual([]);
      const created = [...Object.values(made), extra].map((j) => j.createdAt);
      expect(await list({ queue, createdBefore: Math.min(...created) })).toEqual([]);
      expect(await list({ queue, createdBefore: Math.max(...created) + 1 }, "asc")).toEqual(creation);

      // Pages of 2, both ways: every job once, in order, and the last page says so.
      for (const order of ["asc", "desc"] as const) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page: Awaited<ReturnType<Store["listJobs"]>> = await store.listJobs({
            filter: { queue },
            limit: 2,
            cursor,
            order,
          });
          expect(page.jobs.length, order).toBeLessThanOrEqual(2);
          seen.push(...page.jobs.map((j) => j.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== null && pages < 10);
        expect(seen, order).toEqual(order === "asc" ? creation : [...creation].reverse());
        expect(pages, order).toBe(4);
      }
    });

    it("getJob and getLogs: the stored record, the newest log lines in order, nothing for unknown ids", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const made = await makeJobInEveryState(store, queue);
      for (const job of Object.values(made)) expect(await store.getJob(job.id)).toEqual(job);
      expect(await store.getJob("no-such-job")).toBeNull();
      const lines = [1, 2, 3, 4, 5].map((n) => ({ at: 1_000 + n, attempt: 1, message: `line ${n}` }));
      await store.appendLogs(lines.map((l) => ({ ...l, id: made.active.id })));
      await store.appendLogs([{ id: made.dead.id, at: 9, attempt: 1, message: "other job" }]);
      expect(await store.getLogs(made.active.id, 100)).toEqual(lines);
      expect(await store.getLogs(made.active.id, 3)).toEqual(lines.slice(2));
      expect(await store.getLogs(made.dead.id, 100)).toEqual([{ at: 9, attempt: 1, message: "other job" }]);
      expect(await store.getLogs(made.waiting.id, 100)).toEqual([]);
      expect(await store.getLogs("no-such-job", 100)).toEqual([]);
    });

    it("retry: moves dead, cancelled, completed and scheduled jobs to waiting with a fresh attempt count, nothing else", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const made = await makeJobInEveryState(store, queue);
      const acts: MakeableState[] = ["scheduled", "completed", "dead", "cancelled"];
      const result = await store.retry({ queue }, { limit: 100 });
      expect(result.count).toBe(4);
      expect(sorted(result.ids)).toEqual(idsOf(made, acts));
      expect(await changedStates(store, made)).toEqual(acts);
      for (const state of acts) {
        expect(await store.getJob(made[state].id), state).toMatchObject({ state: "waiting", attempt: 0 });
      }
      // A states filter narrows it; a job it no longer matches is not taken again.
      const again = await makeJobInEveryState(store, ctx.queue());
      const onlyDead = await store.retry(
        { queue: again.dead.queue, states: ["dead", "active"] },
        { limit: 100 },
      );
      expect(onlyDead).toEqual({ count: 1, ids: [again.dead.id] });
      expect(await changedStates(store, again)).toEqual(["dead"]);
      expect(await store.retry({ queue: again.dead.queue, states: ["dead"] }, { limit: 100 })).toEqual({
        count: 0,
        ids: [],
      });
    });

    it("cancel: scheduled and waiting jobs at once, an active job by request (then released to cancelled), nothing else", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const made = await makeJobInEveryState(store, queue);
      const result = await store.cancel({ queue }, { limit: 100 });
      expect(result.count).toBe(2);
      expect(sorted(result.ids)).toEqual(idsOf(made, ["scheduled", "waiting"]));
      expect(result.requested).toEqual([made.active.id]);
      expect(await changedStates(store, made)).toEqual(["scheduled", "waiting", "active"]);
      for (const state of ["scheduled", "waiting"] as const) {
        const job = await store.getJob(made[state].id);
        expect(job, state).toMatchObject({ state: "cancelled" });
        expect(job?.finishedAt, state).toEqual(expect.any(Number));
      }
      // The active job keeps running under its lease, flagged: its holder learns of it at the next extend.
      expect(await store.getJob(made.active.id)).toMatchObject({
        state: "active",
        cancelRequested: true,
        leaseToken: made.active.leaseToken,
      });
      const lease = { id: made.active.id, token: made.active.leaseToken };
      expect(await store.extendLeases([lease], 60_000)).toEqual({
        lost: [],
        cancelRequested: [lease],
        paused: [],
      });
      expect(await store.release([{ ...lease, reason: "handler aborted" }])).toEqual([true]);
      expect(await store.getJob(made.active.id)).toMatchObject({ state: "cancelled" });
    });

    it("cancel: the limit bounds one call; a requested active job can still complete", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const active = await makeJob(store, { state: "active", queue });
      const first = await makeJob(store, { state: "waiting", queue });
      const second = await makeJob(store, { state: "waiting", queue });
      const one = await store.cancel({ queue, states: ["waiting"] }, { limit: 1 });
      expect(one.count).toBe(1);
      expect([first.id, second.id]).toContain(one.ids[0]);
      const requested = await store.cancel({ ids: [active.id] }, { limit: 10 });
      expect(requested).toEqual({ count: 0, ids: [], requested: [active.id] });
      // Its handler finished before it saw the cancel: the outcome stands.
      expect(await store.complete([{ id: active.id, token: active.leaseToken, result: null }])).toEqual([
        true,
      ]);
      expect(await store.getJob(active.id)).toMatchObject({ state: "completed" });
    });

    it("remove: deletes every job that is not active", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const made = await makeJobInEveryState(store, queue);
      const acts: MakeableState[] = ["scheduled", "waiting", "completed", "dead", "cancelled"];
      const first = await store.remove({ queue }, { limit: 2 });
      expect(first.count).toBe(2);
      const rest = await store.remove({ queue }, { limit: 100 });
      expect(rest.count).toBe(3);
      expect(sorted([...first.ids, ...rest.ids])).toEqual(idsOf(made, acts));
      expect(await changedStates(store, made)).toEqual(acts);
      for (const state of acts) expect(await store.getJob(made[state].id), state).toBeNull();
      expect(await store.getJob(made.active.id)).toEqual(made.active);
      expect(await store.remove({ queue }, { limit: 100 })).toEqual({ count: 0, ids: [] });
    });

    it("move: moves scheduled, waiting, dead and cancelled jobs to the queue, keeping everything else", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const to = ctx.queue("to");
      const made = await makeJobInEveryState(store, queue, { priority: 4 });
      const acts: MakeableState[] = ["scheduled", "waiting", "dead", "cancelled"];
      if (ctx.harness.crossSlotRefused) {
        // Redis Cluster: a move is one script over two queues' slots, refused with nothing changed.
        await expect(store.move({ queue }, to, { limit: 100 })).rejects.toMatchObject({
          code: "CLUSTER_CROSS_SLOT",
        });
        expect(await changedStates(store, made)).toEqual([]);
        return;
      }
      const result = await store.move({ queue }, to, { limit: 100 });
      expect(result.count).toBe(4);
      expect(sorted(result.ids)).toEqual(idsOf(made, acts));
      expect(await changedStates(store, made)).toEqual(acts);
      for (const state of acts) {
        expect(await store.getJob(made[state].id), state).toEqual({ ...made[state], queue: to });
      }
      // Jobs already in the target queue are not counted again.
      expect(await store.move({ ids: idsOf(made, acts) }, to, { limit: 100 })).toEqual({ count: 0, ids: [] });
      expect((await store.queueStats()).find((s) => s.queue === to)?.counts).toMatchObject({
        scheduled: 1,
        waiting: 1,
        dead: 1,
        cancelled: 1,
        active: 0,
        completed: 0,
      });
    });

    it("reprioritize: sets the priority of scheduled and waiting jobs whose priority differs, nothing else", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const made = await makeJobInEveryState(store, queue, { priority: 2 });
      const acts: MakeableState[] = ["scheduled", "waiting"];
      const result = await store.reprioritize({ queue }, -7, { limit: 100 });
      expect(result.count).toBe(2);
      expect(sorted(result.ids)).toEqual(idsOf(made, acts));
      expect(await changedStates(store, made)).toEqual(acts);
      for (const state of acts) {
        expect(await store.getJob(made[state].id), state).toEqual({ ...made[state], priority: -7 });
      }
      expect(await store.reprioritize({ queue }, -7, { limit: 100 })).toEqual({ count: 0, ids: [] });
    });

    it("pauseQueue / resumeQueue: an operator pause holds until resumed, a rate limit never lifts it", async () => {
      const store = await ctx.sluice().store();
      const stats = async (queue: string) => (await store.queueStats()).find((s) => s.queue === queue);
      const queue = ctx.queue();
      const job = await makeJob(store, { state: "waiting", queue });
      await store.pauseQueue(queue, null);
      expect(await stats(queue)).toMatchObject({ paused: true, pausedUntil: null });
      expect(await claimOne(store, queue)).toEqual([]);
      // A rate limit that starts and ends while the operator's pause holds leaves it paused.
      await store.pauseQueue(queue, Date.now() + 1);
      await until("the rate limit to be over", async () => (await stats(queue))?.pausedUntil === null);
      expect(await stats(queue)).toMatchObject({ paused: true });
      expect(await claimOne(store, queue)).toEqual([]);
      await store.resumeQueue(queue);
      expect(await stats(queue)).toMatchObject({ paused: false, pausedUntil: null });
      expect((await claimOne(store, queue)).map((j) => j.id)).toEqual([job.id]);

      // A rate limit alone: holds claims until its time, only ever extends, and resume clears it.
      const limited = ctx.queue();
      const held = await makeJob(store, { state: "waiting", queue: limited });
      const later = Date.now() + 10 * 60_000;
      await store.pauseQueue(limited, later);
      await store.pauseQueue(limited, Date.now() + 10);
      expect(await stats(limited)).toMatchObject({ paused: false, pausedUntil: later });
      expect(await claimOne(store, limited)).toEqual([]);
      await store.resumeQueue(limited);
      expect(await stats(limited)).toMatchObject({ paused: false, pausedUntil: null });
      expect((await claimOne(store, limited)).map((j) => j.id)).toEqual([held.id]);

      // A short rate limit lifts by itself.
      const brief = ctx.queue();
      const waiting = await makeJob(store, { state: "waiting", queue: brief });
      await store.pauseQueue(brief, Date.now() + 1);
      const claimed = await until("the brief rate limit to lift", async () => {
        const jobs = await claimOne(store, brief);
        return jobs.length > 0 ? jobs : null;
      });
      expect(claimed.map((j) => j.id)).toEqual([waiting.id]);
      expect(await stats(brief)).toMatchObject({ paused: false, pausedUntil: null });
      // Resuming a queue that was never paused is harmless.
      await store.resumeQueue(ctx.queue());
    });
  });
}
