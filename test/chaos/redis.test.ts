/**
 * Chaos on Redis: worker SIGKILLs, then SIGKILLs of a PRIVATE redis-server (AOF on, fsync always, by pid),
 * started again on the same data directory.
 */
import { describe } from "vitest";
import { PrivateRedis } from "../redis/helpers.js";
import { chaosTest } from "./suite.js";

describe("chaos", () => {
  chaosTest("redis", async () => {
    const redis = await PrivateRedis.start(["--appendonly", "yes", "--appendfsync", "always"]);
    return {
      url: `${redis.url}?prefix=chaos`,
      stop: () => redis.stop("SIGKILL"),
      start: () => redis.startAgain(),
      destroy: () => redis.destroy(),
    };
  });
});
