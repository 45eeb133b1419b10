/** Migrations: ten processes starting at once migrate exactly once; indexes exist for the hot paths. */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LATEST_VERSION, MIGRATIONS } from "../../src/store/postgres/migrations.js";
import { dropSchema, SHARED_URL, uniqueSchema, urlWithSchema, withAdmin } from "./pg-test-utils.js";

const CHILD = fileURLToPath(new URL("./migrate-child.ts", import.meta.url));
const schemas: string[] = [];

afterAll(async () => {
  for (const schema of schemas) await dropSchema(SHARED_URL, schema);
});

interface Child {
  ready: Promise<void>;
  applied: Promise<number[]>;
  go(): void;
}

function spawnMigrator(url: string): Child {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, url], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let onReady!: () => void;
  let onApplied!: (versions: number[]) => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  const applied = new Promise<number[]>((resolve, reject) => {
    onApplied = resolve;
    void exited.then((code) =>
      reject(new Error(`migrator exited ${code} without reporting; stderr:\n${stderr}`)),
    );
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line === "ready") onReady();
    if (line.startsWith("applied ")) onApplied(JSON.parse(line.slice("applied ".length)) as number[]);
  });
  return { ready, applied, go: () => child.stdin.write("go\n") };
}

describe("postgres migrations", () => {
  it("ten processes starting at once apply each migration exactly once", async () => {
    const schema = uniqueSchema("sluice_mig");
    schemas.push(schema);
    const url = urlWithSchema(SHARED_URL, schema);
    const children = Array.from({ length: 10 }, () => spawnMigrator(url));
    await Promise.all(children.map((c) => c.ready));
    for (const child of children) child.go();
    const results = await Promise.all(children.map((c) => c.applied));

    const allVersions = MIGRATIONS.map((m) => m.version);
    // Exactly one process applied the whole list; the nine others found nothing to do.
    expect(results.filter((r) => r.length > 0)).toEqual([allVersions]);
    expect(results.flat().sort((a, b) => a - b)).toEqual(allVersions);
    const rows = await withAdmin(
      SHARED_URL,
      async (client) =>
        (await client.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`)).rows,
    );
    expect(rows.map((r: { version: number }) => r.version)).toEqual(allVersions);
    expect(Math.max(...allVersions)).toBe(LATEST_VERSION);
  }, 120_000);

  it("creates the hot-path indexes the claim, promotion, recovery and listing queries rely on", async () => {
    const schema = uniqueSchema("sluice_mig");
    schemas.push(schema);
    const url = urlWithSchema(SHARED_URL, schema);
    const child = spawnMigrator(url);
    await child.ready;
    child.go();
    expect(await child.applied).toEqual(MIGRATIONS.map((m) => m.version));
    const indexes = await withAdmin(
      SHARED_URL,
      async (client) =>
        (
          await client.query<{ indexname: string; indexdef: string }>(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'jobs'",
            [schema],
          )
        ).rows,
    );
    const def = (name: string) => indexes.find((i) => i.indexname === name)?.indexdef ?? "";
    expect(def("jobs_claim")).toMatch(/\(queue, priority, run_at, seq\) WHERE \(state = 'waiting'::text\)/);
    expect(def("jobs_due")).toMatch(/\(queue, run_at\) WHERE \(state = 'scheduled'::text\)/);
    expect(def("jobs_lease")).toMatch(/\(lease_expires_at\) WHERE \(state = 'active'::text\)/);
    expect(def("jobs_queue_state")).toMatch(/\(queue, state, seq\) WHERE \(state <> 'active'::text\)/);
    expect(def("jobs_state")).toMatch(/\(state, seq\) WHERE/);
  }, 60_000);
});
