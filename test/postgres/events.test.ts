/**
 * Fleet events on PostgreSQL: ids are taken when the INSERT runs, not when its transaction commits, so an
 * event that commits late must still be read by a reader that already read a later one's neighbours (the
 * outbox gap). readEvents reads only up to a settled horizon (postgres-store.ts `eventHorizon`).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { statements } from "../../src/store/postgres/sql.js";
import {
  dropSchema,
  newJob,
  openStore,
  SHARED_URL,
  uniqueSchema,
  urlWithSchema,
  withAdmin,
} from "./pg-test-utils.js";

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

/**
 * Event pruning in windows of ids (postgres-store.ts `pruneEvents`): the events table has no b-tree, so a
 * prune must never read and sort the whole table to find the oldest events.
 */
describe("postgres event pruning", () => {
  const pschema = uniqueSchema("sluice_evp");
  const purl = urlWithSchema(SHARED_URL, pschema);
  let pstore: PostgresStore;
  const sql = (text: string, values: unknown[] = []) =>
    withAdmin(SHARED_URL, async (c) => (await c.query(text, values)).rows);
  /** Appends `n` events straight to the table (ids from its sequence, as transitions take them). */
  const append = (n: number) =>
    sql(
      `INSERT INTO "${pschema}".events (at, type, queue, job_id, task, attempt)
       SELECT $1::bigint, 'completed', 'q', 'j' || g, 't', 1 FROM generate_series(1, $2::int) g`,
      [Date.now(), n],
    );
  const ids = async () =>
    (await sql(`SELECT id FROM "${pschema}".events ORDER BY id`)).map((r) => Number(r.id));
  /** Prunes until a call deletes nothing; the number deleted (each call at most `limit`). */
  const pruneAll = async (options: { limit: number; maxEvents?: number; eventsBefore?: number }) => {
    let total = 0;
    for (let calls = 0; calls < 1_000; calls++) {
      const { events } = await pstore.prune({ workersSilentSince: 0, ...options });
      expect(events).toBeLessThanOrEqual(options.limit);
      if (events === 0) return total;
      total += events;
    }
    throw new Error("prune never finished");
  };
  /** The plan's node types on the events table, and every node type, of `text` run with `values`. */
  const planOf = async (text: string, values: unknown[]) => {
    const [plan] = await sql(`EXPLAIN (FORMAT JSON) ${text}`, values);
    const nodes: { type: string; relation?: string }[] = [];
    const walk = (node: Record<string, unknown>) => {
      nodes.push({
        type: node["Node Type"] as string,
        relation: node["Relation Name"] as string | undefined,
      });
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    const explained = plan?.["QUERY PLAN"] as { Plan: Record<string, unknown> }[] | undefined;
    walk(explained?.[0]?.Plan ?? {});
    return {
      onEvents: nodes.filter((n) => n.relation === "events").map((n) => n.type),
      all: nodes.map((n) => n.type),
    };
  };

  beforeAll(async () => {
    pstore = await openStore(purl);
  });
  afterAll(async () => {
    await pstore?.close();
    await dropSchema(SHARED_URL, pschema);
  });

  it("keeps the newest maxEvents across a gap of ids that never became events", async () => {
    await sql(`TRUNCATE "${pschema}".events`);
    await append(300);
    // A rolled-back bulk enqueue took 50,000 ids and wrote nothing.
    await sql(`SELECT nextval('"${pschema}".events_id_seq') FROM generate_series(1, 50000)`);
    await append(20);
    const newest = (await ids()).slice(-10);
    expect(await pruneAll({ limit: 100, maxEvents: 10 })).toBe(310);
    expect(await ids()).toEqual(newest);
    const [state] = await sql(`SELECT pruned_id FROM "${pschema}".event_state`);
    expect(Number(state?.pruned_id)).toBe((newest[0] as number) - 1);
  });

  it("deletes a due event that committed after a prune passed its id", async () => {
    // A transition takes its event's id when it inserts and may commit later. Held open for real, that
    // transaction would hold back every reader's horizon in the cluster (other tests' too), so the late
    // commit is played out: the id is taken first, the row appears once a prune has passed it.
    const [taken] = await sql(`SELECT nextval('"${pschema}".events_id_seq') AS id`);
    const lateId = Number(taken?.id);
    await append(5);
    // Keep the newest two: the late event's id is due, but the prune cannot see it yet.
    await pruneAll({ limit: 1_000, maxEvents: 2 });
    const [state] = await sql(`SELECT pruned_id FROM "${pschema}".event_state`);
    expect(Number(state?.pruned_id)).toBeGreaterThan(lateId);
    await sql(
      `INSERT INTO "${pschema}".events (id, at, type, queue, job_id, task, attempt)
       VALUES ($1, $2, 'enqueued', 'q', 'late', 't', NULL)`,
      [lateId, Date.now()],
    );
    await append(1);
    await pruneAll({ limit: 1_000, maxEvents: 2 });
    expect(await ids()).not.toContain(lateId);
    expect(await ids()).toHaveLength(2);
  });

  it("reads a window of ids, never the whole table, to find what to prune", async () => {
    await sql(`TRUNCATE "${pschema}".events`);
    await append(50_000);
    await sql(`ANALYZE "${pschema}".events`);
    const statementsOf = statements(`"${pschema}"`, true);
    const [window] = await sql(statementsOf.eventWindow);
    const lo = Number(window?.lo);
    const lastId = Number(window?.last_id);
    // The window the store deletes first: 1,000 ids after the newest pruned, all but the newest 100 due.
    const prune = await planOf(statementsOf.pruneEvents, [lo + 1_000, lastId - 100, Date.now() - 60_000, lo]);
    expect(prune.onEvents.length).toBeGreaterThan(0);
    expect(prune.onEvents).not.toContain("Seq Scan");
    expect(prune.all).not.toContain("Sort");
    // The look for the next event past a gap of ids is a range scan too.
    const next = await planOf(statementsOf.nextEvent, [lo + 1_000, lo + 9_000]);
    expect(next.onEvents.length).toBeGreaterThan(0);
    expect(next.onEvents).not.toContain("Seq Scan");
    // And it deletes what the window holds: the oldest events, those with ids up to lo + 1,000.
    const before = await ids();
    const inWindow = before.filter((id) => id <= lo + 1_000).length;
    expect(inWindow).toBeGreaterThan(900);
    expect(await pstore.prune({ limit: 1_000, workersSilentSince: 0, maxEvents: 100 })).toMatchObject({
      events: inWindow,
    });
    expect(await ids()).toEqual(before.slice(inWindow));
  });
});
