/** Redis's test harness: a key prefix of its own on the shared server, its keys deleted afterwards. */
import type { EngineTestHarness } from "./index.js";

/** The shared development server; the same as test/redis/helpers.ts's SHARED_REDIS. */
const SHARED = process.env.SLUICE_TEST_REDIS ?? "redis://127.0.0.1:6379/0";

export const redisHarness: EngineTestHarness = {
  isolate: ({ name, base = SHARED }) => ({
    url: `${base}?prefix=${name}`,
    // Loaded on use, so a benchmark on another engine never loads `ioredis` (its RSS is measured).
    dispose: async () => (await import("../../redis/helpers.js")).deletePrefix(base, name),
  }),
  unreachableUrl: "redis://127.0.0.1:1/0?prefix=nowhere",
};
