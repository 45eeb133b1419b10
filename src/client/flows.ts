/**
 * Client side of flows (core/flows.ts): the order a call's jobs are written in (every dependency before its
 * dependent, cycles refused), and batch options. Pure functions; Sluice calls them before any write.
 */
import { DependencyCycleError, ValidationError } from "../core/errors.js";
import type { BatchEvent } from "../core/flows.js";
import type { JobOptions } from "../core/options.js";
import type { FlowStep } from "../core/task.js";
import type { NewJob } from "../store/contract.js";

/**
 * The jobs of one call in an order the store can write (a dependency on a job of the same call comes after
 * that job), and where each came from. Throws DependencyCycleError when they depend on each other in a
 * cycle (a job on itself included). Dependencies on jobs outside the call are the store's to check.
 */
export function writeOrder(jobs: readonly NewJob[]): number[] {
  const indexOf = new Map<string, number>();
  jobs.forEach((job, i) => {
    if (!indexOf.has(job.id)) indexOf.set(job.id, i);
  });
  const waitsOn = jobs.map((job) =>
    job.dependsOn.map((d) => indexOf.get(d.id)).filter((i): i is number => i !== undefined),
  );
  if (waitsOn.every((deps, i) => deps.every((d) => d < i))) return jobs.map((_, i) => i); // already in order
  const state = new Uint8Array(jobs.length); // 0 new, 1 on the path, 2 written
  const order: number[] = [];
  const visit = (start: number): void => {
    // Iterative depth-first search, so a 10,000-step chain does not overflow the stack.
    const stack: { node: number; next: number }[] = [{ node: start, next: 0 }];
    state[start] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { node: number; next: number };
      const deps = waitsOn[top.node] as number[];
      if (top.next < deps.length) {
        const dep = deps[top.next++] as number;
        if (state[dep] === 1) {
          const path = stack.map((f) => (jobs[f.node] as NewJob).id);
          const from = path.indexOf((jobs[dep] as NewJob).id);
          throw new DependencyCycleError([...path.slice(from), (jobs[dep] as NewJob).id].reverse());
        }
        if (state[dep] === 0) {
          state[dep] = 1;
          stack.push({ node: dep, next: 0 });
        }
      } else {
        state[top.node] = 2;
        order.push(top.node);
        stack.pop();
      }
    }
  };
  for (let i = 0; i < jobs.length; i++) if (state[i] === 0) visit(i);
  return order;
}

/** A batch callback: a task (name or Task), or `{ task, options }` for its job's options. */
export type BatchCallback =
  | string
  | { readonly name: string }
  | { task: string | { readonly name: string }; options?: JobOptions };

/** Options of `sluice.batch`. */
export interface BatchOptions {
  /** The batch's id (default: generated). Any string of 1 to 200 characters. */
  id?: string;
  /** Shown to operators (`sluice batches show`). */
  description?: string;
  /** JSON handed to every callback as `payload.data`. */
  data?: unknown;
  /** Runs once every member is final (completed, dead or cancelled). */
  onComplete?: BatchCallback;
  /** Runs once every member completed (never when one was dead or cancelled). */
  onSuccess?: BatchCallback;
  /** Runs once, when the first member goes dead. */
  onDeath?: BatchCallback;
}

const BATCH_OPTION_KEYS = ["id", "description", "data", "onComplete", "onSuccess", "onDeath"];
const CALLBACK_EVENTS: Record<"onComplete" | "onSuccess" | "onDeath", BatchEvent> = {
  onComplete: "complete",
  onSuccess: "success",
  onDeath: "death",
};

/** Checks a batch's options; returns its callbacks as (event, task, options). */
export function batchCallbacks(
  options: BatchOptions,
): { event: BatchEvent; task: string; options: JobOptions | undefined }[] {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new ValidationError("INVALID_OPTION", "batch options must be an object", { field: "options" });
  }
  for (const key of Object.keys(options)) {
    if (!BATCH_OPTION_KEYS.includes(key)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${key} is not a batch option; batches take ${BATCH_OPTION_KEYS.join(", ")}`,
        { field: `options.${key}` },
      );
    }
  }
  if (
    options.description !== undefined &&
    (typeof options.description !== "string" || options.description.length > 1000)
  ) {
    throw new ValidationError("INVALID_OPTION", "description must be a string of at most 1000 characters", {
      field: "options.description",
    });
  }
  const out: { event: BatchEvent; task: string; options: JobOptions | undefined }[] = [];
  for (const key of ["onComplete", "onSuccess", "onDeath"] as const) {
    const callback = options[key];
    if (callback === undefined) continue;
    const field = `options.${key}`;
    const spec = isObject(callback) && "task" in callback ? callback : null;
    const name = taskName(spec ? spec.task : callback);
    if (name === null) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field} must be a task (its name or the Task object) or { task, options }`,
        {
          field,
        },
      );
    }
    const jobOptions = spec ? (spec as { options?: JobOptions }).options : undefined;
    out.push({ event: CALLBACK_EVENTS[key], task: name, options: jobOptions });
  }
  return out;
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === "object";
}

/** The name of a task given by name or as the Task object; null for anything else. */
function taskName(value: unknown): string | null {
  if (typeof value === "string") return value;
  const name = isObject(value) ? (value as { name?: unknown }).name : undefined;
  return typeof name === "string" ? name : null;
}

/** The task name of a step (a name or a Task). */
export function stepTask(step: FlowStep, field: string): string {
  if (step === null || typeof step !== "object" || !("payload" in step)) {
    throw new ValidationError("INVALID_OPTION", `${field} must be { task, payload, options? }`, { field });
  }
  const name = taskName(step.task);
  if (name === null) {
    throw new ValidationError("INVALID_OPTION", `${field}.task must be a task name or the Task object`, {
      field: `${field}.task`,
    });
  }
  return name;
}

/** A batch id: 1 to 200 characters (its callbacks' job ids append `:<event>`). */
export function validateBatchId(value: unknown, field: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 200 || value.includes("\0")) {
    throw new ValidationError("INVALID_OPTION", `${field} must be a string of 1 to 200 characters`, {
      field,
    });
  }
  return value;
}
