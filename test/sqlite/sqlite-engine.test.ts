/** SQLite-only behaviour: URL parsing, concurrent migrations from many processes, unreadable rows. */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { Sluice, silentLogger } from "../../src/index.js";
import { parseSqliteUrl } from "../../src/store/sqlite/config.js";
import { LATEST_VERSION } from "../../src/store/sqlite/migrations.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { until } from "../conformance/context.js";

const run = promisify(execFile);
const OPEN_STORE = fileURLToPath(new URL("../fixtures/open-store.ts", import.meta.url));
const PRODUCER = fileURLToPath(new URL("../fixtures/producer-process.ts", import.meta.url));
const WORKER = fileURLToPath(new URL("../fixtures/worker-process.ts", import.meta.url));
const INDEX = fileURLToPath(new URL("../../src/index.ts", import.meta.url));
const dirs: string[] = [];
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-sqlite-"));
  dirs.push(dir);
  return join(dir, "sluice.db");
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("sqlite engine", () => {
  it("parses URL forms and rejects bad options with INVALID_CONFIG", () => {
    expect(parseSqliteUrl("sqlite:/tmp/a.db").path).toBe("/tmp/a.db");
    expect(parseSqliteUrl("sqlite:///tmp/a.db").path).toBe("/tmp/a.db");
    expect(parseSqliteUrl("sqlite::memory:").memory).toBe(true);
    expect(parseSqliteUrl("sqlite:/tmp/a.db?synchronous=full").synchronous).toBe("full");
    expect(() => parseSqliteUrl("sqlite:")).toThrow(expect.objectContaining({ code: "INVALID_CONFIG" }));
    expect(() => parseSqliteUrl("sqlite:/tmp/a.db?synchronous=off")).toThrow(
      expect.objectContaining({ code: "INVALID_CONFIG" }),
    );
    expect(() => parseSqliteUrl("sqlite:/tmp/a.db?busyTimeoutMs=abc")).toThrow(
      expect.objectContaining({ code: "INVALID_CONFIG" }),
    );
    expect(() => parseSqliteUrl("sqlite:/tmp/a.db?cacheKiB=-1")).toThrow(
      expect.objectContaining({ code: "INVALID_CONFIG" }),
    );
  });

  it("sizes the connection's page cache by cacheKiB, 4000 KiB by default (not better-sqlite3's 16,000)", async () => {
    for (const [query, kib] of [
      ["", 4_000],
      ["?cacheKiB=1024", 1_024],
    ] as const) {
      const store = new SqliteStore(`sqlite:${tempDb()}${query}`, { logger: silentLogger() });
      await store.open();
      const db = (store as unknown as { conn(): Database.Database }).conn();
      expect(db.pragma("cache_size", { simple: true })).toBe(-kib);
      await store.close();
    }
  });

  it("migrates exactly once when six processes open a new database at the same moment", async () => {
    const path = tempDb();
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        run(process.execPath, ["--import", "tsx", OPEN_STORE, `sqlite:${path}`]),
      ),
    );
    for (const r of results) expect(r.stdout.trim()).toBe("opened sqlite");
    const db = new Database(path, { readonly: true });
    expect(db.pragma("user_version", { simple: true })).toBe(LATEST_VERSION);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    db.close();
  });

  it("lets three producer processes and two worker processes share one file with no SQLITE_BUSY escaping", async () => {
    const path = tempDb();
    const url = `sqlite:${path}`;
    const queue = "contended";
    // Two worker processes drain while three producers write (two one-by-one, one in batches).
    const workers = [0, 1].map(() =>
      spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          WORKER,
          JSON.stringify({ url, queue, mode: "record", concurrency: 8, leaseMs: 30_000 }),
        ],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      ),
    );
    const ran: string[][] = [[], []];
    for (const [i, w] of workers.entries()) {
      createInterface({ input: w.stdout }).on("line", (line) => {
        if (line.startsWith("ran-one ")) ran[i]?.push(line.slice(8));
      });
    }
    const sluice = new Sluice({ url, logger: silentLogger() });
    try {
      const producers = await Promise.all(
        [1, 1, 100].map((batch) =>
          run(
            process.execPath,
            ["--import", "tsx", PRODUCER, JSON.stringify({ url, queue, count: 300, batch })],
            {
              timeout: 120_000,
            },
          ),
        ),
      );
      for (const p of producers) expect(p.stdout).toMatch(/^done 300$/m);
      await until(
        "all 900 completed",
        async () => (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.completed === 900,
        60_000,
        50,
      );
      for (const w of workers) w.kill("SIGTERM");
      await Promise.all(workers.map((w) => new Promise((resolve) => w.once("exit", resolve))));
      const all = [...(ran[0] ?? []), ...(ran[1] ?? [])];
      expect(all).toHaveLength(900);
      expect(new Set(all).size).toBe(900);
    } finally {
      // Even when an assertion fails, no worker process outlives the test.
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
      await sluice.close();
    }
  });

  it("fails a job whose stored payload is unreadable with that reason, and keeps running other jobs", async () => {
    const path = tempDb();
    const sluice = new Sluice({ url: `sqlite:${path}`, logger: silentLogger() });
    const ran: number[] = [];
    const task = sluice.task<{ n: number }>("t", { queue: "q", run: (p) => void ran.push(p.n) });
    const bad = await task.enqueue({ n: 0 });
    await task.enqueue({ n: 1 });
    const raw = new Database(path);
    raw.prepare("UPDATE jobs SET payload = '{not json' WHERE id = ?").run(bad.id);
    raw.close();
    await sluice.worker({ queues: ["q"] }).start();
    const job = await until("bad job dead", async () => {
      const j = await sluice.admin.getJob(bad.id);
      return j.state === "dead" ? j : null;
    });
    expect(job.errors[0]?.outcome).toBe("invalid-payload");
    expect(job.errors[0]?.message).toContain("stored job data is unreadable (payload:");
    await until("good job ran", () => ran.includes(1));
    await sluice.close();
  });

  it("checkpoints the WAL in a background thread, not inside commits", async () => {
    const path = tempDb();
    const sluice = new Sluice({ url: `sqlite:${path}?checkpointMs=50`, logger: silentLogger() });
    sluice.task("fill", { queue: "q" });
    await sluice.admin.ping();
    const before = statSync(path).size;
    // ~2 MB of WAL: far below the 10,000-page backstop, so only the thread can move it into the file.
    await sluice.enqueueMany(
      "fill",
      Array.from({ length: 2_000 }, (_, n) => ({ payload: { n, pad: "x".repeat(500) } })),
    );
    await until(
      "main database file grew from a checkpoint",
      () => statSync(path).size > before + 1_000_000,
      10_000,
    );
    const db = new Database(path, { readonly: true });
    expect(db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000); // a fresh connection: SQLite's default
    db.close();
    await sluice.close();
  });

  it("runs the checkpoint thread in a process started with --input-type=module", async () => {
    const path = tempDb();
    // Eval code in an ESM process: flags like this one are inherited by worker threads by default.
    const script = `
      const { Sluice } = await import(${JSON.stringify(INDEX)});
      const { statSync } = await import("node:fs");
      const sluice = new Sluice({ url: ${JSON.stringify(`sqlite:${path}?checkpointMs=50`)} });
      sluice.task("fill", { queue: "q" });
      await sluice.admin.ping();
      const before = statSync(${JSON.stringify(path)}).size;
      await sluice.enqueueMany("fill", Array.from({ length: 2000 }, (_, n) => ({ payload: { n, pad: "x".repeat(500) } })));
      const deadline = Date.now() + 10000;
      while (statSync(${JSON.stringify(path)}).size <= before + 1000000 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      process.stdout.write(statSync(${JSON.stringify(path)}).size > before + 1000000 ? "checkpointed\\n" : "no checkpoint\\n");
      await sluice.close();
    `;
    const { stdout } = await run(process.execPath, ["--input-type=module", "--import", "tsx", "-e", script], {
      env: { ...process.env, SLUICE_LOG_LEVEL: "warn" },
      timeout: 60_000,
    });
    expect(stdout).not.toContain("background WAL checkpoints unavailable");
    expect(stdout).toMatch(/^checkpointed$/m);
  });

  it("prints nothing on stdout when an application only enqueues with the default logger", async () => {
    const path = tempDb();
    const { SLUICE_LOG_LEVEL: _, ...env } = process.env;
    // A new file: this producer applies the migrations, which is logged at info.
    const { stdout } = await run(
      process.execPath,
      [
        "--import",
        "tsx",
        PRODUCER,
        JSON.stringify({ url: `sqlite:${path}`, queue: "q", count: 3, batch: 1 }),
      ],
      { env },
    );
    expect(stdout).toBe("done 3\n");
  });

  it("works with an in-memory database in one process", async () => {
    const sluice = new Sluice({ url: "sqlite::memory:", logger: silentLogger() });
    const task = sluice.task("m", { queue: "q", run: () => 42 });
    await sluice.worker({ queues: ["q"] }).start();
    const { id } = await task.enqueue({});
    const job = await until("done", async () => {
      const j = await sluice.admin.getJob(id);
      return j.state === "completed" ? j : null;
    });
    expect(job.result).toBe(42);
    const info = await (await sluice.store()).info();
    expect(info.hazards.some((h) => h.code === "SQLITE_MEMORY" && h.severity === "warn")).toBe(true);
    await sluice.close();
  });
});
