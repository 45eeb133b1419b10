/**
 * The messages between a worker and one of its sandboxes (a worker thread's port, or a child process's
 * IPC channel with `serialization: "advanced"`: both carry structured clones). One job runs in a sandbox at
 * a time; `ctx` calls made inside are forwarded as `call` and answered with `reply`.
 *
 *   worker → sandbox   run { job, payload } · abort { reason } · reply { id, ok, value | error }
 *   sandbox → worker   ready · load-failed { error } · call { id, method, args } · done { ok, value | error }
 *                      · fatal { error } (an uncaught exception; the sandbox exits)
 */
import * as errors from "../../core/errors.js";
import type { JobRecord } from "../../core/job.js";
import type { HandlerSource } from "../../core/task.js";

/** What a sandbox is started with (workerData of a thread, argv[2] of a child process). */
export interface SandboxBoot {
  source: HandlerSource;
}

/** The `ctx` methods a sandboxed handler calls through the worker. */
export const FORWARDED = ["progress", "log", "heartbeat", "enqueue", "dependencies", "children"] as const;
export type ForwardedMethod = (typeof FORWARDED)[number];

export type ToSandbox =
  | { t: "run"; job: JobRecord; payload: unknown }
  | { t: "abort"; reason: SerializedError }
  | { t: "reply"; id: number; ok: true; value: unknown }
  | { t: "reply"; id: number; ok: false; error: SerializedError };

export type FromSandbox =
  | { t: "ready" }
  | { t: "load-failed"; error: SerializedError }
  | { t: "call"; id: number; method: ForwardedMethod; args: unknown[] }
  | { t: "done"; ok: true; value: unknown }
  | { t: "done"; ok: false; error: SerializedError }
  | { t: "fatal"; error: SerializedError };

/** An error as it crosses: name, message, code, stack, and its own data fields (retryAfterMs, field…). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  props: Record<string, unknown>;
}

/** Serialises anything thrown; own fields that are plain data keep their values (others are dropped). */
export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) {
    const described = errors.describeError(error);
    return { name: described.name, message: described.message, props: {} };
  }
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (key === "name" || key === "message" || key === "stack" || key === "cause") continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    if (value === null || ["string", "number", "boolean"].includes(typeof value)) props[key] = value;
    else {
      try {
        props[key] = JSON.parse(JSON.stringify(value)) as unknown;
      } catch {
        // not data: left out
      }
    }
  }
  return { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}), props };
}

/** Sluice's own error classes by name: revived as instances, so `instanceof` and the failure policy work. */
const KNOWN = new Map<string, { prototype: Error }>(
  Object.values(errors)
    .filter((v): v is typeof errors.SluiceError => typeof v === "function" && v.prototype instanceof Error)
    .map((cls) => [cls.name, cls]),
);

/**
 * Rebuilds a serialised error: an instance of the Sluice class of that name (RateLimitedError, DiscardError,
 * TimeoutError…), else an Error with the same name; message, stack, code and data fields as thrown. The
 * application's own classes cannot be rebuilt across the boundary: match them by name or code.
 */
export function reviveError(serialized: SerializedError): Error {
  const cls = KNOWN.get(serialized.name);
  const error = cls ? (Object.create(cls.prototype) as Error) : new Error(serialized.message);
  Object.defineProperty(error, "message", { value: serialized.message, writable: true, configurable: true });
  Object.defineProperty(error, "name", { value: serialized.name, writable: true, configurable: true });
  Object.defineProperty(error, "stack", {
    value: serialized.stack ?? `${serialized.name}: ${serialized.message}`,
    writable: true,
    configurable: true,
  });
  Object.assign(error, serialized.props);
  return error;
}
