/** The `Task` object `sluice.task()` returns: enqueue its jobs, or run one inline. */
import type { JobOptions } from "../core/options.js";
import type { TaskDefinition } from "../core/task.js";
import type { BatchItem, EnqueuedJob, Sluice } from "./sluice.js";

/** A defined task: enqueue its jobs, or run one inline. */
export class Task<P = unknown, R = unknown> {
  constructor(
    private readonly sluice: Sluice,
    readonly name: string,
    readonly definition: TaskDefinition<P, R>,
  ) {}

  /** Queue this task's jobs go to unless an enqueue overrides it. */
  get queue(): string {
    return this.definition.queue ?? "default";
  }

  /** Enqueues one job. */
  enqueue(payload: P, options?: JobOptions): Promise<EnqueuedJob> {
    return this.sluice.enqueue(this.name, payload, options);
  }

  /** Enqueues many jobs in one transaction / round trip (all or none). */
  enqueueMany(items: readonly BatchItem<P>[]): Promise<EnqueuedJob[]> {
    return this.sluice.enqueueMany(this.name, items);
  }

  /**
   * Runs the handler now, in this process, without the store (like Rails' `perform_now`: an inline
   * mode to fall back to). The payload is validated as at enqueue; `timeoutMs` applies;
   * errors propagate to the caller; no retries.
   */
  runNow(payload: P): Promise<R> {
    return this.sluice.runInline(this.name, payload) as Promise<R>;
  }
}
