import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConformanceSuite } from "../conformance/suite.js";

const dirs = new Map<string, string>();

defineConformanceSuite({
  name: "sqlite",
  async newUrl() {
    const dir = mkdtempSync(join(tmpdir(), "sluice-conformance-"));
    const url = `sqlite:${join(dir, "sluice.db")}`;
    dirs.set(url, dir);
    return url;
  },
  async cleanup(url) {
    const dir = dirs.get(url);
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
});
