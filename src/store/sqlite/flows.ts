/**
 * Flows on SQLite (core/flows.ts): the edges and batch rows an enqueue writes, and `settle`, which every
 * final transition of the store calls inside its own write transaction (one writer: the transition and
 * everything it releases, kills, cancels, counts and fires commit together or not at all).
 *
 * Settle works through a list (a dependent killed by policy, or a child cancelled with its parent, is
 * appended and settled in turn), never by recursion, so a chain of any length fails to its end in one
 * call. Batch counters are added once per batch per call: complete() of 100 members of one batch is one
 * counter update.
 *
 * Plain jobs pay nothing here: a final transition RETURNs `batch_id`, `batch_counted` and
 * `has_dependents`, and only a job with one of them (or a cancelled one, for its children) is settled.
 */

import type Database from "better-sqlite3";
import {
  BatchExistsError,
  BatchFinishedError,
  BatchNotFoundError,
  DependencyNotFoundError,
  ValidationError,
} from "../../core/errors.js";
import type { FleetEventType } from "../../core/fleet-events.js";
import {
  BATCH_EVENTS,
  type BatchCallbackRecord,
  type BatchEvent,
  type BatchRecord,
  batchCallbackJobId,
  batchPending,
  type Dependency,
  type DependencyPolicy,
  dependencyFailedMessage,
  type FlowEdge,
  type FlowJob,
  type FlowView,
  MAX_QUOTED_ERROR,
} from "../../core/flows.js";
import type { AttemptError, JobState, Json } from "../../core/job.js";
import { CANCEL_AT_ONCE_STATES, CANCELLED_WHILE_ACTIVE_REASON } from "../../core/states.js";
import type {
  BlockRequest,
  EnqueueResult,
  JobTemplate,
  NewBatch,
  NewJob,
  StuckBlockedJob,
} from "../contract.js";
import { heldSql, seenStateSql, sqlString } from "../sql-common.js";

type Statement = Database.Statement<unknown[], unknown>;
type Prepare = (sql: string) => Statement;

/** How a job ended, as its dependents and its batch see it. */
export type SettleOutcome = "completed" | "dead" | "cancelled" | "deleted";

/** A job that just became final (or was deleted before it was), to settle. */
export interface Settled {
  id: string;
  task: string;
  queue: string;
  outcome: SettleOutcome;
  batchId: string | null;
  /** True the first time it became final as a batch member (count it). */
  countInBatch: boolean;
  /** Some edge points at it (look for unresolved ones). */
  hasDependents: boolean;
  /** Its latest error message, else its reason (for a dependent killed by policy). */
  error: string | null;
}

/** What a write must do after it commits: wake workers of these queues, signal cancels. */
export interface FlowEffects {
  wake: Set<string>;
  cancel: boolean;
}

export function newEffects(): FlowEffects {
  return { wake: new Set(), cancel: false };
}

/** The columns a final transition RETURNs for settle. */
export interface SettleColumns {
  batch_id: string | null;
  batch_counted: number;
  has_dependents: number;
  flow_error?: string | null;
}

/** RETURNING columns of a final transition (with `flow_error` only read when the job has dependents). */
export const SETTLE_RETURNING = `batch_id, batch_counted, has_dependents,
  CASE WHEN has_dependents = 1 THEN ${latestErrorSql()} END AS flow_error`;

/** SET clause of a final transition: counts one more final outcome of a batch member. */
export const COUNT_FINAL = "batch_counted = batch_counted + (batch_id IS NOT NULL)";

/**
 * The latest attempt error's message, else the reason (a corrupt errors text reads as none, so one bad row
 * never stops the transition of another job).
 */
export function latestErrorSql(alias = ""): string {
  return `COALESCE(CASE WHEN json_valid(${alias}errors) THEN json_extract(${alias}errors, '$[#-1].message') END, ${alias}reason)`;
}

/** Whether a job with these columns needs settling after it became final with `outcome`. */
export function needsSettle(row: SettleColumns, outcome: SettleOutcome): boolean {
  return row.batch_id !== null || row.has_dependents === 1 || outcome === "cancelled";
}

/**
 * A Settled from a final transition's RETURNING row. `counted` is the batch_counted value that means
 * "first time": 1 after an UPDATE that applied COUNT_FINAL, 0 for a DELETE (which returns the old row).
 */
