/**
 * Fleet-wide flow control: limits a queue declares, enforced by the store inside `claim` so that they hold
 * across every worker process and host (docs/internals.md, "Limits"). Pure types and validation.
 *
 * - `concurrency`: at most N jobs of the queue active at once (jobs claimed ahead count: they hold a slot).
 * - `rate`: at most `max` jobs of the queue start in each window of `windowMs`, windows aligned to the epoch
 *   (fixed windows, as BullMQ's and Sidekiq's window limiters: any `windowMs` span that straddles a window
 *   boundary may see up to 2 × max; pick a shorter window to smooth bursts).
 * - `keyConcurrency` / `keyRate`: the same per limit key (a job's `limitKey`: a tenant, a user, an API key).
 *   Jobs of a key at its limit are skipped, never block other keys of the queue (no head-of-line blocking).
 * - A key held by a `RateLimitedError` thrown by a job that has a `limitKey` (`holdKey`): its jobs are not
 *   claimed until the hold ends; other keys flow. Without a key the whole queue is paused for that long.
 */
import { ValidationError } from "./errors.js";

/** At most `max` job starts per window of `windowMs`. */
export interface RateLimit {
  max: number;
  windowMs: number;
}

/** A queue's limits as the store keeps them; null fields = no limit of that kind. */
export interface QueueLimits {
  concurrency: number | null;
  rate: RateLimit | null;
  keyConcurrency: number | null;
  keyRate: RateLimit | null;
}

export const NO_LIMITS: QueueLimits = Object.freeze({
  concurrency: null,
  rate: null,
  keyConcurrency: null,
  keyRate: null,
});

/** True when the queue has no limit at all (claims take the plain path). */
export function unlimited(limits: QueueLimits | null | undefined): boolean {
  return (
    !limits ||
    (limits.concurrency === null &&
      limits.rate === null &&
      limits.keyConcurrency === null &&
      limits.keyRate === null)
  );
}

/** Largest limit accepted (a bigger number is a unit mistake; no limit is `null`). */
export const MAX_LIMIT = 1_000_000;
/** Window bounds: 1 ms to 1 day. */
export const MAX_WINDOW_MS = 86_400_000;

const LIMIT_KEYS = ["concurrency", "rate", "keyConcurrency", "keyRate"];

/** Validates `sluice.limits(queue, …)` input; throws INVALID_OPTION naming the field. */
export function validateQueueLimits(value: unknown, field = "limits"): QueueLimits {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be { concurrency?, rate?, keyConcurrency?, keyRate? }`,
      {
        field,
      },
    );
  }
  const input = value as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!LIMIT_KEYS.includes(key)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}.${key} is not a limit; queues take ${LIMIT_KEYS.join(", ")}`,
        { field: `${field}.${key}` },
      );
    }
  }
  return {
    concurrency: count(input.concurrency, `${field}.concurrency`),
    rate: rate(input.rate, `${field}.rate`),
    keyConcurrency: count(input.keyConcurrency, `${field}.keyConcurrency`),
    keyRate: rate(input.keyRate, `${field}.keyRate`),
  };
}

function count(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be a whole number from 1 to ${MAX_LIMIT} (null or absent for no limit; to stop a queue, ` +
        `pause it); got ${typeof value === "number" ? value : JSON.stringify(value)}`,
      { field },
    );
  }
  return value;
}

function rate(value: unknown, field: string): RateLimit | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be { max, windowMs }, e.g. { max: 500, windowMs: 60_000 }`,
      {
        field,
      },
    );
  }
  const { max, windowMs, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.${extra} is not part of a rate; it is { max, windowMs }`,
      {
        field: `${field}.${extra}`,
      },
    );
  }
  const m = count(max, `${field}.max`);
  if (m === null)
    throw new ValidationError("INVALID_OPTION", `${field}.max is required`, { field: `${field}.max` });
  if (
    typeof windowMs !== "number" ||
    !Number.isInteger(windowMs) ||
    windowMs < 1 ||
    windowMs > MAX_WINDOW_MS
  ) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.windowMs must be a whole number of ms from 1 to ${MAX_WINDOW_MS}; got ${JSON.stringify(windowMs)}`,
      { field: `${field}.windowMs` },
    );
  }
  return { max: m, windowMs };
}

/** The start of the rate window holding `now` (windows aligned to the epoch). */
export function windowStart(now: number, windowMs: number): number {
  return now - (now % windowMs);
}
