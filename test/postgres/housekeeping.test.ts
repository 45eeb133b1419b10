/**
 * PostgreSQL housekeeping on the store's side (issue 14):
 * - the maintenance leader's prune pass vacuums the jobs table once its dead rows pass the threshold
 *   (vacuum.ts: a claim otherwise walks every dead `waiting` entry left since the last vacuum), and does not
 *   with `?vacuum=off`;
 * - with `?claimCommit=async`, a claim commits without waiting for the WAL flush, for its own transaction
 *   only: the next statement on the same connection (a completion) waits for the flush again;
 * - the URL options are checked.
 */
import type pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { parsePostgresUrl } from "../../src/store/postgres/config.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { VACUUM_MIN_DEAD_ROWS } from "../../src/store/postgres/vacuum.js";
import {
  dropSchema,
  newJob,
  openStore,
  SHARED_URL,
  uniqueSchema,
  until,
  urlWithSchema,
  withAdmin,
} from "./pg-test-utils.js";

const schemas: string[] = [];
const stores: PostgresStore[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
  for (const schema of schemas) await dropSchema(SHARED_URL, schema);
});

async function open(extra: Record<string, string> = {}): Promise<{ store: PostgresStore; schema: string }> {
  const schema = uniqueSchema("sluice_hk");
  schemas.push(schema);
  const store = await openStore(urlWithSchema(SHARED_URL, schema, extra));
  stores.push(store);
  return { store, schema };
}

/** The jobs table's counters in the statistics collector. */
async function jobsStats(schema: string): Promise<{ dead: number; vacuums: number }> {
  return withAdmin(SHARED_URL, async (client) => {
    const { rows } = await client.query<{ dead: string; vacuums: string }>(
      `SELECT n_dead_tup AS dead, vacuum_count AS vacuums FROM pg_stat_user_tables
       WHERE schemaname = $1 AND relname = 'jobs'`,
      [schema],
    );
    return { dead: Number(rows[0]?.dead ?? 0), vacuums: Number(rows[0]?.vacuums ?? 0) };
  });
}

/** Leaves at least VACUUM_MIN_DEAD_ROWS dead rows in the jobs table (claimed and completed, not kept). */
async function churn(store: PostgresStore, schema: string): Promise<void> {
  const jobs = VACUUM_MIN_DEAD_ROWS / 2 + 2_000; // a claim and a delete each leave a dead row
  for (let i = 0; i < jobs; i += 1_000) {
    await store.enqueue(Array.from({ length: 1_000 }, () => newJob({ queue: "hk", retention: false })));
    const claimed = await store.claim({ queues: ["hk"], limit: 1_000, workerId: "w", leaseMs: 60_000 });
    await store.complete(claimed.map((job) => ({ id: job.id, token: job.leaseToken, result: null })));
  }
  // Backends report their counts to the statistics collector about once a second.
  await until(
    "dead rows reported",
    async () => (await jobsStats(schema)).dead >= VACUUM_MIN_DEAD_ROWS,
    20_000,
  );
}

const prune = (store: PostgresStore) => store.prune({ limit: 1_000, workersSilentSince: 0 });

describe("postgres housekeeping", () => {
  it("vacuums the jobs table from the prune pass once its dead rows pass the threshold", async () => {
    const { store, schema } = await open();
    await prune(store);
    expect((await jobsStats(schema)).vacuums).toBe(0); // a fresh table is under the threshold
    await churn(store, schema);
    await prune(store);
    const after = await jobsStats(schema);
    expect(after.vacuums).toBe(1);
    expect(after.dead).toBeLessThan(VACUUM_MIN_DEAD_ROWS);
  });

  it("leaves vacuuming to autovacuum with ?vacuum=off", async () => {
    const { store, schema } = await open({ vacuum: "off" });
    await churn(store, schema);
    await prune(store);
    expect((await jobsStats(schema)).vacuums).toBe(0);
  });

  it("commits a claim asynchronously for its own transaction only", async () => {
    // One connection: the statement after the claim runs where the claim ran.
    const { store } = await open({ pool: "1", claimCommit: "async" });
    await store.enqueue([newJob({ queue: "hk" })]);
    const [job] = await store.claim({ queues: ["hk"], limit: 1, workerId: "w", leaseMs: 60_000 });
    expect(job).toBeDefined();
    const pool = (store as unknown as { pool: pg.Pool }).pool;
    const { rows } = await pool.query<{ synchronous_commit: string }>("SHOW synchronous_commit");
    expect(rows[0]?.synchronous_commit).toBe("on");
  });

  it("checks the claimCommit and vacuum URL options", () => {
    const base = "postgres://u@127.0.0.1/db";
    // Claims wait for the flush unless asked: a store restart must never run a job twice.
    expect(parsePostgresUrl(base)).toMatchObject({ asyncClaims: false, vacuum: true });
    expect(parsePostgresUrl(`${base}?claimCommit=async&vacuum=off`)).toMatchObject({
      asyncClaims: true,
      vacuum: false,
    });
    // Sluice's options never reach pg as server startup options.
    expect(parsePostgresUrl(`${base}?claimCommit=async&vacuum=off`).connectionString).toBe(base);
    expect(() => parsePostgresUrl(`${base}?claimCommit=later`)).toThrow(
      /claimCommit="later" must be async or sync/,
    );
    expect(() => parsePostgresUrl(`${base}?vacuum=always`)).toThrow(/vacuum="always" must be auto or off/);
  });
});
