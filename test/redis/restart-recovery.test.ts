/**
 * After a Redis crash (SIGKILL of a PRIVATE server with AOF, by its pid) and restart, leases that ran out
 * during the outage are not recovered until the server has been back one lease period (`INFO server`
 * uptime_in_seconds, and this process's connection); then the orphan is, and a live worker's outcome is written.
 */
import { pino } from "pino";
import { describe, it } from "vitest";
import { RedisStore } from "../../src/store/redis/redis-store.js";
import { checkRecoveryWaitsAfterRestart } from "../support/restart-recovery.js";
import { PrivateRedis } from "./helpers.js";

describe("redis recovery after a restart", () => {
  it("waits one lease period after the server comes back before it recovers expired leases", async () => {
    const redis = await PrivateRedis.start(["--appendonly", "yes", "--appendfsync", "always"]);
    try {
      const url = `${redis.url}?prefix=rule`;
      await checkRecoveryWaitsAfterRestart({
        open: async () => {
          const store = new RedisStore(url, { logger: pino({ level: "silent" }) });
          await store.open();
          return store;
        },
        stop: () => redis.stop("SIGKILL"),
        start: () => redis.startAgain(),
      });
    } finally {
      await redis.destroy();
    }
  }, 90_000);
});
