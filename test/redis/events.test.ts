/**
 * Redis specifics of fleet events (docs/redis.md, "Fleet events"): the per-write trim and the id it records
 * for `reset`, exact pruning by age and count within `limit`, events turned off, the id shape, and the
 * filters' edge cases the conformance suite leaves to the engine.
 */
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { SluiceError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import type { NewJob } from "../../src/store/contract.js";
import { EVENTS_SLACK } from "../../src/store/redis/lua.js";
import { RedisStore } from "../../src/store/redis/redis-store.js";
import { newJob } from "../support/new-job.js";
import { deletePrefix, randomPrefix, SHARED_REDIS } from "./helpers.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

/** A store under a fresh prefix (events as given), and a plain client on the same server. */
async function open(events?: { enabled: boolean; maxEvents: number }) {
  const prefix = randomPrefix();
  const store = new RedisStore(`${SHARED_REDIS}?prefix=${prefix}`, {
    logger: silentLogger(),
    ...(events ? { events: { ...events, retentionMs: 60_000 } } : {}),
  });
  await store.open();
  const client = new Redis(SHARED_REDIS);
  disposers.push(async () => {
    await store.close();
    client.disconnect();
    await deletePrefix(SHARED_REDIS, prefix);
  });
  return { store, client };
}

const jobs = (queue: string, n: number): NewJob[] => Array.from({ length: n }, () => newJob({ queue }));

describe("redis fleet events", () => {
  it("bounds the stream per write, exactly, and records the newest id trimmed so a reader behind is reset", async () => {
    const { store, client } = await open({ enabled: true, maxEvents: 10 });
    await store.enqueue(jobs("q", 1));
    const first = (await store.lastEventId()) as string;
    // One event per enqueue call: the first event of each script checks the length.
    for (let i = 0; i < EVENTS_SLACK + 20; i++) await store.enqueue(jobs("q", 1));
    const length = await client.xlen(store.keys.events);
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThanOrEqual(10 + EVENTS_SLACK + 1);
    const info = (await client.xinfo("STREAM", store.keys.events)) as unknown[];
    const maxDeleted = info[info.indexOf("max-deleted-entry-id") + 1] as string;
    expect(maxDeleted).not.toBe("0-0");
    const oldest = (await client.xrange(store.keys.events, "-", "+", "COUNT", 1))[0]?.[0] as string;
    // The newest id trimmed is just before the oldest kept: a reader at it lost nothing, one before it did.
    expect((await client.xrange(store.keys.events, "-", `(${oldest}`)).length).toBe(0);
    expect((await store.readEvents({ after: maxDeleted, limit: 1 })).reset).toBe(false);
    const behind = await store.readEvents({ after: first, limit: 5 });
    expect(behind.reset).toBe(true);
    expect(behind.events[0]?.id).toBe(oldest);
  });

  it("prunes exactly by age and by count within the limit, and says how many", async () => {
    const { store, client } = await open();
    await store.enqueue(jobs("q", 30));
    const ids = (await client.xrange(store.keys.events, "-", "+")).map(([id]) => id);
    expect(ids).toHaveLength(30);
    const cut = Number(ids[29]!.split("-")[0]) + 1; // every event is older than this
    // By age, at most `limit`: the 12 oldest go.
    expect((await store.prune({ limit: 12, workersSilentSince: 0, eventsBefore: cut })).events).toBe(12);
    expect(await client.xlen(store.keys.events)).toBe(18);
    // By count: 18 → 5 exactly (no `~`).
    expect((await store.prune({ limit: 1_000, workersSilentSince: 0, maxEvents: 5 })).events).toBe(13);
    expect(await client.xlen(store.keys.events)).toBe(5);
    expect((await store.readEvents({ after: ids[24]!, limit: 10 })).reset).toBe(false);
    expect((await store.readEvents({ after: ids[23]!, limit: 10 })).reset).toBe(true);
    // Nothing left to prune.
    expect((await store.prune({ limit: 1_000, workersSilentSince: 0, maxEvents: 5 })).events).toBe(0);
    // Pruning everything keeps the stream's last id: a reader at it is caught up, not reset.
    expect((await store.prune({ limit: 1_000, workersSilentSince: 0, maxEvents: 0 })).events).toBe(5);
    expect(await store.lastEventId()).toBeNull();
    const caughtUp = await store.readEvents({ after: ids[29]!, limit: 10 });
    expect(caughtUp).toEqual({ events: [], cursor: ids[29], reset: false });
    const lost = await store.readEvents({ after: ids[28]!, limit: 10 });
    expect(lost).toEqual({ events: [], cursor: ids[29], reset: true });
  });

  it("writes nothing at all with events off: no stream key", async () => {
    const { store, client } = await open({ enabled: false, maxEvents: 100 });
    const [job] = jobs("q", 1);
    await store.enqueue([job!]);
    const [claimed] = await store.claim({ queues: ["q"], limit: 1, workerId: "w", leaseMs: 30_000 });
    await store.saveProgress([{ id: job!.id, token: claimed!.leaseToken, progress: "1" }]);
    await store.complete([{ id: job!.id, token: claimed!.leaseToken, result: null }]);
    await store.pauseQueue("q", null);
    await store.resumeQueue("q");
    expect(await client.exists(store.keys.events)).toBe(0);
    expect(await store.lastEventId()).toBeNull();
    expect(await store.readEvents({ after: null, limit: 10 })).toEqual({
      events: [],
      cursor: null,
      reset: false,
    });
  });

  it("takes only stream ids as `after`, before sending anything", async () => {
    const { store } = await open();
    for (const bad of ["123", "1-", "-1", "1-2-3", " 1-0", "1-0 ", "1234567890123456-0", "0x1-0", "(1-0"]) {
      const failure = await store.readEvents({ after: bad, limit: 1 }).catch((e: unknown) => e);
      expect(failure, bad).toBeInstanceOf(SluiceError);
      expect((failure as SluiceError).code, bad).toBe("INVALID_OPTION");
    }
    // A well-formed id the store never reached is a reset, not an error.
    expect((await store.readEvents({ after: "999999999999999-0", limit: 1 })).reset).toBe(true);
  });

  it("decodes every field: time from the id, null job and task for queue events", async () => {
    const { store } = await open();
    await store.pauseQueue("q", 1_900_000_000_000);
    await store.resumeQueue("q");
    const { events } = await store.readEvents({ after: null, limit: 10 });
    expect(events.map((e) => [e.type, e.queue, e.jobId, e.task, e.attempt, e.data])).toEqual([
      ["paused", "q", null, null, null, { until: 1_900_000_000_000 }],
      ["resumed", "q", null, null, null, null],
    ]);
    expect(events[0]?.at).toBe(Number(events[0]?.id.split("-")[0]));
  });

  it("payloadField does not index into arrays, and matches in bulk actions by id too", async () => {
    const { store } = await open();
    const a = newJob({ queue: "q", payload: JSON.stringify({ list: ["x"], obj: { "1": "x" } }) });
    const b = newJob({ queue: "q", payload: JSON.stringify({ list: { "1": "x" } }) });
    await store.enqueue([a, b]);
    const list = async (path: string[]) =>
      (
        await store.listJobs({ filter: { queue: "q", payloadField: { path, equals: "x" } }, limit: 10 })
      ).jobs.map((j) => j.id);
    expect(await list(["list", "1"])).toEqual([b.id]);
    expect(await list(["list", "0"])).toEqual([]);
    expect(await list(["obj", "1"])).toEqual([a.id]);
    // By ids (listing reads them in memory; bulk actions check in Lua): same answer.
    const filter = { ids: [a.id, b.id], payloadField: { path: ["obj", "1"], equals: "x" } };
    expect((await store.listJobs({ filter, limit: 10 })).jobs.map((j) => j.id)).toEqual([a.id]);
    expect((await store.cancel(filter, { limit: 10 })).ids).toEqual([a.id]);
    expect((await store.cancel({ ids: [b.id], idPrefix: `${b.id}x` }, { limit: 10 })).ids).toEqual([]);
  });
});
