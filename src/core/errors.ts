/**
 * Typed errors. Every error Sluice throws at a caller is a {@link SluiceError} with a stable `code`
 * that programs may branch on; the message says what happened and what to do.
 */

/** Stable error codes. Adding a code is fine; changing one is a breaking change. */
export type SluiceErrorCode =
  | "INVALID_OPTION"
  | "INVALID_PAYLOAD"
  | "PAYLOAD_TOO_LARGE"
  | "SCHEMA_VALIDATION"
  | "INVALID_CRON"
  | "INVALID_CONFIG"
  | "INVALID_TRANSACTION"
  | "TRANSACTION_UNSUPPORTED"
  | "UNKNOWN_TASK"
  | "DUPLICATE_TASK"
  | "JOB_NOT_FOUND"
  | "SCHEDULE_NOT_FOUND"
  | "STORE_UNAVAILABLE"
  | "STORE_TIMEOUT"
  | "STORE_CORRUPT"
  | "JOB_TIMEOUT"
  | "RATE_LIMITED"
  | "JOB_CANCELLED"
  | "NO_HANDLER"
  | "DISCARDED"
  | "CLOSED"
  | "LEASE_LOST"
  | "WORKER_STOPPING"
  | "DEPENDENCY_NOT_FOUND"
  | "DEPENDENCY_CYCLE"
  | "BATCH_NOT_FOUND"
  | "BATCH_FINISHED"
  | "BATCH_EXISTS"
  | "DEPENDENCY_FAILED"
  | "INLINE_RUNAWAY"
  | "HEALTH_CHECK_TIMEOUT"
  | "SANDBOX_OUT_OF_MEMORY"
  | "SANDBOX_CRASHED"
  /**
   * The Redis engine on Redis Cluster was asked for something that spans hash slots (a flow whose jobs are
   * in several queues, a move between queues): refused before anything was written (docs/redis.md, "Redis
   * Cluster").
   */
  | "CLUSTER_CROSS_SLOT";

/** Base class of every error Sluice throws. */
export class SluiceError extends Error {
  readonly code: SluiceErrorCode;
  constructor(code: SluiceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input from the caller: an option, a payload, a schema violation. Nothing was written. */
export class ValidationError extends SluiceError {
  /** Dotted path of the offending field when known (`options.priority`, `payload.docId`). */
  readonly field: string | undefined;
  /** Standard Schema issues when the error comes from a schema. */
  readonly issues: readonly { message: string; path?: readonly PropertyKey[] }[];
  constructor(
    code: Extract<
      SluiceErrorCode,
      | "INVALID_OPTION"
      | "INVALID_PAYLOAD"
      | "PAYLOAD_TOO_LARGE"
      | "SCHEMA_VALIDATION"
      | "INVALID_CRON"
      | "INVALID_CONFIG"
      | "INVALID_TRANSACTION"
    >,
    message: string,
    details: {
      field?: string;
      issues?: readonly { message: string; path?: readonly PropertyKey[] }[];
      cause?: unknown;
    } = {},
  ) {
    super(code, message, { cause: details.cause });
    this.field = details.field;
    this.issues = details.issues ?? [];
  }
}

/** A task name that no `sluice.task()` in this process defines, used without an explicit queue. */
export class UnknownTaskError extends SluiceError {
  constructor(readonly task: string) {
    super(
      "UNKNOWN_TASK",
      `task "${task}" is not defined in this process: define it with sluice.task("${task}", { queue }) ` +
        `(a handler is not needed to enqueue), or pass { queue } to sluice.enqueue()`,
    );
  }
}

/** An id that names no job in the store. */
export class JobNotFoundError extends SluiceError {
  constructor(readonly jobId: string) {
    super("JOB_NOT_FOUND", `job "${jobId}" does not exist (it may have been deleted or pruned by retention)`);
  }
}

/** A name that names no schedule in the store (`sluice schedules show|pause|resume|remove|run-now`). */
export class ScheduleNotFoundError extends SluiceError {
  constructor(readonly schedule: string) {
    super(
      "SCHEDULE_NOT_FOUND",
      `schedule "${schedule}" does not exist (removed, or a typo); list the schedules with: sluice schedules list`,
    );
  }
}

/** The store could not be reached, stayed busy past its deadline, or refused the request. Nothing was written. */
export class StoreUnavailableError extends SluiceError {
  /**
   * True when the store was reachable and refused this particular request (a rejected statement, a script
   * error): sending the same request again fails again, so retry loops give up on it instead of waiting.
   */
  readonly rejected: boolean;
  constructor(message: string, options?: { cause?: unknown; rejected?: boolean }) {
    super("STORE_UNAVAILABLE", message, options);
    this.rejected = options?.rejected ?? false;
  }
}

/**
 * A store call made on behalf of a caller with a deadline (an HTTP request) did not answer in time. The
 * call may still complete in the background: a write it carried may or may not have happened, so read the
 * state again before repeating it.
 */
export class StoreTimeoutError extends SluiceError {
  constructor(
    readonly timeoutMs: number,
    what = "the store",
  ) {
    super(
      "STORE_TIMEOUT",
      `${what} did not answer within ${timeoutMs} ms; check the store's health (sluice doctor) or raise the timeout`,
    );
  }
}

/** The Sluice instance or worker was closed and cannot be used any more. */
export class ClosedError extends SluiceError {
  constructor(what: string) {
    super("CLOSED", `${what} is closed; create a new instance`);
  }
}

/** Thrown into a handler's signal when its `timeoutMs` elapses; the attempt fails and is retried. */
export class TimeoutError extends SluiceError {
  constructor(readonly timeoutMs: number) {
    super(
      "JOB_TIMEOUT",
      `job exceeded its timeout of ${timeoutMs} ms; raise timeoutMs or make the handler faster`,
    );
  }
}

/**
 * A queue's health check did not settle within its `timeoutMs` (runtime/health.ts): it counts as failing,
 * and its `signal` is aborted with this error so the check can give up its connection attempt.
 */
export class HealthCheckTimeoutError extends SluiceError {
  constructor(
    readonly queue: string,
    readonly timeoutMs: number,
  ) {
    super(
      "HEALTH_CHECK_TIMEOUT",
      `health check of queue ${queue} did not answer within ${timeoutMs} ms; the dependency is unreachable ` +
        "or the check ignores its signal (raise timeoutMs if the dependency is just slow)",
    );
  }
}

/**
 * Throw from a handler when an upstream answered "429 Too Many Requests": the job goes back to the queue
 * after `retryAfterMs` without using an attempt, and the queue pauses for that long.
 */
export class RateLimitedError extends SluiceError {
  constructor(
    readonly retryAfterMs: number,
    message = `rate limited; retry after ${retryAfterMs} ms`,
  ) {
    super("RATE_LIMITED", message);
  }
}

/** The reason a handler's signal aborts when an operator cancels its job. */
export class CancelledError extends SluiceError {
  constructor(readonly jobId: string) {
    super("JOB_CANCELLED", `job "${jobId}" was cancelled`);
  }
}

/** Throw from a handler to send the job straight to `dead`, whatever attempts remain. */
export class DiscardError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DISCARDED", message, options);
  }
}

