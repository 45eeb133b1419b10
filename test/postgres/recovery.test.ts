/**
 * Recovery fencing on PostgreSQL. `recover` scans for candidates, then applies one conditional UPDATE that
 * matches each job's lease token and `active` state. The scan locks its rows (FOR UPDATE SKIP LOCKED), which
 * already keeps another recovery or a claim away; these tests take that lock off the scan (a wrapped
 * connection) and hold recovery between its scan and its update, so that only the update's own condition
 * stands between a stale scan and the job: a job re-claimed or completed meanwhile stays untouched, and two
 * recoveries that saw the same jobs add one error to each, never two.
 */
import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { leaseExpiredReason } from "../../src/store/contract.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { deferred } from "../support/wait.js";
import {
  dropSchema,
  newJob,
  openStore,
  SHARED_URL,
  uniqueSchema,
  until,
  urlWithSchema,
} from "./pg-test-utils.js";

const schema = uniqueSchema();
const url = urlWithSchema(SHARED_URL, schema);
let other: PostgresStore;
let q = 0;
const queue = () => `recovery_${++q}`;
const opened: PostgresStore[] = [];
const EXPIRED = { mode: { kind: "expired" as const }, dryRun: false, limit: 1_000 };
const CRASHED = "crashed-host/1/a";

beforeAll(async () => {
  other = await openStore(url);
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await other?.close();
  await dropSchema(SHARED_URL, schema);
});

/** The recovery scan's text (the candidates query) and the row lock the tests take off it. */
const SCAN = /^SELECT id, queue, task, worker_id, attempt, max_attempts, cancel_requested, lease_token\b/;
const LOCK = "FOR UPDATE SKIP LOCKED";

/**
 * A store whose recovery runs its scan without the row lock and then calls `afterScan` before the next
 * statement of its transaction (the update) is sent. `scans()` counts the scans seen, so a test fails
 * loudly, instead of passing for nothing, if the SQL no longer looks like this.
 */
async function interleavedStore(
  afterScan: () => Promise<void>,
): Promise<{ store: PostgresStore; scans: () => number }> {
  const store = await openStore(url);
  opened.push(store);
  const pool = (store as unknown as { pool: pg.Pool }).pool;
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  const wrapped = new WeakSet<object>();
  let scans = 0;
  const wrap = (client: pg.PoolClient) => {
    if (wrapped.has(client)) return;
    wrapped.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let scanned = false;
    (client as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args) => {
      const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: string } | undefined)?.text;
      if (typeof text === "string" && SCAN.test(text.trim()) && text.includes(LOCK)) {
        scans++;
        const result = await query(text.replace(LOCK, ""), ...args.slice(1));
        scanned = true;
        return result;
      }
      if (scanned) {
        scanned = false;
        await afterScan();
      }
      return query(...args);
    };
  };
  // The promise form is the store's transactions; the callback form is pool.query's own (left alone).
  (pool as unknown as { connect: (...args: unknown[]) => unknown }).connect = (...args: unknown[]) => {
    if (args.length > 0) return connect(...args);
    return (connect() as Promise<pg.PoolClient>).then((client) => {
      wrap(client);
      return client;
    });
  };
  return { store, scans: () => scans };
}

/** Enqueues jobs and claims them as a worker that then vanished, and waits until their leases expired. */
async function expiredJobs(name: string, maxAttempts: readonly number[]) {
  const jobs = maxAttempts.map((n) => newJob({ queue: name, maxAttempts: n }));
  await other.enqueue(jobs);
  const leases = await other.claim({ queues: [name], limit: jobs.length, workerId: CRASHED, leaseMs: 1 });
  expect(leases.map((j) => j.id).sort()).toEqual(jobs.map((j) => j.id).sort());
  await until("the leases to expire", async () => {
    const visible = new Set((await other.recover({ ...EXPIRED, dryRun: true })).map((j) => j.id));
    return jobs.every((j) => visible.has(j.id));
  });
  return leases;
}

/** Starts a recovery on an interleaved store and returns once it has scanned, held before its update. */
async function recoveryHeldAfterScan() {
  const scanned = deferred();
  const gate = deferred();
  const { store, scans } = await interleavedStore(async () => {
    scanned.resolve();
    await gate.promise;
  });
  const late = store.recover(EXPIRED);
  await scanned.promise;
  return { late, scans, resume: () => gate.resolve() };
}

