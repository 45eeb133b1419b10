/**
 * What each state allows, and the reasons stored when the system (not the handler) moves a job: the one
 * home of this knowledge. Admin, the CLI and the three engines take their state lists and reason texts
 * from here. The engines build their SQL and Lua from these constants where that keeps the statement
 * readable and plannable; the few places that must stay literal (PostgreSQL partial-index predicates,
 * shipped migrations, `state <> 'active'` guards) are compared with these constants by
 * test/unit/states.test.ts. Pure data, no I/O.
 */
import type { JobRecord, JobState } from "./job.js";

/** States an operator's retry moves back to `waiting` with a fresh attempt count (dead is the DLQ requeue). */
export const RETRYABLE_STATES: readonly JobState[] = ["dead", "cancelled", "completed", "scheduled"];

/** States a cancel moves to `cancelled` at once: jobs that have not started. */
export const CANCEL_AT_ONCE_STATES: readonly JobState[] = ["scheduled", "waiting", "blocked"];

/**
 * States a cancel acts on: {@link CANCEL_AT_ONCE_STATES} at once, and `active` by request (the worker aborts
 * the handler's signal; the job ends `cancelled` when it fails, is released or is recovered).
 */
export const CANCELLABLE_STATES: readonly JobState[] = [...CANCEL_AT_ONCE_STATES, "active"];

/** States a delete removes: every state but `active` (a running job finishes first). */
export const REMOVABLE_STATES: readonly JobState[] = [
  "scheduled",
  "waiting",
  "blocked",
  "completed",
  "dead",
  "cancelled",
];

/** States a purge removes: finished jobs (a narrower delete). */
export const PURGEABLE_STATES: readonly JobState[] = ["completed", "dead", "cancelled"];

/** States `move` acts on: everything but active (running elsewhere) and completed (history). */
export const MOVABLE_STATES: readonly JobState[] = ["scheduled", "waiting", "blocked", "dead", "cancelled"];

/** States `reprioritize` acts on: jobs that have not started. */
export const REPRIORITIZABLE_STATES: readonly JobState[] = ["scheduled", "waiting", "blocked"];

/**
 * A job a worker claimed ahead of a free slot (prefetch) and has not started: `active` under the worker's
 * lease, with no `startedAt` yet. Users see it as `waiting` (counts, listings, filters, delete, move,
 * cancel, uniqueness); the worker's start write is fenced, so an operator who takes it wins.
 */
export function isHeld(job: Pick<JobRecord, "state" | "startedAt">): boolean {
  return job.state === "active" && job.startedAt === null;
}

/**
 * How an operator sees a job: a held one ({@link isHeld}) is `waiting`, its claim's attempt not counted
 * and no lease shown. Every other job as stored. The engines' getJob and listJobs return this view.
 */
export function asSeen(job: JobRecord): JobRecord {
  if (!isHeld(job)) return job;
  return { ...job, state: "waiting", attempt: Math.max(job.attempt - 1, 0), leaseExpiresAt: null };
}

/** The reason stored on a job an operator retried. */
export const RETRIED_REASON = "retried by operator";

/** The reason stored on a job an operator cancelled before a worker took it (cancelled at once). */
export const CANCELLED_REASON = "cancelled by operator";

/**
 * The reason stored on a job whose cancel was requested while it ran: its handler was aborted, or it was
 * released or recovered before it saw the request.
 */
export const CANCELLED_WHILE_ACTIVE_REASON = "cancelled by operator while active";

/** The reason stored on a job the worker had claimed but not started when it saw the cancel request. */
export const CANCELLED_BEFORE_START_REASON = "cancelled by operator before it started";

/** How a reason names a job's worker when the job has none recorded. */
export const UNKNOWN_WORKER = "unknown";

/** The reason stored on a job whose lease expired. Engines build exactly this text. */
export function leaseExpiredReason(workerId: string | null): string {
  return `lease expired: worker ${workerId ?? UNKNOWN_WORKER} stopped heartbeating`;
}

/** The reason stored on a job an operator recovered by age. */
export function forcedRecoveryReason(workerId: string | null): string {
  return `recovered by operator: worker ${workerId ?? UNKNOWN_WORKER} held it past the cutoff`;
}

/** Where a recovered active job goes. */
export type RecoveryState = "waiting" | "dead" | "cancelled";

/** What recovery needs to know about an active job whose worker is gone (or held it too long). */
export interface RecoveryCandidate {
  /** An operator asked to cancel it while it ran. */
  cancelRequested: boolean;
  /** Attempts started so far, this one included. */
  attempt: number;
  maxAttempts: number;
  /** The worker that held it, or null when none is recorded. */
  workerId: string | null;
  /** True when an operator recovered it by age (`startedBefore`), false when its lease expired. */
  forced: boolean;
}

/**
 * The recovery decision: a job whose cancel was requested goes to `cancelled`; otherwise one out of
 * attempts (`attempt >= maxAttempts`) goes to `dead`, and one with attempts left back to `waiting` (the
 * attempt stays charged). The reason says why, naming the worker. SQLite and PostgreSQL call this; the
 * Redis recovery script makes the same decision in Lua, with the reason texts built by
 * {@link leaseExpiredReason} / {@link forcedRecoveryReason} (test/redis/store.test.ts compares them).
 */
export function recoveryTarget(job: RecoveryCandidate): { to: RecoveryState; reason: string } {
  const to: RecoveryState = job.cancelRequested
    ? "cancelled"
    : job.attempt >= job.maxAttempts
      ? "dead"
      : "waiting";
  const reason = job.forced ? forcedRecoveryReason(job.workerId) : leaseExpiredReason(job.workerId);
  return { to, reason };
}
