/**
 * Log capture and backoff checks shared by the connection-fault tests (PostgreSQL and Redis): a pino
 * logger writing JSON lines to an in-memory stream, and the assertions that a retry loop backs off.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { expect } from "vitest";

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
