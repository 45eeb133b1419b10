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
import type { FlowStep, RegisteredTask, TaskContext } from "../core/task.js";
import type { SluiceEventEmitter } from "./events.js";

/** Longest log line a handler can store; the rest is cut. */
const MAX_LOG_LINE = 10_000;

/**
 * A job being run. Its AbortController is created only when the handler reads `ctx.signal` (most never
 * do, and one per job is measurable at tens of thousands of jobs/s); aborting also interrupts the wait for
 * the handler through `interrupt`, so an abort never depends on the handler reading its signal.
 */
export class RunningJob {
  private controller: AbortController | null = null;
  aborted = false;
  abortReason: unknown = undefined;
  /** True from the call of the handler until the promise it returned settles (user code still running). */
  inHandler = false;
  /** Rejects the executor's wait for the handler's promise; set while it waits. */
  private interrupt: ((reason: unknown) => void) | null = null;
  /** Settles when the executor and the outcome hand-off are done (set by the worker). */
  done: Promise<void> = Promise.resolve();
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
    this.interrupt?.(reason);
  }

  /** Waits for the handler's promise, or rejects as soon as the job is aborted. */
  waitFor(outcome: PromiseLike<unknown>): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.aborted) reject(this.abortReason);
      this.interrupt = reject;
      outcome.then(resolve, reject);
    });
  }
}

/** How a run ended. `error` is what the handler threw, or the abort reason that ended the wait. */
export type ExecutionResult = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Runs `running.job` with `task`'s handler. Never throws: every failure (bad stored payload, no handler,
 * schema, handler error, timeout, abort) comes back as `{ ok: false, error }`.
 */
export async function execute(
  running: RunningJob,
  task: RegisteredTask | undefined,
  ctx: TaskContext,
  workerId: string,
): Promise<ExecutionResult> {
  const { job } = running;
  let timer: NodeJS.Timeout | undefined;
  try {
    if (job.dataError) throw new InvalidPayloadError(job.dataError);
    const run = task?.definition.run;
    if (!run) throw new NoHandlerError(job.task, workerId);
    // No await without a schema: the handler starts in this turn of the event loop, as it always did.
    const payload = task.definition.schema ? await checkedPayload(job, task) : job.payload;
    const timeoutMs = job.timeoutMs;
    if (timeoutMs !== null) timer = setTimeout(() => running.abort(new TimeoutError(timeoutMs)), timeoutMs);
    running.inHandler = true;
    let outcome: unknown;
    try {
      outcome = run(payload, ctx);
    } finally {
      running.inHandler = isThenable(outcome);
    }
    if (isThenable(outcome)) {
      const leave = () => {
        running.inHandler = false;
      };
      outcome.then(leave, leave);
    }
    const value = isThenable(outcome) ? await running.waitFor(outcome) : outcome;
    // Aborted while finishing (a timeout at the last moment): the abort decides, not the late value.
    if (running.aborted) return { ok: false, error: running.abortReason };
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
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
  const { job } = running;
  return {
    job,
    id: job.id,
    attempt: job.attempt,
    get signal() {
      return running.signal;
    },
    progress: async (value: Json) => {
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
    },
    log: (message: string) => sinks.log(job, String(message).slice(0, MAX_LOG_LINE), Date.now()),
    heartbeat: () => sinks.heartbeat(job),
    enqueue: (async (first: string | readonly FlowStep[], second?: unknown, third?: unknown) => {
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
    }) as TaskContext["enqueue"],
    dependencies: async () => {
      const flow = await sinks.flow(job.id);
      return (flow?.dependencies ?? []).filter(
        (d) => !(d.onFailure === "ignore" && d.state !== "completed" && d.resolved),
      );
    },
    children: async () => (await sinks.flow(job.id))?.children ?? [],
  };
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