describe("postgres recovery fencing", () => {
  it("leaves a job re-claimed between recovery's scan and its update untouched", async () => {
    const name = queue();
    const [first] = await expiredJobs(name, [3]);
    if (!first) throw new Error("nothing claimed");
    // The late pass has seen the job with the crashed worker's token.
    const { late, scans, resume } = await recoveryHeldAfterScan();

    // Meanwhile another process recovers it, and a worker claims it again (a new token, a live lease).
    expect((await other.recover(EXPIRED)).map((j) => j.id)).toEqual([first.id]);
    const [again] = await other.claim({ queues: [name], limit: 1, workerId: "new/2/b", leaseMs: 600_000 });
    expect(again).toMatchObject({ id: first.id, attempt: 2, leaseToken: first.leaseToken + 1 });
    const before = await other.getJob(first.id);

    resume();
    expect(await late).toEqual([]);
    expect(scans()).toBe(1);
    const after = await other.getJob(first.id);
    expect(after).toEqual(before);
    expect(after).toMatchObject({ state: "active", workerId: "new/2/b", attempt: 2 });
    expect(after?.errors).toHaveLength(1);
    // The new holder still holds it.
    expect(await other.complete([{ id: first.id, token: again!.leaseToken, result: null }])).toEqual([true]);
  });

  it("leaves a job its late holder completed between recovery's scan and its update untouched", async () => {
    const name = queue();
    const [first] = await expiredJobs(name, [3]);
    if (!first) throw new Error("nothing claimed");
    const { late, scans, resume } = await recoveryHeldAfterScan();
    // The holder was only slow: its lease ran out but nothing recovered the job yet, so its token still
    // holds, and its outcome lands (same token as the scan saw, but the job is no longer active).
    expect(
      await other.complete([{ id: first.id, token: first.leaseToken, result: '"late but done"' }]),
    ).toEqual([true]);
    const before = await other.getJob(first.id);
    resume();
    expect(await late).toEqual([]);
    expect(scans()).toBe(1);
    expect(await other.getJob(first.id)).toEqual(before);
    expect(before).toMatchObject({ state: "completed", result: "late but done", errors: [], attempt: 1 });
  });

  it("adds exactly one lease-expired error per job when two recoveries saw the same jobs", async () => {
    const name = queue();
    // Every third job is on its last attempt: it goes to dead, the others back to waiting.
    const maxAttempts = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? 1 : 3));
    const leases = await expiredJobs(name, maxAttempts);
    // Both passes scan before either updates.
    let waiting = 2;
    const bothScanned = deferred();
    const barrier = async () => {
      if (--waiting === 0) bothScanned.resolve();
      await bothScanned.promise;
    };
    const a = await interleavedStore(barrier);
    const b = await interleavedStore(barrier);
    const [byA, byB] = await Promise.all([a.store.recover(EXPIRED), b.store.recover(EXPIRED)]);
    expect([a.scans(), b.scans()]).toEqual([1, 1]);
    await expectRecoveredOnce(leases, [byA, byB]);
  });

  it("adds exactly one lease-expired error per job when several recoveries race (row locks in place)", async () => {
    const name = queue();
    const maxAttempts = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? 1 : 3));
    const leases = await expiredJobs(name, maxAttempts);
    const stores = await Promise.all([1, 2, 3, 4].map(() => openStore(url)));
    opened.push(...stores);
    // Small batches, so the passes interleave over many rounds.
    const passes = await Promise.all(
      stores.map(async (store) => {
        const mine = [];
        for (;;) {
          const batch = await store.recover({ ...EXPIRED, limit: 7 });
          if (batch.length === 0) return mine;
          mine.push(...batch);
        }
      }),
    );
    await expectRecoveredOnce(leases, passes);
  });
});

/** Every job recovered by exactly one pass, with one lease-expired error, its attempt kept, to the right state. */
async function expectRecoveredOnce(
  leases: readonly { id: string; attempt: number }[],
  passes: readonly { id: string; to: string }[][],
): Promise<void> {
  const reported = passes.flat().map((j) => j.id);
  expect(reported.sort()).toEqual(leases.map((j) => j.id).sort());
  expect(new Set(reported).size).toBe(reported.length);
  const jobs = await Promise.all(leases.map((lease) => other.getJob(lease.id)));
  for (const job of jobs) {
    const last = job?.maxAttempts === 1;
    expect(job, job?.id).toMatchObject({
      state: last ? "dead" : "waiting",
      attempt: 1,
      reason: leaseExpiredReason(CRASHED),
      leaseExpiresAt: null,
    });
    expect(
      job?.errors.map((e) => [e.attempt, e.outcome, e.message]),
      job?.id,
    ).toEqual([[1, "lease-expired", leaseExpiredReason(CRASHED)]]);
  }
  // Both outcomes were exercised: every third job was on its last attempt.
  expect(jobs.filter((j) => j?.state === "dead")).toHaveLength(leases.length / 3);
}
