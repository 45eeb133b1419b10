/**
 * Retry backoff: validating the `backoff` option and computing the delay before the next attempt.
 * Pure, no I/O.
 */
import { describeValue } from "./duration.js";
import { ValidationError } from "./errors.js";
import type { BackoffSpec } from "./job.js";

/**
 * Custom backoff: receives the number of the attempt that just failed (1-based) and what it threw,
 * returns the delay in milliseconds before the next attempt. Lives only in task definitions.
 */
export type BackoffFunction = (attempt: number, error: unknown) => number;

/** The `backoff` option: a serialisable spec or a function. */
export type BackoffOption = BackoffSpec | BackoffFunction;

/**
 * Used when a job has no backoff (`null`), and as the fallback when a custom function throws or returns
 * something that is not a finite number `>= 0`: exponential from 1 s, doubling, capped at 1 hour, jittered.
 */
export const DEFAULT_BACKOFF: BackoffSpec = Object.freeze({
  type: "exponential",
  delayMs: 1_000,
  maxDelayMs: 3_600_000,
  jitter: true,
} as const);

/** No computed delay ever exceeds 30 days, whatever the spec says (keeps `now + delay` sane). */
export const MAX_BACKOFF_MS = 30 * 86_400_000;

/** Exponential growth factor when the spec gives none. */
export const DEFAULT_BACKOFF_FACTOR = 2;

const KEYS_BY_TYPE: Readonly<Record<BackoffSpec["type"], readonly string[]>> = {
  fixed: ["type", "delayMs", "jitter"],
  linear: ["type", "delayMs", "maxDelayMs", "jitter"],
  exponential: ["type", "delayMs", "maxDelayMs", "factor", "jitter"],
};

const SHAPE_HELP =
  '{ type: "fixed" | "linear" | "exponential", delayMs, maxDelayMs?, factor?, jitter? } ' +
  "or a function (attempt, error) => delay in ms";

/**
 * Checks the shape of a `backoff` option.
 *
 * Rules: a function is accepted as is. Otherwise an object with `type` one of `fixed`, `linear`,
 * `exponential`; `delayMs` a finite number `>= 0` (required); `maxDelayMs` (linear and exponential only)
 * a finite number `>= delayMs`; `factor` (exponential only) a finite number `> 1`, default 2;
 * `jitter` a boolean. Other keys are rejected.
 *
 * @param value the option as given by the caller
 * @param field dotted name of the option, used in errors (`options.backoff`)
 * @returns the function as given, or a fresh copy of the spec holding only its known keys
 * @throws ValidationError `INVALID_OPTION` with `field` set to the offending key
 */
export function validateBackoff(value: unknown, field: string): BackoffOption {
  if (typeof value === "function") return value as BackoffFunction;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be ${SHAPE_HELP}; got ${describeValue(value)}`,
      {
        field,
      },
    );
  }
  const input = value as Record<string, unknown>;
  const type = input.type;
  if (type !== "fixed" && type !== "linear" && type !== "exponential") {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.type must be "fixed", "linear" or "exponential"; got ${describeValue(type)}`,
      { field: `${field}.type` },
    );
  }
  const allowed = KEYS_BY_TYPE[type];
  for (const key of Object.keys(input)) {
    if (!allowed.includes(key)) {
      const hint =
        key === "maxDelayMs" || key === "factor"
          ? `${key} does not apply to ${type} backoff; remove it or use type "exponential"`
          : `remove it; a ${type} backoff takes ${allowed.join(", ")}`;
      throw new ValidationError("INVALID_OPTION", `${field}.${key} is not a backoff option: ${hint}`, {
        field: `${field}.${key}`,
      });
    }
  }

  const delayMs = input.delayMs;
  if (typeof delayMs !== "number" || !Number.isFinite(delayMs) || delayMs < 0) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.delayMs must be a finite number of milliseconds >= 0 (the base delay); got ${describeValue(delayMs)}`,
      { field: `${field}.delayMs` },
    );
  }
  const jitter = input.jitter;
  if (jitter !== undefined && typeof jitter !== "boolean") {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.jitter must be true or false; got ${describeValue(jitter)}`,
      { field: `${field}.jitter` },
    );
  }
  const maxDelayMs = input.maxDelayMs;
  if (
    maxDelayMs !== undefined &&
    (typeof maxDelayMs !== "number" || !Number.isFinite(maxDelayMs) || maxDelayMs < delayMs)
  ) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.maxDelayMs must be a finite number of milliseconds >= delayMs (${delayMs}); ` +
        `got ${describeValue(maxDelayMs)}`,
      { field: `${field}.maxDelayMs` },
    );
  }
  const factor = input.factor;
  if (factor !== undefined && (typeof factor !== "number" || !Number.isFinite(factor) || factor <= 1)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.factor must be a finite number > 1 (the delay multiplies by it on each attempt; default 2); ` +
        `got ${describeValue(factor)}`,
      { field: `${field}.factor` },
    );
  }

  const extra = {
    ...(jitter !== undefined ? { jitter } : {}),
    ...(maxDelayMs !== undefined ? { maxDelayMs } : {}),
  };
  switch (type) {
    case "fixed":
      return { type, delayMs, ...(jitter !== undefined ? { jitter } : {}) };
    case "linear":
      return { type, delayMs, ...extra };
    case "exponential":
      return { type, delayMs, ...extra, ...(factor !== undefined ? { factor } : {}) };
  }
}

