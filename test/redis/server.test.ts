import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import type { NewJob } from "../../src/store/contract.js";
import { parseInfo } from "../../src/store/redis/hazards.js";
import { SCRIPTS } from "../../src/store/redis/lua.js";
import { RedisStore } from "../../src/store/redis/redis-store.js";
import { newJob } from "../support/new-job.js";
import { eventually, PrivateRedis } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(args: string[] = []): Promise<PrivateRedis> {
  const redis = await PrivateRedis.start(args);
  cleanups.push(() => redis.destroy());
  return redis;
}

async function storeOn(redis: PrivateRedis, logger = silentLogger()): Promise<RedisStore> {
  const store = new RedisStore(`${redis.url}?prefix=t`, { logger });
  await store.open();
  cleanups.push(() => store.close());
  return store;
}

function captureLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n"))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

function job(queue: string): NewJob {
  return newJob({ queue });
}

describe("redis store on a private server", () => {
  it("loads each script once and then calls it by SHA only", async () => {
    const redis = await server(["--appendonly", "yes"]);
    const store = await storeOn(redis);
    for (let i = 0; i < 20; i++) {
      await store.enqueue([job("q")]);
      const [claimed] = await store.claim({ queues: ["q"], limit: 1, workerId: "w", leaseMs: 10_000 });
      await store.complete([{ id: claimed!.id, token: claimed!.leaseToken, result: null }]);
    }
    const client = redis.client();
    cleanups.push(async () => client.disconnect());
    const stats = parseInfo(await client.info("commandstats"));
    const calls = (name: string) => Number(/calls=(\d+)/.exec(stats.get(`cmdstat_${name}`) ?? "")?.[1] ?? 0);
    expect(calls("eval")).toBe(0);
    expect(calls("evalsha")).toBeGreaterThanOrEqual(60);
    expect(calls("script|load")).toBe(Object.keys(SCRIPTS).length);
  });

  it("reports an evicting maxmemory-policy as a critical hazard and logs it loudly", async () => {
    const redis = await server(["--maxmemory-policy", "allkeys-lru"]);
    const { logger, lines } = captureLogger();
    const store = await storeOn(redis, logger);
    const info = await store.info();
    const hazard = info.hazards.find((h) => h.code === "REDIS_EVICTION_POLICY");
    expect(hazard).toMatchObject({ severity: "critical" });
    expect(hazard!.message).toContain("allkeys-lru");
    expect(hazard!.fix).toContain("CONFIG SET maxmemory-policy noeviction");
    expect(info.hazards.find((h) => h.code === "REDIS_NO_AOF")).toMatchObject({ severity: "warn" });
    expect(
      lines.some(
        (l) => (l.level as number) >= 40 && String(l.msg).includes("maxmemory-policy is allkeys-lru"),
      ),
    ).toBe(true);
    expect(info).toMatchObject({ engine: "redis", location: `${redis.url}?prefix=t` });
    expect(info.version).toMatch(/^\d+\.\d+/);
  });

  it("checks the eviction policy again when it reconnects (a server brought back with allkeys-lru)", async () => {
    const redis = await server(["--appendonly", "yes", "--maxmemory-policy", "noeviction"]);
    const { logger, lines } = captureLogger();
    await storeOn(redis, logger);
    const hazard = () => lines.filter((l) => l.code === "REDIS_EVICTION_POLICY");
    expect(hazard()).toEqual([]);
    const admin = redis.client();
    cleanups.push(async () => admin.disconnect());
    await admin.config("SET", "maxmemory-policy", "allkeys-lru");
    // Drop the store's command connection, as a restart would: it reconnects by itself.
    const list = String(await admin.call("CLIENT", "LIST"));
    for (const line of list.split("\n").filter((l) => l.includes("name=sluice:commands"))) {
      await admin.call("CLIENT", "KILL", "ID", /id=(\d+)/.exec(line)?.[1] ?? "");
    }
    await eventually("the hazard logged after the reconnect", () => hazard().length > 0);
    expect(hazard()[0]).toMatchObject({ level: 50, fix: expect.stringContaining("noeviction") });
  });

  it("reports no hazard with noeviction and AOF on", async () => {
    const redis = await server([
      "--maxmemory-policy",
      "noeviction",
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
    ]);
    const store = await storeOn(redis);
    const info = await store.info();
    expect(info.hazards.filter((h) => h.severity !== "ok")).toEqual([]);
  });

  it("rejects with StoreUnavailableError while Redis is down and recovers after it restarts", async () => {
    const redis = await server(["--appendonly", "yes"]);
    const { logger, lines } = captureLogger();
    const store = await storeOn(redis, logger);
    const before = Array.from({ length: 25 }, () => job("r"));
    await store.enqueue(before);
    await redis.stop();

    const started = Date.now();
    const error = await store.enqueue([job("r")]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(
      /Redis at redis:\/\/127\.0\.0\.1:\d+\/0\?prefix=t is unreachable/,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(
      store.claim({ queues: ["r"], limit: 5, workerId: "w", leaseMs: 1_000 }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);

    await redis.startAgain();
    await eventually("the store to reconnect", async () => {
      await store.ping();
      return true;
    });
    const [stats] = await store.queueStats();
    expect(stats!.counts.waiting).toBe(25);
    const claimed = await store.claim({ queues: ["r"], limit: 100, workerId: "w", leaseMs: 10_000 });
    expect(claimed.map((j) => j.id).sort()).toEqual(before.map((j) => j.id).sort());
    expect(lines.some((l) => String(l.msg).includes("reconnecting"))).toBe(true);
    expect(lines.some((l) => String(l.msg).includes("connection restored"))).toBe(true);
  });

  it("fails open() quickly with a clear StoreUnavailableError when nothing listens", async () => {
    const redis = await server();
    await redis.stop();
    const store = new RedisStore(`redis://:secret@127.0.0.1:${redis.port}/0`, { logger: silentLogger() });
    const started = Date.now();
    const error = await store.open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toContain("unreachable");
    expect((error as Error).message).not.toContain("secret");
    expect(Date.now() - started).toBeLessThan(5_000);
    await store.close();
  });
});
