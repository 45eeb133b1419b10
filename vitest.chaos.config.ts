import { defineConfig } from "vitest/config";

/**
 * The chaos suite (test/chaos/): one file per engine, run one after another so that kills and outages
 * are measured on an otherwise quiet machine. Bounded by default (`npm run chaos:bounded`, run by
 * .ci/run); CHAOS_FULL=1 for the full size (`npm run chaos`). Figures: docs/reliability.md.
 */
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    testTimeout: 720_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
  },
});
