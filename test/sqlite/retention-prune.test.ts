/**
 * Retention's deletes on SQLite read only what they may delete. They run in every maintenance pass's write
 * lock; read through jobs_state they visited every retained completed job (17 ms a pass with 50,000 kept
 * by age, 68 ms with 200,000), and every enqueue and claim of every process waited that long. A prune of
 * many jobs also runs as several short transactions. What they delete is in the conformance suite
 * (admin.ts, "applies retention").
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Store, silentLogger } from "../../src/index.js";
import { createStore } from "../../src/store/index.js";
import {
  PRUNE_BY_COUNT_SQL,
  PRUNE_EXPIRED_SQL,
  PRUNE_ROWS_PER_TRANSACTION,
  prunePause,
} from "../../src/store/sqlite/sqlite-store.js";
import { newJob } from "../support/new-job.js";

// The store's pauses go through this module's setTimeout: recorded here, then run as they are.
const pauses = vi.hoisted(() => [] as number[]);
vi.mock("node:timers/promises", async (importOriginal) => {
  const original = await importOriginal<typeof import("node:timers/promises")>();
  return {
    ...original,
    setTimeout: (ms?: number, ...rest: unknown[]) => {
      pauses.push(ms ?? 0);
      return (original.setTimeout as (...args: unknown[]) => Promise<unknown>)(ms, ...rest);
    },
  };
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** An open store on a new database file. */
async function openStore(): Promise<{ store: Store; file: string }> {
  const dir = mkdtempSync(join(tmpdir(), "sluice-sqlite-prune-"));
  dirs.push(dir);
  const file = join(dir, "sluice.db");
  const store = await createStore(`sqlite:${file}`, { logger: silentLogger() });
  await store.open();
  return { store, file };
}

/** A migrated database file, its store closed. */
async function migratedFile(): Promise<string> {
  const { store, file } = await openStore();
  await store.close();
  return file;
}

/** `count` completed jobs of queue q whose retention has run out. */
async function expiredJobs(store: Store, count: number): Promise<void> {
  await store.enqueue(Array.from({ length: count }, () => newJob({ retention: { ageMs: 0 } })));
  const jobs = await store.claim({ queues: ["q"], limit: count, workerId: "w", leaseMs: 60_000 });
  const done = await store.complete(jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
  expect(done.filter(Boolean)).toHaveLength(count);
}

/** What SQLite's planner does with `sql`, one line per step. */
function plan(db: Database.Database, sql: string, ...params: number[]): string[] {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map(
    (row) => row.detail,
  );
}

describe("sqlite retention prune", () => {
  it("finds expired jobs through jobs_keep_until and jobs kept by count through jobs_keep_count", async () => {
    const db = new Database(await migratedFile());
    try {
      const expired = plan(db, PRUNE_EXPIRED_SQL, Date.now(), 10);
      expect(expired).toContainEqual(
        expect.stringMatching(
          /^SEARCH jobs USING (COVERING )?INDEX jobs_keep_until \(keep_until>\? AND keep_until<\?\)/,
        ),
      );
      const byCount = plan(db, PRUNE_BY_COUNT_SQL, 10);
      expect(byCount).toContainEqual(
        expect.stringMatching(/^(SEARCH|SCAN) jobs USING (COVERING )?INDEX jobs_keep_count/),
      );
      // The index is in the order the ranking reads (no sort of the kept jobs).
      expect(byCount.some((step) => step.startsWith("USE TEMP B-TREE"))).toBe(false);
      // Neither reads the jobs of every state, nor every completed job.
      for (const step of [...expired, ...byCount]) {
        expect(step).not.toMatch(/jobs_state|jobs_queue_state|^SCAN jobs$/);
      }
      // The statements run (INDEXED BY fails a statement whose index is missing).
      expect(db.prepare(PRUNE_EXPIRED_SQL).run(Date.now(), 10).changes).toBe(0);
      expect(db.prepare(PRUNE_BY_COUNT_SQL).run(10).changes).toBe(0);
    } finally {
      db.close();
    }
  });

  it("deletes a big backlog in transactions of at most PRUNE_ROWS_PER_TRANSACTION jobs, up to the limit", async () => {
    const { store } = await openStore();
    try {
      await expiredJobs(store, 1_200);
      const writes = vi.spyOn(store as unknown as { write(fn: () => unknown): Promise<unknown> }, "write");
      expect(PRUNE_ROWS_PER_TRANSACTION).toBe(500);
      // One call of the maintenance pass's batch: three transactions (500, 500, 200), everything deleted.
      expect(await store.prune({ limit: 5_000, workersSilentSince: 0 })).toEqual({
        jobs: 1_200,
        workers: 0,
        events: 0,
      });
      expect(writes).toHaveBeenCalledTimes(3);
      writes.mockClear();
      // Between two transactions it pauses (at least 4 ms, twice as long as the last one took) so that
      // another process sleeping in SQLite's busy handler gets the lock: two pauses for three transactions.
      await expiredJobs(store, 1_200);
      writes.mockClear();
      pauses.length = 0;
      await store.prune({ limit: 5_000, workersSilentSince: 0 });
      expect(writes).toHaveBeenCalledTimes(3);
      expect(pauses).toHaveLength(2);
      for (const ms of pauses) expect(ms).toBeGreaterThanOrEqual(4);
      // Under the cap: one transaction, and no more than asked for.
      await expiredJobs(store, 400);
      writes.mockClear();
      expect((await store.prune({ limit: 300, workersSilentSince: 0 })).jobs).toBe(300);
      expect(writes).toHaveBeenCalledTimes(1);
      expect((await store.prune({ limit: 300, workersSilentSince: 0 })).jobs).toBe(100);
    } finally {
      await store.close();
    }
  });

  it("pauses long enough for a waiting writer's second busy-handler retry, and twice a slow transaction", () => {
    // A writer that found the lock taken retries 1 ms, then 3 ms after its first try.
    expect(prunePause(0.2)).toBe(4);
    expect(prunePause(1.5)).toBe(4);
    expect(prunePause(10)).toBe(20);
  });
});
