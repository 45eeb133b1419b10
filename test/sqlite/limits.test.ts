/**
 * Limits on SQLite (src/store/sqlite/limits.ts), what only this engine can get wrong: the statements a
 * claim of a plain queue runs (no more than before limits), the indexes the limited claim reads (the
 * per-key count and the keyed scan must be covering index searches, not table scans), the keyed scan's
 * skipping of a long backlog of one key (no head-of-line blocking, also past its rescan), counts kept
 * exact by every way a job leaves `active`, rate windows, holds, and migration 9 on an existing database.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { QueueLimits } from "../../src/core/limits.js";
import type { JobRecord, NewJob } from "../../src/index.js";
import { silentLogger } from "../../src/index.js";
import { createStore } from "../../src/store/index.js";
import { MIGRATIONS } from "../../src/store/sqlite/migrations.js";
import type { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { newJob } from "../support/new-job.js";

interface Internals {
  stmt(sql: string): unknown;
  conn(): Database.Database;
}

const dirs: string[] = [];
const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-limits-"));
  dirs.push(dir);
  return join(dir, "l.db");
}

async function openStore(path = tempPath()): Promise<SqliteStore> {
  const store = (await createStore(`sqlite:${path}`, { logger: silentLogger() })) as SqliteStore;
  await store.open();
  stores.push(store);
  return store;
}

const limits = (l: Partial<QueueLimits>): QueueLimits => ({
  concurrency: null,
  rate: null,
  keyConcurrency: null,
  keyRate: null,
  ...l,
});

/** Enqueues jobs one call, in order; `keys[i]` is the i-th job's limit key. */
async function enqueueKeys(store: SqliteStore, queue: string, keys: (string | null)[]): Promise<NewJob[]> {
  const now = Date.now();
  const jobs = keys.map((limitKey) => newJob({ queue, limitKey, runAt: now - 1000 }));
  await store.enqueue(jobs);
  return jobs;
}

const claim = (store: SqliteStore, queue: string, limit: number, start?: number): Promise<JobRecord[]> =>
  store.claim({
    queues: [queue],
    limit,
    workerId: "w",
    leaseMs: 60_000,
    ...(start === undefined ? {} : { start }),
  });

