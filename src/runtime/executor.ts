/**
 * The executor runs one job: it checks the stored payload against the task's schema, calls the handler
 * with its context, enforces `timeoutMs`, and lets an abort (timeout, cancel, lost lease, shutdown) end the
 * wait even when the handler ignores its signal. It writes nothing: the worker turns the result into an
 * outcome. `Task.runNow` uses the same executor with an inline context, so inline runs cannot drift from
 * what a worker does.
 */
import { InvalidPayloadError, NoHandlerError, TimeoutError, ValidationError } from "../core/errors.js";
import {
  DEPENDENCY_POLICIES,
  type Dependency,
  type DependencyPolicy,
  type EnqueuedStep,
  type FlowView,
} from "../core/flows.js";
import type { JobRecord, Json } from "../core/job.js";
import type { JobOptions } from "../core/options.js";
import { serializePayload, validateWithSchema } from "../core/payload.js";
import type { FlowStep, RegisteredTask, TaskContext, TaskDefinition } from "../core/task.js";
import type { SluiceEventEmitter } from "./events.js";

/** Longest log line a handler can store; the rest is cut. */
const MAX_LOG_LINE = 10_000;

/**
 * A job being run. Its AbortController is created only when the handler reads `ctx.signal` (most never
 * do, and one per job is measurable at tens of thousands of jobs/s); aborting also ends the wait for the
 * handler, so an abort never depends on the handler reading its signal. The wait is a callback, not a
 * promise chain, and `done()` makes a promise only when someone asks (a stopping worker): a job holds as
 * few objects as possible while it runs, since every one alive at a scavenge is copied and may be promoted.
 */
export class RunningJob {
  private controller: AbortController | null = null;
  aborted = false;
  abortReason: unknown = undefined;
  /** True from the call of the handler until the promise it returned settles (user code still running). */
  inHandler = false;
  /** While the executor waits for the handler's promise: where its result goes, and the timeout's timer. */
  private waiting: ((result: ExecutionResult) => void) | null = null;
  private timer: NodeJS.Timeout | undefined = undefined;
  /** Set once the worker is done with this run (outcome handed off); `done()` waiters are resolved then. */
  private ended = false;
  private onEnded: (() => void)[] | null = null;
  /** Children this run enqueued (numbers their default ids `<job id>.<n>`). */
  childCount = 0;
  /** Children enqueued with `wait` that were not final: the job waits for them instead of completing. */
  readonly awaitedChildren: Dependency[] = [];

  constructor(
    readonly job: JobRecord,
    readonly startedAt: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.settle({ ok: false, error: reason }); // ends the wait for a handler that ignores its signal
  }

  /**
   * Waits for the handler's promise (`outcome`), then calls `done` once: with its value or error, or with the
   * abort reason as soon as the job is aborted (also when it was aborted before). `timer` (the timeout) is
   * cleared then.
   */
  wait(
    outcome: PromiseLike<unknown>,
    timer: NodeJS.Timeout | undefined,
    done: (r: ExecutionResult) => void,
  ): void {
    this.waiting = done;
    this.timer = timer;
    outcome.then(
      (value) => {
        this.inHandler = false;
        this.settle({ ok: true, value });
      },
      (error: unknown) => {
        this.inHandler = false;
        this.settle({ ok: false, error });
      },
    );
    if (this.aborted) this.settle({ ok: false, error: this.abortReason });
  }

  /** Ends the wait (once): an aborted job's result is its abort reason, whatever the handler returned. */
  private settle(result: ExecutionResult): void {
    const done = this.waiting;
    if (done === null) return;
    this.waiting = null;
    clearTimeout(this.timer);
    this.timer = undefined;
    done(this.aborted ? { ok: false, error: this.abortReason } : result);
  }

  /** The worker is done with this run: its outcome is handed off (or it was given back). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const waiters = this.onEnded;
    this.onEnded = null;
    if (waiters) for (const resolve of waiters) resolve();
  }

  /** Resolves once {@link end} was called (at once if it was). */
  done(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.onEnded ??= [];
      this.onEnded.push(resolve);
    });
  }
}

/** How a run ended. `error` is what the handler threw, or the abort reason that ended the wait. */
export type ExecutionResult = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Runs `running.job` with `task`'s handler. Never throws: every failure (bad stored payload, no handler,
 * schema, handler error, timeout, abort) comes back as `{ ok: false, error }`.
 */
export function execute(
  running: RunningJob,
  task: RegisteredTask | undefined,
  ctx: TaskContext,
  workerId: string,
): Promise<ExecutionResult> {
  return new Promise((resolve) => executeThen(running, task, ctx, workerId, resolve));
}

/**
 * {@link execute} with a callback: `done` is called once, synchronously when the handler returns a plain
 * value or throws (no promise, no async frame: the common no-op and CPU-bound job allocates nothing here),
 * else when its promise settles or the job is aborted. `done` must not throw.
 */
