/**
 * Fleet-wide events on SQLite beyond the conformance suite: an event exists exactly when its transition
 * committed (a batch that rolls back, an application transaction that rolls back), retention by age, and
 * the newest pruned id surviving a reopen.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { Sluice, type Store, silentLogger } from "../../src/index.js";
import { createStore } from "../../src/store/index.js";
import { EVENT_ENDS_SQL } from "../../src/store/sqlite/sqlite-store.js";
import { newJob } from "../support/new-job.js";

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function openStore(path?: string): Promise<{ store: Store; path: string }> {
  let file = path;
  if (!file) {
    const dir = mkdtempSync(join(tmpdir(), "sluice-sqlite-events-"));
    dirs.push(dir);
    file = join(dir, "sluice.db");
  }
  const store = await createStore(`sqlite:${file}`, { logger: silentLogger() });
  await store.open();
  cleanups.push(() => store.close());
  return { store, path: file };
}

async function allTypes(store: Store): Promise<string[]> {
  return (await store.readEvents({ after: null, limit: 1000 })).events.map((e) => `${e.type}:${e.jobId}`);
}

describe("sqlite fleet-wide events", () => {
  it("writes no event for a batch that rolls back, even for its items that had applied", async () => {
    const { store, path } = await openStore();
    const [good, bad] = [newJob({ queue: "q" }), newJob({ queue: "q" })];
    await store.enqueue([good, bad]);
    const claimed = await store.claim({ queues: ["q"], limit: 2, workerId: "w", leaseMs: 30_000 });
    const before = await store.lastEventId();
    // Another connection makes the second completion fail inside the store's transaction.
    const other = new Database(path);
    other.exec(
      `CREATE TRIGGER boom BEFORE UPDATE OF state ON jobs WHEN NEW.id = '${bad.id}'
       BEGIN SELECT RAISE(ABORT, 'boom'); END`,
    );
    other.close();
    const token = (id: string) => claimed.find((j) => j.id === id)?.leaseToken as number;
    await expect(
      store.complete([
        { id: good.id, token: token(good.id), result: null },
        { id: bad.id, token: token(bad.id), result: null },
      ]),
    ).rejects.toThrow(/boom/);
    expect(await store.lastEventId()).toBe(before);
    expect((await store.getJob(good.id))?.state).toBe("active");
  });

  it("writes the enqueued events of a transactional enqueue only when the application commits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-sqlite-events-"));
    dirs.push(dir);
    const path = join(dir, "app.db");
    const sluice = new Sluice({ url: `sqlite:${path}`, logger: silentLogger() });
    cleanups.push(() => sluice.close());
    sluice.task("t", { queue: "txn" });
    const store = await sluice.store();
    const app = new Database(path);
    cleanups.push(() => void app.close());
    app.exec("BEGIN IMMEDIATE");
    await sluice.withTransaction(app).enqueueMany("t", [{ payload: 1 }, { payload: 2 }]);
    app.exec("ROLLBACK");
    expect(await store.lastEventId()).toBeNull();
    app.exec("BEGIN IMMEDIATE");
    const [job] = await sluice.withTransaction(app).enqueueMany("t", [{ payload: 3 }]);
    app.exec("COMMIT");
    expect(await allTypes(store)).toEqual([`enqueued:${job?.id}`]);
  });

  it("prunes by age the oldest run of events, and remembers the newest pruned id across a reopen", async () => {
    const { store, path } = await openStore();
    await store.enqueue([newJob({ queue: "q" }), newJob({ queue: "q" })]);
    const first = (await store.readEvents({ after: null, limit: 10 })).events;
    expect(first).toHaveLength(2);
    // Age the first two events by an hour, then add one more.
    const db = new Database(path);
    db.prepare("UPDATE events SET at = at - 3600000").run();
    db.close();
    await store.enqueue([newJob({ queue: "q" })]);
    const pruned = await store.prune({
      limit: 100,
      workersSilentSince: 0,
      eventsBefore: Date.now() - 60_000,
    });
    expect(pruned.events).toBe(2);
    // The limit bounds one call; nothing more is old enough now.
    expect(
      (await store.prune({ limit: 100, workersSilentSince: 0, eventsBefore: Date.now() - 60_000 })).events,
    ).toBe(0);
    await store.close();
    const { store: again } = await openStore(path);
    const read = await again.readEvents({ after: first[0]?.id as string, limit: 10 });
    expect(read.reset).toBe(true);
    expect(read.events).toHaveLength(1);
    // The last pruned id itself is not a loss: the reader saw everything up to it.
    expect((await again.readEvents({ after: first[1]?.id as string, limit: 10 })).reset).toBe(false);
  });

  it("bounds one prune by its limit and keeps the newest maxEvents exactly", async () => {
    const { store } = await openStore();
    await store.enqueue(Array.from({ length: 10 }, () => newJob({ queue: "q" })));
    expect((await store.prune({ limit: 3, workersSilentSince: 0, maxEvents: 4 })).events).toBe(3);
    expect((await store.prune({ limit: 100, workersSilentSince: 0, maxEvents: 4 })).events).toBe(3);
    expect((await store.readEvents({ after: null, limit: 100 })).events).toHaveLength(4);
    // Even asked to keep none, prune keeps the newest: new ids are the largest + 1, so ids stay unique.
    expect((await store.prune({ limit: 100, workersSilentSince: 0, maxEvents: 0 })).events).toBe(3);
    expect(await store.lastEventId()).toBe("10");
    await store.enqueue([newJob({ queue: "q" })]);
    const read = await store.readEvents({ after: "10", limit: 10 });
    expect(read).toMatchObject({ reset: false, cursor: "11" });
    expect(read.events.map((e) => e.id)).toEqual(["11"]);
    // A reader that saw a pruned id is told so.
    expect((await store.readEvents({ after: "8", limit: 10 })).reset).toBe(true);
  });

  it("finds the oldest and newest event ids for a prune from the ends of the id b-tree, never by a scan", async () => {
    const { store, path } = await openStore();
    await store.enqueue(Array.from({ length: 20 }, () => newJob({ queue: "q" })));
    const db = new Database(path, { readonly: true });
    cleanups.push(() => void db.close());
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${EVENT_ENDS_SQL}`).all() as { detail: string }[]).map(
      (row) => row.detail,
    );
    // Every maintenance pass asks, in its write lock: a scan there held up the worker's jobs for the time it
    // takes to read every event kept (100,000 by default).
    expect(plan.filter((detail) => detail.startsWith("SEARCH events"))).toHaveLength(2);
    expect(plan.some((detail) => detail.startsWith("SCAN events"))).toBe(false);
    expect(db.prepare(EVENT_ENDS_SQL).get()).toEqual({ oldest: 1, newest: 20 });
  });

  it("writes `released` only for a job that had started, with its run time; a held job goes back unseen", async () => {
    const { store } = await openStore();
    const [first, held] = [newJob({ queue: "q" }), newJob({ queue: "q" })];
    await store.enqueue([first, held]);
    const claimed = await store.claim({ queues: ["q"], limit: 2, workerId: "w", leaseMs: 30_000, start: 1 });
    const start = await store.lastEventId();
    const runAt = Date.now() + 60_000;
    expect(
      await store.release(claimed.map((j) => ({ id: j.id, token: j.leaseToken, reason: "shutdown", runAt }))),
    ).toEqual([true, true]);
    const events = (await store.readEvents({ after: start, limit: 10 })).events;
    expect(events.map((e) => [e.type, e.jobId])).toEqual([["released", first.id]]);
    expect(events[0]).toMatchObject({ attempt: 1, data: { reason: "shutdown", runAt } });
  });

  it("moves a filtered reader far behind past other queues' events in bounded steps", async () => {
    const { store } = await openStore();
    for (let i = 0; i < 12; i++) {
      await store.enqueue(Array.from({ length: 1000 }, () => newJob({ queue: "noise" })));
    }
    await store.enqueue([newJob({ queue: "mine" })]);
    const first = await store.readEvents({ after: null, limit: 10, queue: "mine" });
    expect(first.events).toEqual([]);
    expect(first.cursor).toBe("10000");
    const second = await store.readEvents({ after: first.cursor, limit: 10, queue: "mine" });
    expect(second.events.map((e) => e.queue)).toEqual(["mine"]);
    expect(second.cursor).toBe("12001");
  });
});
