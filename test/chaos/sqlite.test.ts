/** Chaos on SQLite: worker processes SIGKILLed mid-write, then PRAGMA integrity_check (no server to restart). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe } from "vitest";
import { sqliteIntegrity } from "./chaos.js";
import { chaosTest } from "./suite.js";

describe("chaos", () => {
  chaosTest("sqlite", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-chaos-db-"));
    const file = join(dir, "chaos.db");
    return {
      url: `sqlite:${file}`,
      integrity: async () => sqliteIntegrity(file),
      destroy: async () => rmSync(dir, { recursive: true, force: true }),
    };
  });
});
