/** SQLite's test harness: a database file in the caller's scratch directory (removed with it). */
import { join } from "node:path";
import type { EngineTestHarness } from "./index.js";

export const sqliteHarness: EngineTestHarness = {
  isolate: ({ dir }) => ({ url: `sqlite:${join(dir, "sluice.db")}`, dispose: async () => {} }),
  unreachableUrl: "sqlite:/nonexistent-dir-for-sluice-tests/x/sluice.db",
};
