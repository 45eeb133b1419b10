/**
 * A worker survives its Redis restarting mid-run. The PRIVATE redis-server (PrivateRedis in helpers.ts: own free port,
 * own data directory, `appendonly yes` with `appendfsync always`, a password) is killed with SIGKILL by its
 * pid while jobs run, kept down longer than every lease, and started again on the same data directory:
 *
 * - jobs orphaned by a crashed worker, still active when Redis died and whose lease ran out during the
 *   outage, are recovered after the restart with the lease-expired reason on record;
 * - every job completes, none is lost or dead, and nothing extra appears;
 * - the worker logs the failed claims at error level with a growing `retryInMs` and a bounded number of
 *   attempts, and each connection logs its reconnect attempts with a growing delay and "connection restored";
 * - a producer gets StoreUnavailableError (STORE_UNAVAILABLE) that says what happened and what to do,
 *   without the password, while Redis is down.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { Sluice, StoreUnavailableError } from "../../src/index.js";
import { RedisStore } from "../../src/store/redis/redis-store.js";
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
import { until } from "../support/wait.js";
import { PrivateRedis } from "./helpers.js";

const PASSWORD = "s3cret-never-logged";
const QUEUE = "work";
const CRASHED = "crashed-host/1/orphans";
const ORPHANS = 10;
const BATCH = 300;
/** The orphans' lease from right before the crash: shorter than the outage, which waits for its end. */
const ORPHAN_LEASE_MS = 6_000;
const WORKER_LEASE_MS = 1_500;
const CONCURRENCY = 5;
const PREFETCH = 5;

