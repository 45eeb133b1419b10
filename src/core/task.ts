/**
 * Task definitions as the runtime sees them: what a job of a given name is, how to run it, and what its
 * handler receives. Pure types; the public `Task` object that enqueues lives in `client/task.ts`.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { BackoffOption } from "./backoff.js";
import type { ErrorMatcher } from "./errors.js";
import type { ChildOptions, EnqueuedStep, FlowEdge, FlowJob } from "./flows.js";
import type { JobRecord, Json } from "./job.js";
import type { JobOptions } from "./options.js";

/** One job of a flow (`sluice.chain`, `sluice.batch`, `ctx.enqueue([...])`): its task, payload and options. */
export interface FlowStep<P = unknown> {
  /** A task name, or the `Task` object `sluice.task()` returned. */
  task: string | { readonly name: string };
  payload: P;
  options?: JobOptions;
}

/** What a handler receives besides its payload. */
export interface TaskContext {
  /** The job as claimed (read-only snapshot). */
  readonly job: Readonly<JobRecord>;
  readonly id: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  /**
   * Aborts when the job times out, is cancelled, loses its lease, or the worker's shutdown grace ends.
   * `signal.reason` tells which (TimeoutError, CancelledError, …). Pass it to fetch(), child processes, etc.
   */
  readonly signal: AbortSignal;
  /** Stores progress (any JSON, e.g. 0.5 or { done: 3, total: 10 }) and emits a `progress` event. */
  progress(value: Json): Promise<void>;
  /** Appends a line to the job's log (shown by `sluice jobs show`). */
  log(message: string): Promise<void>;
  /** Extends the lease now; the worker also does this on its own while the handler runs. */
  heartbeat(): Promise<void>;
  /**
   * Enqueues a child job (fan-out) through the same Sluice instance. Children of a job have `parentId` set
   * to it (cancelling the job cancels its unfinished children) and join its batch, if it has one. A child
   * without `jobId` gets the id `<this job's id>.<n>` (n counts this run's children from 1), so a retry or a
   * second run of this job gets the same children back instead of new ones.
   */
  enqueue(task: string, payload: unknown, options?: JobOptions): Promise<{ id: string; created: boolean }>;
  /**
   * Enqueues several children in one transaction; with `{ wait: true }` this job waits for them and runs
   * again once they are final (core/flows.ts ChildOptions):
   *
   * ```ts
   * const done = await ctx.children();
   * if (done.length === 0) {
   *   await ctx.enqueue(chunks.map((c) => ({ task: "embed", payload: c })), { wait: true });
   *   return; // runs again when every chunk is embedded
   * }
   * return { embedded: done.filter((c) => c.state === "completed").length };
   * ```
   */
  enqueue(steps: readonly FlowStep[], options?: ChildOptions): Promise<EnqueuedStep[]>;
  /**
   * The jobs this job depends on (`dependsOn`, a chain's previous step), with their state, result and error:
   * a chain's step reads the previous step's result here. Dependencies with policy `ignore` that did not
   * complete are left out.
   */
  dependencies(): Promise<FlowEdge[]>;
  /** The children this job enqueued (in enqueue order), with their state, result and error. */
  children(): Promise<FlowJob[]>;
}

/** A task definition: defaults for its jobs, and the handler on processes that run them. */
export interface TaskDefinition<P = unknown, R = unknown>
  extends Omit<JobOptions, "jobId" | "uniqueKey" | "runAt" | "delayMs" | "dependsOn" | "limitKey"> {
  /**
   * The limit key of the task's jobs (per-key concurrency, rate and holds: `sluice.limits`): a fixed key,
   * or a function of the validated payload (`(doc) => doc.tenantId`) run at enqueue. A function that throws
   * or returns something other than a string (or null/undefined for no key) refuses the enqueue
   * (INVALID_OPTION). A job's own `limitKey` option wins.
   */
  limitKey?: string | ((payload: P) => string | null | undefined);
  /** Validates (and may transform) the payload at enqueue and again before each run. Any Standard Schema. */
  schema?: StandardSchemaV1<unknown, P>;
  /** Only these errors are retried; any other error sends the job to `dead`. Default: retry every error. */
  retryOn?: readonly ErrorMatcher[];
  /** These errors send the job straight to `dead`, whatever attempts remain. */
  discardOn?: readonly ErrorMatcher[];
  /**
   * False: `ctx.progress` stores the progress but writes no fleet-wide `progress` event (for handlers that
   * report progress very often; in-process `progress` events are still emitted). Default true.
   */
  progressEvents?: boolean;
  /** The handler. Omit it to declare a task that this process only enqueues. */
  run?: (payload: P, ctx: TaskContext) => Promise<R> | R;
  /**
   * Runs the handler in a worker thread or a child process instead of the worker's event loop (README
   * "Sandboxed handlers"): an out-of-memory, a crash or a busy loop past `timeoutMs` kills the sandbox, not
   * the worker. The handler comes from `sandbox.module` (functions cannot cross threads), so `run` is not
   * given with it.
   */
  sandbox?: SandboxOptions;
}

/**
 * Where and how a sandboxed handler runs. The module exports the handler `(payload, ctx) => result`; its
 * `ctx` works as in the worker (progress, log, heartbeat, enqueue, signal, dependencies, children).
 *
 * ```ts
 * sluice.task("parse-pdf", {
 *   queue: "pdf",
 *   timeoutMs: 15 * 60_000,
 *   sandbox: { kind: "process", module: new URL("./parse-pdf.js", import.meta.url), memoryMb: 512, recycleAfter: 100 },
 * });
 * ```
 */
export interface SandboxOptions {
  /** `thread`: a worker thread (cheap to start; a native crash still takes the process). `process`: a child process. */
  kind: "thread" | "process";
  /** The handler's module: a file URL (`new URL("./h.js", import.meta.url)`) or an absolute path. */
  module: string | URL;
  /** The export that is the handler. Default `default`. */
  export?: string;
  /** Heap limit of the sandbox in MB (thread: resourceLimits; process: --max-old-space-size). Default: V8's. */
  memoryMb?: number;
  /** Replace a sandbox after it ran this many jobs (leaky libraries). Default: never. */
  recycleAfter?: number;
}

/** Where a sandbox finds its handler: an export of a module, or a task of a worker's tasks module. */
export type HandlerSource =
  | { module: string; export: string }
  /** `sandbox:` in the worker config file: the task's own `run`, from the tasks module loaded in the sandbox. */
  | { tasksModule: string; task: string };

/** A task's validated sandbox (`module` as a file URL). */
export interface ResolvedSandbox {
  kind: "thread" | "process";
  source: HandlerSource;
  memoryMb: number | null;
  recycleAfter: number | null;
}

/** A task as a Sluice instance holds it: the definition with its validated defaults. */
export interface RegisteredTask {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: the registry holds tasks of every payload and result type
  definition: TaskDefinition<any, any>;
  /** Job option defaults taken from the definition (already validated). */
  defaults: JobOptions;
  /** The definition's backoff (may be a function, which cannot be stored with the job). */
  backoff: BackoffOption | null;
  /** The definition's limit key: fixed, computed from the (validated) payload at enqueue, or none. */
  limitKey: string | ((payload: unknown) => string | null | undefined) | null;
  /** Where the worker runs the handler: in a sandbox, or (null / absent) on its own event loop. */
  sandbox?: ResolvedSandbox | null;
}
