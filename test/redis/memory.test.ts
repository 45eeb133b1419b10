import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import type { NewJob } from "../../src/store/contract.js";
import { parseInfo } from "../../src/store/redis/hazards.js";
import { RedisStore } from "../../src/store/redis/redis-store.js";
import { newJob } from "../support/new-job.js";
import { PrivateRedis } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const JOBS = 10_000;
/**
 * Payload bytes + this much per job at most. Measured: ~1,110 B over the payload — the payload key's
 * allocation (jemalloc rounds 1 KiB + header up to 1,280 B), the listpack job hash (~260 B), and one entry
 * each in the waiting ZSET, the seq index and the id → queue index.
 */
const OVERHEAD_BUDGET = 1_250;
/** Bytes per fleet event at most (measured: ~106 B with a 26-character job id and a 14-character task name). */
const EVENT_BUDGET = 150;

describe("redis memory", () => {
  it("stores a waiting job with a 1 KiB payload compactly and frees completed jobs per retention", async () => {
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.destroy());
    const client = redis.client();
    cleanups.push(async () => client.disconnect());
    const store = new RedisStore(`${redis.url}?prefix=mem`, { logger: silentLogger() });
    await store.open();
    cleanups.push(() => store.close());
    // Client query / reply buffers (a 1 MB enqueue, a 500-job claim reply) are kept or freed by the server's
    // cron on its own schedule: not job memory, so they are left out. So is the fleet events stream (bounded
    // by its own cap, measured below).
    const eventBytes = async () =>
      Number((await client.memory("USAGE", store.keys.events, "SAMPLES", 0)) ?? 0);
    const used = async () => {
      const info = parseInfo(await client.info("memory"));
      return (
        Number(info.get("used_memory")) - Number(info.get("mem_clients_normal") ?? 0) - (await eventBytes())
      );
    };

    // A first job creates the per-queue structures, so the delta below is per job only.
    const payload = JSON.stringify({ data: "x".repeat(1024 - 11) });
    expect(payload.length).toBe(1024);
    // A realistic job: a 1 KiB payload, a stored backoff and timeout, count retention.
    const make = (): NewJob =>
      newJob({
        task: "embed-document",
        queue: "mem",
        payload,
        backoff: { type: "exponential", delayMs: 1000 },
        timeoutMs: 60_000,
        retention: { count: 100 },
      });
    await store.enqueue([make()]);
    const before = await used();
    for (let i = 0; i < JOBS; i += 1_000) await store.enqueue(Array.from({ length: 1_000 }, make));
    const after = await used();
    const perJob = (after - before) / JOBS;
    const sample = (await store.listJobs({ filter: { queue: "mem" }, limit: 1 })).jobs[0]!;
    const hashBytes = Number(await client.memory("USAGE", `{mem:q:mem}:j:${sample.id}`));
    const payloadBytes = Number(await client.memory("USAGE", `{mem:q:mem}:p:${sample.id}`));
    const encoding = await client.object("ENCODING", `{mem:q:mem}:j:${sample.id}`);
    console.log(
      `[redis memory] ${Math.round(perJob)} bytes per waiting job with a 1 KiB payload ` +
        `(job hash ${hashBytes} B ${encoding}, payload key ${payloadBytes} B, rest = indexes)`,
    );
    expect(encoding).toBe("listpack");
    expect(perJob).toBeLessThan(1024 + OVERHEAD_BUDGET);

    // Run everything; retention { count: 100 } keeps only the newest 100 completed after a prune.
    const drain = async () => {
      for (;;) {
        const batch = await store.claim({ queues: ["mem"], limit: 500, workerId: "w", leaseMs: 60_000 });
        if (batch.length === 0) break;
        await store.complete(batch.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
      }
      let pruned = 0;
      for (;;) {
        const { jobs } = await store.prune({ limit: 5_000, workersSilentSince: 0 });
        if (jobs === 0) return pruned;
        pruned += jobs;
      }
    };
    expect(await drain()).toBe(JOBS + 1 - 100);
    const [stats] = await store.queueStats();
    expect(stats!.counts.completed).toBe(100);
    expect(await client.hlen("{mem}:ids")).toBe(100);
    // 100 jobs x (hash + payload key) + the queue's few structural keys: nothing else stays behind.
    expect(await client.dbsize()).toBeLessThan(100 * 2 + 20);
    const firstCycle = await used();

    // A second full cycle must not grow memory: what remains after the first is hash-table capacity
    // (Redis keeps a dict's buckets after it shrinks), not per-job leftovers.
    for (let i = 0; i < JOBS; i += 1_000) await store.enqueue(Array.from({ length: 1_000 }, make));
    expect(await drain()).toBe(JOBS);
    const secondCycle = await used();
    console.log(
      `[redis memory] after retention: +${firstCycle - before} B over the 1-job baseline after cycle 1, ` +
        `${secondCycle - firstCycle >= 0 ? "+" : ""}${secondCycle - firstCycle} B more after cycle 2 (100 jobs kept)`,
    );
    // Budget: a hash or ZSET that shrank keeps its old table until later operations on it finish the
    // incremental rehash (the server's cron only rehashes the keyspace itself), so ~130 KB per 10,000-entry
    // index (ids, seq index) may linger for a while. Any per-job leftover (>= ~50 B) over 10,000 jobs is more
    // than the budget.
    expect(secondCycle - firstCycle).toBeLessThan(400_000);

    // Fleet events: three per job (enqueued, active, completed), the same fields in every entry so the
    // stream stores their names once per node.
    const events = await client.xlen(store.keys.events);
    expect(events).toBe(3 * (2 * JOBS + 1));
    const perEvent = (await eventBytes()) / events;
    console.log(`[redis memory] ${Math.round(perEvent)} bytes per fleet event`);
    expect(perEvent).toBeLessThan(EVENT_BUDGET);
  });
});
