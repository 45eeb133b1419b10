/**
 * The Redis engine's descriptor (see ../engine.ts): `redis://host:6379/0?prefix=sluice`, `rediss://…`, and
 * Redis Cluster as `redis+cluster://host:port[,host:port…]?prefix=sluice` (`rediss+cluster://…`).
 */
import type { EngineDescriptor } from "../engine.js";
import { parseRedisUrl, type RedisUrl, redisTarget } from "./config.js";

export const redisEngine: EngineDescriptor<"redis", RedisUrl> = {
  name: "redis",
  urlExample: "redis://…",
  matches: (url) => /^rediss?(\+cluster)?:\/\//.test(url),
  parseUrl: (url) => parseRedisUrl(url),
  doctorTarget: (url) => redisTarget(url),
  async create(url, options) {
    const { RedisStore } = await import("./redis-store.js");
    return new RedisStore(url, options);
  },
  // Claims start the jobs of the start window, so holding ahead costs no write per job here either, and
  // saves round trips (docs/benchmarks.md: 3.5x the jobs/s at concurrency 1).
  traits: { inProcess: false, claimAhead: true },
};
