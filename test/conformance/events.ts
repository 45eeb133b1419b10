/**
 * Fleet-wide events (core/fleet-events.ts), on every engine: each transition writes one event in its own
 * transaction or script, ids grow in commit order, a reader resumes from an id without gaps or duplicates,
 * and says `reset` when it cannot.
 */
import { describe, expect, it } from "vitest";
import type { FleetEvent, FleetEventType } from "../../src/core/fleet-events.js";
import { SluiceError, type Store, silentLogger } from "../../src/index.js";
import { createStore } from "../../src/store/index.js";
import { newJob } from "../support/new-job.js";
import type { ConformanceContext } from "./context.js";
import { until } from "./context.js";

/**
 * Every event readable after `after`, page by page, until a read brings nothing and leaves the cursor where
 * it was (caught up), optionally filtered.
 */
async function readAll(
  store: Store,
  after: string | null,
  filter: { queue?: string; jobId?: string } = {},
  limit = 100,
): Promise<{ events: FleetEvent[]; cursor: string | null; reset: boolean }> {
  const events: FleetEvent[] = [];
  let cursor = after;
  let reset = false;
  for (let page = 0; page < 10_000; page++) {
    const read = await store.readEvents({ after: cursor, limit, ...filter });
    expect(read.events.length).toBeLessThanOrEqual(limit);
    reset ||= read.reset;
    events.push(...read.events);
    const caughtUp = read.events.length === 0 && read.cursor === cursor;
    cursor = read.cursor;
    if (caughtUp) break;
  }
  return { events, cursor, reset };
}

const types = (events: readonly FleetEvent[]): FleetEventType[] => events.map((e) => e.type);

