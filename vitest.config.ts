import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The chaos suite has its own entry points (vitest.chaos.config.ts): `npm run chaos:bounded`, which
    // .ci/run runs after the tests, and `npm run chaos` (full size).
    exclude: ["**/node_modules/**", "test/chaos/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Engines share services (PostgreSQL, Redis) and spawn worker processes; files run in parallel
    // but each file isolates itself (own SQLite file, own schema, own key prefix).
    pool: "forks",
    fileParallelism: true,
  },
});
