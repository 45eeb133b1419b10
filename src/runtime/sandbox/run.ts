/**
 * The executor of a sandboxed task (executor.ts `execute` for a handler that runs elsewhere): checks the
 * payload here, runs the job in a sandbox of the task's pool, and supervises it. An abort (timeout, cancel,
 * lost lease, shutdown) reaches the handler's `ctx.signal`; a sandbox whose handler has not settled
 * {@link ABORT_GRACE_MS} later is killed, so a busy loop or an ignored signal never holds a slot. Unlike an
 * in-process handler, the attempt ends when the sandbox is settled or gone: the slot it frees is clean.
 */
import { formatDuration } from "../../core/duration.js";
import { SandboxCrashedError, SandboxTimeoutError, TimeoutError } from "../../core/errors.js";
import type { RegisteredTask, ResolvedSandbox, TaskContext } from "../../core/task.js";
import { checkedPayload, type ExecutionResult, type RunningJob } from "../executor.js";
import type { SandboxPools } from "./pool.js";
import type { Sandbox } from "./sandbox.js";

/** How long a handler has to settle after its signal aborts before its sandbox is killed. */
export const ABORT_GRACE_MS = 1_000;

/** Runs `running` in a sandbox of `task` (whose `sandbox` is set). Never throws. */
export async function executeSandboxed(
  running: RunningJob,
  task: RegisteredTask,
  config: ResolvedSandbox,
  ctx: TaskContext,
  pools: SandboxPools,
): Promise<ExecutionResult> {
  let sandbox: Sandbox | null = null;
  try {
    const payload = await checkedPayload(running.job, task);
    sandbox = await pools.acquire(task.name, config);
    if (running.aborted) return { ok: false, error: running.abortReason };
    running.inHandler = true;
    return await supervise(sandbox, running, task.name, payload, ctx);
  } catch (error) {
    return { ok: false, error };
  } finally {
    running.inHandler = false;
    if (sandbox) pools.release(task.name, config, sandbox);
  }
}

async function supervise(
  sandbox: Sandbox,
  running: RunningJob,
  task: string,
  payload: unknown,
  ctx: TaskContext,
): Promise<ExecutionResult> {
  const { job } = running;
  let timedOut: TimeoutError | null = null;
  let grace: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stop = (reason: unknown) => {
    sandbox.abort(reason);
    grace ??= setTimeout(() => void sandbox.kill(), ABORT_GRACE_MS);
  };
  const onAbort = () => stop(running.abortReason);
  running.signal.addEventListener("abort", onAbort, { once: true });
  const timeoutMs = job.timeoutMs;
  if (timeoutMs !== null) {
    timer = setTimeout(() => {
      timedOut = new TimeoutError(timeoutMs);
      stop(timedOut);
    }, timeoutMs);
  }
  const outcome = await sandbox.run(job, payload, ctx);
  clearTimeout(timer);
  clearTimeout(grace);
  running.signal.removeEventListener("abort", onAbort);
  const killedByUs = !outcome.ok && outcome.died && outcome.error === null;
  const diedByItself = !outcome.ok && outcome.died && outcome.error !== null;
  if (timedOut !== null && !running.aborted && !diedByItself) {
    // The timeout ended the attempt (the failure policy records outcome "timeout"), whatever the handler
    // returned after it: say whether the handler heard it or its sandbox had to be killed.
    const ms = timeoutMs as number;
    running.abort(killedByUs ? new SandboxTimeoutError(ms, formatDuration(ms)) : timedOut);
  }
  // Aborted (here or by the worker): the abort decides, not a late value (as for an in-process handler).
  if (running.aborted) return { ok: false, error: running.abortReason };
  if (outcome.ok) return outcome;
  return { ok: false, error: outcome.error ?? new SandboxCrashedError(task, "killed by the worker") };
}