export function settled(
  job: { id: string; task: string; queue: string },
  row: SettleColumns,
  outcome: SettleOutcome,
  counted: 0 | 1,
  error: string | null = row.flow_error ?? null,
): Settled {
  return {
    id: job.id,
    task: job.task,
    queue: job.queue,
    outcome,
    batchId: row.batch_id,
    countInBatch: row.batch_id !== null && row.batch_counted === counted,
    hasDependents: row.has_dependents === 1,
    error,
  };
}

const FINAL_STATES = new Set<string>(["completed", "dead", "cancelled"]);

/** Completed, dead or cancelled. */
export function isFinal(state: string): boolean {
  return FINAL_STATES.has(state);
}

/** The reason stored on a child cancelled because its parent was. */
export function cancelledWithParentReason(parentId: string): string {
  return `cancelled with its parent ${parentId}`;
}

interface BatchRow {
  id: string;
  description: string | null;
  data: string;
  created_at: number;
  finished_at: number | null;
  total: number;
  completed: number;
  dead: number;
  cancelled: number;
}

interface CallbackRow {
  batch_id: string;
  event: BatchEvent;
  task: string;
  queue: string;
  fired_at: number | null;
}

interface FlowJobRow {
  id: string;
  task: string | null;
  queue: string | null;
  state: string | null;
  started_at: number | null;
  result: string | null;
  error: string | null;
}

/** The flow statements of one connection (the store's, or an application's for a transactional enqueue). */
export class SqliteFlows {
  constructor(
    private readonly prepare: Prepare,
    private readonly eventsOn: boolean,
    /** The store's insert of plain jobs on the same connection (batch callbacks are plain jobs). */
    private readonly insertPlain: (jobs: readonly NewJob[], now: number) => EnqueueResult[],
  ) {}

  // ── enqueue ────────────────────────────────────────────────────────────────────────────────────

  /** Flow bookkeeping of one enqueue call; null when the call has no flow at all (the plain path). */
  enqueuePlan(jobs: readonly NewJob[], batch: NewBatch | undefined, now: number): EnqueuePlan | null {
    if (batch === undefined && !jobs.some((j) => j.dependsOn.length > 0 || j.batchId !== null)) return null;
    return new EnqueuePlan(this, this.prepare, jobs, batch, now);
  }

