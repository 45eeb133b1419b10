/**
 * Connection faults against a PRIVATE PostgreSQL server started by this file (the shared server is never
 * touched): clear errors while it is down, recovery when it returns, and a worker that loses no job
 * across a restart in the middle of a run.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { Sluice } from "../../src/index.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { newJob, openStore, PrivatePostgres, until, urlWithSchema } from "./pg-test-utils.js";

let server: PrivatePostgres;
/** The password is ignored by trust auth; it is here to prove it never reaches an error or a log line. */
const PASSWORD = "s3cret-never-logged";

function privateUrl(schema: string): string {
  const url = new URL(urlWithSchema(server.url, schema));
  url.password = PASSWORD;
  return url.toString();
}

beforeAll(async () => {
  server = await PrivatePostgres.create();
}, 120_000);
afterAll(async () => {
  await server?.destroy();
}, 60_000);

/** A pino logger that keeps every line (as parsed JSON) for assertions. */
function capturingLogger(): {
  logger: pino.Logger;
  lines: { level: number; msg: string; [k: string]: unknown }[];
} {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: "debug" },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as { level: number; msg: string });
      },
    },
  );
  return { logger, lines };
}

describe("postgres connection faults", () => {
  it("rejects with a clear StoreUnavailableError while the server is down and works again after restart", async () => {
    const url = privateUrl("sluice_down");
    const store = await openStore(url);
    try {
      const [before] = await store.enqueue([newJob({ queue: "down" })]);
      await server.stop();

      const failures = await Promise.allSettled([
        store.ping(),
        store.enqueue([newJob({ queue: "down" })]),
        store.claim({ queues: ["down"], limit: 1, workerId: "w", leaseMs: 1_000 }),
        new PostgresStore(url, { logger: pino({ level: "silent" }) }).open(),
      ]);
      for (const failure of failures) {
        expect(failure.status).toBe("rejected");
        const error = (failure as PromiseRejectedResult).reason as Error;
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error.message).toMatch(/unreachable/);
        expect(error.message).toMatch(/check that the server is running/);
        expect(error.message).toContain(`127.0.0.1:${server.port}`);
        expect(error.message).not.toContain(PASSWORD);
      }

      await server.start();
      await until("the store to answer again", async () => {
        await store.ping();
        return true;
      });
      const [after] = await store.enqueue([newJob({ queue: "down" })]);
      const jobs = await store.claim({ queues: ["down"], limit: 10, workerId: "w", leaseMs: 1_000 });
      expect(jobs.map((j) => j.id).sort()).toEqual([before?.id, after?.id].sort());
    } finally {
      await store.close();
    }
  }, 60_000);

  it("a worker survives the database going away mid-run: logs, backs off, reconnects, loses no job", async () => {
    const url = privateUrl("sluice_restart");
    const { logger, lines } = capturingLogger();
    const sluice = new Sluice({ url, logger });
    const runs = new Map<string, number>();
    sluice.task("restart-job", {
      queue: "restart",
      async run(_payload, ctx) {
        runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 10));
        return null;
      },
    });
    // Jobs held by a worker that "crashed" just before the outage: their leases expire while the database
    // is down or just after, and the surviving worker's maintenance must recover them.
    const orphans = await sluice.enqueueMany(
      "restart-job",
      Array.from({ length: 20 }, (_, n) => ({ payload: { orphan: n } })),
    );
    const crashed = await openStore(url);
    const held = await crashed.claim({
      queues: ["restart"],
      limit: 20,
      workerId: "crashed/1",
      leaseMs: 1_500,
    });
    await crashed.close();
    expect(held.map((j) => j.id).sort()).toEqual(orphans.map((j) => j.id).sort());
    const batch = await sluice.enqueueMany(
      "restart-job",
      Array.from({ length: 380 }, (_, n) => ({ payload: { n } })),
    );
    const enqueued = [...orphans, ...batch];
    const total = enqueued.length;
    // Short lease so that jobs whose completion was lost with the connection are recovered quickly.
    const worker = sluice.worker({ queues: ["restart"], concurrency: 10, leaseMs: 2_000, pollMs: 200 });
    await worker.start();
    try {
      await until("the run to be under way", () => runs.size >= 50);
      expect(runs.size).toBeLessThan(total); // the outage really happens mid-run
      await server.stop();

      // A producer gets a clear error while the database is down.
      const rejected = await sluice.enqueue("restart-job", { n: -1 }).catch((error: unknown) => error);
      expect(rejected).toBeInstanceOf(StoreUnavailableError);
      expect((rejected as Error).message).not.toContain(PASSWORD);
      // The worker notices and says so (its claim loop or its LISTEN connection).
      await until("the worker to log the outage", () => lines.some((l) => l.level >= 40));

      await server.start();
      const store = await openStore(url);
      try {
        await until(
          "every job to complete after the restart",
          async () => {
            const [stats] = (await store.stats()).filter((s) => s.queue === "restart");
            return stats?.counts.completed === total;
          },
          60_000,
          100,
        );
        // At least once: every enqueued job ran, and none was lost or left behind.
        for (const job of enqueued) expect(runs.get(job.id) ?? 0).toBeGreaterThanOrEqual(1);
        const [stats] = (await store.stats()).filter((s) => s.queue === "restart");
        expect(stats?.counts).toMatchObject({
          waiting: 0,
          active: 0,
          scheduled: 0,
          dead: 0,
          completed: total,
        });
        // The orphans completed through lease recovery, with the reason on record.
        for (const orphan of orphans) {
          const job = await store.getJob(orphan.id);
          expect(job?.errors.map((e) => e.message)).toEqual([
            "lease expired: worker crashed/1 stopped heartbeating",
          ]);
        }
      } finally {
        await store.close();
      }
      const logged = lines.map((l) => JSON.stringify(l)).join("\n");
      expect(logged).not.toContain(PASSWORD);
      expect(lines.some((l) => /LISTEN connection to PostgreSQL restored/.test(l.msg))).toBe(true);
    } finally {
      await worker.stop({ graceMs: 1_000 });
      await sluice.close();
    }
  }, 120_000);
});