/**
 * Computes the delay before the next attempt.
 *
 * - `fixed`: `delayMs`; `linear`: `delayMs * attempt`; `exponential`: `delayMs * factor^(attempt - 1)`.
 * - The result is capped by `maxDelayMs` when given, and never exceeds {@link MAX_BACKOFF_MS} (30 days).
 * - `jitter: true` makes the delay a uniformly random value between 50% and 100% of the capped delay
 *   (full jitter over the upper half; AWS calls this "equal jitter"). Keeping at least half the delay
 *   spreads a thundering herd of retries while guaranteeing the backoff still backs off (full jitter
 *   from 0 can retry almost at once, hammering an upstream that is down).
 * - `null` means {@link DEFAULT_BACKOFF}.
 * - A function is called with `(attempt, error)`; when it throws or returns anything other than a finite
 *   number `>= 0` (including a promise), the default backoff is used instead, so a buggy function can never
 *   crash the worker. Function results are not jittered, but are capped at 30 days.
 * - A stored spec that is malformed (edited by hand, older version) also falls back to the default.
 *
 * @param backoff the job's backoff, or null for the default
 * @param attempt number of the attempt that just failed, 1-based (values below 1 count as 1)
 * @param error what the attempt threw (passed to a function backoff)
 * @param random source of randomness in `[0, 1)`, for jitter; injectable for tests
 * @returns the delay in whole milliseconds, an integer `>= 0`
 */
export function computeBackoff(
  backoff: BackoffOption | null,
  attempt: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  const n = Number.isFinite(attempt) && attempt >= 1 ? Math.floor(attempt) : 1;
  if (typeof backoff === "function") {
    let delay: unknown;
    try {
      delay = backoff(n, error);
    } catch {
      return computeSpec(DEFAULT_BACKOFF, n, random);
    }
    if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
      return computeSpec(DEFAULT_BACKOFF, n, random);
    }
    return Math.round(Math.min(delay, MAX_BACKOFF_MS));
  }
  return computeSpec(isUsableSpec(backoff) ? backoff : DEFAULT_BACKOFF, n, random);
}

function isUsableSpec(spec: BackoffSpec | null): spec is BackoffSpec {
  if (spec === null || typeof spec !== "object") return false;
  if (spec.type !== "fixed" && spec.type !== "linear" && spec.type !== "exponential") return false;
  return typeof spec.delayMs === "number" && Number.isFinite(spec.delayMs) && spec.delayMs >= 0;
}

function computeSpec(spec: BackoffSpec, attempt: number, random: () => number): number {
  let delay: number;
  if (spec.delayMs === 0) {
    delay = 0;
  } else if (spec.type === "fixed") {
    delay = spec.delayMs;
  } else if (spec.type === "linear") {
    delay = spec.delayMs * attempt;
  } else {
    const factor =
      typeof spec.factor === "number" && Number.isFinite(spec.factor) && spec.factor > 1
        ? spec.factor
        : DEFAULT_BACKOFF_FACTOR;
    delay = spec.delayMs * factor ** (attempt - 1);
  }
  if (spec.type !== "fixed" && typeof spec.maxDelayMs === "number" && spec.maxDelayMs >= 0) {
    delay = Math.min(delay, spec.maxDelayMs);
  }
  delay = Math.min(delay, MAX_BACKOFF_MS);
  if (spec.jitter === true) {
    let r = random();
    if (!(r >= 0)) r = 0;
    else if (r > 1) r = 1;
    delay *= 0.5 + 0.5 * r;
  }
  return Math.round(delay);
}