describe("sqlite limits", () => {
  it("a claim of a plain queue runs the statements it ran before limits, none of the limit ones", async () => {
    const store = await openStore();
    await store.setQueueLimits("other", limits({ keyConcurrency: 1 })); // a limited queue exists beside it
    await enqueueKeys(store, "plain", ["a", "a", null]);
    const internals = store as unknown as Internals;
    const original = internals.stmt.bind(store);
    const used: string[] = [];
    internals.stmt = (sql: string) => {
      used.push(sql);
      return original(sql);
    };
    try {
      expect(await claim(store, "plain", 3)).toHaveLength(3); // keys mean nothing in a queue with no limits
    } finally {
      internals.stmt = original;
    }
    const statements = used.map((s) => s.replace(/\s+/g, " ").trim());
    // The pause/limit gate (one statement, as the pause read was), promotion, the take, the active events.
    expect(statements).toHaveLength(4);
    expect(statements[0]).toMatch(/^SELECT name, .* FROM queues WHERE paused = 1/);
    expect(statements[1]).toMatch(/^UPDATE jobs SET state = 'waiting'/);
    // `LIMIT (? + 0)`: a bare `LIMIT ?` would have SQLite re-prepare the take at every claim (sqlite-store.ts).
    expect(statements[2]).toMatch(
      /^UPDATE jobs SET state = 'active'.*ORDER BY priority, run_at, seq LIMIT \(\? \+ 0\)/,
    );
    expect(statements[3]).toMatch(/^INSERT INTO events/);
    expect(statements.join("\n")).not.toMatch(/key_holds|key_rates|limit_key|json_each/);
  });

  it("the limited claim's counts and scan are covering index searches", async () => {
    const store = await openStore();
    const db = (store as unknown as Internals).conn();
    const plan = (sql: string, ...args: unknown[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[])
        .map((r) => r.detail)
        .join(" | ");
    // The per-key active count (limits.ts pickKeyed): only the active keyed jobs of the queue.
    expect(
      plan(
        `SELECT limit_key AS key, COUNT(*) AS n FROM jobs
         WHERE queue = ? AND state = 'active' AND limit_key IS NOT NULL GROUP BY limit_key`,
        "q",
      ),
    ).toContain("USING COVERING INDEX jobs_active_key (queue=?");
    // The queue's active count.
    expect(plan("SELECT COUNT(*) AS n FROM jobs WHERE queue = ? AND state = 'active'", "q")).toContain(
      "USING COVERING INDEX jobs_queue_state (queue=? AND state=?)",
    );
    // The keyed scan, first and resumed past a row: the claim index carries limit_key, so skipping a
    // key's backlog reads index entries only, in claim order (no sort).
    const scan = `SELECT seq, priority, run_at, limit_key FROM jobs WHERE queue = ? AND state = 'waiting'
      AND (limit_key IS NULL OR limit_key NOT IN (SELECT value FROM json_each(?))) ORDER BY priority, run_at, seq`;
    const first = plan(scan, "q", "[]");
    expect(first).toContain("USING COVERING INDEX jobs_claim (queue=?)");
    expect(first).not.toContain("TEMP B-TREE");
    const resumed = plan(
      scan.replace("state = 'waiting'", "state = 'waiting' AND (priority, run_at, seq) > (?, ?, ?)"),
      "q",
      0,
      0,
      0,
      "[]",
    );
    expect(resumed).toMatch(/USING COVERING INDEX jobs_claim \(queue=\? AND \(priority,run_at\)>/);
    expect(resumed).not.toContain("TEMP B-TREE");
    // The statements the store really runs are these (a change there must change this test).
    const source = await import("node:fs").then((fs) =>
      fs.readFileSync(new URL("../../src/store/sqlite/limits.ts", import.meta.url), "utf8"),
    );
    expect(source).toContain(
      "WHERE queue = ? AND state = 'active' AND limit_key IS NOT NULL GROUP BY limit_key",
    );
    expect(source).toContain("(limit_key IS NULL OR limit_key NOT IN (SELECT value FROM json_each(?)))");
  });

  it("skips a key at its limit, however long its backlog, and takes the next jobs in claim order", async () => {
    const store = await openStore();
    await store.setQueueLimits("hol", limits({ keyConcurrency: 1 }));
    // 300 jobs of one key ahead of everything, then cold keys and unkeyed jobs.
    const hot = await enqueueKeys(store, "hol", Array(300).fill("hot"));
    const cold = await enqueueKeys(store, "hol", ["c1", null, "c2", "c1", "c3", null]);
    // The hot key is free at the start: its first job goes, the rest of its backlog is skipped (past the
    // rescan threshold), then cold jobs in order — c1's second job waits for its first.
    const first = await claim(store, "hol", 5);
    expect(first.map((j) => j.id)).toEqual([hot[0], cold[0], cold[1], cold[2], cold[4]].map((j) => j?.id));
    expect(first.map((j) => j.limitKey)).toEqual(["hot", "c1", null, "c2", "c3"]);
    // Now the hot key is at its limit when the claim starts (excluded in SQL): only the unkeyed job is left.
    const second = await claim(store, "hol", 5);
    expect(second.map((j) => j.id)).toEqual([cold[5]?.id]);
    expect(await claim(store, "hol", 5)).toEqual([]);
  });

  it("keeps per-key and queue counts exact whichever way a job leaves active", async () => {
    const store = await openStore();
    await store.setQueueLimits("exits", limits({ concurrency: 1, keyConcurrency: 1 }));
    await enqueueKeys(store, "exits", Array(8).fill("k"));
    const next = async () => {
      const jobs = await claim(store, "exits", 3);
      expect(jobs).toHaveLength(1);
      expect(await claim(store, "exits", 3)).toEqual([]); // full until it leaves
      return jobs[0] as JobRecord;
    };
    let job = await next();
    await store.complete([{ id: job.id, token: job.leaseToken, result: null }]);
    job = await next();
    await store.fail([
      {
        id: job.id,
        token: job.leaseToken,
        error: { attempt: 1, outcome: "error", name: "Error", message: "x", at: Date.now() },
        next: { state: "scheduled", runAt: Date.now() + 60_000 },
      },
    ]);
    job = await next();
    await store.release([{ id: job.id, token: job.leaseToken, reason: "give back" }]);
    job = await next();
    await store.cancel({ ids: [job.id] }, { limit: 10 }); // requested while active…
    await store.release([{ id: job.id, token: job.leaseToken, reason: "cancel" }]); // …then cancelled
    expect((await store.getJob(job.id))?.state).toBe("cancelled");
    job = await next();
    await store.recover({ mode: { kind: "startedBefore", at: Date.now() + 1 }, limit: 10, dryRun: false });
    job = await next();
    // A held job (claimed ahead, not started) holds the slot too, and moving it away frees it.
    expect(job.startedAt).not.toBeNull();
    await store.complete([{ id: job.id, token: job.leaseToken, result: null }]);
    const held = await claim(store, "exits", 1, 0);
    expect(held).toHaveLength(1);
    expect(await claim(store, "exits", 1)).toEqual([]);
    await store.move({ ids: [held[0]?.id as string] }, "elsewhere", { limit: 10 });
    expect(await claim(store, "exits", 1)).toHaveLength(1);
    const stats = (await store.queueStats()).find((q) => q.queue === "exits");
    expect(stats?.limitedActive).toBe(1);
  });

  it("a job claimed ahead (held, not started) takes a slot like a running one, for the queue and its key", async () => {
    const store = await openStore();
    await store.setQueueLimits("ahead", limits({ concurrency: 1 }));
    await store.setQueueLimits("ahead-key", limits({ keyConcurrency: 1 }));
    await enqueueKeys(store, "ahead", [null, null]);
    await enqueueKeys(store, "ahead-key", ["k", "k"]);
    for (const queue of ["ahead", "ahead-key"]) {
      const held = await claim(store, queue, 2, 0);
      expect(held).toHaveLength(1);
      expect(held[0]?.startedAt).toBeNull();
      expect(await claim(store, queue, 2)).toEqual([]);
    }
  });

  it("counts a queue rate and a key rate per fixed window, n per claim of n", async () => {
    const store = await openStore();
    const windowMs = 300;
    await store.setQueueLimits("rate", limits({ rate: { max: 4, windowMs }, keyRate: { max: 2, windowMs } }));
    await enqueueKeys(store, "rate", ["a", "a", "a", "b", "b", "b", null, null, null]);
    // Start right after a window boundary so the whole test stays inside one window.
    while (Date.now() % windowMs > 50) await new Promise((r) => setTimeout(r, 5));
    const window = Math.floor(Date.now() / windowMs);
    const first = await claim(store, "rate", 3);
    expect(first.map((j) => j.limitKey)).toEqual(["a", "a", "b"]); // a's third job is over a's rate
    const second = await claim(store, "rate", 3);
    expect(second.map((j) => j.limitKey)).toEqual(["b"]); // the queue's 4 per window are used up
    expect(await claim(store, "rate", 3)).toEqual([]);
    expect(Math.floor(Date.now() / windowMs)).toBe(window); // (the test's own premise held)
    // The next window counts again from 0.
    while (Math.floor(Date.now() / windowMs) === window) await new Promise((r) => setTimeout(r, 10));
    const third = await claim(store, "rate", 10);
    expect(third.map((j) => j.limitKey)).toEqual(["a", "b", null, null]);
  });

  it("a key hold only extends, skips the key's jobs, is listed with its backlog, and resume clears it", async () => {
    const store = await openStore();
    await enqueueKeys(store, "holds", ["x", "x", "y", "z", "z", "z"]);
    const now = Date.now();
    await store.holdKey("holds", "z", now + 60_000);
    await store.holdKey("holds", "z", now + 1_000); // shorter: ignored
    await store.holdKey("holds", "x", now + 30_000);
    expect(await store.keyHolds(10)).toEqual([
      { queue: "holds", key: "z", until: now + 60_000, backlog: 3 },
      { queue: "holds", key: "x", until: now + 30_000, backlog: 2 },
    ]);
    expect((await store.queueStats()).find((q) => q.queue === "holds")?.heldKeys).toBe(2);
    // A queue with holds and no limits: only the held keys wait.
    expect((await claim(store, "holds", 10)).map((j) => j.limitKey)).toEqual(["y"]);
    await store.resumeQueue("holds");
    expect(await store.keyHolds(10)).toEqual([]);
    expect((await claim(store, "holds", 10)).map((j) => j.limitKey)).toEqual(["x", "x", "z", "z", "z"]);
    // Over holds and finished rate windows are pruned by maintenance.
    await store.holdKey("holds", "gone", Date.now() - 1);
    await store.prune({ limit: 100, workersSilentSince: 0 });
    const rows = (store as unknown as Internals)
      .conn()
      .prepare("SELECT COUNT(*) AS n FROM key_holds")
      .get() as {
      n: number;
    };
    expect(rows.n).toBe(0);
  });

  it("migration 9 keeps the jobs of a version 8 database, with no key, claimable", async () => {
    const path = tempPath();
    const raw = new Database(path);
    for (const m of MIGRATIONS.filter((m) => m.version <= 8)) raw.exec(m.sql);
    raw.pragma("user_version = 8");
    raw
      .prepare(
        `INSERT INTO jobs (id, task, queue, state, payload, run_at, created_at, max_attempts)
         VALUES ('old', 't', 'mq', 'waiting', '{}', 0, 0, 1)`,
      )
      .run();
    raw.close();
    const store = await openStore(path);
    const status = await store.migrations();
    expect(status.applied).toContain(9);
    expect(status.current).toBe(status.latest);
    expect((await store.getJob("old"))?.limitKey).toBeNull();
    await store.setQueueLimits("mq", limits({ keyConcurrency: 1, concurrency: 5 }));
    expect((await claim(store, "mq", 5)).map((j) => j.id)).toEqual(["old"]);
  });
});
