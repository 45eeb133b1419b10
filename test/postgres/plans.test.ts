/**
 * Query plans of the hot paths, which decide whether draining a large backlog stays linear:
 * - a claim walks jobs_claim in claim order and reads only the jobs it takes, even right after a burst of
 *   enqueues when the table has no statistics (otherwise it may read and sort the queue's whole backlog on
 *   every claim);
 * - lease-keyed writes (complete, fail, release, extend, progress) find their jobs through the unique id
 *   index, never by a scan joined with every item of the batch, nor by scanning jobs_lease as a bitmap
 *   (which revisits the dead entries of every job finished since the last vacuum).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { quoteSchema } from "../../src/store/postgres/sql.js";
import {
  dropSchema,
  newJob,
  openStore,
  SHARED_URL,
  uniqueSchema,
  urlWithSchema,
  withAdmin,
} from "./pg-test-utils.js";

const schema = uniqueSchema();
let store: PostgresStore;

beforeAll(async () => {
  store = await openStore(urlWithSchema(SHARED_URL, schema));
  // A backlog big enough that the planner weighs its indexes, and a realistic active set.
  for (let i = 0; i < 20_000; i += 1_000) {
    await store.enqueue(Array.from({ length: 1_000 }, () => newJob({ queue: "plans", retention: false })));
  }
});
afterAll(async () => {
  await store?.close();
  await dropSchema(SHARED_URL, schema);
});

/** An array literal for EXPLAIN EXECUTE (which takes no bind parameters). */
const literal = (values: readonly (string | number | null)[]) =>
  `'{${values.map((v) => (v === null ? "NULL" : `"${v}"`)).join(",")}}'`;

