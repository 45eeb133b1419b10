/**
 * How an enqueue's statements reach the server: named (parsed and planned once per connection) on the
 * store's own connections, where planning the insert was a third of a one-job enqueue; as plain text on an
 * application's connection, whose prepared-statement names belong to the application.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { dropSchema, newJob, openStore, SHARED_URL, uniqueSchema, urlWithSchema } from "./pg-test-utils.js";

const schema = uniqueSchema();
let store: PostgresStore;
let app: pg.Client;

beforeAll(async () => {
  // One pooled connection: the statements below run on the connection the enqueues used.
  store = await openStore(urlWithSchema(SHARED_URL, schema, { pool: "1" }));
  app = new pg.Client({ connectionString: SHARED_URL });
  await app.connect();
});
afterAll(async () => {
  await app?.end();
  await store?.close();
  await dropSchema(SHARED_URL, schema);
});

/** Names of the statements prepared on the connection `db` queries through. */
async function preparedOn(db: pg.Pool | pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>("SELECT name FROM pg_prepared_statements ORDER BY name");
  return rows.map((row) => row.name);
}

describe("postgres enqueue statements", () => {
  it("are prepared once on the store's own connection, plain, unique-keyed and flow enqueues alike", async () => {
    await store.enqueue([newJob({ queue: "named" })]);
    const keyed = () => newJob({ queue: "named", uniqueKey: "k", uniqueStates: ["waiting"] });
    const [first] = await store.enqueue([keyed()]);
    const [second] = await store.enqueue([keyed()]); // returns the first: no insert
    expect([first?.created, second?.id]).toEqual([true, first?.id]);
    // A flow enqueue (a dependency): its fixed statements too.
    const [dependent] = await store.enqueue([
      newJob({ queue: "named", dependsOn: [{ id: first?.id ?? "", onFailure: "fail" }] }),
    ]);
    expect(dependent?.state).toBe("blocked");
    const pool = (store as unknown as { pool: pg.Pool }).pool;
    expect(await preparedOn(pool)).toEqual(
      expect.arrayContaining([
        "sluice_insertNotify",
        "sluice_insert",
        "sluice_findUnique",
        "sluice_lockUniqueKeys",
        "sluice_lockDependencies",
        "sluice_insertFlow",
        "sluice_insertEdges",
      ]),
    );
  });

  it("stay unnamed on the application's connection inside its transaction", async () => {
    await app.query("BEGIN");
    try {
      const [plain] = await store.enqueue([newJob({ queue: "app" })], { transaction: app });
      const [keyed] = await store.enqueue(
        [newJob({ queue: "app", uniqueKey: "a", uniqueStates: ["waiting"] })],
        { transaction: app },
      );
      const [dependent] = await store.enqueue(
        [newJob({ queue: "app", dependsOn: [{ id: plain?.id ?? "", onFailure: "fail" }] })],
        { transaction: app },
      );
      expect([plain?.created, keyed?.created, dependent?.state]).toEqual([true, true, "blocked"]);
      expect(await preparedOn(app)).toEqual([]);
    } finally {
      await app.query("ROLLBACK");
    }
  });
});
