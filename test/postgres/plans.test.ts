/**
 * Query plans of the hot paths, which decide whether draining a large backlog stays linear:
 * - a claim walks jobs_claim in claim order and reads only the jobs it takes, even right after a burst of
 *   enqueues when the table has no statistics (otherwise it may read and sort the queue's whole backlog on
 *   every claim);
 * - a completion finds its jobs through the unique id index, never by scanning jobs_lease as a bitmap
 *   (which revisits the dead entries of every job finished since the last vacuum).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { quoteSchema, statements } from "../../src/store/postgres/sql.js";
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
  it.each(["force_custom_plan", "force_generic_plan"])(
    "completes and extends jobs without scanning every active job through jobs_lease (%s)",
    async (mode) => {
      const jobs = await store.claim({ queues: ["plans"], limit: 100, workerId: "w", leaseMs: 60_000 });
      expect(jobs).toHaveLength(100);
      const sql = statements(quoteSchema(schema));
      const ids = literal(jobs.map((j) => j.id));
      const tokens = literal(jobs.map((j) => j.leaseToken));
      const cases: [string, string, string][] = [
        ["complete", "text[], bigint[], text[]", `${ids}, ${tokens}, ${literal(jobs.map(() => null))}`],
        ["extend", "text[], bigint[], bigint", `${ids}, ${tokens}, 1000`],
      ];
      const plans = await withAdmin(SHARED_URL, async (client) => {
        await client.query(`SET plan_cache_mode = ${mode}`);
        const out: string[] = [];
        for (const [name, types, args] of cases) {
          await client.query("BEGIN");
          try {
            await client.query(`PREPARE p (${types}) AS ${sql[name as "complete" | "extend"]}`);
            const { rows } = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN EXECUTE p (${args})`);
            out.push(`${name}:\n${rows.map((r) => r["QUERY PLAN"]).join("\n")}`);
          } finally {
            await client.query("ROLLBACK");
            await client.query("DEALLOCATE ALL");
          }
        }
        return out;
      });
      for (const plan of plans) {
        expect(plan).not.toContain("jobs_lease");
        // A prepared statement settles on the generic plan, which must probe the id index. (A custom plan
        // may prefer one sequential pass on a table this small, which the planner rightly thinks cheaper.)
        if (mode === "force_generic_plan") expect(plan).toContain("jobs_id_key");
      }
    },
  );

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
            `SELECT count(*) FROM ${quoteSchema(own)}.claim(ARRAY['bench'], 100, 'w', 30000)`,
          );
        } finally {
          await client.query("ROLLBACK");
        }
      }
    }).finally(() => dropSchema(SHARED_URL, own));
    const claimPlan = notices.find((n) => n.includes("SET state = 'active'"));
    expect(claimPlan, notices.join("\n---\n")).toBeDefined();
    expect(claimPlan).toContain("jobs_claim");
    expect(claimPlan).not.toContain("jobs_queue_state");
    expect(claimPlan).not.toMatch(/Sort Key: c\.priority/);
  });
});
