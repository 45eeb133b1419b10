/**
 * Connection faults against a PRIVATE PostgreSQL server started by this file on its own free port and
 * data directory (fault-server.ts; the shared server on 5432 is never touched), stopped and started by
 * its pid mid-run:
 *
 * - while it is down every call fails with StoreUnavailableError (code STORE_UNAVAILABLE) whose message
 *   says what happened, where (password redacted) and what to check; the store works again after restart;
 * - a worker keeps running through the outage: it logs the failed claims at error level with a growing
 *   `retryInMs` and makes a bounded number of attempts (backs off), its LISTEN connection reports the
 *   outage and its return, every job completes with none lost, and jobs orphaned by a crashed worker,
 *   still active when the server stopped and whose lease ran out during the outage, are recovered after
 *   the restart with the lease-expired reason on record; a producer gets a clear error while it is down.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { Sluice } from "../../src/index.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import {
  atMost,
  capturingLogger,
  ERROR,
  expectGrowingBackoff,
  expectRecoveredWithNothingLost,
  INFO,
  linesWith,
  maxAttemptsWithin,
  WARN,
} from "../support/fault-logs.js";
import { newJob, openStore, until, urlWithSchema } from "./pg-test-utils.js";
import { PrivatePostgres } from "./private-postgres.js";

let server: PrivatePostgres;
/** The password is ignored by trust auth; it is here to prove it never reaches an error or a log line. */
const PASSWORD = "s3cret-never-logged";

function privateUrl(schema: string): string {
  const url = new URL(urlWithSchema(server.url, schema));
  url.password = PASSWORD;
  return url.toString();
}

/** Where errors and logs must say the store is: the URL with the password replaced by `***`. */
function redactedLocation(): string {
  return `postgres://postgres:***@127.0.0.1:${server.port}/postgres`;
}

/** A StoreUnavailableError that says what happened, where, and what to do; never the password. */
function expectClearUnavailable(error: unknown): void {
  expect(error).toBeInstanceOf(StoreUnavailableError);
  const e = error as StoreUnavailableError;
  expect(e.code).toBe("STORE_UNAVAILABLE");
  expect(e.name).toBe("StoreUnavailableError");
  expect(e.message).toMatch(/^cannot [a-z ]+: PostgreSQL at /); // what was attempted
  expect(e.message).toContain(`PostgreSQL at ${redactedLocation()}`); // where
  expect(e.message).toMatch(/ is unreachable \(.+\); /); // what happened, with the driver's reason
  expect(e.message).toMatch(/check that the server is running and reachable from this host/); // what to do
  expect(e.message).not.toContain(PASSWORD);
}