export function eventTests(ctx: ConformanceContext): void {
  describe("fleet-wide events", () => {
    it("writes one event per transition, in order, with the job's queue, task and attempt", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const start = await store.lastEventId();
      const job = newJob({ queue, task: "evt" });
      await store.enqueue([job]);
      const [claimed] = await store.claim({ queues: [queue], limit: 1, workerId: "w1", leaseMs: 30_000 });
      const token = claimed?.leaseToken as number;
      expect(await store.saveProgress([{ id: job.id, token, progress: "0.5" }])).toEqual([true]);
      expect(await store.complete([{ id: job.id, token, result: '{"ok":true}' }])).toEqual([true]);
      const { events } = await readAll(store, start, { queue });
      expect(types(events)).toEqual(["enqueued", "active", "progress", "completed"]);
      for (const event of events) {
        expect(event).toMatchObject({ queue, jobId: job.id, task: "evt" });
        expect(typeof event.id).toBe("string");
        expect(Math.abs(event.at - Date.now())).toBeLessThan(60_000);
      }
      expect(events[0]?.data).toMatchObject({ state: "waiting" });
      expect(events[1]).toMatchObject({ attempt: 1, data: { workerId: "w1" } });
      expect(events[2]?.data).toMatchObject({ progress: 0.5 });
      expect(events[3]?.attempt).toBe(1);
      expect(new Set(events.map((e) => e.id)).size).toBe(4);
    });

    it("writes nothing for a transition that did not happen (a stale token, an existing job returned)", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const job = newJob({ queue, idempotent: true });
      await store.enqueue([job]);
      const [claimed] = await store.claim({ queues: [queue], limit: 1, workerId: "w1", leaseMs: 30_000 });
      const token = claimed?.leaseToken as number;
      const before = await store.lastEventId();
      expect((await store.enqueue([job]))[0]?.created).toBe(false);
      expect(await store.complete([{ id: job.id, token: token + 1, result: null }])).toEqual([false]);
      expect(await store.saveProgress([{ id: job.id, token: token + 1, progress: "1" }])).toEqual([false]);
      expect(
        await store.fail([
          {
            id: job.id,
            token: token + 1,
            error: { attempt: 1, outcome: "error", message: "x", name: "Error", at: Date.now() },
            next: { state: "dead", reason: "x" },
          },
        ]),
      ).toEqual([false]);
      expect((await readAll(store, before, { queue })).events).toEqual([]);
      // The real completion still writes its one event.
      expect(await store.complete([{ id: job.id, token, result: null }])).toEqual([true]);
      expect(types((await readAll(store, before, { queue })).events)).toEqual(["completed"]);
    });

    it("records failures, retries, releases, cancels, recovery and operator actions", async () => {
      const sluice = ctx.sluice();
      const store = await sluice.store();
      const queue = ctx.queue();
      const other = ctx.queue("moved");
      const start = await store.lastEventId();
      const [a, b, c, d] = [1, 2, 3, 4].map(() => newJob({ queue, maxAttempts: 2 })) as [
        ReturnType<typeof newJob>,
        ReturnType<typeof newJob>,
        ReturnType<typeof newJob>,
        ReturnType<typeof newJob>,
      ];
      await store.enqueue([a, b, c, d]);
      const claimed = await store.claim({ queues: [queue], limit: 2, workerId: "w1", leaseMs: 30_000 });
      const token = (id: string) => claimed.find((j) => j.id === id)?.leaseToken as number;
      const error = { attempt: 1, outcome: "error" as const, message: "boom", name: "Error", at: Date.now() };
      // a: fails and will retry, due at its own first run time; b: goes back without charging its attempt,
      // to run in a minute. So the claim below takes a, however long this takes.
      await store.fail([
        { id: a.id, token: token(a.id), error, next: { state: "scheduled", runAt: a.runAt } },
      ]);
      await store.release([{ id: b.id, token: token(b.id), reason: "shutdown", runAt: Date.now() + 60_000 }]);
      // c: cancelled while waiting; d: moved to another queue.
      await sluice.admin.cancel(c.id);
      // Redis Cluster refuses a move (two queues' slots): d stays, with no `moved` event.
      const movable = !ctx.harness.crossSlotRefused;
      if (movable) await sluice.admin.move({ ids: [d.id] }, other);
      else
        await expect(sluice.admin.move({ ids: [d.id] }, other)).rejects.toMatchObject({
          code: "CLUSTER_CROSS_SLOT",
        });
      // a again: claimed, its lease runs out, recovery takes it (out of attempts: dead).
      const [again] = await store.claim({ queues: [queue], limit: 1, workerId: "w2", leaseMs: 1 });
      expect(again?.id).toBe(a.id);
      await until("a's lease expired and recovered", async () => {
        const recovered = await store.recover({ mode: { kind: "expired" }, dryRun: false, limit: 10 });
        return recovered.some((r) => r.id === a.id);
      });
      // c retried by an operator, then deleted; the queue paused and resumed.
      await sluice.admin.retry(c.id);
      await sluice.admin.delete(c.id);
      await sluice.admin.pause(queue);
      await sluice.admin.resume(queue);

      const all = (await readAll(store, start)).events.filter((e) => e.queue === queue || e.queue === other);
      const of = (id: string) => types(all.filter((e) => e.jobId === id));
      expect(of(a.id)).toEqual(["enqueued", "active", "retrying", "active", "recovered"]);
      expect(of(b.id)).toEqual(["enqueued", "active", "released"]);
      expect(of(c.id)).toEqual(["enqueued", "cancelled", "retried", "deleted"]);
      expect(of(d.id)).toEqual(movable ? ["enqueued", "moved"] : ["enqueued"]);
      const retrying = all.find((e) => e.jobId === a.id && e.type === "retrying");
      expect(retrying?.data).toMatchObject({ error: "boom" });
      expect(typeof retrying?.data?.runAt).toBe("number");
      const recovered = all.find((e) => e.type === "recovered");
      expect(recovered).toMatchObject({ attempt: 2, data: { to: "dead" } });
      const moved = all.find((e) => e.type === "moved");
      if (movable) expect(moved).toMatchObject({ queue: other, data: { from: queue } });
      const queueEvents = all.filter((e) => e.jobId === null);
      expect(types(queueEvents)).toEqual(["paused", "resumed"]);
      expect(queueEvents[0]).toMatchObject({ queue, task: null, data: { until: null } });
      // The queue filter takes a moved job's event under its new queue.
      expect(types((await readAll(store, start, { queue: other })).events)).toEqual(movable ? ["moved"] : []);
    });

    it("writes a failed attempt that goes dead as `dead`, with the error", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const job = newJob({ queue, maxAttempts: 1 });
      await store.enqueue([job]);
      const start = await store.lastEventId();
      const [claimed] = await store.claim({ queues: [queue], limit: 1, workerId: "w1", leaseMs: 30_000 });
      await store.fail([
        {
          id: job.id,
          token: claimed?.leaseToken as number,
          error: { attempt: 1, outcome: "error", message: "no more", name: "Error", at: Date.now() },
          next: { state: "dead", reason: "attempts exhausted" },
        },
      ]);
      const events = (await readAll(store, start, { jobId: job.id })).events;
      expect(types(events)).toEqual(["active", "dead"]);
      expect(events[1]?.data).toMatchObject({ error: "no more" });
    });

    it("emits `active` for a job claimed ahead only when it starts", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const [first, held] = [newJob({ queue }), newJob({ queue })];
      await store.enqueue([first, held]);
      const start = await store.lastEventId();
      const claimed = await store.claim({
        queues: [queue],
        limit: 2,
        workerId: "w1",
        leaseMs: 30_000,
        start: 1,
      });
      expect(claimed.map((j) => j.id)).toEqual([first.id, held.id]);
      expect((await readAll(store, start, { queue })).events.map((e) => [e.type, e.jobId])).toEqual([
        ["active", first.id],
      ]);
      const heldToken = claimed[1]?.leaseToken as number;
      expect(await store.start([{ id: held.id, token: heldToken }])).toEqual([true]);
      expect((await readAll(store, start, { queue })).events.map((e) => [e.type, e.jobId])).toEqual([
        ["active", first.id],
        ["active", held.id],
      ]);
    });

    it("skips progress events a task turned off, and keeps the progress", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const job = newJob({ queue });
      await store.enqueue([job]);
      const [claimed] = await store.claim({ queues: [queue], limit: 1, workerId: "w1", leaseMs: 30_000 });
      const start = await store.lastEventId();
      const token = claimed?.leaseToken as number;
      expect(await store.saveProgress([{ id: job.id, token, progress: "7", event: false }])).toEqual([true]);
      expect((await readAll(store, start, { queue })).events).toEqual([]);
      expect((await store.getJob(job.id))?.progress).toBe(7);
    });

    it("pages with a cursor: no gap and no duplicate, and a filter moves past other queues", async () => {
      const store = await ctx.sluice().store();
      const [mine, noise] = [ctx.queue("mine"), ctx.queue("noise")];
      const start = await store.lastEventId();
      for (let round = 0; round < 5; round++) {
        await store.enqueue(Array.from({ length: 7 }, () => newJob({ queue: noise })));
        await store.enqueue(Array.from({ length: 3 }, () => newJob({ queue: mine })));
      }
      const everything = await readAll(store, start, {}, 4);
      const ours = everything.events.filter((e) => e.queue === mine || e.queue === noise);
      expect(ours).toHaveLength(50);
      expect(new Set(ours.map((e) => e.id)).size).toBe(50);
      const filtered = await readAll(store, start, { queue: mine }, 4);
      expect(filtered.events).toHaveLength(15);
      expect(filtered.events.map((e) => e.id)).toEqual(ours.filter((e) => e.queue === mine).map((e) => e.id));
      // A filtered read that finds nothing still moves its cursor past what it scanned.
      const page = await store.readEvents({ after: start, limit: 1000, queue: ctx.queue("empty") });
      expect(page.events).toEqual([]);
      expect(page.cursor).not.toBe(start);
      expect(page.reset).toBe(false);
    });

    it("a follower of every queue sees each event once while queues are written concurrently", async () => {
      // Six queues, each written by its own store (own connections) one job at a time while an unfiltered
      // reader follows with large pages, so it is caught up most of the time (a stream that fills the page
      // bounds what is handed out: only a reader at the head of the streams meets the race). On Redis
      // Cluster the queues' streams are spread over the masters, and an event can commit on one master after
      // a newer one was read on another: the reader must still see it (after its cursor, not behind it),
      // and never twice.
      const reader = await ctx.sluice().store();
      const queues = Array.from({ length: 6 }, (_, i) => ctx.queue(`conc${i}`));
      const writers = await Promise.all(queues.map(() => ctx.sluice().store()));
      const start = await reader.lastEventId();
      const rounds = 60;
      const perRound = 1;
      let writing = true;
      const written = Promise.all(
        queues.map(async (queue, i) => {
          for (let round = 0; round < rounds; round++) {
            await writers[i]?.enqueue(Array.from({ length: perRound }, () => newJob({ queue })));
          }
        }),
      ).finally(() => {
        writing = false;
      });
      const seen: FleetEvent[] = [];
      let cursor = start;
      for (let page = 0; writing && page < 100_000; page++) {
        const read = await reader.readEvents({ after: cursor, limit: 1000 });
        expect(read.reset).toBe(false);
        seen.push(...read.events);
        cursor = read.cursor;
      }
      await written;
      const rest = await readAll(reader, cursor, {}, 5);
      expect(rest.reset).toBe(false);
      seen.push(...rest.events);
      const ours = seen.filter((e) => queues.includes(e.queue as string));
      expect(new Set(ours.map((e) => e.id)).size).toBe(ours.length);
      expect(ours.filter((e) => e.type === "enqueued")).toHaveLength(queues.length * rounds * perRound);
      expect(new Set(ours.map((e) => e.jobId)).size).toBe(queues.length * rounds * perRound);
    });

    it("says `reset` when the reader's id was pruned, or is ahead of the store; rejects a malformed id", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      await store.enqueue(Array.from({ length: 6 }, () => newJob({ queue })));
      const early = (await readAll(store, null, { queue })).events;
      expect(early.length).toBeGreaterThanOrEqual(6);
      const first = early[0]?.id as string;
      // Keep only the two newest events of the whole store.
      await store.enqueue([newJob({ queue }), newJob({ queue })]);
      const pruned = await store.prune({ limit: 100_000, workersSilentSince: 0, maxEvents: 2 });
      expect(pruned.events).toBeGreaterThanOrEqual(6);
      const after = await store.readEvents({ after: first, limit: 100 });
      expect(after.reset).toBe(true);
      expect(after.events.length).toBeLessThanOrEqual(2 + 20); // Redis trims approximately
      expect(after.events.at(-1)?.queue).toBe(queue);
      // A reader that goes on from the new cursor is no longer told to reset.
      expect((await store.readEvents({ after: after.cursor, limit: 100 })).reset).toBe(false);

      // A fresh store, then a newer id from this one: ahead of everything the fresh store assigned.
      const freshUrl = await ctx.harness.newUrl();
      const fresh = await createStore(freshUrl, { logger: silentLogger() });
      try {
        await fresh.open();
        await fresh.enqueue([newJob({ queue })]);
        await store.enqueue(Array.from({ length: 3 }, () => newJob({ queue })));
        const ahead = (await store.lastEventId()) as string;
        const read = await fresh.readEvents({ after: ahead, limit: 100 });
        expect(read.reset).toBe(true);
        expect(types(read.events)).toEqual(["enqueued"]);
        for (const bad of ["not-an-id", "", "-1", "1e999", "0-0-0", "'; DROP TABLE jobs; --"]) {
          const failure = await fresh.readEvents({ after: bad, limit: 10 }).catch((e: unknown) => e);
          expect(failure, bad).toBeInstanceOf(SluiceError);
          expect((failure as SluiceError).code).toBe("INVALID_OPTION");
        }
      } finally {
        await fresh.close();
        await ctx.harness.cleanup(freshUrl);
      }
    });

    it("writes no events when events are turned off for the store", async () => {
      const sluice = ctx.sluice();
      const reader = await sluice.store();
      const quiet = await createStore(ctx.url(), {
        logger: silentLogger(),
        events: { enabled: false, maxEvents: 100_000, retentionMs: 60_000 },
      });
      try {
        await quiet.open();
        const queue = ctx.queue();
        const start = await reader.lastEventId();
        const job = newJob({ queue });
        await quiet.enqueue([job]);
        const [claimed] = await quiet.claim({ queues: [queue], limit: 1, workerId: "w", leaseMs: 30_000 });
        await quiet.complete([{ id: job.id, token: claimed?.leaseToken as number, result: null }]);
        await quiet.pauseQueue(queue, null);
        expect((await readAll(reader, start, { queue })).events).toEqual([]);
        expect((await reader.getJob(job.id))?.state).toBe("completed");
      } finally {
        await quiet.close();
      }
    });

    it("a task with progressEvents: false stores its progress and writes no progress event", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("quiet-progress", {
        queue,
        progressEvents: false,
        async run(_payload, job) {
          await job.progress(0.5);
          return "ok";
        },
      });
      const job = await task.enqueue({});
      await sluice.worker({ queues: [queue] }).start();
      const done = await until("completed", async () => {
        const j = await sluice.admin.getJob(job.id);
        return j.state === "completed" ? j : null;
      });
      expect(done.progress).toBe(0.5);
      const events = await (await sluice.store()).readEvents({ after: null, limit: 100, jobId: job.id });
      expect(types(events.events)).toEqual(["enqueued", "active", "completed"]);
      expect(() => sluice.task("bad-progress-flag", { progressEvents: "no" as never })).toThrow(
        expect.objectContaining({ code: "INVALID_OPTION", field: "task.progressEvents" }),
      );
    });

    it("sluice.events() follows a job another instance runs, from enqueue to completed, and resumes with after", async () => {
      const producer = ctx.sluice();
      const follower = ctx.sluice();
      const queue = ctx.queue();
      const task = producer.task("followed", {
        queue,
        async run(_payload, job) {
          await job.progress({ done: 1, total: 2 });
          return "ok";
        },
      });
      const from = await (await follower.store()).lastEventId();
      const stream = follower.events({ queue, after: from });
      const job = await task.enqueue({});
      await producer.worker({ queues: [queue] }).start();
      const seen: FleetEvent[] = [];
      for await (const item of stream) {
        if (item.type === "reset") throw new Error("unexpected reset");
        seen.push(item);
        if (item.type === "completed") break;
      }
      expect(types(seen)).toEqual(["enqueued", "active", "progress", "completed"]);
      expect(seen.every((e) => e.jobId === job.id)).toBe(true);
      expect(seen[2]?.data).toMatchObject({ progress: { done: 1, total: 2 } });
      // Resume after the second event: exactly the last two, then nothing more for this job.
      const resumed: FleetEvent[] = [];
      const abort = new AbortController();
      for await (const item of follower.events({
        jobId: job.id,
        after: seen[1]?.id as string,
        signal: abort.signal,
      })) {
        if (item.type === "reset") throw new Error("unexpected reset");
        resumed.push(item);
        if (resumed.length === 2) break;
      }
      expect(resumed.map((e) => e.id)).toEqual(seen.slice(2).map((e) => e.id));
    });

    it("sees every event of three producer/worker processes once, in commit order per job, across a reader restart", async () => {
      const queue = ctx.queue("fleet");
      const reader = await ctx.sluice().store();
      const start = await reader.lastEventId();
      const perProcess = 60;
      const workers = [1, 2, 3].map(() =>
        ctx.spawnWorker({ queue, mode: "record", concurrency: 4, produce: perProcess }),
      );
      // Read until a good part has happened, then "restart": a new store object resumes from the last id
      // the first one saw.
      const firstHalf = { events: [] as FleetEvent[], cursor: start };
      await until(
        "a first part of the events",
        async () => {
          const page = await readAll(reader, firstHalf.cursor, { queue }, 17);
          firstHalf.events.push(...page.events);
          firstHalf.cursor = page.cursor;
          return firstHalf.events.length >= 60;
        },
        60_000,
        20,
      );
      const second = await createStore(ctx.url(), { logger: silentLogger() });
      await second.open();
      try {
        const seen = [...firstHalf.events];
        let cursor = firstHalf.cursor;
        await until(
          "every job's completed event",
          async () => {
            const page = await readAll(second, cursor, { queue }, 23);
            expect(page.reset).toBe(false);
            seen.push(...page.events);
            cursor = page.cursor;
            return seen.filter((e) => e.type === "completed").length >= perProcess * 3;
          },
          60_000,
          50,
        );
        await Promise.all(workers.map((w) => w.waitFor("produced")));
        expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
        const byJob = new Map<string, FleetEventType[]>();
        for (const e of seen) byJob.set(e.jobId as string, [...(byJob.get(e.jobId as string) ?? []), e.type]);
        expect(byJob.size).toBe(perProcess * 3);
        for (const [id, sequence] of byJob) expect(sequence, id).toEqual(["enqueued", "active", "completed"]);
      } finally {
        await second.close();
      }
    });
  });
}
