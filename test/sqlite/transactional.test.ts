/**
 * Transactional enqueue on SQLite: a job enqueued through the application's own better-sqlite3 connection,
 * inside its open transaction, exists if and only if that transaction commits; anything else is refused
 * with INVALID_TRANSACTION before a write.
 */
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { Sluice, silentLogger, ValidationError } from "../../src/index.js";
import { newJob } from "../support/new-job.js";
import { until } from "../support/wait.js";

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-sqlite-txn-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A Sluice on a new file (store opened, so the schema exists) and the application's own connection. */
async function setup(): Promise<{ sluice: Sluice; app: Database.Database; path: string; dir: string }> {
  const dir = tempDir();
  const path = join(dir, "app.db");
  const sluice = new Sluice({ url: `sqlite:${path}`, logger: silentLogger() });
  await sluice.admin.ping();
  const app = new Database(path);
  app.pragma("journal_mode = WAL");
  app.exec("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)");
  cleanups.push(() => sluice.close());
  cleanups.push(() => void app.close());
  return { sluice, app, path, dir };
}

describe("sqlite transactional enqueue", () => {
  it("commits the job with the application's row, and a worker runs it", async () => {
    const { sluice, app } = await setup();
    const ran: number[] = [];
    sluice.task<{ order: number }>("send-receipt", { queue: "txn", run: (p) => void ran.push(p.order) });
    const idle = new Promise((resolve) => sluice.emitter.once("drained", resolve));
    await sluice.worker({ queues: ["txn"], pollMs: 60_000 }).start();
    await idle; // its first claim is done: from here only a wake-up (or the minute's poll) makes it look

    app.exec("BEGIN IMMEDIATE");
    app.prepare("INSERT INTO orders (id) VALUES (?)").run("order-1");
    const job = await sluice.withTransaction(app).enqueue("send-receipt", { order: 1 });
    expect(job.created).toBe(true);
    // Not visible outside the transaction before the commit.
    expect((await sluice.store().then((s) => s.getJob(job.id))) ?? null).toBeNull();
    app.exec("COMMIT");

    expect((await sluice.store().then((s) => s.getJob(job.id)))?.id).toBe(job.id);
    // The worker polls only once a minute here: it runs the job because it was woken after the commit.
    await until("the worker ran the job", () => ran.includes(1), 5_000);
    await until("completed", async () => (await sluice.admin.getJob(job.id)).state === "completed");
  });

  it("writes nothing when the application rolls back", async () => {
    const { sluice, app } = await setup();
    sluice.task("send-receipt", { queue: "txn" });
    app.exec("BEGIN IMMEDIATE");
    app.prepare("INSERT INTO orders (id) VALUES (?)").run("order-2");
    const jobs = await sluice
      .withTransaction(app)
      .enqueueMany("send-receipt", [{ payload: { order: 2 } }, { payload: { order: 3 } }]);
    const inside = app.prepare("SELECT count(*) AS n FROM jobs").get() as { n: number };
    expect(inside.n).toBe(2); // written inside the transaction…
    app.exec("ROLLBACK");
    const store = await sluice.store();
    for (const job of jobs) expect(await store.getJob(job.id)).toBeNull(); // …and gone with it
    expect(app.prepare("SELECT count(*) AS n FROM orders").get()).toEqual({ n: 0 });
  });

  it("rolls back only its own batch when a write fails, leaving the application's transaction open", async () => {
    const { sluice, app } = await setup();
    const store = await sluice.store();
    const [existing] = await store.enqueue([newJob({ queue: "txn" })]);
    app.exec("BEGIN IMMEDIATE");
    app.prepare("INSERT INTO orders (id) VALUES (?)").run("order-4");
    // The second job violates a constraint (no task name): the first must not stay behind.
    const error = await store
      .enqueue([newJob({ queue: "txn" }), newJob({ queue: "txn", task: null as unknown as string })], {
        transaction: app,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(app.inTransaction).toBe(true);
    expect(app.prepare("SELECT count(*) AS n FROM jobs").get()).toEqual({ n: 1 });
    app.exec("COMMIT");
    expect(app.prepare("SELECT id FROM orders").all()).toEqual([{ id: "order-4" }]);
    expect((await store.getJob(existing!.id))?.id).toBe(existing!.id);
  });

  it("accepts the same file through another path (symlink, relative)", async () => {
    const { sluice, dir } = await setup();
    sluice.task("t", { queue: "txn" });
    symlinkSync(dir, `${dir}-link`);
    cleanups.push(() => rmSync(`${dir}-link`, { force: true }));
    const other = new Database(join(`${dir}-link`, "app.db"));
    cleanups.push(() => void other.close());
    other.exec("BEGIN IMMEDIATE");
    const job = await sluice.withTransaction(other).enqueue("t", {});
    other.exec("COMMIT");
    expect((await sluice.admin.getJob(job.id)).state).toBe("waiting");
  });

  it("refuses a handle that is not a better-sqlite3 connection on the store's file in a transaction", async () => {
    const { sluice, app, dir } = await setup();
    sluice.task("t", { queue: "txn" });
    const refused = async (handle: unknown, message: RegExp) => {
      const error = await sluice
        .withTransaction(handle)
        .enqueue("t", {})
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: "INVALID_TRANSACTION", field: "transaction" });
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/BEGIN IMMEDIATE/);
    };
    // Not a better-sqlite3 connection (a pg-style client).
    await refused({ query: async () => ({ rows: [] }) }, /not a better-sqlite3 Database/);
    // No transaction open.
    await refused(app, /no transaction is open/);
    // Another file, in a transaction.
    const elsewhere = new Database(join(dir, "other.db"));
    cleanups.push(() => void elsewhere.close());
    elsewhere.exec("BEGIN IMMEDIATE");
    await refused(elsewhere, /not on the store's file/);
    elsewhere.exec("ROLLBACK");
    // An in-memory connection.
    const memory = new Database(":memory:");
    cleanups.push(() => void memory.close());
    memory.exec("BEGIN");
    await refused(memory, /not on the store's file/);
    memory.exec("ROLLBACK");
    // A closed connection.
    const closed = new Database(join(dir, "app.db"));
    closed.close();
    await refused(closed, /closed/);
    expect((await sluice.admin.queues()).length).toBe(0); // nothing was written
  });

  it("refuses a transaction on an in-memory store", async () => {
    const sluice = new Sluice({ url: "sqlite::memory:", logger: silentLogger() });
    cleanups.push(() => sluice.close());
    sluice.task("t", { queue: "txn" });
    const app = new Database(":memory:");
    cleanups.push(() => void app.close());
    app.exec("BEGIN");
    await expect(sluice.withTransaction(app).enqueue("t", {})).rejects.toMatchObject({
      code: "INVALID_TRANSACTION",
    });
  });
});