beforeAll(async () => {
  server = await PrivatePostgres.create();
}, 120_000);
afterAll(async () => {
  await server?.destroy();
}, 60_000);

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
        expectClearUnavailable((failure as PromiseRejectedResult).reason);
      }

      await server.start();
      await until("the store to answer again", async () => {
        await store.ping();
        return true;
      });
      const [after] = await store.enqueue([newJob({ queue: "down" })]);
      const jobs = await store.claim({ queues: ["down"], limit: 10, workerId: "w", leaseMs: 1_000 });
      // The enqueue that failed while down wrote nothing; the one before survived.
      expect(jobs.map((j) => j.id).sort()).toEqual([before?.id, after?.id].sort());
    } finally {
      await store.close();
      if (server.pid === null) await server.start(); // leave the server up for the next test
    }
  }, 60_000);

  it("a worker survives the database going away mid-run: logs, backs off, reconnects, recovers expired leases, loses no job", async () => {
    const url = privateUrl("sluice_restart");
    const QUEUE = "restart";
    const CRASHED = "crashed-host/1/orphans";
    const ORPHANS = 10;
    const BATCH = 300;
    /** The orphans' lease from right before the stop: shorter than the outage, which waits for its end. */
    const ORPHAN_LEASE_MS = 8_000;
    const WORKER_LEASE_MS = 2_000;
    const CONCURRENCY = 5;
    // Nothing held ahead: every job is started by its claim. A held job is started by a write of its own,
    // which the worker retries until the store is back; if the outage began while the running jobs' starts
    // were being written, their slots stayed taken and the held jobs filled the rest, so the worker (rightly)
    // claimed nothing during the outage and this test's wait for failed claims timed out (seen once in CI).
    const PREFETCH = 0;

    const workerLogs = capturingLogger();
    const producerLogs = capturingLogger();
    const sluice = new Sluice({ url, logger: workerLogs.logger });
    const producer = new Sluice({ url, logger: producerLogs.logger });
    const runs = new Map<string, number>();
    const firstRunAt = new Map<string, number>();
    sluice.task("restart-job", {
      queue: QUEUE,
      async run(_payload, ctx) {
        runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
        if (!firstRunAt.has(ctx.id)) firstRunAt.set(ctx.id, Date.now());
        await sleep(10);
        return null;
      },
    });
    producer.task("restart-job", { queue: QUEUE });
    let admin: PostgresStore | null = null;
    let worker: ReturnType<Sluice["worker"]> | null = null;
    try {
      // Orphans: jobs claimed by a worker that then "crashed" (its store closed, no heartbeat ever again).
      const orphans = await producer.enqueueMany(
        "restart-job",
        Array.from({ length: ORPHANS }, (_, n) => ({ payload: { orphan: n } })),
      );
      admin = await openStore(url);
      const crashed = await openStore(url);
      const held = await crashed
        .claim({ queues: [QUEUE], limit: ORPHANS, workerId: CRASHED, leaseMs: 600_000 })
        .finally(() => crashed.close());
      expect(held.map((j) => j.id).sort()).toEqual(orphans.map((j) => j.id).sort());

      const batch = await producer.enqueueMany(
        "restart-job",
        Array.from({ length: BATCH }, (_, n) => ({ payload: { n } })),
      );
      const enqueued = [...orphans, ...batch];
      const total = enqueued.length;
      worker = sluice.worker({
        queues: [QUEUE],
        concurrency: CONCURRENCY,
        prefetch: PREFETCH,
        leaseMs: WORKER_LEASE_MS,
        pollMs: 200,
      });
      await worker.start();
      await until("the run to be under way", () => runs.size >= 30, 30_000);

      // Right before the stop the orphans are still held under the crashed worker's lease, so nothing can
      // have recovered them yet. Their lease is cut to ORPHAN_LEASE_MS from now (by their tokens, as the
      // crashed worker's last heartbeat would have done): it runs out during the outage however long the run
      // so far took on a slow runner, so their recovery must happen across the outage.
      const renewed = await admin.extendLeases(
        held.map((j) => ({ id: j.id, token: j.leaseToken })),
        ORPHAN_LEASE_MS,
      );
      expect(renewed).toEqual({ lost: [], cancelRequested: [], paused: [] });
      const orphanJobs = await Promise.all(orphans.map((orphan) => admin!.getJob(orphan.id)));
      for (const job of orphanJobs) {
        expect(job).toMatchObject({ state: "active", workerId: CRASHED, errors: [] });
      }
      const orphanLeaseEnds = Math.max(...orphanJobs.map((j) => j?.leaseExpiresAt as number));
      expect(workerLogs.lines.filter((l) => l.msg === "claim failed; backing off")).toEqual([]);

      const stoppedAt = Date.now();
      await server.stop();
      expect(runs.size).toBeLessThan(total); // the outage really happens mid-run

      // A producer gets a clear error while the database is down, and nothing is written.
      const rejected = await producer.enqueue("restart-job", { n: -1 }).then(
        () => new Error("enqueue resolved while the database was down"),
        (error: unknown) => error,
      );
      expectClearUnavailable(rejected);

      // Keep the database down until the orphans' lease (and every lease of the worker) has run out, and
      // the worker has failed and backed off several times.
      const claimFailures = () => linesWith(workerLogs.lines, "claim failed; backing off");
      await until(
        "the orphans' lease to run out during the outage and the worker to back off three times",
        () =>
          Date.now() > orphanLeaseEnds + 1_000 &&
          Date.now() > stoppedAt + WORKER_LEASE_MS + 1_000 &&
          claimFailures().length >= 3,
        ORPHAN_LEASE_MS + 30_000,
        50,
      );
      const downUntil = Date.now();
      await server.start();
      const upAt = Date.now();

      await until(
        "every job to complete after the restart",
        async () => {
          const [stats] = (await admin!.queueStats()).filter((s) => s.queue === QUEUE);
          return stats?.counts.completed === total;
        },
        45_000,
        100,
      );

      await expectRecoveredWithNothingLost({
        store: admin,
        queue: QUEUE,
        enqueued,
        runs,
        firstRunAt,
        orphans,
        crashed: CRASHED,
        workerId: worker.id,
        downUntil,
        workerLines: workerLogs.lines,
      });

      // Logs clearly and backs off: every failed claim is an error line naming the store and the cause, all
      // of them during the outage, with a failure count and a retry delay that grows to a cap.
      const failures = claimFailures();
      expect(failures.length).toBeGreaterThanOrEqual(3);
      for (const line of failures) {
        expect(line.level).toBe(ERROR);
        expect(line.time).toBeGreaterThanOrEqual(stoppedAt);
        expect(line.err).toMatchObject({ type: "StoreUnavailableError", code: "STORE_UNAVAILABLE" });
        expect(line.err?.message).toContain(`cannot claim jobs: PostgreSQL at ${redactedLocation()}`);
        expect(line.err?.message).toMatch(/is unreachable .*check that the server is running/);
      }
      expect(failures.map((l) => l.failures)).toEqual(failures.map((_, i) => i + 1));
      expectGrowingBackoff(
        failures.map((l) => l.retryInMs as number),
        10_000,
      );
      // Bounded attempts: at most one immediate claim per job in hand when the connection broke, plus the
      // backed-off ones (each waits at least 3/4 of its logged delay); polling every pollMs would exceed it.
      const maxAttempts =
        CONCURRENCY +
        PREFETCH +
        maxAttemptsWithin(upAt - stoppedAt, (n) => 0.75 * Math.min(100 * 2 ** n, 10_000));
      expect(failures.length).toBeLessThanOrEqual(maxAttempts);

      // The other connections say what is going on: heartbeats, the LISTEN connection down and back.
      expect(
        linesWith(
          workerLogs.lines,
          "heartbeat failed; leases may expire if the store stays unreachable",
          stoppedAt,
        ).length,
      ).toBeGreaterThan(0);
      const listenDown = workerLogs.lines.filter(
        (l) =>
          l.time >= stoppedAt && /^LISTEN connection to PostgreSQL unavailable; reconnecting/.test(l.msg),
      );
      expect(listenDown.length).toBeGreaterThan(0);
      for (const line of listenDown) {
        expect(line).toMatchObject({ level: WARN, location: redactedLocation() });
        expect(line.retryInMs).toBeGreaterThan(0);
      }
      // The LISTEN connection reconnects on its own backoff (up to 5 s), possibly after the work is done.
      const restored = await until(
        "the LISTEN connection to say it is restored",
        () =>
          workerLogs.lines.find(
            (l) => l.time >= downUntil && /^LISTEN connection to PostgreSQL restored/.test(l.msg),
          ),
        20_000,
        50,
      );
      expect(restored).toMatchObject({ level: INFO, location: redactedLocation() });

      // Passwords never reach a log line, on either side.
      for (const line of [...workerLogs.lines, ...producerLogs.lines]) {
        expect(JSON.stringify(line)).not.toContain(PASSWORD);
      }
    } finally {
      // A test that failed during the outage: bring the server back so the worker can drain and stop.
      if (server.pid === null) await atMost(30_000, server.start());
      await atMost(15_000, worker?.stop({ graceMs: 1_000 }) ?? Promise.resolve());
      await atMost(5_000, Promise.all([sluice.close(), producer.close(), admin?.close()]));
    }
  }, 120_000);
});