export function executeThen(
  running: RunningJob,
  task: RegisteredTask | undefined,
  ctx: TaskContext,
  workerId: string,
  done: (result: ExecutionResult) => void,
): void {
  const { job } = running;
  if (job.dataError) {
    done({ ok: false, error: new InvalidPayloadError(job.dataError) });
    return;
  }
  const run = task?.definition.run;
  if (!run) {
    done({ ok: false, error: new NoHandlerError(job.task, workerId) });
    return;
  }
  if (!task.definition.schema) {
    call(running, run, job.payload, ctx, done);
    return;
  }
  // With a schema the handler starts after the (possibly async) validation.
  checkedPayload(job, task).then(
    (payload) => call(running, run, payload, ctx, done),
    (error: unknown) => done({ ok: false, error }),
  );
}

/** Calls the handler (the timeout armed first) and hands its outcome to `done`. */
function call(
  running: RunningJob,
  run: NonNullable<TaskDefinition<unknown, unknown>["run"]>,
  payload: unknown,
  ctx: TaskContext,
  done: (result: ExecutionResult) => void,
): void {
  const timeoutMs = running.job.timeoutMs;
  const timer =
    timeoutMs === null ? undefined : setTimeout(() => running.abort(new TimeoutError(timeoutMs)), timeoutMs);
  running.inHandler = true;
  let outcome: unknown;
  try {
    outcome = run(payload, ctx);
  } catch (error) {
    running.inHandler = false;
    clearTimeout(timer);
    done({ ok: false, error });
    return;
  }
  if (isThenable(outcome)) {
    running.wait(outcome, timer, done);
    return;
  }
  running.inHandler = false;
  clearTimeout(timer);
  // Aborted while finishing (a timeout at the last moment): the abort decides, not the late value.
  done(running.aborted ? { ok: false, error: running.abortReason } : { ok: true, value: outcome });
}

