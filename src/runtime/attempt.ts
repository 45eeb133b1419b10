/**
 * One attempt of a job as every runner does it — the worker (worker.ts) and the inline runner
 * (inline-runner.ts): announce it, build the handler's context on the runner's outcome writer, run it
 * through the executor, and hand a success to the writer (wait for children, or complete). Failures stay
 * with each runner: the worker pauses queues and honours its lease, the inline runner collapses time.
 */
import type { JobRecord } from "../core/job.js";
import { serializeResult } from "../core/payload.js";
import type { RegisteredTask } from "../core/task.js";
import type { Store } from "../store/contract.js";
import { createContext, execute, type RunningJob } from "./executor.js";
import type { OutcomeWriter } from "./outcome-writer.js";
import type { SandboxPools } from "./sandbox/pool.js";
import { executeSandboxed } from "./sandbox/run.js";
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
  /** The worker's sandboxes: a task with `sandbox` runs in one (absent: every handler runs in process). */
  sandboxes?: SandboxPools;
}

/**
 * How the attempt ended: handed to the writer (`blocked`: waiting for its children; `completed`: queued
 * for the next batched write), or failed with `error` for the runner to decide.
 */
export type AttemptEnd =
  | { kind: "blocked"; written: Promise<void> }
  | { kind: "completed" }
  | { kind: "failed"; error: unknown };

/** Runs one attempt of `running` (its start already accepted by the store). */
export async function runAttempt(
  runner: AttemptRunner,
  running: RunningJob,
  task: RegisteredTask | undefined,
): Promise<AttemptEnd> {
  const { job } = running;
  const { host, writer, store } = runner;
  const events = host.events;
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
  const ctx = createContext(running, {
    events,
    maxPayloadBytes: host.maxPayloadBytes,
    saveProgress: (j, text) => writer.saveProgress(j, text, task?.definition.progressEvents !== false),
    log: (j, message, at) => writer.log(j, message, at),
    heartbeat: (j) => runner.heartbeat(j),
    enqueue: (steps, parent) => host.enqueueChildren(steps, parent),
    flow: (id) => store.getFlow(id),
    canWait: true,
  });
  const { sandboxes } = runner;
  const sandbox = task?.sandbox;
  const run = () =>
    sandbox && sandboxes
      ? executeSandboxed(running, task, sandbox, ctx, sandboxes)
      : execute(running, task, ctx, runner.id);
  const result = await (runner.around ? runner.around(run) : run());
  if (!result.ok) return { kind: "failed", error: result.error };
  if (running.awaitedChildren.length > 0) {
    // It enqueued children with `wait`: it runs again once they are final (its result now is not kept).
    return { kind: "blocked", written: writer.block(job, running.awaitedChildren) };
  }
  try {
    // Queued for the next batch; the slot frees now, so the next claim overlaps the write.
    writer.complete(job, running.startedAt, serializeResult(result.value));
    return { kind: "completed" };
  } catch (unstorable) {
    return { kind: "failed", error: unstorable }; // a result that is not JSON or too large fails the attempt
  }
}