  /** Writes an `events` row (no-op with events off). `data` is a JSON object or null. */
  event(
    type: FleetEventType,
    now: number,
    job: { id: string; queue: string; task: string },
    attempt: number | null,
    data: Record<string, Json> | null,
  ): void {
    if (!this.eventsOn) return;
    this.prepare(
      "INSERT INTO events (at, type, queue, job_id, task, attempt, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ).run(now, type, job.queue, job.id, job.task, attempt, data === null ? null : JSON.stringify(data));
  }

  // ── settle ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Applies core/flows.ts rules 2-4 to `items` and to every job they kill or cancel in turn, then adds the
   * batch counters (one update per batch) and fires callbacks. `batches`: batches to check for their end
   * even without a count (a batch created with no member actually created).
   */
  settle(
    items: readonly Settled[],
    now: number,
    effects: FlowEffects,
    batches: readonly string[] = [],
  ): void {
    if (items.length === 0 && batches.length === 0) return;
    const deltas = new Map<string, { completed: number; dead: number; cancelled: number }>();
    for (const id of batches) deltas.set(id, { completed: 0, dead: 0, cancelled: 0 });
    const work = [...items];
    for (let i = 0; i < work.length; i++) {
      const item = work[i] as Settled;
      if (item.batchId !== null && item.countInBatch) {
        let delta = deltas.get(item.batchId);
        if (!delta) {
          delta = { completed: 0, dead: 0, cancelled: 0 };
          deltas.set(item.batchId, delta);
        }
        if (item.outcome === "completed") delta.completed++;
        else if (item.outcome === "dead") delta.dead++;
        else delta.cancelled++;
      }
      if (item.hasDependents) this.resolveDependents(item, now, effects, work);
      if (item.outcome === "cancelled") this.cancelChildren(item, now, effects, work);
    }
    for (const [id, delta] of deltas) this.countInBatch(id, delta, now, effects);
  }

  /** Rule 2: resolves each unresolved edge to `item` (marked in the statement that reads it: once). */
  private resolveDependents(item: Settled, now: number, effects: FlowEffects, work: Settled[]): void {
    const edges = this.prepare(
      "UPDATE job_deps SET resolved = 1 WHERE depends_on = ? AND resolved = 0 RETURNING job_id, on_failure",
    ).all(item.id) as { job_id: string; on_failure: DependencyPolicy }[];
    if (edges.length === 0) return;
    const decrement = this.prepare(
      `UPDATE jobs SET pending_deps = MAX(pending_deps - 1, 0) WHERE id = ?
       RETURNING id, queue, task, attempt, state, pending_deps`,
    );
    for (const edge of edges) {
      const dependent = decrement.get(edge.job_id) as
        | { id: string; queue: string; task: string; attempt: number; state: string; pending_deps: number }
        | undefined;
      // Only a job still blocked moves: an operator may have cancelled, moved or retried it meanwhile.
      if (dependent?.state !== "blocked") continue;
      if (item.outcome !== "completed" && edge.on_failure === "fail") {
        const state = item.outcome as "dead" | "cancelled" | "deleted";
        const message = dependencyFailedMessage(item, state, boundedError(item.error));
        const killed = this.kill(dependent, message, now);
        if (killed) work.push(killed);
      } else if (dependent.pending_deps === 0) {
        this.unblock(dependent, now, effects);
      }
    }
  }

  /** A blocked dependent goes dead by policy (its error says which dependency); null when not blocked. */
  private kill(
    job: { id: string; queue: string; task: string; attempt: number },
    message: string,
    now: number,
  ): Settled | null {
    const error: AttemptError = {
      attempt: job.attempt,
      outcome: "dependency-failed",
      name: "DependencyFailedError",
      code: "DEPENDENCY_FAILED",
      message,
      at: now,
    };
    const row = this.prepare(
      `UPDATE jobs SET state = 'dead', finished_at = ?, reason = ?, lease_expires_at = NULL, ${COUNT_FINAL},
         errors = CASE WHEN json_valid(errors) THEN json_insert(errors, '$[#]', json(?)) ELSE errors END
       WHERE id = ? AND state = 'blocked'
       RETURNING batch_id, batch_counted, has_dependents`,
    ).get(now, message, JSON.stringify(error), job.id) as SettleColumns | undefined;
    if (!row) return null;
    this.event("dead", now, job, job.attempt, { error: message, reason: message });
    return settled(job, row, "dead", 1, message);
  }

  /** A blocked job with nothing left to wait for becomes waiting (scheduled while its run time is ahead). */
  private unblock(
    job: { id: string; queue: string; task: string; attempt: number },
    now: number,
    effects: FlowEffects,
  ) {
    const row = this.prepare(
      `UPDATE jobs SET state = CASE WHEN run_at > ? THEN 'scheduled' ELSE 'waiting' END
       WHERE id = ? AND state = 'blocked' AND pending_deps = 0 RETURNING state`,
    ).get(now, job.id) as { state: JobState } | undefined;
    if (!row) return;
    this.event("unblocked", now, job, job.attempt, { state: row.state });
    effects.wake.add(job.queue);
  }

  /** Rule 4: children not started are cancelled at once (and settled in turn), running ones by request. */
  private cancelChildren(item: Settled, now: number, effects: FlowEffects, work: Settled[]): void {
    const reason = cancelledWithParentReason(item.id);
    const children = this.prepare(
      `UPDATE jobs SET state = 'cancelled', finished_at = ?, reason = ?, lease_expires_at = NULL, ${COUNT_FINAL},
         attempt = CASE WHEN ${heldSql()} THEN MAX(attempt - 1, 0) ELSE attempt END
       WHERE parent_id = ? AND ${seenStateSql(CANCEL_AT_ONCE_STATES)}
       RETURNING id, queue, task, attempt, ${SETTLE_RETURNING}`,
    ).all(now, reason, item.id) as ({
      id: string;
      queue: string;
      task: string;
      attempt: number;
    } & SettleColumns)[];
    for (const child of children) {
      this.event("cancelled", now, child, null, { reason });
      work.push(settled(child, child, "cancelled", 1, child.flow_error ?? reason));
    }
    const requested = this.prepare(
      `UPDATE jobs SET cancel_requested = 1
       WHERE parent_id = ? AND state = 'active' AND started_at IS NOT NULL AND cancel_requested = 0`,
    ).run(item.id).changes;
    if (requested > 0) effects.cancel = true;
  }

  /** Rule 3: adds one call's outcomes to a batch, then fires what they trigger. */
  private countInBatch(
    id: string,
    delta: { completed: number; dead: number; cancelled: number },
    now: number,
    effects: FlowEffects,
  ): void {
    const batch = this.prepare(
      `UPDATE batches SET completed = completed + ?, dead = dead + ?, cancelled = cancelled + ? WHERE id = ?
       RETURNING *`,
    ).get(delta.completed, delta.dead, delta.cancelled, id) as BatchRow | undefined;
    if (!batch) return; // never created (a hand-edited store): nothing to count or fire
    if (delta.dead > 0) this.fire(batch, "death", now, effects);
    if (batchPending(batch) <= 0 && batch.finished_at === null) {
      this.prepare("UPDATE batches SET finished_at = ? WHERE id = ? AND finished_at IS NULL").run(now, id);
      this.fire(batch, "complete", now, effects);
      if (batch.dead === 0 && batch.cancelled === 0) this.fire(batch, "success", now, effects);
    }
  }

  /** Enqueues a batch's callback job, at most once (fired_at is the compare-and-set key). */
  private fire(batch: BatchRow, event: BatchEvent, now: number, effects: FlowEffects): void {
    const row = this.prepare(
      `UPDATE batch_callbacks SET fired_at = ? WHERE batch_id = ? AND event = ? AND fired_at IS NULL
       RETURNING template`,
    ).get(now, batch.id, event) as { template: string } | undefined;
    if (!row) return; // not declared, or fired already
    const template = JSON.parse(row.template) as JobTemplate;
    // The payload is BatchCallbackPayload, built as text around the stored data (never re-parsed).
    const payload =
      `{"batchId":${JSON.stringify(batch.id)},"event":"${event}","total":${batch.total},` +
      `"completed":${batch.completed},"dead":${batch.dead},"cancelled":${batch.cancelled},"data":${batch.data}}`;
    const job: NewJob = {
      ...template,
      id: batchCallbackJobId(batch.id, event),
      idempotent: true,
      runAt: now,
      payload,
      // A callback is not a member and waits for nothing (a template's own flow fields are ignored).
      batchId: null,
      dependsOn: [],
      // Nor a limit key: a callback reports on the batch, it does not call the keyed dependency.
      limitKey: null,
    };
    const [result] = this.insertPlain([job], now);
    if (result?.created) effects.wake.add(job.queue);
  }

  // ── block ──────────────────────────────────────────────────────────────────────────────────────

  /** core/flows.ts rule 5 for one request; false when fenced (the lease is no longer held). */
  block(request: BlockRequest, now: number, effects: FlowEffects): boolean {
    const job = this.prepare(
      `SELECT id, queue, task, attempt, cancel_requested FROM jobs
       WHERE id = ? AND lease_token = ? AND state = 'active'`,
    ).get(request.id, request.token) as
      | { id: string; queue: string; task: string; attempt: number; cancel_requested: number }
      | undefined;
    if (!job) return false;
    // The attempt is not charged (like release): the job runs again with the same attempt number.
    const attempt = Math.max(job.attempt - 1, 0);
    if (job.cancel_requested === 1) {
      const row = this.prepare(
        `UPDATE jobs SET state = 'cancelled', finished_at = ?, attempt = ?, lease_expires_at = NULL, worker_id = NULL,
           reason = ${sqlString(CANCELLED_WHILE_ACTIVE_REASON)}, ${COUNT_FINAL}
         WHERE id = ? RETURNING ${SETTLE_RETURNING}`,
      ).get(now, attempt, job.id) as SettleColumns;
      this.event("cancelled", now, job, job.attempt, { reason: CANCELLED_WHILE_ACTIVE_REASON });
      this.settle([settled(job, row, "cancelled", 1)], now, effects);
      return true;
    }
    const lookup = this.prepare(`SELECT task, state, ${latestErrorSql()} AS error FROM jobs WHERE id = ?`);
    // An edge from an earlier round is updated in place: its policy, and resolved from the job's state now.
    const upsert = this.prepare(
      `INSERT INTO job_deps (job_id, depends_on, on_failure, resolved) VALUES (?, ?, ?, ?)
       ON CONFLICT (job_id, depends_on) DO UPDATE SET on_failure = excluded.on_failure, resolved = excluded.resolved`,
    );
    const markDependents = this.prepare(
      "UPDATE jobs SET has_dependents = 1 WHERE id = ? AND has_dependents = 0",
    );
    let killedBy: string | null = null;
    for (const dep of uniqueDependencies(request.dependsOn)) {
      if (dep.id === job.id) continue; // a job cannot wait for itself (it would never run again)
      const target = lookup.get(dep.id) as { task: string; state: string; error: string | null } | undefined;
      // A missing dependency was deleted (or pruned): resolved at once, as deleted.
      const ended: "dead" | "cancelled" | "deleted" | "completed" | null = !target
        ? "deleted"
        : isFinal(target.state)
          ? (target.state as "completed" | "dead" | "cancelled")
          : null;
      upsert.run(job.id, dep.id, dep.onFailure, ended === null ? 0 : 1);
      if (ended === null) markDependents.run(dep.id);
      else if (ended !== "completed" && dep.onFailure === "fail" && killedBy === null) {
        killedBy = dependencyFailedMessage(
          { id: dep.id, task: target?.task ?? "" },
          ended,
          target && isFinal(target.state) ? boundedError(target.error) : null,
        );
      }
    }
    const pending = (
      this.prepare("SELECT COUNT(*) AS n FROM job_deps WHERE job_id = ? AND resolved = 0").get(job.id) as {
        n: number;
      }
    ).n;
    const seen = { id: job.id, queue: job.queue, task: job.task };
    if (killedBy !== null) {
      this.prepare(
        `UPDATE jobs SET state = 'blocked', attempt = ?, pending_deps = ?, lease_expires_at = NULL, worker_id = NULL
         WHERE id = ?`,
      ).run(attempt, pending, job.id);
      const killed = this.kill({ ...seen, attempt }, killedBy, now);
      if (killed) this.settle([killed], now, effects);
      return true;
    }
    const state: JobState = pending > 0 ? "blocked" : "waiting";
    this.prepare(
      `UPDATE jobs SET state = ?, attempt = ?, pending_deps = ?, lease_expires_at = NULL, worker_id = NULL
       WHERE id = ?`,
    ).run(state, attempt, pending, job.id);
    if (state === "blocked") this.event("blocked", now, seen, attempt, { pending });
    else {
      this.event("unblocked", now, seen, attempt, { state: "waiting" });
      effects.wake.add(job.queue);
    }
    return true;
  }

  // ── reads ──────────────────────────────────────────────────────────────────────────────────────

  getFlow(id: string): FlowView | null {
    const job = this.prepare("SELECT parent_id, batch_id FROM jobs WHERE id = ?").get(id) as
      | { parent_id: string | null; batch_id: string | null }
      | undefined;
    if (!job) return null;
    const edge = (row: FlowJobRow & { on_failure: DependencyPolicy; resolved: number }): FlowEdge => ({
      ...flowJob(row),
      onFailure: row.on_failure,
      resolved: row.resolved === 1,
    });
    const dependencies = (
      this.prepare(
        `SELECT d.depends_on AS id, d.on_failure, d.resolved, ${FLOW_JOB_COLUMNS}
         FROM job_deps d LEFT JOIN jobs j ON j.id = d.depends_on WHERE d.job_id = ? ORDER BY d.rowid`,
      ).all(id) as (FlowJobRow & { on_failure: DependencyPolicy; resolved: number })[]
    ).map(edge);
    const dependents = (
      this.prepare(
        `SELECT d.job_id AS id, d.on_failure, d.resolved, ${FLOW_JOB_COLUMNS}
         FROM job_deps d LEFT JOIN jobs j ON j.id = d.job_id WHERE d.depends_on = ? ORDER BY d.rowid`,
      ).all(id) as (FlowJobRow & { on_failure: DependencyPolicy; resolved: number })[]
    ).map(edge);
    const children = (
      this.prepare(
        `SELECT j.id, ${FLOW_JOB_COLUMNS} FROM jobs j WHERE j.parent_id = ? ORDER BY j.seq LIMIT 10000`,
      ).all(id) as FlowJobRow[]
    ).map(flowJob);
    let parent: FlowJob | null = null;
    if (job.parent_id !== null) {
      const row = this.prepare(`SELECT j.id, ${FLOW_JOB_COLUMNS} FROM jobs j WHERE j.id = ?`).get(
        job.parent_id,
      ) as FlowJobRow | undefined;
      parent = flowJob(row ?? missingJob(job.parent_id));
    }
    const batch = job.batch_id === null ? null : this.getBatch(job.batch_id);
    return { dependencies, dependents, children, parent, batch };
  }

  getBatch(id: string): BatchRecord | null {
    const row = this.prepare("SELECT * FROM batches WHERE id = ?").get(id) as BatchRow | undefined;
    return row ? this.batchRecord(row) : null;
  }

  listBatches(request: { limit: number; cursor?: string | null; finished?: boolean }): {
    batches: BatchRecord[];
    nextCursor: string | null;
  } {
    const where: string[] = [];
    const params: unknown[] = [];
    if (request.finished !== undefined) where.push(`finished_at IS ${request.finished ? "NOT " : ""}NULL`);
    if (request.cursor) {
      const cursor = parseBatchCursor(request.cursor);
      where.push("(created_at, id) < (?, ?)");
      params.push(cursor.createdAt, cursor.id);
    }
    if (request.limit <= 0) return { batches: [], nextCursor: null };
    const rows = this.prepare(
      `SELECT * FROM batches ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY created_at DESC, id DESC LIMIT ?`,
    ).all(...params, request.limit + 1) as BatchRow[];
    const more = rows.length > request.limit;
    const page = more ? rows.slice(0, request.limit) : rows;
    const last = page[page.length - 1];
    return {
      batches: page.map((row) => this.batchRecord(row)),
      nextCursor: more && last ? `${last.created_at}:${last.id}` : null,
    };
  }

  stuckBlocked(limit: number): StuckBlockedJob[] {
    if (limit <= 0) return [];
    // Nothing will release it: no unresolved edge counted, none stored, or one whose job is final or gone.
    const rows = this.prepare(
      `SELECT j.id, j.queue, j.task, j.created_at, j.pending_deps FROM jobs j
       WHERE j.state = 'blocked' AND (
         j.pending_deps = 0
         OR NOT EXISTS (SELECT 1 FROM job_deps d WHERE d.job_id = j.id AND d.resolved = 0)
         OR EXISTS (SELECT 1 FROM job_deps d LEFT JOIN jobs x ON x.id = d.depends_on
                    WHERE d.job_id = j.id AND d.resolved = 0
                      AND (x.id IS NULL OR x.state IN ('completed', 'dead', 'cancelled'))))
       ORDER BY j.seq LIMIT ?`,
    ).all(limit) as { id: string; queue: string; task: string; created_at: number; pending_deps: number }[];
    const waiting = this.prepare(
      `SELECT d.depends_on AS id, CASE WHEN ${heldSql("x.")} THEN 'waiting' ELSE x.state END AS state
       FROM job_deps d LEFT JOIN jobs x ON x.id = d.depends_on WHERE d.job_id = ? AND d.resolved = 0 ORDER BY d.rowid`,
    );
    return rows.map((r) => ({
      id: r.id,
      queue: r.queue,
      task: r.task,
      createdAt: r.created_at,
      pendingDependencies: r.pending_deps,
      waitingFor: waiting.all(r.id) as { id: string; state: JobState | null }[],
    }));
  }

  private batchRecord(row: BatchRow): BatchRecord {
    const callbacks = (
      this.prepare(
        "SELECT batch_id, event, task, queue, fired_at FROM batch_callbacks WHERE batch_id = ?",
      ).all(row.id) as CallbackRow[]
    )
      .sort((a, b) => BATCH_EVENTS.indexOf(a.event) - BATCH_EVENTS.indexOf(b.event))
      .map(
        (c): BatchCallbackRecord => ({
          event: c.event,
          task: c.task,
          queue: c.queue,
          jobId: batchCallbackJobId(c.batch_id, c.event),
          firedAt: c.fired_at,
        }),
      );
    return {
      id: row.id,
      description: row.description,
      createdAt: row.created_at,
      finishedAt: row.finished_at,
      total: row.total,
      completed: row.completed,
      dead: row.dead,
      cancelled: row.cancelled,
      callbacks,
    };
  }
}

/**
 * The flow side of one enqueue call: the batch it creates, each job's edges and first state, the totals of
 * the batches it extends, and the members written dead at once (a dependency had already failed).
 */
export class EnqueuePlan {
  /** Input id → the id the call returned for it (a deduplicated job's edges target the job returned). */
  private readonly returned = new Map<string, string>();
  private readonly totals = new Map<string, number>();
  private readonly openBatches = new Set<string>();
  private readonly deadAtOnce: Settled[] = [];
  private readonly lookup: Statement;

