/**
 * The SQLite store's group commit: writes asked for in the same turn share one transaction, the first
 * directly, the others each in a savepoint. A write that throws rolls back what it wrote and rejects alone;
 * the others commit.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/index.js";
import { createStore } from "../../src/store/index.js";
import type { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { newJob } from "../support/new-job.js";

interface Internals {
  write<T>(fn: () => T): Promise<T>;
  conn(): { prepare(sql: string): { run(...args: unknown[]): unknown; get(...args: unknown[]): unknown } };
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("sqlite group commit", () => {
  it("commits the writes of one turn together, and a failing one rolls back and rejects alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-group-"));
    dirs.push(dir);
    const store = (await createStore(`sqlite:${join(dir, "g.db")}`, {
      logger: silentLogger(),
    })) as SqliteStore;
    await store.open();
    try {
      const internals = store as unknown as Internals;
      const [a, b] = [newJob({ queue: "g" }), newJob({ queue: "g" })];
      // Same turn: enqueue a, a write that inserts a worker row and then throws, enqueue b.
      const first = store.enqueue([a]);
      const failing = internals.write(() => {
        internals
          .conn()
          .prepare(
            "INSERT INTO workers (id, host, pid, queues, concurrency, busy, started_at, last_heartbeat_at, version) VALUES ('ghost', 'h', 1, '[]', 1, 0, 0, 0, 'x')",
          )
          .run();
        throw new Error("boom inside the group");
      });
      const second = store.enqueue([b]);
      const results = await Promise.allSettled([first, failing, second]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect(String((results[1] as PromiseRejectedResult).reason)).toContain("boom inside the group");
      expect((await store.getJob(a.id))?.state).toBe("waiting");
      expect((await store.getJob(b.id))?.state).toBe("waiting");
      // The failing write's own insert was rolled back with its savepoint.
      expect((await store.listWorkers()).map((w) => w.id)).not.toContain("ghost");
    } finally {
      await store.close();
    }
  });

  it("a first write that throws rolls back what it wrote and rejects alone; the rest of the group commits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-group-"));
    dirs.push(dir);
    const store = (await createStore(`sqlite:${join(dir, "f.db")}`, {
      logger: silentLogger(),
    })) as SqliteStore;
    await store.open();
    try {
      const internals = store as unknown as Internals;
      const [a, b] = [newJob({ queue: "f" }), newJob({ queue: "f" })];
      // Same turn, the failing write first: it runs without a savepoint, in the transaction itself.
      const failing = internals.write(() => {
        internals
          .conn()
          .prepare(
            "INSERT INTO workers (id, host, pid, queues, concurrency, busy, started_at, last_heartbeat_at, version) VALUES ('first-ghost', 'h', 1, '[]', 1, 0, 0, 0, 'x')",
          )
          .run();
        throw new Error("boom first in the group");
      });
      const first = store.enqueue([a]);
      const second = store.enqueue([b]);
      const results = await Promise.allSettled([failing, first, second]);
      expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled", "fulfilled"]);
      expect(String((results[0] as PromiseRejectedResult).reason)).toContain("boom first in the group");
      expect((await store.getJob(a.id))?.state).toBe("waiting");
      expect((await store.getJob(b.id))?.state).toBe("waiting");
      expect((await store.listWorkers()).map((w) => w.id)).not.toContain("first-ghost");
    } finally {
      await store.close();
    }
  });

  it("writes asked for just before close() are written, and a write after it rejects with CLOSED", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-group-"));
    dirs.push(dir);
    const url = `sqlite:${join(dir, "c.db")}`;
    const store = (await createStore(url, { logger: silentLogger() })) as SqliteStore;
    await store.open();
    const job = newJob({ queue: "c" });
    // Same turn as close(): the group's flush is still ahead when the store closes.
    const pending = store.enqueue([job]);
    await store.close();
    await expect(pending).resolves.toEqual([expect.objectContaining({ id: job.id, created: true })]);
    await expect(store.enqueue([newJob({ queue: "c" })])).rejects.toMatchObject({ code: "CLOSED" });
    const reopened = (await createStore(url, { logger: silentLogger() })) as SqliteStore;
    await reopened.open();
    try {
      expect((await reopened.getJob(job.id))?.state).toBe("waiting");
    } finally {
      await reopened.close();
    }
  });
});
