/**
 * Flows: jobs that wait for other jobs (dependencies, chains, parents waiting for their children) and
 * batches whose callbacks fire once every member is final. Pure types and rules; the engines implement the
 * transitions (docs/internals.md, "Flows"), the client builds them (client/flows.ts).
 *
 * The whole model in five rules, the same on every engine:
 * 1. A job with unresolved dependencies is `blocked`. Each dependency is an edge (dependent → dependency)
 *    with a {@link DependencyPolicy}. `pendingDependencies` counts the edges not yet resolved.
 * 2. When a job becomes final — completed, dead, cancelled, or deleted before it was final — every edge to
 *    it is resolved in the SAME transaction (Lua script) as that transition, exactly once:
 *    - completed, or policy `continue` / `ignore`: the dependent's count drops; at 0 a `blocked` dependent
 *      becomes `waiting` (`scheduled` when its `runAt` is still ahead) — event `unblocked`.
 *    - dead / cancelled / deleted with policy `fail`: a `blocked` dependent goes `dead` at once with
 *      {@link dependencyFailedMessage}, and rule 2 applies to it in turn (a chain fails to its end).
 * 3. A member of a batch counts toward the batch the first time it becomes final (completed, dead, or
 *    cancelled; a deleted member counts as cancelled), in the same transaction. The first dead member fires
 *    the `death` callback; the last final member fires `complete`, and `success` too when none was dead or
 *    cancelled. Each fires at most once: an operator retrying a member after that changes no count and
 *    fires nothing again.
 * 4. A job that becomes `cancelled` cancels its unfinished children (`parentId`) in the same transaction:
 *    scheduled / waiting / blocked ones at once, active ones by request.
 * 5. A running handler that enqueued children with `wait` ends by `block`: its job goes `blocked` on
 *    those children (attempt not charged) and runs again once they are final; children already final are
 *    resolved at once (rule 2), so a parent whose children all finished runs again immediately.
 */
import type { Json } from "./job.js";

/** What a dependent does when a dependency ends dead or cancelled (or is deleted before it finished). */
export type DependencyPolicy =
  /** The dependent goes dead with the dependency's error (the default: nothing runs on missing input). */
  | "fail"
  /** The dependent runs; `ctx.dependencies()` shows the failed dependency with its state and error. */
  | "continue"
  /** The dependent runs as if the dependency had not been declared; `ctx.dependencies()` leaves it out. */
  | "ignore";

export const DEPENDENCY_POLICIES: readonly DependencyPolicy[] = ["fail", "continue", "ignore"];

/** One edge: the job waits for `id` and applies `onFailure` when it does not complete. */
export interface Dependency {
  id: string;
  onFailure: DependencyPolicy;
}

/** The moments a batch fires a callback. */
export type BatchEvent =
  /** Every member is final, whatever the outcome. */
  | "complete"
  /** Every member completed (fires with `complete`, never when a member was dead or cancelled). */
  | "success"
  /** The first member went dead. */
  | "death";

export const BATCH_EVENTS: readonly BatchEvent[] = ["complete", "success", "death"];

/** Counts of a batch's members by their first final outcome. */
export interface BatchCounts {
  /** Members so far (jobs added by running members extend it). */
  total: number;
  completed: number;
  dead: number;
  /** Cancelled, or deleted before they finished. */
  cancelled: number;
}

/** A batch callback as stored: fired (enqueued) at most once. */
export interface BatchCallbackRecord {
  event: BatchEvent;
  task: string;
  queue: string;
  /** The callback job's id (deterministic: `<batch id>:<event>`). */
  jobId: string;
  /** When it was enqueued, or null while it has not fired. */
  firedAt: number | null;
}

/** A batch as the store keeps it. */
export interface BatchRecord extends BatchCounts {
  id: string;
  /** Free text shown to operators. */
  description: string | null;
  createdAt: number;
  /** When the last member became final (the `complete` moment), or null while members are pending. */
  finishedAt: number | null;
  callbacks: BatchCallbackRecord[];
}

/** Members not yet final. */
export function batchPending(batch: BatchCounts): number {
  return batch.total - batch.completed - batch.dead - batch.cancelled;
}

/**
 * The payload a batch callback job receives: the batch, the moment, the counts at that moment, and the
 * `data` given when the batch was created (null when none).
 */
export interface BatchCallbackPayload<T = Json> extends BatchCounts {
  batchId: string;
  event: BatchEvent;
  data: T;
}

/** A dependency, child or dependent as a flow view shows it. */
export interface FlowJob {
  id: string;
  task: string;
  queue: string;
  /** The job's state as seen by operators, or null when it no longer exists (deleted or pruned). */
  state: import("./job.js").JobState | null;
  /** Its result when completed. */
  result: Json | null;
  /** Its latest error message when dead or cancelled with one. */
  error: string | null;
}

/** An edge of a flow view: a job and the policy the dependent applies to it. */
export interface FlowEdge extends FlowJob {
  onFailure: DependencyPolicy;
  /** True once the dependency became final and the edge was applied. */
  resolved: boolean;
}

/** Everything a job is connected to (`sluice jobs show`, `ctx.dependencies()`, `ctx.children()`). */
export interface FlowView {
  /** Jobs this job waits (or waited) for. */
  dependencies: FlowEdge[];
  /** Jobs that wait (or waited) for this job. */
  dependents: FlowEdge[];
  /** Jobs this job enqueued while it ran (`parentId` = this job), at most 10,000. */
  children: FlowJob[];
  /** The parent that enqueued this job, or null. */
  parent: FlowJob | null;
  /** The batch the job belongs to, or null. */
  batch: BatchRecord | null;
}

/**
 * Most characters of a dependency's error quoted in its dependent's message. Along a chain each link quotes
 * the one before, so without a bound a chain of n jobs stores O(n²) text (a chain of 3,000 took 13 s to fail
 * on SQLite; 0.3 s with the bound). The root cause stays readable for the first dozen links. Every engine
 * cuts at this length (SQL `left`, Lua `string.sub`).
 */
export const MAX_QUOTED_ERROR = 1000;

/** The reason (and error message) of a dependent that went dead because a dependency did not complete. */
export function dependencyFailedMessage(
  dependency: { id: string; task: string },
  state: "dead" | "cancelled" | "deleted",
  error: string | null,
): string {
  const quoted =
    error !== null && error.length > MAX_QUOTED_ERROR ? `${error.slice(0, MAX_QUOTED_ERROR)}…` : error;
  return `dependency ${dependency.id} (${dependency.task}) ended ${state}${quoted ? `: ${quoted}` : ""}`;
}

/** The deterministic id of a batch's callback job. */
export function batchCallbackJobId(batchId: string, event: BatchEvent): string {
  return `${batchId}:${event}`;
}

/** How `ctx.enqueue([...], options)` relates the children to the running job. */
export interface ChildOptions {
  /**
   * True: when the handler returns, the job does not complete; it waits (`blocked`) until these children
   * are final, then runs again (attempt not charged) and reads them with `ctx.children()`. Children already
   * final are not waited for, so a handler that enqueues the same children again on its second run (their
   * ids are the same) goes on and completes. Default false.
   */
  wait?: boolean;
  /** What a child ending dead or cancelled does to the waiting job (DependencyPolicy). Default `"fail"`. */
  onFailure?: DependencyPolicy;
}

/** What enqueueing one job of a flow returned (the client's `EnqueuedJob`). */
export interface EnqueuedStep {
  id: string;
  state: import("./job.js").JobState;
  created: boolean;
}
