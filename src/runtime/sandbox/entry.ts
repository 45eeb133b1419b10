/**
 * The script a sandbox runs (a worker thread, or a child process under plain node): it loads the handler,
 * says `ready`, then runs one job per `run` message with a `ctx` whose calls go to the worker. It imports
 * nothing heavy: the store, the client and the runtime stay in the worker (except in the config file's
 * mode, where the tasks module needs a Sluice instance to define its tasks on; that one never connects).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { JobRecord } from "../../core/job.js";
import type { HandlerSource, TaskContext } from "../../core/task.js";
import {
  FORWARDED,
  type ForwardedMethod,
  type FromSandbox,
  reviveError,
  type SandboxBoot,
  serializeError,
  type ToSandbox,
} from "./protocol.js";

type Handler = (payload: unknown, ctx: TaskContext) => unknown;

const send: (message: FromSandbox) => void = parentPort
  ? (message) => parentPort?.postMessage(message)
  : (message) => process.send?.(message);

const boot = (parentPort ? workerData : JSON.parse(process.argv[2] ?? "{}")) as SandboxBoot;

let controller: AbortController | null = null;
let nextCall = 1;
const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();

function call(method: ForwardedMethod, args: unknown[]): Promise<unknown> {
  const id = nextCall++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    try {
      send({ t: "call", id, method, args });
    } catch (error) {
      pending.delete(id);
      reject(error); // not cloneable (a function in an enqueue's options…)
    }
  });
}

function contextFor(job: JobRecord, signal: AbortSignal): TaskContext {
  const ctx: Record<string, unknown> = { job, id: job.id, attempt: job.attempt, signal };
  for (const method of FORWARDED) ctx[method] = (...args: unknown[]) => call(method, args);
  return ctx as unknown as TaskContext;
}

async function run(handler: Handler, job: JobRecord, payload: unknown): Promise<void> {
  controller = new AbortController();
  let message: FromSandbox;
  try {
    const value = await handler(payload, contextFor(job, controller.signal));
    message = { t: "done", ok: true, value };
  } catch (error) {
    message = { t: "done", ok: false, error: serializeError(error) };
  }
  controller = null;
  try {
    send(message);
  } catch (error) {
    // A result that cannot be cloned (a function, a class instance with one): the attempt fails saying so.
    send({ t: "done", ok: false, error: serializeError(error) });
  }
}

async function loadHandler(source: HandlerSource): Promise<Handler> {
  if ("module" in source) {
    const mod = (await import(source.module)) as Record<string, unknown>;
    const handler = mod[source.export];
    if (typeof handler !== "function") {
      throw new TypeError(
        `sandbox.module ${source.module} has no export "${source.export}" that is a function ` +
          `(found ${handler === undefined ? "nothing" : typeof handler}); export the handler (payload, ctx) => result`,
      );
    }
    return handler as Handler;
  }
  // The worker config file's mode: define the tasks on an instance that never connects, take the task's run.
  const { Sluice } = await import("../../client/sluice.js");
  const { silentLogger } = await import("../../core/logger.js");
  const sluice = new Sluice({ url: "sqlite::memory:", logger: silentLogger() });
  const mod = (await import(source.tasksModule)) as { default?: unknown };
  if (typeof mod.default !== "function")
    throw new TypeError(`tasks module ${source.tasksModule} has no default export`);
  await (mod.default as (s: unknown) => unknown)(sluice);
  const run = sluice.tasks.get(source.task)?.definition.run;
  if (typeof run !== "function") {
    throw new TypeError(`tasks module ${source.tasksModule} defines no run() for task "${source.task}"`);
  }
  return run as Handler;
}

function onMessage(message: ToSandbox, handler: Handler): void {
  if (message.t === "run") void run(handler, message.job, message.payload);
  else if (message.t === "abort") controller?.abort(reviveError(message.reason));
  else {
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    if (message.ok) waiting.resolve(message.value);
    else waiting.reject(reviveError(message.error));
  }
}

process.on("uncaughtException", (error) => {
  try {
    send({ t: "fatal", error: serializeError(error) });
  } finally {
    process.exit(70);
  }
});

try {
  const handler = await loadHandler(boot.source);
  const listen = (message: unknown) => onMessage(message as ToSandbox, handler);
  if (parentPort) parentPort.on("message", listen);
  else process.on("message", listen);
  // A child process ends when the worker goes away (its IPC channel closes), never orphaned.
  if (!parentPort) process.on("disconnect", () => process.exit(0));
  send({ t: "ready" });
} catch (error) {
  send({ t: "load-failed", error: serializeError(error) });
}