/**
 * A job's stored payload cannot be run: it could not be parsed, or it fails the task's schema at run time
 * (the schema changed since the job was enqueued). The job goes straight to `dead` with outcome
 * `invalid-payload`: retrying the same payload fails the same way.
 */
export class InvalidPayloadError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_PAYLOAD", message, options);
  }
}

/**
 * The reason a handler's signal aborts when the worker's shutdown grace ends: the job goes back to
 * `waiting` without charging an attempt, and whatever the handler does afterwards is fenced off.
 */
export class WorkerStoppingError extends SluiceError {
  constructor(readonly graceMs: number) {
    super(
      "WORKER_STOPPING",
      `worker stopping: shutdown grace of ${graceMs} ms elapsed; the job goes back to waiting`,
    );
  }
}

/**
 * The reason a handler's signal aborts when its worker no longer holds the job's lease (it expired and
 * the job was recovered, or it was deleted or re-claimed): its outcome would be refused, so stop work.
 */
export class LeaseLostError extends SluiceError {
  constructor(readonly jobId: string) {
    super(
      "LEASE_LOST",
      `lease on job ${jobId} was lost (expired and recovered, deleted, or re-claimed); outcome discarded`,
    );
  }
}

/** The job's task has no handler on the worker that claimed it. */
export class NoHandlerError extends SluiceError {
  constructor(
    readonly task: string,
    workerId: string,
  ) {
    super(
      "NO_HANDLER",
      `worker ${workerId} has no handler for task "${task}"; deploy a worker that defines it with a run() function`,
    );
  }
}

/**
 * Inline mode (`inline:`) ran more jobs for one enqueue than its limit allows: most likely a job that
 * enqueues itself, or a follow-up with a delay (delays and backoffs take no time in inline mode, so a
 * job that reschedules itself never stops). The jobs not run yet stay `waiting` in the store.
 */
export class InlineRunawayError extends SluiceError {
  constructor(readonly maxRuns: number) {
    super(
      "INLINE_RUNAWAY",
      `inline mode ran ${maxRuns} jobs for one enqueue without becoming idle: a job that enqueues itself ` +
        "(or a follow-up with a delay: inline mode runs delays at once) never ends here; stop the loop, or " +
        "raise the limit with inline:?maxRunsPerDrive=<n>",
    );
  }
}

/** A class or a predicate that decides whether an error matches a `retryOn` / `discardOn` rule. */
export type ErrorMatcher = (abstract new (...args: never[]) => Error) | ((error: unknown) => boolean);

/** True when `error` matches any of `matchers` (instanceof for classes, call for predicates). */
export function matchesError(error: unknown, matchers: readonly ErrorMatcher[] | undefined): boolean {
  if (!matchers) return false;
  for (const matcher of matchers) {
    if (isErrorClass(matcher)) {
      if (error instanceof matcher) return true;
    } else if ((matcher as (error: unknown) => boolean)(error)) {
      return true;
    }
  }
  return false;
}

