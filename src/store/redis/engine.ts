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
  traits: { inProcess: false },
};