describe("redis restart", () => {
  it("a worker keeps going through a Redis crash and restart: backs off, reconnects, recovers expired leases, loses no job", async () => {
    const redis = await PrivateRedis.start(["--appendonly", "yes", "--appendfsync", "always"], {
      password: PASSWORD,
    });
    const url = `${redis.url}?prefix=restart`;
    const location = `redis://:***@127.0.0.1:${redis.port}/0?prefix=restart`;
    const workerLogs = capturingLogger();
    const producerLogs = capturingLogger();
    const sluice = new Sluice({ url, logger: workerLogs.logger });
    const producer = new Sluice({ url, logger: producerLogs.logger });
    const admin = new RedisStore(url, { logger: pino({ level: "silent" }) });
    let worker: ReturnType<Sluice["worker"]> | null = null;
    const runs = new Map<string, number>();
    const firstRunAt = new Map<string, number>();
    sluice.task<{ n: number }>("work", {
      queue: QUEUE,
      async run(_payload, ctx) {
        runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
        if (!firstRunAt.has(ctx.id)) firstRunAt.set(ctx.id, Date.now());
        await sleep(10);
      },
    });
    const task = producer.task<{ n: number }>("work", { queue: QUEUE });
    try {
      await admin.open();
      // Orphans: jobs claimed by a worker that then "crashed" (its store closed, no heartbeat ever again).
      const orphans = await task.enqueueMany(
        Array.from({ length: ORPHANS }, (_, n) => ({ payload: { n: -1 - n } })),
      );
      const crashed = new RedisStore(url, { logger: pino({ level: "silent" }) });
      const held = await crashed
        .open()
        .then(() => crashed.claim({ queues: [QUEUE], limit: ORPHANS, workerId: CRASHED, leaseMs: 600_000 }))
        .finally(() => crashed.close());
      expect(held.map((j) => j.id).sort()).toEqual(orphans.map((j) => j.id).sort());

      const batch = await task.enqueueMany(Array.from({ length: BATCH }, (_, n) => ({ payload: { n } })));
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
      await until("some jobs to run before the crash", () => runs.size >= 30, 30_000);

      // Right before the crash the orphans are still held under the crashed worker's lease, so nothing can
      // have recovered them yet. Their lease is cut to ORPHAN_LEASE_MS from now (by their tokens, as the
      // crashed worker's last heartbeat would have done): it runs out during the outage however long the run
      // so far took on a slow runner, so their recovery must happen across the outage.
      const renewed = await admin.extendLeases(
        held.map((j) => ({ id: j.id, token: j.leaseToken })),
        ORPHAN_LEASE_MS,
      );
      expect(renewed).toEqual({ lost: [], cancelRequested: [], paused: [] });
      const orphanJobs = await Promise.all(orphans.map((orphan) => admin.getJob(orphan.id)));
      for (const job of orphanJobs) {
        expect(job).toMatchObject({ state: "active", workerId: CRASHED, errors: [] });
      }
      const orphanLeaseEnds = Math.max(...orphanJobs.map((j) => j?.leaseExpiresAt as number));
      expect(linesWith(workerLogs.lines, "claim failed; backing off")).toEqual([]);

      const stoppedAt = Date.now();
      await redis.stop("SIGKILL");
      expect(runs.size).toBeLessThan(total); // the crash really happened mid-run

      // A producer gets a clear error at once while Redis is down (commands never queue offline).
      const rejected = await task.enqueue({ n: -100 }).then(
        () => new Error("enqueue resolved while Redis was down"),
        (error: unknown) => error,
      );
      expect(rejected).toBeInstanceOf(StoreUnavailableError);
      const e = rejected as StoreUnavailableError;
      expect(e.code).toBe("STORE_UNAVAILABLE");
      expect(e.message).toContain(`Redis at ${location} is unreachable`); // where, what happened
      expect(e.message).toMatch(/while trying to enqueue; nothing was written/); // what was attempted
      expect(e.message).toMatch(/Check that redis-server is running and reachable/); // what to do
      expect(e.message).not.toContain(PASSWORD);

      // Keep Redis down until the orphans' lease (and every lease of the worker) has run out, the worker has
      // failed and backed off several times and the command connection has tried to reconnect three times.
      const claimFailures = () => linesWith(workerLogs.lines, "claim failed; backing off");
      const reconnects = (role: string) =>
        linesWith(workerLogs.lines, "redis connection lost; reconnecting", stoppedAt).filter(
          (l) => l.role === role,
        );
      await until(
        "the orphans' lease to run out during the outage, and the worker to back off and retry",
        () =>
          Date.now() > orphanLeaseEnds + 1_000 &&
          Date.now() > stoppedAt + WORKER_LEASE_MS + 1_000 &&
          claimFailures().length >= 3 &&
          reconnects("commands").length >= 3 &&
          reconnects("subscriber").length >= 3,
        ORPHAN_LEASE_MS + 30_000,
        50,
      );
      const downUntil = Date.now();
      await redis.startAgain();
      const upAt = Date.now();

      await until(
        "every job to complete after the restart",
        async () => {
          const [stats] = (await admin.queueStats()).filter((s) => s.queue === QUEUE);
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
        expect(line.err?.message).toContain(`Redis at ${location} is unreachable`);
        expect(line.err?.message).toMatch(/Check that redis-server is running/);
      }
      expect(failures.map((l) => l.failures)).toEqual(failures.map((_, i) => i + 1));
      expectGrowingBackoff(
        failures.map((l) => l.retryInMs as number),
        10_000,
      );
      // Bounded attempts: at most one immediate claim per job in hand when the connection broke, plus the
      // backed-off ones (each waits at least 3/4 of its logged delay); polling every pollMs would exceed it.
      const outage = upAt - stoppedAt;
      const maxClaims =
        CONCURRENCY + PREFETCH + maxAttemptsWithin(outage, (n) => 0.75 * Math.min(100 * 2 ** n, 10_000));
      expect(failures.length).toBeLessThanOrEqual(maxClaims);

      // Each connection (commands, subscriber) logs its reconnect attempts, numbered, with a delay that grows
      // (100, 200, 400 … ms, capped at 2 s, plus < 50 ms of jitter) and a bounded count, then its return.
      for (const role of ["commands", "subscriber"]) {
        const attempts = reconnects(role).filter((l) => l.time <= upAt);
        expect(attempts.length).toBeGreaterThanOrEqual(3);
        expect(attempts.map((l) => l.attempt)).toEqual(attempts.map((_, i) => i + 1));
        expect(attempts[0]).toMatchObject({ level: WARN, engine: "redis", location });
        expectGrowingBackoff(
          attempts.map((l) => l.retryInMs as number),
          2_000,
          50,
        );
        expect(attempts.length).toBeLessThanOrEqual(
          maxAttemptsWithin(outage, (n) => Math.min(50 * 2 ** Math.min(n, 6), 2_000)) + 1,
        );
        // Each connection reconnects on its own backoff (up to 2 s), possibly after the work is done.
        const restored = await until(
          `the ${role} connection to say it is restored`,
          () =>
            linesWith(workerLogs.lines, "redis connection restored", downUntil).find((l) => l.role === role),
          20_000,
          50,
        );
        expect(restored).toMatchObject({ level: INFO, location });
      }
      expect(
        linesWith(
          workerLogs.lines,
          "heartbeat failed; leases may expire if the store stays unreachable",
          stoppedAt,
        ).length,
      ).toBeGreaterThan(0);

      // Passwords never reach a log line, on either side.
      for (const line of [...workerLogs.lines, ...producerLogs.lines]) {
        expect(JSON.stringify(line)).not.toContain(PASSWORD);
      }
    } finally {
      try {
        // A test that failed during the outage: bring Redis back so the worker can drain and stop.
        if (redis.pid === undefined) await atMost(30_000, redis.startAgain());
        await atMost(15_000, worker?.stop({ graceMs: 1_000 }) ?? Promise.resolve());
        await atMost(5_000, Promise.all([sluice.close(), producer.close(), admin.close()]));
      } finally {
        await redis.destroy();
      }
    }
  }, 120_000);
});