  constructor(
    private readonly flows: SqliteFlows,
    private readonly prepare: Prepare,
    jobs: readonly NewJob[],
    private readonly batch: NewBatch | undefined,
    private readonly now: number,
  ) {
    this.lookup = prepare(`SELECT task, state, ${latestErrorSql()} AS error FROM jobs WHERE id = ?`);
    if (batch) this.createBatch(batch, jobs);
  }

  private createBatch(batch: NewBatch, jobs: readonly NewJob[]): void {
    if (!jobs.some((j) => j.batchId === batch.id)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `batch "${batch.id}" has no job: a batch is created with at least one member (give its jobs batchId "${batch.id}")`,
        { field: "batch" },
      );
    }
    const inserted = this.prepare(
      `INSERT INTO batches (id, description, data, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ).run(batch.id, batch.description, batch.dataJson, this.now).changes;
    if (inserted !== 1) {
      throw new BatchExistsError(batch.id);
    }
    const callback = this.prepare(
      "INSERT INTO batch_callbacks (batch_id, event, task, queue, template) VALUES (?, ?, ?, ?, ?)",
    );
    for (const c of batch.callbacks) {
      callback.run(batch.id, c.event, c.template.task, c.template.queue, JSON.stringify(c.template));
    }
    this.openBatches.add(batch.id);
    this.totals.set(batch.id, 0);
  }

  /** Records what the call returned for an input job (created or not). */
  returnedFor(job: NewJob, id: string): void {
    this.returned.set(job.id, id);
  }

  /**
   * Checks the job's batch (BatchNotFoundError / BatchFinishedError) and resolves its dependencies
   * (DependencyNotFoundError), before it is written. Returns the columns it is written with.
   */
  prepareJob(job: NewJob): PreparedJob {
    if (job.batchId !== null && !this.openBatches.has(job.batchId)) {
      const batch = this.prepare("SELECT finished_at FROM batches WHERE id = ?").get(job.batchId) as
        | { finished_at: number | null }
        | undefined;
      if (!batch) throw new BatchNotFoundError(job.batchId);
      if (batch.finished_at !== null) throw new BatchFinishedError(job.batchId);
      this.openBatches.add(job.batchId);
    }
    const edges: PreparedJob["edges"] = [];
    let pending = 0;
    let deadMessage: string | null = null;
    for (const dep of uniqueDependencies(job.dependsOn)) {
      const target = this.returned.get(dep.id) ?? dep.id;
      const row = this.lookup.get(target) as
        | { task: string; state: string; error: string | null }
        | undefined;
      if (!row) throw new DependencyNotFoundError(job.id, dep.id);
      const final = isFinal(row.state);
      if (!final) pending++;
      else if (row.state !== "completed" && dep.onFailure === "fail" && deadMessage === null) {
        deadMessage = dependencyFailedMessage(
          { id: target, task: row.task },
          row.state as "dead" | "cancelled",
          boundedError(row.error),
        );
      }
      edges.push({ dependsOn: target, onFailure: dep.onFailure, resolved: final });
    }
    const state: JobState =
      deadMessage !== null
        ? "dead"
        : pending > 0
          ? "blocked"
          : job.runAt > this.now
            ? "scheduled"
            : "waiting";
    const errors =
      deadMessage === null
        ? "[]"
        : JSON.stringify([
            {
              attempt: 0,
              outcome: "dependency-failed",
              name: "DependencyFailedError",
              code: "DEPENDENCY_FAILED",
              message: deadMessage,
              at: this.now,
            } satisfies AttemptError,
          ]);
    return { state, pending, edges, deadMessage, errors };
  }

  /** After the job's row is written: its edges, its dependencies' flag, its batch's total. */
  created(job: NewJob, prepared: PreparedJob): void {
    if (prepared.edges.length > 0) {
      const insert = this.prepare(
        "INSERT INTO job_deps (job_id, depends_on, on_failure, resolved) VALUES (?, ?, ?, ?)",
      );
      const mark = this.prepare("UPDATE jobs SET has_dependents = 1 WHERE id = ? AND has_dependents = 0");
      for (const edge of prepared.edges) {
        insert.run(job.id, edge.dependsOn, edge.onFailure, edge.resolved ? 1 : 0);
        if (!edge.resolved) mark.run(edge.dependsOn);
      }
    }
    if (job.batchId !== null) this.totals.set(job.batchId, (this.totals.get(job.batchId) ?? 0) + 1);
    if (prepared.deadMessage !== null) {
      this.deadAtOnce.push({
        id: job.id,
        task: job.task,
        queue: job.queue,
        outcome: "dead",
        batchId: job.batchId,
        countInBatch: job.batchId !== null,
        hasDependents: false, // edges to it were written knowing it is dead (resolved at once)
        error: prepared.deadMessage,
      });
    }
  }

  /** After every job of the call is written: batch totals, then the counts and callbacks they trigger. */
  finish(effects: FlowEffects): void {
    const total = this.prepare("UPDATE batches SET total = total + ? WHERE id = ?");
    for (const [id, n] of this.totals) if (n > 0) total.run(n, id);
    // The call's own batch is checked even with no member created (all deduplicated: it ends at once).
    this.flows.settle(this.deadAtOnce, this.now, effects, this.batch ? [this.batch.id] : []);
  }
}

/** A job's columns as its dependencies decide them at enqueue. */
export interface PreparedJob {
  state: JobState;
  pending: number;
  edges: { dependsOn: string; onFailure: DependencyPolicy; resolved: boolean }[];
  deadMessage: string | null;
  /** The errors column (the dependency-failed error when written dead). */
  errors: string;
}

/**
 * A dependency's error as its dependent quotes it, cut at MAX_QUOTED_ERROR characters: along a chain each
 * link quotes the one before, so without a bound a chain of n jobs stores O(n²) text (a chain of 3,000
 * took 13 s to fail; 0.3 s with the bound). The root cause stays readable for the first dozen links.
 */
export function boundedError(error: string | null): string | null {
  return error !== null && error.length > MAX_QUOTED_ERROR ? `${error.slice(0, MAX_QUOTED_ERROR)}…` : error;
}

/** The first declaration of each dependency id (a repeated id would be one edge anyway). */
function uniqueDependencies(deps: readonly Dependency[]): Dependency[] {
  const seen = new Set<string>();
  return deps.filter((d) => {
    if (seen.has(d.id)) return false;
    seen.add(d.id);
    return true;
  });
}

const FLOW_JOB_COLUMNS = `j.task, j.queue, CASE WHEN ${heldSql("j.")} THEN 'waiting' ELSE j.state END AS state,
  j.started_at, CASE WHEN j.state = 'completed' THEN j.result END AS result,
  CASE WHEN j.state IN ('dead', 'cancelled') THEN ${latestErrorSql("j.")} END AS error`;

function flowJob(row: FlowJobRow): FlowJob {
  let result: Json | null = null;
  if (row.result !== null) {
    try {
      result = JSON.parse(row.result) as Json;
    } catch {
      result = null; // unreadable: getJob reports it as dataError
    }
  }
  return {
    id: row.id,
    task: row.task ?? "",
    queue: row.queue ?? "",
    state: (row.state as JobState | null) ?? null,
    result,
    error: row.error,
  };
}

function missingJob(id: string): FlowJobRow {
  return { id, task: null, queue: null, state: null, started_at: null, result: null, error: null };
}

function parseBatchCursor(cursor: string): { createdAt: number; id: string } {
  const at = cursor.indexOf(":");
  const createdAt = Number(cursor.slice(0, at));
  if (at <= 0 || !Number.isSafeInteger(createdAt)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `cursor "${cursor}" is not one this store returned: pass the nextCursor of the previous page, or none for the first`,
      { field: "cursor" },
    );
  }
  return { createdAt, id: cursor.slice(at + 1) };
}