function isErrorClass(matcher: ErrorMatcher): matcher is abstract new (...args: never[]) => Error {
  return typeof matcher === "function" && (matcher.prototype instanceof Error || matcher === Error);
}

/** Normalises anything thrown into name / message / stack / code. */
export function describeError(error: unknown): {
  name: string;
  message: string;
  stack?: string;
  code?: string;
} {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(error.stack ? { stack: error.stack } : {}),
      ...(typeof code === "string" ? { code } : {}),
    };
  }
  let message: string;
  try {
    message = typeof error === "string" ? error : JSON.stringify(error);
  } catch {
    message = String(error);
  }
  return { name: "NonError", message: `non-Error thrown: ${message}` };
}

/** A job was enqueued with a dependency on a job that does not exist. Nothing of the call was written. */
export class DependencyNotFoundError extends SluiceError {
  constructor(
    readonly jobId: string,
    readonly dependencyId: string,
  ) {
    super(
      "DEPENDENCY_NOT_FOUND",
      `job "${jobId}" depends on job "${dependencyId}", which does not exist (it was never enqueued, or was ` +
        "deleted or pruned by retention): enqueue the dependency first, or in the same call before its dependent",
    );
  }
}

/** The jobs of one enqueue call depend on each other in a cycle. Nothing was written. */
export class DependencyCycleError extends SluiceError {
  constructor(readonly cycle: readonly string[]) {
    super(
      "DEPENDENCY_CYCLE",
      `dependencies form a cycle (${cycle.join(" → ")}): no job of it could ever run; remove one of these edges`,
    );
  }
}

/** A job was added to a batch that does not exist. Nothing of the call was written. */
export class BatchNotFoundError extends SluiceError {
  constructor(readonly batchId: string) {
    super(
      "BATCH_NOT_FOUND",
      `batch "${batchId}" does not exist: create it with sluice.batch(...), or add jobs from a running member`,
    );
  }
}

/** A job was added to a batch whose members are all final (its callbacks have fired). Nothing was written. */
export class BatchFinishedError extends SluiceError {
  constructor(readonly batchId: string) {
    super(
      "BATCH_FINISHED",
      `batch "${batchId}" has finished (every member is final and its callbacks fired): start a new batch`,
    );
  }
}

/** A batch was created with the id of a batch that exists. Nothing of the call was written. */
export class BatchExistsError extends SluiceError {
  constructor(readonly batchId: string) {
    super(
      "BATCH_EXISTS",
      `batch "${batchId}" already exists: give a new batch a new id (or let Sluice make one), or add jobs to ` +
        "the existing one from a running member",
    );
  }
}

/** Why a job went dead when a dependency with policy "fail" did not complete (stored as its attempt error). */
export class DependencyFailedError extends SluiceError {
  constructor(message: string) {
    super("DEPENDENCY_FAILED", message);
  }
}

/**
 * A sandboxed handler (task option `sandbox`) ran its sandbox out of memory: the sandbox was killed, the
 * worker was not, and the attempt is retried (or the job goes dead) per the task's rules.
 */
export class SandboxMemoryError extends SluiceError {
  constructor(
    readonly task: string,
    readonly memoryMb: number | null,
  ) {
    super(
      "SANDBOX_OUT_OF_MEMORY",
      memoryMb === null
        ? `sandbox ran out of memory (V8's default heap limit) running task "${task}"; set sandbox.memoryMb or make the handler use less`
        : `sandbox exceeded ${memoryMb} MB running task "${task}"; raise sandbox.memoryMb or make the handler use less`,
    );
  }
}

/**
 * A sandboxed handler's sandbox died under it (`process.abort()`, a native crash, a signal, `process.exit`,
 * an uncaught exception): the sandbox is gone, the worker is not; the attempt is retried or dead per the
 * task's rules. `detail` says how it died (`SIGABRT`, `exit code 3`, `uncaught TypeError: …`).
 */
export class SandboxCrashedError extends SluiceError {
  constructor(
    readonly task: string,
    readonly detail: string,
  ) {
    super("SANDBOX_CRASHED", `sandbox crashed: ${detail} (task "${task}"); the worker is unaffected`);
  }
}

/**
 * A sandboxed handler did not settle after its job's timeout aborted it (a busy loop, or a handler that
 * ignores `ctx.signal`): its sandbox was killed. A {@link TimeoutError} (code JOB_TIMEOUT), so `retryOn`
 * rules that name TimeoutError still match.
 */
export class SandboxTimeoutError extends TimeoutError {
  constructor(timeoutMs: number, label: string) {
    super(timeoutMs);
    this.message = `sandbox killed after timeout ${label}: the handler ignored its abort signal`;
    this.stack = `${this.name}: ${this.message}\n${(this.stack ?? "").split("\n").slice(1).join("\n")}`;
  }
}
