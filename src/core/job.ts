/**
 * The job model: states, the stored record, and the attempt history. Pure data, no I/O.
 *
 * States and every transition between them: docs/state-machine.md.
 */

/** Every state a job can be in. `failed` is an event, not a resting state. */
export const JOB_STATES = [
  "scheduled",
  "waiting",
  "active",
  "completed",
  "dead",
  "cancelled",
  "blocked",
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** States a job leaves by itself (not final). */
export const PENDING_STATES: readonly JobState[] = ["scheduled", "waiting", "active", "blocked"];

export function isJobState(value: unknown): value is JobState {
  return typeof value === "string" && (JOB_STATES as readonly string[]).includes(value);
}

/** JSON value: the only thing a payload or a result may be. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Why an attempt ended without success. */
export type AttemptOutcome =
  | "error" // the handler threw
  | "timeout" // timeoutMs elapsed
  | "lease-expired" // the worker stopped heartbeating (crash, SIGKILL, partition)
  | "no-handler" // no worker-side handler for this task
  | "invalid-payload" // stored payload failed the schema at run time, or could not be parsed
  | "cancelled" // cancelled by an operator while active
  | "dependency-failed"; // a dependency with policy "fail" ended dead or cancelled (core/flows.ts)

/** One failed attempt, kept on the job for operators (`sluice jobs show`). */
export interface AttemptError {
  attempt: number;
  outcome: AttemptOutcome;
  /** Error class name, e.g. `TimeoutError`. */
  name: string;
  message: string;
  stack?: string;
  /** Stable error code when the error carried one. */
  code?: string;
  /** Epoch ms when the attempt ended. */
  at: number;
  /** Worker that ran the attempt (`host/pid/tag`). */
  workerId?: string;
  /**
   * What the worker that ran the attempt observed afterwards and added with `store.annotateAttempt`, e.g.
   * the event-loop stall that let its lease expire (the error itself was written by lease recovery).
   */
  note?: string;
}

/** Retention of a completed job: keep forever, delete at once, keep for a duration, or keep the newest N per queue. */
export type Retention = true | false | { ageMs: number } | { count: number };

/** A job as stored and returned by the store. Timestamps are epoch milliseconds. */
export interface JobRecord {
  id: string;
  /** Monotonic enqueue order within the store (ties on priority and run time break on it). */
  seq: number;
  task: string;
  queue: string;
  state: JobState;
  payload: Json;
  result: Json | null;
  priority: number;
  /** When the job becomes (or became) runnable. */
  runAt: number;
  createdAt: number;
  /** Set on each claim. */
  startedAt: number | null;
  /** Set on completed / dead / cancelled. */
  finishedAt: number | null;
  /** Attempts started so far (incremented on claim; decremented when released without charge). */
  attempt: number;
  maxAttempts: number;
  /** Backoff spec as given at enqueue (functions stay in the task definition, not in the store). */
  backoff: BackoffSpec | null;
  timeoutMs: number | null;
  uniqueKey: string | null;
  tags: string[];
  progress: Json | null;
  /** Current fencing token (bumped on every claim). */
  leaseToken: number;
  leaseExpiresAt: number | null;
  workerId: string | null;
  cancelRequested: boolean;
  retention: Retention;
  /** Every failed attempt, oldest first. */
  errors: AttemptError[];
  /** Why the job is in its current state when that was not the handler's doing (recovered, dead, released). */
  reason: string | null;
  /** The job whose handler enqueued this one (core/flows.ts). */
  parentId: string | null;
  /** The batch this job belongs to, or null. */
  batchId: string | null;
  /** Dependencies not yet resolved (a `blocked` job waits while this is above 0); 0 when none. */
  pendingDependencies: number;
  /** The job's limit key (per-key concurrency, rate and holds: core/limits.ts), or null. */
  limitKey: string | null;
  /**
   * Set by an engine when a stored field (payload, errors, …) could not be parsed. The worker fails such
   * a job with outcome `invalid-payload` instead of crashing; the raw text stays in the store for forensics.
   */
  dataError?: string;
}

/** Backoff as data (serialisable). A function form lives only in task definitions. */
export type BackoffSpec =
  | { type: "fixed"; delayMs: number; jitter?: boolean }
  | { type: "linear"; delayMs: number; maxDelayMs?: number; jitter?: boolean }
  | { type: "exponential"; delayMs: number; maxDelayMs?: number; jitter?: boolean; factor?: number };

/** A log line written by a handler through `ctx.log`. */
export interface JobLogLine {
  at: number;
  attempt: number;
  message: string;
}
