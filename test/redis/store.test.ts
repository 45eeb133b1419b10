import { Redis } from "ioredis";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobRecord } from "../../src/core/job.js";
import { silentLogger } from "../../src/core/logger.js";
import { recoveryTarget } from "../../src/core/states.js";
import type { NewJob, StoreSignal } from "../../src/store/contract.js";
import { PRUNE_JOBS_PER_SCRIPT, RedisStore } from "../../src/store/redis/redis-store.js";
import { newJob as makeJob } from "../support/new-job.js";
import { eventually, SHARED_REDIS, sharedStore } from "./helpers.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

async function open() {
  const s = await sharedStore();
  disposers.push(s.dispose);
  return s;
}

/** Unique keys in these tests cover the pending states unless a test says otherwise. */
function newJob(queue: string, overrides: Partial<NewJob> = {}): NewJob {
  return makeJob({
    queue,
    payload: JSON.stringify({ n: 1 }),
    uniqueStates: ["scheduled", "waiting", "active"],
    ...overrides,
  });
}

describe("redis store", () => {
  it("never hands the same job to two concurrent claimers", async () => {
    const { store, url } = await open();
    const jobs = Array.from({ length: 600 }, () => newJob("race"));
    await store.enqueue(jobs);
    // Four stores = four connections, claiming in parallel loops with small batches.
    const claimers = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const s = new RedisStore(url, { logger: silentLogger() });
        await s.open();
        disposers.push(() => s.close());
        return s;
      }),
    );
    const seen: string[] = [];
    await Promise.all(
      claimers.map(async (s, k) => {
        for (;;) {
          const batch = await s.claim({ queues: ["race"], limit: 7, workerId: `w${k}`, leaseMs: 60_000 });
          if (batch.length === 0) return;
          seen.push(...batch.map((j) => j.id));
        }
      }),
    );
    expect(seen.length).toBe(600);
    expect(new Set(seen).size).toBe(600);
    expect(new Set(seen)).toEqual(new Set(jobs.map((j) => j.id)));
  });

  it("claims in priority, then runAt, then enqueue order, several per call", async () => {
    const { store } = await open();
    const now = Date.now();
    const a = newJob("order", { priority: 5, runAt: now - 10 });
    const b = newJob("order", { priority: -3, runAt: now - 5 });
    const c = newJob("order", { priority: 5, runAt: now - 20 });
    const d = newJob("order", { priority: -3, runAt: now - 5 });
    await store.enqueue([a, b, c, d]);
    const claimed = await store.claim({ queues: ["order"], limit: 10, workerId: "w", leaseMs: 10_000 });
    expect(claimed.map((j) => j.id)).toEqual([b.id, d.id, c.id, a.id]);
    expect(claimed.every((j) => j.state === "active" && j.attempt === 1 && j.leaseToken === 1)).toBe(true);
  });

  it("fences a stale lease token after the lease expired and the job was claimed again", async () => {
    const { store } = await open();
    const job = newJob("fence");
    await store.enqueue([job]);
    const [first] = await store.claim({ queues: ["fence"], limit: 1, workerId: "old", leaseMs: 1 });
    expect(first).toMatchObject({ id: job.id, state: "active", workerId: "old", attempt: 1 });
    const recovered = await eventually("the 1 ms lease to be recovered", async () => {
      const r = await store.recover({ mode: { kind: "expired" }, dryRun: false, limit: 10 });
      return r.length > 0 ? r : null;
    });
    expect(recovered[0]).toMatchObject({ id: job.id, to: "waiting", workerId: "old" });
    const [second] = await store.claim({ queues: ["fence"], limit: 1, workerId: "new", leaseMs: 60_000 });
    expect(second!.leaseToken).toBe(first!.leaseToken + 1);
    expect(second!.attempt).toBe(2);
    expect(second!.errors).toEqual([
      expect.objectContaining({
        attempt: 1,
        outcome: "lease-expired",
        name: "LeaseExpiredError",
        workerId: "old",
      }),
    ]);

    const stale = { id: job.id, token: first!.leaseToken };
    expect(await store.complete([{ ...stale, result: '"stale"' }])).toEqual([false]);
    expect(await store.saveProgress([{ ...stale, progress: "0.5" }])).toEqual([false]);
    expect(await store.extendLeases([stale], 60_000)).toEqual({
      lost: [stale],
      cancelRequested: [],
      paused: [],
    });
    expect(await store.complete([{ id: job.id, token: second!.leaseToken, result: '"fresh"' }])).toEqual([
      true,
    ]);
    const stored = await store.getJob(job.id);
    expect(stored).toMatchObject({ state: "completed", result: "fresh", progress: null, workerId: "new" });
  });

  it("asks a new subscriber to look for work and cancels once its subscription is in place", async () => {
    // Anything published before SUBSCRIBE took effect is lost; a worker whose first claim ran before it (or
    // whose job was cancelled meanwhile) must look once instead of waiting for its poll or heartbeat.
    const { store } = await open();
    const signals: StoreSignal[] = [];
    const unsubscribe = store.subscribe((s) => signals.push(s));
    disposers.push(async () => unsubscribe());
    await eventually("both catch-up signals", () => {
      const kinds = signals.map((s) => (s.type === "jobs" ? `jobs:${s.queues}` : s.type));
      return kinds.includes("jobs:null") && kinds.includes("cancel");
    });
  });

  it("wakes a subscriber on an enqueue in another store (pub/sub: the store itself never polls)", async () => {
    const { store, url } = await open();
    const producer = new RedisStore(url, { logger: silentLogger() });
    await producer.open();
    disposers.push(() => producer.close());
    const signals: StoreSignal[] = [];
    const unsubscribe = store.subscribe((s) => signals.push(s));
    disposers.push(async () => unsubscribe());
    // The subscription is live once a publish is seen; keep publishing until then.
    await eventually("the subscriber to receive a signal", async () => {
      await producer.resumeQueue("warmup");
      return signals.length > 0;
    });
    signals.length = 0;
    await producer.enqueue([newJob("wake")]);
    // Only the enqueue's publish names queue "wake" (the subscription's catch-up signal names no queue), so
    // its arrival proves the wake-up; how fast it arrives is not asserted (a slow runner is not a failure).
    await eventually("the wake-up for queue wake", () =>
      signals.some((s) => s.type === "jobs" && s.queues?.includes("wake")),
    );
  });

  it("keeps completed-job memory bounded by count and age retention", async () => {
    const { store } = await open();
    const byCount = Array.from({ length: 30 }, () => newJob("keep", { retention: { count: 5 } }));
    const byAge = Array.from({ length: 10 }, () => newJob("keep", { retention: { ageMs: 0 } }));
    const dropped = Array.from({ length: 10 }, () => newJob("keep", { retention: false }));
    await store.enqueue([...byCount, ...byAge, ...dropped]);
    const claimed: JobRecord[] = [];
    for (;;) {
      const batch = await store.claim({ queues: ["keep"], limit: 100, workerId: "w", leaseMs: 60_000 });
      if (batch.length === 0) break;
      claimed.push(...batch);
    }
    expect(claimed).toHaveLength(50);
    // Complete in enqueue order so the newest count-retained jobs are the last five of byCount.
    const order = new Map([...byCount, ...byAge, ...dropped].map((j, i) => [j.id, i]));
    claimed.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    for (const job of claimed) {
      expect(await store.complete([{ id: job.id, token: job.leaseToken, result: null }])).toEqual([true]);
    }
    // retention false: gone at once, index entry too.
    expect(await store.getJob(dropped[0]!.id)).toBeNull();
    const pruned = await eventually("age retention to expire", async () => {
      const r = await store.prune({ limit: 1_000, workersSilentSince: 0 });
      return r.jobs > 0 ? r : null;
    });
    expect(pruned.jobs).toBe(25 + 10);
    const [stats] = await store.queueStats();
    expect(stats!.counts.completed).toBe(5);
    const kept = await store.listJobs({ filter: { queue: "keep" }, limit: 100 });
    expect(kept.jobs.map((j) => j.id).sort()).toEqual(
      byCount
        .slice(25)
        .map((j) => j.id)
        .sort(),
    );
  });

  it("lists across queues newest first with a cursor, no job twice or missing", async () => {
    const { store } = await open();
    const jobs: NewJob[] = [];
    for (let i = 0; i < 45; i++) jobs.push(newJob(`list${i % 3}`, { tags: i % 2 === 0 ? ["even"] : [] }));
    for (const job of jobs) await store.enqueue([job]);
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page = await store.listJobs({ filter: { tag: "even" }, limit: 4, cursor });
      pages.push(page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
    } while (cursor);
    const listed = pages.flat();
    const expected = jobs
      .filter((_, i) => i % 2 === 0)
      .map((j) => j.id)
      .reverse();
    expect(listed).toEqual(expected);
    expect(pages.slice(0, -1).every((p) => p.length === 4)).toBe(true);
  });

  it("enqueues a batch of mixed shapes and queues in one call, deduplicating within the batch", async () => {
    const { store } = await open();
    const a = newJob("mixA", { uniqueKey: "k1", payload: JSON.stringify({ big: "x".repeat(500) }) });
    const b = newJob("mixA", { uniqueKey: "k1" }); // same key, same queue: returns a
    const c = newJob("mixB", { uniqueKey: "k1", priority: 5, tags: ["t"] }); // other queue: new job
    const d = newJob("mixA", { runAt: Date.now() + 60_000 });
    const e = newJob("mixA", { id: a.id, idempotent: true }); // repeated id in the same batch
    const results = await store.enqueue([a, b, c, d, e]);
    expect(results).toEqual([
      { id: a.id, state: "waiting", created: true },
      { id: a.id, state: "waiting", created: false },
      { id: c.id, state: "waiting", created: true },
      { id: d.id, state: "scheduled", created: true },
      { id: a.id, state: "waiting", created: false },
    ]);
    // Deduplicated ids never enter the id index; created ones do (by-id reads find their queue).
    expect(await store.getJob(b.id)).toBeNull();
    expect((await store.getJob(a.id))?.payload).toEqual({ big: "x".repeat(500) });
    expect(await store.getJob(c.id)).toMatchObject({ queue: "mixB", priority: 5, tags: ["t"] });
    const [claimed] = await store.claim({ queues: ["mixA"], limit: 1, workerId: "w", leaseMs: 60_000 });
    expect(claimed).toMatchObject({ id: a.id, state: "active", attempt: 1, leaseToken: 1, workerId: "w" });
    expect(claimed?.payload).toEqual({ big: "x".repeat(500) });
  });

  it("moves jobs with their payload, logs and place in line, and prunes stats rows past retention", async () => {
    const { store, prefix } = await open();
    const first = newJob("from", { payload: JSON.stringify({ big: "y".repeat(300) }) });
    const second = newJob("from");
    await store.enqueue([first, second]);
    await store.appendLogs([{ id: first.id, at: Date.now(), attempt: 0, message: "hello" }]);
    expect((await store.move({ ids: [first.id, second.id] }, "to", { limit: 10 })).count).toBe(2);
    expect((await store.move({ queue: "to" }, "to", { limit: 10 })).count).toBe(0);
    expect(await store.getJob(first.id)).toMatchObject({ queue: "to", payload: { big: "y".repeat(300) } });
    expect((await store.getLogs(first.id, 10)).map((l) => l.message)).toEqual(["hello"]);
    const claimed = await store.claim({ queues: ["from", "to"], limit: 5, workerId: "w", leaseMs: 60_000 });
    expect(claimed.map((j) => j.id)).toEqual([first.id, second.id]);

    const hour = 3_600_000;
    const old = Math.floor((Date.now() - 40 * 86_400_000) / hour) * hour;
    const recent = Math.floor(Date.now() / hour) * hour;
    const row = (h: number) => ({
      queue: "to",
      hour: h,
      completed: 1,
      failed: 0,
      dead: 0,
      durations: Array.from({ length: 21 }, (_, i) => (i === 0 ? 1 : 0)),
      lastCompletedAt: h + 1_000,
    });
    await store.addHourlyStats([row(old), row(recent)]);
    expect((await store.readHourlyStats(0)).map((r) => r.hour)).toEqual([old, recent]);
    await store.prune({ limit: 100, workersSilentSince: 0 });
    expect(await store.readHourlyStats(0)).toEqual([row(recent)]);
    const client = new Redis(SHARED_REDIS);
    try {
      expect(await client.exists(`{${prefix}:q:to}:st:${old}`)).toBe(0);
    } finally {
      client.disconnect();
    }
  });

  it("reports a missing job as null and treats its leases as lost", async () => {
    const { store } = await open();
    expect(await store.getJob("nope")).toBeNull();
    expect(await store.complete([{ id: "nope", token: 1, result: null }])).toEqual([false]);
    expect(await store.extendLeases([{ id: "nope", token: 1 }], 1_000)).toEqual({
      lost: [{ id: "nope", token: 1 }],
      cancelRequested: [],
      paused: [],
    });
  });

  // The recovery script decides in Lua; this holds it to core's recoveryTarget, branch by branch.
  it("recovers as recoveryTarget decides: cancel requested, attempts exhausted or left, expired or forced, unknown worker", async () => {
    const { store } = await open();
    const queue = "recover-decision";
    const jobs = {
      left: newJob(queue, { maxAttempts: 3 }),
      last: newJob(queue, { maxAttempts: 1 }),
      cancelOnLast: newJob(queue, { maxAttempts: 1 }),
      cancelWithLeft: newJob(queue, { maxAttempts: 3 }),
      noWorker: newJob(queue, { maxAttempts: 3 }),
    };
    const all = Object.values(jobs);
    await store.enqueue(all);
    expect(await store.claim({ queues: [queue], limit: 10, workerId: "gone/1/a", leaseMs: 1 })).toHaveLength(
      5,
    );
    await store.cancel({ ids: [jobs.cancelOnLast.id, jobs.cancelWithLeft.id] }, { limit: 10 });
    const client = new Redis(SHARED_REDIS);
    try {
      // A job with no worker recorded.
      await client.hdel(`${store.keys.queue(queue)}j:${jobs.noWorker.id}`, "w");
    } finally {
      client.disconnect();
    }
    const expected = (forced: boolean) =>
      Object.fromEntries(
        all.map((job) => [
          job.id,
          recoveryTarget({
            cancelRequested: job === jobs.cancelOnLast || job === jobs.cancelWithLeft,
            attempt: 1,
            maxAttempts: job.maxAttempts,
            workerId: job === jobs.noWorker ? null : "gone/1/a",
            forced,
          }),
        ]),
      );
    const decided = (rows: { id: string; to: string; reason: string }[]) =>
      Object.fromEntries(rows.map((r) => [r.id, { to: r.to, reason: r.reason }]));
    expect(new Set(Object.values(expected(false)).map((t) => t.to))).toEqual(
      new Set(["waiting", "dead", "cancelled"]),
    );

    const forced = await store.recover({
      mode: { kind: "startedBefore", at: Date.now() + 60_000 },
      dryRun: true,
      limit: 10,
    });
    expect(decided(forced)).toEqual(expected(true));
    const dry = await eventually("the 1 ms leases to expire", async () => {
      const r = await store.recover({ mode: { kind: "expired" }, dryRun: true, limit: 10 });
      return r.length === all.length ? r : null;
    });
    expect(decided(dry)).toEqual(expected(false));
    const applied = await store.recover({ mode: { kind: "expired" }, dryRun: false, limit: 10 });
    expect(decided(applied)).toEqual(expected(false));
    for (const job of all) {
      const stored = await store.getJob(job.id);
      expect({ to: stored?.state, reason: stored?.reason }).toEqual(expected(false)[job.id]);
    }
  });

  it("prunes expired jobs in scripts of at most PRUNE_JOBS_PER_SCRIPT, so other clients run in between", async () => {
    const { store } = await open();
    const finish = async (n: number) => {
      const jobs = Array.from({ length: n }, () => newJob("prune", { retention: { ageMs: 0 } }));
      await store.enqueue(jobs);
      const claimed = await store.claim({ queues: ["prune"], limit: n, workerId: "w", leaseMs: 60_000 });
      await store.complete(claimed.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
      return jobs.map((j) => j.id);
    };
    const ids = await finish(600);
    const scripts = vi.spyOn(
      store as unknown as { script(call: { name: string }): Promise<unknown> },
      "script",
    );
    const prunes = () => scripts.mock.calls.filter(([call]) => call.name === "prune").length;
    expect(PRUNE_JOBS_PER_SCRIPT).toBe(250);
    // One call of the maintenance pass's batch: three scripts (250, 250, 100), everything deleted.
    expect((await store.prune({ limit: 5_000, workersSilentSince: 0 })).jobs).toBe(600);
    expect(prunes()).toBe(3);
    expect(await store.getJob(ids[599] as string)).toBeNull();
    // No more than asked for.
    await finish(300);
    scripts.mockClear();
    expect((await store.prune({ limit: 260, workersSilentSince: 0 })).jobs).toBe(260);
    expect(prunes()).toBe(2);
    expect((await store.prune({ limit: 260, workersSilentSince: 0 })).jobs).toBe(40);
  });
});