describe("postgres plans", () => {
  it("keeps one generic plan per statement in every function a worker calls (migration 16), so no call re-plans", async () => {
    // Planning each call was most of a one-job start or claim (migration 16's note); the setting is what
    // makes PL/pgSQL keep the plans these tests look at for every call, not only the first five.
    const configs = await withAdmin(SHARED_URL, async (client) => {
      const { rows } = await client.query<{ fn: string; config: string[] | null }>(
        `SELECT p.oid::regprocedure::text AS fn, p.proconfig AS config
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1`,
        [schema],
      );
      return new Map(rows.map((r) => [r.fn.replace(/^.*?\./, ""), r.config ?? []]));
    });
    const hot = [
      "claim(text[],integer,text,bigint,integer,boolean)",
      "start_jobs(text[],bigint[],boolean)",
      "complete_jobs(text[],bigint[],text[],boolean)",
      "fail_jobs(text[],bigint[],text[],bigint[],text[],text[],text,boolean)",
      "release_jobs(text[],bigint[],bigint[],text[],text[],text,boolean)",
      "extend_leases(text[],bigint[],bigint)",
      "job_progress(text[],bigint[],text[],text[])",
    ];
    for (const fn of hot) {
      expect(configs.get(fn), `${fn} in ${[...configs.keys()].join(", ")}`).toContain(
        "plan_cache_mode=force_generic_plan",
      );
    }
  });

  it("completes, fails, releases, extends and records progress through the id index, whatever the statistics", async () => {
    // A fresh table (no statistics yet) is where plain statements went wrong: a sequential scan joined
    // with every item of the batch, or a bitmap scan of jobs_lease. The functions must probe the id index.
    const jobs = await store.claim({ queues: ["plans"], limit: 500, workerId: "w", leaseMs: 60_000 });
    expect(jobs).toHaveLength(500);
    const s = quoteSchema(schema);
    const ids = literal(jobs.map((j) => j.id));
    const tokens = literal(jobs.map((j) => j.leaseToken));
    const texts = literal(jobs.map(() => "x"));
    const numbers = literal(jobs.map(() => "1"));
    const nothing = literal(jobs.map(() => null));
    // The signatures the store calls (migration 10: with fleet events, written here too).
    const calls = [
      `SELECT count(*) FROM ${s}.extend_leases(${ids}, ${tokens}, 1000)`,
      `SELECT count(*) FROM ${s}.job_progress(${ids}, ${tokens}, ${numbers}, ${numbers})`,
      `SELECT count(*) FROM ${s}.release_jobs(${ids}, ${tokens}, ${nothing}, ${texts}, ${literal(jobs.map(() => "waiting"))}, 'c', true)`,
      `SELECT count(*) FROM ${s}.fail_jobs(${ids}, ${tokens}, ${literal(jobs.map(() => "dead"))}, ${nothing}, ${texts}, ${literal(jobs.map(() => "{}"))}, 'c', true)`,
      `SELECT count(*) FROM ${s}.complete_jobs(${ids}, ${tokens}, ${nothing}, true)`,
    ];
    const notices = await withAdmin(SHARED_URL, async (client) => {
      const seen: string[] = [];
      client.on("notice", (notice) => seen.push(notice.message ?? ""));
      // auto_explain ships with PostgreSQL; it prints the plans of the statements inside the functions.
      await client.query("LOAD 'auto_explain'");
      await client.query(
        "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; " +
          "SET auto_explain.log_level = notice; SET client_min_messages = notice",
      );
      // PL/pgSQL switches to a generic plan after five executions in a session: run each seven times.
      for (const call of calls) {
        for (let i = 0; i < 7; i++) {
          await client.query("BEGIN");
          try {
            expect(Number((await client.query<{ count: string }>(call)).rows[0]?.count)).toBe(500);
          } finally {
            await client.query("ROLLBACK");
          }
        }
      }
      return seen;
    });
    const writes = notices.filter((n) => /UPDATE|DELETE/.test(n) && n.includes(`${s}.jobs j`));
    expect(writes.length, notices.join("\n---\n")).toBeGreaterThanOrEqual(5 * 7);
    for (const plan of writes) {
      expect(plan).toContain("jobs_id_key");
      expect(plan).not.toContain("jobs_lease");
      expect(plan).not.toMatch(/Seq Scan on jobs|Hash Join|Bitmap/);
    }
  });

  it("claims from a fresh backlog (no statistics yet) by walking jobs_claim in order, never sorting the queue", async () => {
    // A store of its own with one queue and a backlog loaded just now: the shape (size, queue name) under
    // which the planner was seen to prefer jobs_queue_state and a sort of the whole queue.
    const own = uniqueSchema();
    const fresh = await openStore(urlWithSchema(SHARED_URL, own));
    try {
      for (let i = 0; i < 40_000; i += 2_000) {
        await fresh.enqueue(
          Array.from({ length: 2_000 }, () => newJob({ queue: "bench", retention: false })),
        );
      }
    } finally {
      await fresh.close();
    }
    const notices: string[] = [];
    await withAdmin(SHARED_URL, async (client) => {
      client.on("notice", (notice) => notices.push(notice.message ?? ""));
      // auto_explain ships with PostgreSQL; it prints the plans of the statements inside the function.
      await client.query("LOAD 'auto_explain'");
      await client.query(
        "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; " +
          "SET auto_explain.log_level = notice; SET client_min_messages = notice",
      );
      // PL/pgSQL switches to a generic plan after five executions in a session: look at the seventh.
      for (let i = 0; i < 7; i++) {
        notices.length = 0;
        await client.query("BEGIN");
        try {
          await client.query(
            `SELECT count(*) FROM ${quoteSchema(own)}.claim(ARRAY['bench'], 100, 'w', 30000, 100, true)`,
          );
        } finally {
          await client.query("ROLLBACK");
        }
      }
    }).finally(() => dropSchema(SHARED_URL, own));
    const claimPlan = notices.find((n) => n.includes("SET state = 'active'"));
    expect(claimPlan, notices.join("\n---\n")).toContain("jobs_claim");
    expect(claimPlan).not.toContain("jobs_queue_state");
    expect(claimPlan).not.toMatch(/Sort Key: c\.priority/);
  });
});
