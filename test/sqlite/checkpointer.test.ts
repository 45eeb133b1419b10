/**
 * The background checkpoint thread (src/store/sqlite/checkpointer.ts) must keep the WAL short under steady
 * writes: if it only copies frames, the WAL never starts over and SQLite's in-commit backstop ends up
 * checkpointing inside every commit. The WAL file never shrinks (no journal_size_limit), so its size is the
 * longest the WAL has been.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { Checkpointer, type CheckpointSchedule } from "../../src/store/sqlite/checkpointer.js";
import { until } from "../conformance/context.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A WAL database written by a connection that never checkpoints itself, so only the thread can. */
function writer() {
  const dir = mkdtempSync(join(tmpdir(), "sluice-checkpointer-"));
  const path = join(dir, "wal.db");
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("wal_autocheckpoint = 0");
  db.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  cleanups.push(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const insert = db.prepare("INSERT INTO rows (body) VALUES (?)");
  const body = Buffer.alloc(1_000, 7);
  const pageSize = db.pragma("page_size", { simple: true }) as number;
  return {
    path,
    /** Commits `count` transactions of one row each (at least one WAL frame each), in bursts of ten. */
    async commit(count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        insert.run(body);
        if (i % 10 === 9) await sleep(0); // time between bursts, as a worker's commits have
      }
    },
    /** The most frames the WAL has held. */
    walFrames: () => Math.max(0, statSync(`${path}-wal`).size - 32) / (pageSize + 24),
    /** How many times the WAL has started over: its header's checkpoint sequence number. */
    restarts(): number {
      const header = Buffer.alloc(32);
      const fd = openSync(`${path}-wal`, "r");
      try {
        readSync(fd, header, 0, 32, 0);
      } finally {
        closeSync(fd);
      }
      return header.readUInt32BE(12);
    },
  };
}

function start(path: string, schedule: CheckpointSchedule): Checkpointer {
  const errors: string[] = [];
  const checkpointer = new Checkpointer(path, schedule, (message) => errors.push(message));
  cleanups.push(async () => {
    await checkpointer.close();
    expect(errors).toEqual([]);
  });
  return checkpointer;
}

const COMMITS = 6_000;

/** Commits until the thread has let the WAL start over once (it is running), then `COMMITS` more. */
async function steadyWrites(wal: ReturnType<typeof writer>) {
  const first = wal.restarts();
  await until("the WAL to start over once", async () => {
    await wal.commit(10);
    return wal.restarts() > first;
  });
  const before = { frames: wal.walFrames(), restarts: wal.restarts() };
  await wal.commit(COMMITS);
  return { frames: wal.walFrames() - before.frames, restarts: wal.restarts() - before.restarts };
}

describe("SQLite checkpoint thread", () => {
  it("runs on a small V8 heap, so that it adds little to the process's memory", async () => {
    const wal = writer();
    const checkpointer = start(wal.path, { intervalMs: 50 });
    await wal.commit(10);
    const limits = checkpointer.heapLimits;
    expect(limits?.maxOldGenerationSizeMb).toBeGreaterThan(0);
    expect(limits?.maxOldGenerationSizeMb).toBeLessThanOrEqual(8);
    expect(limits?.maxYoungGenerationSizeMb).toBeLessThanOrEqual(2);
  });

  it("lets the WAL start over under steady writes, not only copy it", async () => {
    const wal = writer();
    start(wal.path, { intervalMs: 20, eagerMs: 20, restartPages: 64 });
    const run = await steadyWrites(wal);
    // Copying alone would leave the WAL holding every frame written.
    expect(run.frames).toBeLessThan(COMMITS / 4);
  });

  it("comes back early while the WAL is long, not after the usual interval", async () => {
    const wal = writer();
    await wal.commit(200); // long already when the thread starts
    start(wal.path, { intervalMs: 600_000, eagerMs: 10, restartPages: 64 });
    const run = await steadyWrites(wal);
    expect(run.frames).toBeLessThan(COMMITS / 4);
  });

  it("slows down on a quiet store, doubling its delay up to the interval, and speeds up when writes come", async () => {
    const wal = writer();
    const rounds = await roundsUntilQuiet(wal.path);
    const seen = rounds.length;
    await wal.commit(COMMITS);
    await until("a round paced by the writes", () => rounds.slice(seen).some((r) => r.delay < 200));
  });

  it("slows down once writes stop after a RESTART, though the WAL reports its old length until a commit", async () => {
    const wal = writer();
    await wal.commit(200); // past restartPages: the first round runs RESTART, then nothing is written
    const rounds = await roundsUntilQuiet(wal.path);
    expect(rounds[0]!.log).toBeGreaterThanOrEqual(200);
    // The length did not change: no writes, so no reason to come back sooner.
    for (const round of rounds) expect(round.log).toBe(rounds[0]!.log);
  });
});

/**
 * Starts the thread on a store nobody writes to and waits for its rounds to reach the interval (200 ms):
 * 10, 20, 40, 80, 160, 200, a few rounds, never a jump (a burst then waits at most twice the last delay).
 */
async function roundsUntilQuiet(path: string): Promise<Array<{ log: number | null; delay: number }>> {
  const rounds: Array<{ log: number | null; delay: number }> = [];
  start(path, { intervalMs: 200, eagerMs: 5, restartPages: 64, onRound: (round) => rounds.push(round) });
  await until("the quiet store's rounds to reach the interval", () => rounds.some((r) => r.delay === 200));
  const quiet = rounds.slice(0, rounds.findIndex((r) => r.delay === 200) + 1);
  expect(quiet[0]!.delay).toBeLessThanOrEqual(10);
  for (let i = 1; i < quiet.length; i++) expect(quiet[i]!.delay).toBeLessThanOrEqual(2 * quiet[i - 1]!.delay);
  expect(quiet.length).toBeLessThanOrEqual(8);
  return rounds;
}
