/** PostgreSQL's test harness: a schema of its own on the shared server, dropped afterwards. */
import type { EngineTestHarness } from "./index.js";

/** The shared test server (trust auth); the same as test/postgres/pg-test-utils.ts's SHARED_URL. */
const SHARED = process.env.SLUICE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export const postgresHarness: EngineTestHarness = {
  isolate: ({ name, base = SHARED }) => {
    const url = new URL(base);
    url.searchParams.set("schema", name);
    return {
      url: url.toString(),
      // Loaded on use, so a benchmark on another engine never loads `pg` (its RSS is measured).
      dispose: async () => (await import("../../postgres/pg-test-utils.js")).dropSchema(base, name),
    };
  },
  unreachableUrl: "postgres://postgres@127.0.0.1:1/test?schema=nowhere",
};
