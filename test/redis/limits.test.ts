/**
 * Limits on Redis (docs/redis.md, "Limits"): what only this engine can get wrong — the claim script's key
 * indexes (`<qp>kw:<key>`, `<qp>kq`, `<qp>ka:<key>`, counters) stay exact through every way in and out of
 * waiting and active, a full key is skipped without scanning its backlog, every limit key lives in the
 * queue's hash slot, and a plain queue gets no limit keys at all.
 */
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import type { NewJob } from "../../src/store/contract.js";
import { CLAIM_KEY_WALK } from "../../src/store/redis/lua.js";
import { RedisStore } from "../../src/store/redis/redis-store.js";
import { newJob as makeJob } from "../support/new-job.js";
import { PrivateRedis, SHARED_REDIS, sharedStore } from "./helpers.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

async function open() {
  const s = await sharedStore();
  const raw = new Redis(SHARED_REDIS);
  disposers.push(s.dispose, async () => void raw.disconnect());
  return { ...s, raw };
}

function job(queue: string, limitKey: string | null, overrides: Partial<NewJob> = {}): NewJob {
  return makeJob({ queue, limitKey, payload: "{}", ...overrides });
}

const claim = (store: RedisStore, queue: string, limit: number) =>
  store.claim({ queues: [queue], limit, workerId: "w", leaseMs: 60_000 });

/** Every key of the store's prefix (SCAN), sorted. */
async function keysOf(raw: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const pattern of [`{${prefix}}:*`, `{${prefix}:q:*`]) {
    let cursor = "0";
    do {
      const [next, keys] = await raw.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== "0");
  }
  return out.sort();
}

/** The key indexes of `queue` as the claim script reads them. */
async function keyIndexes(raw: Redis, prefix: string, queue: string, key: string) {
  const qp = `{${prefix}:q:${queue}}:`;
  const kw = await raw.zrange(`${qp}kw:${key}`, "0", "-1");
  const kq = await raw.zrange(`${qp}kq`, "0", "-1");
  const ka = await raw.smembers(`${qp}ka:${key}`);
  const kwn = await raw.hget(`${qp}m`, "kwn");
  return { kw, kq: kq.filter((e) => e.slice(37) === key), ka, kwn: Number(kwn ?? 0) };
}

