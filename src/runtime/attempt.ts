/**
 * One attempt of a job as every runner does it — the worker (worker.ts) and the inline runner
 * (inline-runner.ts): announce it, build the handler's context on the runner's outcome writer, run it
 * through the executor, and hand a success to the writer (wait for children, or complete). Failures stay
 * with each runner: the worker pauses queues and honours its lease, the inline runner collapses time.
 */
import type { JobRecord } from "../core/job.js";
import { serializeResult } from "../core/payload.js";
import type { RegisteredTask, ResolvedSandbox, TaskContext } from "../core/task.js";
import type { Store } from "../store/contract.js";
import {
  type ContextSinks,
  createContext,
  type ExecutionResult,
  execute,
  executeThen,
  type RunningJob,
} from "./executor.js";
import type { OutcomeWriter } from "./outcome-writer.js";
import type { SandboxPools } from "./sandbox/pool.js";
import type { WorkerHost } from "./worker-options.js";

/** What the runner supplies to an attempt. */
export interface AttemptRunner {
  id: string;
  host: WorkerHost;
  store: Store;
  writer: OutcomeWriter;
  /** Extends the job's lease now (`ctx.heartbeat`); the inline runner has none to keep. */
  heartbeat(job: JobRecord): Promise<void>;
  /** Runs the executor (the inline runner wraps it to know when a handler is running). */
  around?: <T>(run: () => Promise<T>) => Promise<T>;
  /**
   * The worker's sandboxes: a task with `sandbox` runs in one (absent: every handler runs in process). A
   * promise: the sandbox code (child processes, worker threads) is loaded when a sandboxed task first runs.
   */
  sandboxes?: () => Promise<SandboxPools>;
}

/**
 * How the attempt ended: handed to the writer (`blocked`: waiting for its children; `completed`: queued
 * for the next batched write), or failed with `error` for the runner to decide.
 */
export type AttemptEnd =
  | { kind: "blocked"; written: Promise<void> }
  | { kind: "completed" }
  | { kind: "failed"; error: unknown };

const COMPLETED: AttemptEnd = Object.freeze({ kind: "completed" });

/** The context sinks of each runner: made once per runner (a worker's serve all its jobs). */
const sinksByRunner = new WeakMap<AttemptRunner, ContextSinks>();

function sinksOf(runner: AttemptRunner): ContextSinks {
  let sinks = sinksByRunner.get(runner);
  if (!sinks) {
    const { host, writer, store } = runner;
    sinks = {
      events: host.events,
      maxPayloadBytes: host.maxPayloadBytes,
      saveProgress: (j, text) =>
        writer.saveProgress(j, text, host.tasks.get(j.task)?.definition.progressEvents !== false),
      log: (j, message, at) => writer.log(j, message, at),
      heartbeat: (j) => runner.heartbeat(j),
      enqueue: (steps, parent) => host.enqueueChildren(steps, parent),
      flow: (id) => store.getFlow(id),
      canWait: true,
    };
    sinksByRunner.set(runner, sinks);
  }
  return sinks;
}

/** Runs one attempt of `running` (its start already accepted by the store). */
export function runAttempt(
  runner: AttemptRunner,
  running: RunningJob,
  task: RegisteredTask | undefined,
): Promise<AttemptEnd> {
  return new Promise((resolve) => startAttempt(runner, running, task, resolve));
}

/**
 * {@link runAttempt} with a callback, called once. A handler that returns a plain value (or throws) is run,
 * and its outcome queued for the writer, before this returns: no promise or async frame per job on that
 * path. `done` must not throw.
 */
export function startAttempt(
  runner: AttemptRunner,
  running: RunningJob,
  task: RegisteredTask | undefined,
  done: (end: AttemptEnd) => void,
): void {
  const { job } = running;
  const events = runner.host.events;
  if (events.wants("active")) {
    events.emit("active", {
      jobId: job.id,
      queue: job.queue,
      task: job.task,
      at: running.startedAt,
      attempt: job.attempt,
      workerId: runner.id,
    });
  }
  const ctx = createContext(running, sinksOf(runner));
  const finish = (result: ExecutionResult) => done(handOff(runner.writer, running, result));
  const { sandboxes } = runner;
  const sandbox = task?.sandbox;
  if (!runner.around && !(sandbox && sandboxes)) {
    executeThen(running, task, ctx, runner.id, finish);
    return;
  }
  const run = () =>
    sandbox && sandboxes
      ? inSandbox(running, task as RegisteredTask, sandbox, ctx, sandboxes)
      : execute(running, task, ctx, runner.id);
  (runner.around ? runner.around(run) : run()).then(finish, (error: unknown) => finish({ ok: false, error }));
}

/** Runs a sandboxed task's job, loading the sandbox code on first use. Never throws (as executeSandboxed). */
async function inSandbox(
  running: RunningJob,
  task: RegisteredTask,
  sandbox: ResolvedSandbox,
  ctx: TaskContext,
  sandboxes: () => Promise<SandboxPools>,
): Promise<ExecutionResult> {
  try {
    const [{ executeSandboxed }, pools] = await Promise.all([import("./sandbox/run.js"), sandboxes()]);
    return await executeSandboxed(running, task, sandbox, ctx, pools);
  } catch (error) {
    return { ok: false, error };
  }
}

/** A run's result handed to the writer: wait for children, or complete; else the failure for the runner. */
function handOff(writer: OutcomeWriter, running: RunningJob, result: ExecutionResult): AttemptEnd {
  if (!result.ok) return { kind: "failed", error: result.error };
  if (running.awaitedChildren.length > 0) {
    // It enqueued children with `wait`: it runs again once they are final (its result now is not kept).
    return { kind: "blocked", written: writer.block(running.job, running.awaitedChildren) };
  }
  try {
    // Queued for the next batch; the slot frees now, so the next claim overlaps the write.
    writer.complete(running.job, running.startedAt, serializeResult(result.value));
    return COMPLETED;
  } catch (unstorable) {
    return { kind: "failed", error: unstorable }; // a result that is not JSON or too large fails the attempt
  }
}
