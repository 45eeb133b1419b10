/** `sluice dev` runs the demo pipeline through the real CLI entry point and shows it working. */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { Sluice, silentLogger } from "../../src/index.js";

const run = promisify(execFile);
const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "sluice-dev-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("sluice dev", () => {
  it("creates the SQLite file, runs the demo pipeline with a dead job, and exits cleanly", async () => {
    const db = join(dir, "dev.db");
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", CLI, "dev", "--db", db, "--duration", "3", "--every", "200"],
      {
        timeout: 60_000,
      },
    );
    const summary = /summary: (\d+) documents enqueued, (\d+) jobs completed, (\d+) dead/.exec(stdout);
    expect(summary).not.toBeNull();
    expect(Number(summary?.[1])).toBeGreaterThanOrEqual(3);
    expect(Number(summary?.[2])).toBeGreaterThan(0);
    // The third document is corrupt: discarded to dead on its first attempt.
    expect(Number(summary?.[3])).toBeGreaterThanOrEqual(1);
    expect(stdout).toContain("rag_embed");
    expect(stdout).toMatch(/batches: \d+ \(one per document's chunks\): \d+ fully embedded and indexed/);
    // A document is indexed only once every chunk of its batch is embedded, and exactly once.
    const sluice = new Sluice({ url: `sqlite:${db}`, logger: silentLogger() });
    try {
      const indexed = (await sluice.admin.listJobs({ task: "index-document" }, { limit: 1_000 })).jobs;
      expect(indexed.length).toBeGreaterThan(0);
      const batchIds = indexed.map((j) => (j.payload as { batchId: string }).batchId);
      expect(new Set(batchIds).size).toBe(batchIds.length);
      for (const batchId of batchIds) {
        const batch = await sluice.admin.batch(batchId);
        expect(batch.completed).toBe(batch.total);
        expect(batch.total).toBeGreaterThan(0);
      }
    } finally {
      await sluice.close();
    }
    // The hints run from a clone, where `sluice` is not on the PATH.
    expect(stdout).toContain(`npx sluice jobs list --state dead --url sqlite:${db}`);
    expect(stdout).not.toMatch(/(^|[^x] )sluice (jobs|retry|doctor)/m);
    // The demo leaves nothing waiting: the doctor a newcomer runs next finds nothing critical.
    const doctor = await run(
      process.execPath,
      ["--import", "tsx", CLI, "doctor", "--json", "--url", `sqlite:${db}`],
      {
        timeout: 60_000,
      },
    ).catch((e: { stdout: string }) => e);
    const report = JSON.parse(doctor.stdout) as {
      ok: boolean;
      findings: { check: string; severity: string }[];
    };
    expect(report.findings.filter((f) => f.severity === "critical")).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it("exits with code 2 on a usage error", async () => {
    const error = await run(process.execPath, ["--import", "tsx", CLI, "dev", "--concurrency", "many"]).catch(
      (e: { code: number }) => e,
    );
    expect((error as { code: number }).code).toBe(2);
  });
});
