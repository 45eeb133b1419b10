/**
 * Log capture and backoff checks shared by the connection-fault tests (PostgreSQL and Redis): a pino
 * logger writing JSON lines to an in-memory stream, and the assertions that a retry loop backs off.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { expect } from "vitest";
import { leaseExpiredReason, type Store } from "../../src/store/contract.js";

/** One pino line as parsed JSON (`time` is epoch ms, `level` 20 debug … 50 error). */
export interface LogLine {
  level: number;
  time: number;
  msg: string;
  err?: { type?: string; message?: string; code?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export const INFO = 30;
export const WARN = 40;
export const ERROR = 50;

/** A debug-level pino logger whose every line is kept (parsed) in `lines`. */
export function capturingLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

/** Lines with exactly this message, optionally only those logged at or after `since` (epoch ms). */
export function linesWith(lines: readonly LogLine[], msg: string, since = 0): LogLine[] {
  return lines.filter((l) => l.msg === msg && l.time >= since);
}

/**
 * Asserts a retry loop backs off: `delays` (in the order logged) grow strictly until they reach a cap,
 * then stay at it (never shrink), and the cap is bounded. `jitter` is the largest random amount added to
 * each logged delay (0 when the logged value is the un-jittered base).
 */
export function expectGrowingBackoff(delays: readonly number[], maxCapMs: number, jitter = 0): void {
  expect(delays.length).toBeGreaterThanOrEqual(3);
  expect(delays[0]).toBeGreaterThan(0);
  let capped = false;
  for (let i = 1; i < delays.length; i++) {
    const previous = delays[i - 1] as number;
    const current = delays[i] as number;
    if (!capped && current > previous) continue;
    // The first non-increase marks the cap; from then on it holds (within the jitter).
    capped = true;
    expect(Math.abs(current - previous), `retry delays ${delays.join(", ")}`).toBeLessThanOrEqual(jitter);
  }
  // Grew at least twice before any cap: 3 distinct increasing values.
  expect(delays[2] as number, `retry delays ${delays.join(", ")}`).toBeGreaterThan(delays[0] as number);
  for (const delay of delays) expect(delay).toBeLessThanOrEqual(maxCapMs + jitter);
}

/**
 * The most attempts a retry loop can make in `durationMs` when attempt n (1-based) is followed by a wait of
 * at least `minDelay(n)`: an upper bound independent of machine speed (a slow machine only waits longer).
 */
export function maxAttemptsWithin(durationMs: number, minDelay: (attempt: number) => number): number {
  let attempts = 1;
  let elapsed = 0;
  for (;;) {
    elapsed += minDelay(attempts);
    if (elapsed > durationMs) return attempts;
    attempts++;
  }
}

/** Settles with `work`, or after `ms` at the latest (clean-up that must not hang when a test failed). */
export async function atMost(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** What a fault test checks once the store is back: the outcome of every job and of the orphans. */
export interface AfterOutage {
  /** A store opened on the server (not the worker's). */
  store: Store;
  queue: string;
  /** Jobs the test enqueued (all must complete). */
  enqueued: readonly { id: string }[];
  /** Handler runs per job id, and the time of each job's first run. */
  runs: ReadonlyMap<string, number>;
  firstRunAt: ReadonlyMap<string, number>;
  /** Jobs claimed by a worker that then vanished, and the id it claimed them under. */
  orphans: readonly { id: string }[];
  crashed: string;
  /** The surviving worker's id. */
  workerId: string;
  /** When the store was started again. */
  downUntil: number;
  workerLines: readonly LogLine[];
}

/**
 * No job lost, none dead, none left behind, nothing extra; every job ran and is completed. The orphans
 * were recovered after the restart (their lease expired while the store was down), with the
 * lease-expired reason on record and in the worker's log, and first ran then.
 */
export async function expectRecoveredWithNothingLost(o: AfterOutage): Promise<void> {
  const [stats] = (await o.store.queueStats()).filter((s) => s.queue === o.queue);
  expect(stats?.counts).toMatchObject({
    waiting: 0,
    active: 0,
    scheduled: 0,
    dead: 0,
    cancelled: 0,
    completed: o.enqueued.length,
  });
  for (const job of o.enqueued) {
    expect(o.runs.get(job.id) ?? 0, `runs of ${job.id}`).toBeGreaterThanOrEqual(1);
    expect((await o.store.getJob(job.id))?.state).toBe("completed");
  }
  for (const orphan of o.orphans) {
    const job = await o.store.getJob(orphan.id);
    const [first, ...later] = job?.errors ?? [];
    expect(first).toMatchObject({
      outcome: "lease-expired",
      message: leaseExpiredReason(o.crashed),
      workerId: o.crashed,
    });
    expect(first!.at).toBeGreaterThanOrEqual(o.downUntil);
    // At least once: a later attempt may also have lost its lease (a completion queued right after the
    // reconnect can wait behind the write batcher's retry sleep longer than a short lease), but it is
    // never a failure of the job.
    for (const error of later) {
      expect(error).toMatchObject({ outcome: "lease-expired", workerId: o.workerId });
    }
    expect(o.firstRunAt.get(orphan.id)).toBeGreaterThanOrEqual(o.downUntil);
  }
  const recoveredLines = linesWith(o.workerLines, "recovered job with expired lease", o.downUntil);
  for (const orphan of o.orphans) {
    expect(recoveredLines.find((l) => l.jobId === orphan.id)).toMatchObject({
      level: WARN,
      reason: leaseExpiredReason(o.crashed),
    });
  }
}
