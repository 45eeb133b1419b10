/**
 * The failure policy: what happens to a job whose attempt did not succeed. Pure: it looks at the job,
 * what the handler threw, why the worker aborted it (if it did) and the task's rules, and returns the
 * decision; the runtime writes it. Order of the rules (first match wins):
 *
 *   1. the worker already gave the job back (shutdown) or lost its lease  → write nothing
 *   2. the handler threw RateLimitedError                                  → release, hold the queue
 *   3. an operator cancelled it while it ran                               → cancelled
 *   4. invalid stored payload, DiscardError, `discardOn`, not in `retryOn` → dead ("discarded: …")
 *   5. attempts exhausted                                                  → dead ("attempts exhausted …")
 *   6. otherwise                                                           → scheduled after the backoff
 */
import { type BackoffOption, computeBackoff } from "./backoff.js";
import {
  CancelledError,
  DiscardError,
  describeError,
  type ErrorMatcher,
  InvalidPayloadError,
  LeaseLostError,
  matchesError,
  NoHandlerError,
  RateLimitedError,
  TimeoutError,
  WorkerStoppingError,
} from "./errors.js";
import type { AttemptError, AttemptOutcome, JobRecord } from "./job.js";
import { CANCELLED_BEFORE_START_REASON, CANCELLED_WHILE_ACTIVE_REASON } from "./states.js";

/** Where a failed attempt sends the job. */
export type FailNext =
  | { state: "scheduled"; runAt: number }
  | { state: "waiting" }
  | { state: "dead"; reason: string }
  | { state: "cancelled"; reason: string };

/** The task rules the policy applies (from the task definition; absent when the task is unknown here). */
export interface FailureRules {
  retryOn?: readonly ErrorMatcher[] | undefined;
  discardOn?: readonly ErrorMatcher[] | undefined;
  /** The task's backoff, used when the job stores none. */
  backoff?: BackoffOption | null | undefined;
}

export interface FailureInput {
  job: Pick<JobRecord, "attempt" | "maxAttempts" | "backoff">;
  /** What the handler threw, or what ended the worker's wait for it. */
  error: unknown;
  /** Why the worker aborted the handler (timeout, cancel, lease lost, shutdown), or undefined. */
  abortReason?: unknown;
  rules?: FailureRules | undefined;
  workerId: string;
  now: number;
  /** Random source of the backoff's jitter (tests pass a fixed one). */
  random?: () => number;
}

export type FailureDecision =
  /** The job is no longer this worker's to write: it was released at shutdown, or its lease was lost. */
  | { kind: "none"; why: "released" | "lease-lost" }
  /** Give the job back without charging the attempt and hold its queue until `until`. */
  | { kind: "rate-limited"; until: number; error: RateLimitedError }
  /** Record the failed attempt and move the job to `next`. */
  | { kind: "fail"; error: AttemptError; next: FailNext };

/** Decides what a failed attempt does to its job (see the rules at the top of this file). */
export function decideFailure(input: FailureInput): FailureDecision {
  const { job, error, abortReason, rules, now } = input;
  if (abortReason instanceof WorkerStoppingError) return { kind: "none", why: "released" };
  if (abortReason instanceof LeaseLostError) return { kind: "none", why: "lease-lost" };
  if (error instanceof RateLimitedError) {
    return { kind: "rate-limited", until: now + Math.max(error.retryAfterMs, 0), error };
  }
  const outcome = attemptOutcome(error, abortReason);
  // A timeout or a cancel is what ended the attempt, whatever the handler threw on its way out.
  const cause =
    abortReason instanceof TimeoutError || abortReason instanceof CancelledError ? abortReason : error;
  const described = describeError(cause);
  const attemptError: AttemptError = {
    attempt: job.attempt,
    outcome,
    ...described,
    at: now,
    workerId: input.workerId,
  };
  const fail = (next: FailNext): FailureDecision => ({ kind: "fail", error: attemptError, next });
  if (outcome === "cancelled") return fail({ state: "cancelled", reason: CANCELLED_WHILE_ACTIVE_REASON });
  if (
    outcome === "invalid-payload" ||
    error instanceof DiscardError ||
    matchesError(error, rules?.discardOn) ||
    (rules?.retryOn !== undefined && !matchesError(abortReason ?? error, rules.retryOn))
  ) {
    return fail({ state: "dead", reason: `discarded: ${described.name}: ${described.message}` });
  }
  if (job.attempt >= job.maxAttempts) {
    return fail({
      state: "dead",
      reason: `attempts exhausted (${job.attempt}/${job.maxAttempts}): ${described.name}: ${described.message}`,
    });
  }
  const delay = computeBackoff(job.backoff ?? rules?.backoff ?? null, job.attempt, error, input.random);
  return fail({ state: "scheduled", runAt: now + delay });
}

/** The failed attempt of a claimed job that an operator cancelled before its handler started. */
export function cancelledBeforeStart(
  job: Pick<JobRecord, "id" | "attempt">,
  workerId: string,
  now: number,
): { error: AttemptError; next: FailNext } {
  return {
    error: {
      attempt: job.attempt,
      outcome: "cancelled",
      ...describeError(new CancelledError(job.id)),
      at: now,
      workerId,
    },
    next: { state: "cancelled", reason: CANCELLED_BEFORE_START_REASON },
  };
}

/** How an attempt ended, as stored with its error. */
export function attemptOutcome(error: unknown, abortReason: unknown): AttemptOutcome {
  if (error instanceof InvalidPayloadError) return "invalid-payload";
  if (abortReason instanceof TimeoutError) return "timeout";
  if (abortReason instanceof CancelledError) return "cancelled";
  if (error instanceof NoHandlerError) return "no-handler";
  return "error";
}