/** The stored payload as the handler receives it: checked (and transformed) by the task's schema. */
export async function checkedPayload(job: JobRecord, task: RegisteredTask): Promise<unknown> {
  if (job.dataError) throw new InvalidPayloadError(job.dataError);
  if (!task.definition.schema) return job.payload;
  try {
    return await validateWithSchema(task.definition.schema, job.payload, "payload");
  } catch (error) {
    throw new InvalidPayloadError(`stored payload fails the task schema: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Where a context's calls go: the worker's batched store writes, or the inline runner's events and logs. */
export interface ContextSinks {
  events: SluiceEventEmitter;
  maxPayloadBytes: number;
  /** Stores progress, already size-checked and serialised (`text`). */
  saveProgress(job: JobRecord, text: string): Promise<void>;
  log(job: JobRecord, message: string, at: number): Promise<void>;
  heartbeat(job: JobRecord): Promise<void>;
  /** Enqueues children of `parent` in one transaction (ids already given); results in input order. */
  enqueue(steps: readonly FlowStep[], parent: JobRecord): Promise<EnqueuedStep[]>;
  /** The flow view of a job (null when it no longer exists). */
  flow(id: string): Promise<FlowView | null>;
  /** False where a job cannot wait for its children (Task.runNow: nothing is stored). */
  readonly canWait: boolean;
}

/** The `ctx` a handler receives for `running`. */
export function createContext(running: RunningJob, sinks: ContextSinks): TaskContext {
  return new JobContext(running, sinks);
}

/**
 * A handler's `ctx`. Its methods are made (bound to this job) on first read and kept, so a handler may
 * still take them apart (`const { progress } = ctx`) while the many jobs that never call them cost no
 * closure each. The sinks are the runner's, shared by all its jobs.
 */
class JobContext implements TaskContext {
  readonly job: JobRecord;
  readonly id: string;
  readonly attempt: number;
  readonly #running: RunningJob;
  readonly #sinks: ContextSinks;
  #progress: TaskContext["progress"] | undefined;
  #log: TaskContext["log"] | undefined;
  #heartbeat: TaskContext["heartbeat"] | undefined;
  #enqueue: TaskContext["enqueue"] | undefined;
  #dependencies: TaskContext["dependencies"] | undefined;
  #children: TaskContext["children"] | undefined;

  constructor(running: RunningJob, sinks: ContextSinks) {
    this.job = running.job;
    this.id = running.job.id;
    this.attempt = running.job.attempt;
    this.#running = running;
    this.#sinks = sinks;
  }

  get signal(): AbortSignal {
    return this.#running.signal;
  }

  get progress(): TaskContext["progress"] {
    this.#progress ??= (value: Json) => saveProgress(this.#running.job, this.#sinks, value);
    return this.#progress;
  }

  get log(): TaskContext["log"] {
    this.#log ??= (message: string) =>
      this.#sinks.log(this.#running.job, String(message).slice(0, MAX_LOG_LINE), Date.now());
    return this.#log;
  }

  get heartbeat(): TaskContext["heartbeat"] {
    this.#heartbeat ??= () => this.#sinks.heartbeat(this.#running.job);
    return this.#heartbeat;
  }

  get enqueue(): TaskContext["enqueue"] {
    this.#enqueue ??= ((first: string | readonly FlowStep[], second?: unknown, third?: unknown) =>
      enqueueChildren(this.#running, this.#sinks, first, second, third)) as TaskContext["enqueue"];
    return this.#enqueue;
  }

  get dependencies(): TaskContext["dependencies"] {
    this.#dependencies ??= async () => {
      const flow = await this.#sinks.flow(this.#running.job.id);
      return (flow?.dependencies ?? []).filter(
        (d) => !(d.onFailure === "ignore" && d.state !== "completed" && d.resolved),
      );
    };
    return this.#dependencies;
  }

  get children(): TaskContext["children"] {
    this.#children ??= async () => (await this.#sinks.flow(this.#running.job.id))?.children ?? [];
    return this.#children;
  }
}

/** `ctx.progress`: size-checked and serialised here, announced, then stored. */
async function saveProgress(job: JobRecord, sinks: ContextSinks, value: Json): Promise<void> {
  const text = serializePayload(value, sinks.maxPayloadBytes, "progress");
  if (sinks.events.wants("progress")) {
    sinks.events.emit("progress", {
      jobId: job.id,
      queue: job.queue,
      task: job.task,
      at: Date.now(),
      attempt: job.attempt,
      progress: value,
    });
  }
  await sinks.saveProgress(job, text);
}

/** `ctx.enqueue`: one child `(task, payload, options?)`, or steps `([…], { wait?, onFailure? })`. */
async function enqueueChildren(
  running: RunningJob,
  sinks: ContextSinks,
  first: string | readonly FlowStep[],
  second?: unknown,
  third?: unknown,
): Promise<{ id: string; created: boolean } | EnqueuedStep[]> {
  const { job } = running;
  if (typeof first === "string") {
    const step: FlowStep = {
      task: first,
      payload: second,
      ...(third ? { options: third as JobOptions } : {}),
    };
    const [result] = await sinks.enqueue([withChildId(running, step)], job);
    return { id: (result as EnqueuedStep).id, created: (result as EnqueuedStep).created };
  }
  if (!Array.isArray(first)) {
    throw new ValidationError(
      "INVALID_OPTION",
      "ctx.enqueue takes (task, payload, options?) or ([{ task, payload, options? }, …], { wait?, onFailure? })",
      { field: "ctx.enqueue" },
    );
  }
  const options = childOptions(second);
  if (options.wait && !sinks.canWait) {
    throw new ValidationError(
      "INVALID_OPTION",
      "ctx.enqueue(…, { wait: true }) needs a worker: a job run with runNow() is not stored, so it cannot wait",
      { field: "wait" },
    );
  }
  const results = await sinks.enqueue(
    first.map((step) => withChildId(running, step)),
    job,
  );
  if (options.wait) {
    for (const result of results) {
      const listed = running.awaitedChildren.some((d) => d.id === result.id);
      if (!listed && !FINAL_STATES.includes(result.state)) {
        running.awaitedChildren.push({ id: result.id, onFailure: options.onFailure });
      }
    }
  }
  return results;
}

const FINAL_STATES: readonly string[] = ["completed", "dead", "cancelled"];

/** A child step with its default id (`<parent id>.<n>`) unless it names its own `jobId`. */
function withChildId(running: RunningJob, step: FlowStep): FlowStep {
  running.childCount += 1;
  if (step === null || typeof step !== "object") return step;
  const options = step.options;
  if (options !== null && typeof options === "object" && options.jobId !== undefined) return step;
  return { ...step, options: { ...(options ?? {}), jobId: `${running.job.id}.${running.childCount}` } };
}

function childOptions(value: unknown): { wait: boolean; onFailure: DependencyPolicy } {
  if (value === undefined) return { wait: false, onFailure: "fail" };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError("INVALID_OPTION", "ctx.enqueue's second argument is { wait?, onFailure? }", {
      field: "options",
    });
  }
  const { wait, onFailure, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${unknown} is not a ctx.enqueue option: it takes { wait?, onFailure? } (job options go on each step)`,
      { field: unknown },
    );
  }
  if (wait !== undefined && typeof wait !== "boolean") {
    throw new ValidationError("INVALID_OPTION", "wait must be true or false", { field: "wait" });
  }
  if (onFailure !== undefined && !(DEPENDENCY_POLICIES as readonly unknown[]).includes(onFailure)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `onFailure must be one of ${DEPENDENCY_POLICIES.join(", ")}`,
      {
        field: "onFailure",
      },
    );
  }
  return { wait: wait === true, onFailure: (onFailure as DependencyPolicy | undefined) ?? "fail" };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
