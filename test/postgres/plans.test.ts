/**
 * Query plans of the hot lease-keyed writes. A completion must find its jobs through the unique id index:
 * if the planner instead scans jobs_lease (every active job) as a bitmap, each completion revisits the dead
 * index entries of every job finished since the last vacuum, and draining a large backlog slows down the
 * further it gets.
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
});