describe("redis limits", () => {
  it("a plain queue gets no limit keys and no limit fields", async () => {
    const { store, raw, prefix } = await open();
    await store.enqueue(Array.from({ length: 5 }, () => job("plain", null)));
    const claimed = await claim(store, "plain", 3);
    await store.complete(claimed.map((j) => ({ id: j.id, token: j.leaseToken as number, result: null })));
    const limitKeys = (await keysOf(raw, prefix)).filter((k) => /}:(kw:|kq|ka:|kr:|kh)/.test(k));
    expect(limitKeys).toEqual([]);
    const meta = await raw.hgetall(`{${prefix}:q:plain}:m`);
    expect(Object.keys(meta).filter((f) => ["lim", "khu", "kwn", "rw", "rc"].includes(f))).toEqual([]);
  });

  it("keeps every limit key of a queue in the queue's hash slot", async () => {
    const { store, raw, prefix } = await open();
    await store.setQueueLimits("slots", {
      concurrency: 10,
      rate: null,
      keyConcurrency: 2,
      keyRate: { max: 5, windowMs: 60_000 },
    });
    await store.enqueue(["a", "b", "c"].flatMap((k) => [job("slots", k), job("slots", k)]));
    await claim(store, "slots", 2);
    await store.holdKey("slots", "c", Date.now() + 60_000);
    const tag = `{${prefix}:q:slots}:`;
    const queueKeys = (await keysOf(raw, prefix)).filter((k) => !k.startsWith(`{${prefix}}:`));
    const kinds = new Set(queueKeys.map((k) => k.slice(tag.length).replace(/[:].*$/, "")));
    for (const kind of ["kw", "kq", "ka", "kr", "kh"]) expect(kinds).toContain(kind);
    // One hash tag = one slot (Cluster hashes only the tag).
    for (const key of queueKeys) expect(key.startsWith(tag)).toBe(true);
  });

  it("claims past a full key without scanning its backlog", async () => {
    // A private server: the command counts below must be this test's alone.
    const server = await PrivateRedis.start();
    const prefix = "lim";
    const store = new RedisStore(`${server.url}?prefix=${prefix}`, { logger: silentLogger() });
    await store.open();
    const raw = new Redis(server.url);
    disposers.push(async () => {
      raw.disconnect();
      await store.close();
      await server.destroy();
    });
    await store.setQueueLimits("hot", {
      concurrency: null,
      rate: null,
      keyConcurrency: 1,
      keyRate: null,
    });
    // 5,000 jobs of one key ahead of 3 cold ones: a scan of the waiting set would stop at its budget.
    await store.enqueue(Array.from({ length: 5_000 }, () => job("hot", "hot")));
    await store.enqueue(["x", "y", "z"].map((k) => job("hot", k)));
    const first = await claim(store, "hot", 10);
    expect(first.map((j) => j.limitKey)).toEqual(["hot", "x", "y", "z"]);
    // The hot key is full now: the next claim finds nothing, and does little work to learn it.
    const before = await commandCalls(raw, "zrange");
    expect(await claim(store, "hot", 10)).toEqual([]);
    expect((await commandCalls(raw, "zrange")) - before).toBeLessThan(10);
    await store.complete([{ id: first[0]!.id, token: first[0]!.leaseToken as number, result: null }]);
    const next = await claim(store, "hot", 10);
    expect(next.map((j) => j.limitKey)).toEqual(["hot"]);
    const idx = await keyIndexes(raw, prefix, "hot", "hot");
    expect(idx.kw).toHaveLength(4_998);
    expect(idx.kq).toHaveLength(1);
    expect(idx.ka).toEqual([next[0]!.id]);
    expect(idx.kwn).toBe(4_998);
  });

  it("serves allowed jobs in claim order across keys and jobs without a key", async () => {
    const { store } = await open();
    await store.setQueueLimits("order", {
      concurrency: null,
      rate: null,
      keyConcurrency: 2,
      keyRate: null,
    });
    const t = Date.now() - 10_000;
    const jobs = [
      job("order", "a", { runAt: t + 1 }),
      job("order", null, { runAt: t + 2 }),
      job("order", "a", { runAt: t + 3 }),
      job("order", "a", { runAt: t + 4 }), // a's third: over keyConcurrency 2
      job("order", "b", { runAt: t + 5 }),
      job("order", null, { runAt: t + 6 }),
      job("order", "c", { runAt: t + 7, priority: -1 }), // priority first
    ];
    await store.enqueue(jobs);
    const claimed = await claim(store, "order", 10);
    const order = [6, 0, 1, 2, 4, 5].map((i) => jobs[i]!.id);
    expect(claimed.map((j) => j.id)).toEqual(order);
    expect(claimed.find((j) => j.id === jobs[0]!.id)?.limitKey).toBe("a");
  });

  it("counts a key's rate per window and the queue's concurrency with held-ahead jobs", async () => {
    const { store } = await open();
    await store.setQueueLimits("kr", {
      concurrency: 3,
      rate: null,
      keyConcurrency: null,
      keyRate: { max: 2, windowMs: 60_000 },
    });
    await store.enqueue([...Array.from({ length: 4 }, () => job("kr", "a")), job("kr", "b")]);
    const held = await store.claim({ queues: ["kr"], limit: 10, workerId: "w", leaseMs: 60_000, start: 0 });
    expect(held.map((j) => j.limitKey)).toEqual(["a", "a", "b"]); // concurrency 3, a's rate 2
    await store.complete(held.map((j) => ({ id: j.id, token: j.leaseToken as number, result: null })));
    // Slots are free again, but key a spent its window: nothing of a until the next one.
    expect(await claim(store, "kr", 10)).toEqual([]);
  });

  it("keeps the key indexes exact through claim, release, fail, cancel, retry, move, remove and complete", async () => {
    const { store, raw, prefix } = await open();
    await store.setQueueLimits("paths", {
      concurrency: null,
      rate: null,
      keyConcurrency: 5,
      keyRate: null,
    });
    await store.enqueue(Array.from({ length: 6 }, () => job("paths", "k")));
    const [a, b, c, d] = await claim(store, "paths", 4);
    expect((await keyIndexes(raw, prefix, "paths", "k")).ka).toHaveLength(4);
    await store.release([{ id: a!.id, token: a!.leaseToken as number, reason: "shutdown" }]);
    await store.fail([
      {
        id: b!.id,
        token: b!.leaseToken as number,
        error: { attempt: 1, outcome: "error", name: "E", message: "x", at: Date.now() },
        next: { state: "waiting" },
      },
      {
        id: c!.id,
        token: c!.leaseToken as number,
        error: { attempt: 1, outcome: "error", name: "E", message: "x", at: Date.now() },
        next: { state: "dead", reason: "no" },
      },
    ]);
    await store.cancel({ ids: [d!.id] }, { limit: 10 });
    let idx = await keyIndexes(raw, prefix, "paths", "k");
    // d's cancel was requested (it is active); a and b back to waiting with the 2 never claimed.
    expect(idx.ka).toEqual([d!.id]);
    expect(idx.kw).toHaveLength(4);
    expect(idx.kwn).toBe(4);
    await store.remove({ queue: "paths", states: ["waiting"] }, { limit: 1 });
    await store.move({ queue: "paths", states: ["waiting"] }, "paths2", { limit: 1 });
    idx = await keyIndexes(raw, prefix, "paths", "k");
    expect(idx.kw).toHaveLength(2);
    expect(idx.kwn).toBe(2);
    expect(idx.kq).toHaveLength(1);
    expect(idx.kq[0]!.slice(0, 37)).toBe(idx.kw[0]!.slice(0, 37)); // the entry is at the key's head
    const moved = await keyIndexes(raw, prefix, "paths2", "k");
    expect(moved.kw).toHaveLength(1);
    expect(moved.kq).toHaveLength(1);
    expect(moved.kwn).toBe(1);
    await store.retry({ ids: [c!.id] }, { limit: 10 });
    expect((await keyIndexes(raw, prefix, "paths", "k")).kw).toHaveLength(3);
    // Drain: every index empties.
    for (;;) {
      const got = await claim(store, "paths", 10);
      if (got.length === 0) break;
      await store.complete(got.map((j) => ({ id: j.id, token: j.leaseToken as number, result: null })));
    }
    idx = await keyIndexes(raw, prefix, "paths", "k");
    expect(idx).toEqual({ kw: [], kq: [], ka: [d!.id], kwn: 0 });
  });

  it("reports holds with their backlog, and resumeQueue clears them", async () => {
    const { store } = await open();
    await store.enqueue([job("h", "a"), job("h", "a"), job("h", "b"), job("h", null)]);
    await store.holdKey("h", "a", Date.now() + 60_000);
    await store.holdKey("h", "a", Date.now() + 1_000); // only ever extends
    await store.holdKey("h", "b", Date.now() + 30_000);
    const holds = await store.keyHolds(10);
    expect(holds.map((h) => [h.key, h.backlog])).toEqual([
      ["a", 2],
      ["b", 1],
    ]);
    expect(holds[0]!.until).toBeGreaterThan(Date.now() + 50_000);
    const claimed = await claim(store, "h", 10);
    expect(claimed.map((j) => j.limitKey)).toEqual([null]);
    const stats = (await store.queueStats()).find((q) => q.queue === "h");
    expect(stats).toMatchObject({ heldKeys: 2, limitedActive: 1, limits: null });
    await store.resumeQueue("h");
    expect(await store.keyHolds(10)).toEqual([]);
    expect((await claim(store, "h", 10)).map((j) => j.limitKey).sort()).toEqual(["a", "a", "b"]);
  });

  it(`bounds the keys one claim walks (${CLAIM_KEY_WALK})`, async () => {
    const { store } = await open();
    await store.setQueueLimits("walk", {
      concurrency: null,
      rate: null,
      keyConcurrency: null,
      keyRate: { max: 1, windowMs: 60_000 },
    });
    const keys = CLAIM_KEY_WALK + 10;
    await store.enqueue(Array.from({ length: keys }, (_, n) => job("walk", `k${n}`)));
    let taken = 0;
    for (;;) {
      const got = await claim(store, "walk", 500);
      if (got.length === 0) break;
      taken += got.length;
    }
    expect(taken).toBe(keys);
    // Every key spent its window; a second job of each waits, and a claim stops after the walk bound.
    await store.enqueue(Array.from({ length: keys }, (_, n) => job("walk", `k${n}`)));
    expect(await claim(store, "walk", 500)).toEqual([]);
  });
});

/** How many times the server has run `command` (INFO commandstats; scripts' calls included). */
async function commandCalls(raw: Redis, command: string): Promise<number> {
  const info = await raw.info("commandstats");
  const line = info.split("\n").find((l) => l.startsWith(`cmdstat_${command}:`));
  return Number(/calls=(\d+)/.exec(line ?? "")?.[1] ?? 0);
}
