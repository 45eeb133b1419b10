import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Engines share services (PostgreSQL, Redis) and spawn worker processes; files run in parallel
    // but each file isolates itself (own SQLite file, own schema, own key prefix).
    pool: "forks",
    fileParallelism: true,
  },
});
