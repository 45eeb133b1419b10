/**
 * Transactional enqueue: a job enqueued on the application's own connection inside its transaction exists
 * if and only if that transaction commits, and its wake-up is delivered only on commit.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sluice, StoreUnavailableError, silentLogger } from "../../src/index.js";
import type { StoreSignal } from "../../src/store/contract.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
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
let store: PostgresStore;
let app: pg.Pool;

beforeAll(async () => {
  store = await openStore(url);
  app = new pg.Pool({ connectionString: SHARED_URL, max: 3 });
  // The application's own table, in this run's schema (created by the store): runs never share it.
  await app.query(`CREATE TABLE "${schema}".orders (id text PRIMARY KEY)`);
});
afterAll(async () => {
  await app?.end();
  await store?.close();
  await dropSchema(SHARED_URL, schema);
});

describe("postgres transactional enqueue", () => {
  it("the job exists after COMMIT, together with the application's row", async () => {
    const client = await app.connect();
    try {
      await client.query("BEGIN");
      await client.query(`INSERT INTO "${schema}".orders (id) VALUES ($1)`, ["order-commit"]);
      const [result] = await store.enqueue([newJob({ queue: "txn" })], { transaction: client });
      expect(result?.created).toBe(true);
      // Not visible to anyone else before the commit.
      expect(await store.getJob(result!.id)).toBeNull();
      await client.query("COMMIT");
      expect((await store.getJob(result!.id))?.state).toBe("waiting");
    } finally {
      client.release();
    }
  });

  it("the job does not exist after ROLLBACK", async () => {
    const client = await app.connect();
    let id = "";
    try {
      await client.query("BEGIN");
      const [result] = await store.enqueue([newJob({ queue: "txn" }), newJob({ queue: "txn" })], {
        transaction: client,
      });
      id = result!.id;
      const inside = await client.query(`SELECT count(*)::int AS n FROM "${schema}".jobs WHERE id = $1`, [
        id,
      ]);
      expect(inside.rows[0].n).toBe(1); // written inside the transaction…
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    expect(await store.getJob(id)).toBeNull(); // …and gone with it
  });

  it("says the application's transaction must be rolled back when the enqueue inside it fails", async () => {
    const [existing] = await store.enqueue([newJob({ queue: "txn" })]);
    const client = await app.connect();
    try {
      await client.query("BEGIN");
      // A non-idempotent job reusing a stored id: the insert is refused, which aborts the transaction.
      const error = await store
        .enqueue([newJob({ queue: "txn", id: existing!.id })], { transaction: client })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/transaction is aborted now: roll it back/);
      expect(error).toMatchObject({ rejected: true });
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
  });

  it("works through the public API and with an ORM-style handle whose query() returns the rows array", async () => {
    const sluice = new Sluice({ url, logger: silentLogger() });
    sluice.task("send-receipt", { queue: "txn_orm" });
    const client = await app.connect();
    // TypeORM's QueryRunner.query(text, params) resolves to the rows array itself.
    const ormLike = {
      query: async (text: string, values?: unknown[]) => (await client.query(text, values)).rows,
    };
    try {
      await client.query("BEGIN");
      const kept = await sluice.withTransaction(ormLike).enqueue("send-receipt", { order: 1 });
      await client.query("COMMIT");
      await client.query("BEGIN");
      const dropped = await sluice.withTransaction(client).enqueue("send-receipt", { order: 2 });
      await client.query("ROLLBACK");
      expect((await store.getJob(kept.id))?.payload).toEqual({ order: 1 });
      expect(await store.getJob(dropped.id)).toBeNull();
    } finally {
      client.release();
      await sluice.close();
    }
  });

  it("deduplicates by unique key inside the transaction and serialises racing transactions on the key", async () => {
    const [a, b] = [await app.connect(), await app.connect()];
    try {
      await a.query("BEGIN");
      await b.query("BEGIN");
      const key = `k-${schema}`;
      const first = await store.enqueue(
        [newJob({ queue: "txn", uniqueKey: key, uniqueStates: ["waiting"] })],
        {
          transaction: a,
        },
      );
      // b blocks on the key's advisory lock until a commits, then sees a's job.
      const second = store.enqueue([newJob({ queue: "txn", uniqueKey: key, uniqueStates: ["waiting"] })], {
        transaction: b,
      });
      await a.query("COMMIT");
      const [dedup] = await second;
      await b.query("COMMIT");
      expect(dedup).toEqual({ id: first[0]?.id, state: "waiting", created: false });
    } finally {
      a.release();
      b.release();
    }
  });

  it("delivers the wake-up only when the transaction commits", async () => {
    const signals: StoreSignal[] = [];
    const unsubscribe = store.subscribe((signal) => signals.push(signal));
    try {
      expect(await store.listening()).toBe(true);
      const client = await app.connect();
      try {
        await client.query("BEGIN");
        await store.enqueue([newJob({ queue: "txn_wake" })], { transaction: client });
        // A marker notification sent after the enqueue but committed before it: notifications arrive in
        // commit order, so when the marker arrives, an early (uncommitted) wake-up would already be here.
        await store.resumeQueue("txn_marker");
        await until("the marker signal", () =>
          signals.some((s) => s.type === "jobs" && s.queues?.includes("txn_marker")),
        );
        expect(signals.some((s) => s.type === "jobs" && s.queues?.includes("txn_wake"))).toBe(false);
        await client.query("COMMIT");
      } finally {
        client.release();
      }
      await until("the wake-up after commit", () =>
        signals.some((s) => s.type === "jobs" && s.queues?.includes("txn_wake")),
      );
    } finally {
      unsubscribe();
    }
  });
});
