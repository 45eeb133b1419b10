/**
 * Fleet events on PostgreSQL: ids are taken when the INSERT runs, not when its transaction commits, so an
 * event that commits late must still be read by a reader that already read a later one's neighbours (the
 * outbox gap). readEvents reads only up to a settled horizon (postgres-store.ts `eventHorizon`).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { dropSchema, newJob, openStore, SHARED_URL, uniqueSchema, urlWithSchema } from "./pg-test-utils.js";

const schema = uniqueSchema("sluice_ev");
const url = urlWithSchema(SHARED_URL, schema);
let store: PostgresStore;

beforeAll(async () => {
  store = await openStore(url);
});
afterAll(async () => {
  await store?.close();
  await dropSchema(SHARED_URL, schema);
});

describe("postgres fleet events", () => {
  it("never lets a reader move past an event whose transaction commits after a later one's", async () => {
    const queue = "gap";
    const start = await store.lastEventId();
    // An application transaction enqueues (its event takes an id) and stays open.
    const app = new pg.Client({ connectionString: SHARED_URL });
    await app.connect();
    try {
      await app.query("BEGIN");
      const late = newJob({ queue });
      await store.enqueue([late], { transaction: app });
      // A later enqueue takes a higher id and commits first.
      const early = newJob({ queue });
      await store.enqueue([early]);

      const t0 = Date.now();
      const first = await store.readEvents({ after: start, limit: 100, queue });
      // The horizon stops below the open transaction's id: the committed later event is not read yet, and
      // the cursor stays where a later read still finds both.
      expect(first.events).toEqual([]);
      expect(first.cursor).toBe(start);
      expect(Date.now() - t0).toBeLessThan(2_000); // waited briefly for its own mark, then fell back

      await app.query("COMMIT");
      const second = await store.readEvents({ after: first.cursor, limit: 100, queue });
      expect(second.events.map((e) => e.jobId)).toEqual([late.id, early.id]);
      expect(second.reset).toBe(false);
      expect(await store.lastEventId()).toBe(second.cursor);
    } finally {
      await app.query("ROLLBACK").catch(() => undefined);
      await app.end();
    }
  });

  it("skips the ids of rolled-back transactions without waiting for them", async () => {
    const queue = "rolled-back";
    const start = await store.lastEventId();
    const app = new pg.Client({ connectionString: SHARED_URL });
    await app.connect();
    try {
      await app.query("BEGIN");
      await store.enqueue([newJob({ queue })], { transaction: app });
      await app.query("ROLLBACK");
    } finally {
      await app.end();
    }
    const kept = newJob({ queue });
    await store.enqueue([kept]);
    const read = await store.readEvents({ after: start, limit: 100, queue });
    expect(read.events.map((e) => e.jobId)).toEqual([kept.id]);
  });

  it("prunes by age and records the newest pruned id durably", async () => {
    const queue = "prune";
    await store.enqueue(Array.from({ length: 5 }, () => newJob({ queue })));
    const before = (await store.readEvents({ after: null, limit: 1000 })).events;
    const pruned = await store.prune({
      limit: 1000,
      workersSilentSince: 0,
      eventsBefore: Date.now() + 60_000,
    });
    expect(pruned.events).toBe(before.length);
    // A new store object (a restarted reader) still knows: the oldest id it saw is gone.
    const other = await openStore(url);
    try {
      const read = await other.readEvents({ after: before[0]?.id as string, limit: 10 });
      expect(read.reset).toBe(true);
      expect(read.events).toEqual([]);
      expect((await other.readEvents({ after: read.cursor, limit: 10 })).reset).toBe(false);
    } finally {
      await other.close();
    }
  });
});
