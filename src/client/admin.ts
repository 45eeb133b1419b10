/**
 * The admin API: what operators need, in the library, so the CLI, the HTTP API and the dashboard are thin
 * layers over it. Bulk actions run in batches and accept a progress callback and an AbortSignal, so a
 * long operation shows progress and can be interrupted between batches without leaving half a batch.
 */
import { nextTick } from "../core/cron.js";
import {
  BatchNotFoundError,
  JobNotFoundError,
  ScheduleNotFoundError,
  ValidationError,
} from "../core/errors.js";
import { type BatchRecord, batchPending, type FlowView } from "../core/flows.js";
import { isJobState, type JobLogLine, type JobRecord, type JobState } from "../core/job.js";
import { validateQueueName, validateTaskName } from "../core/options.js";
import {
  CANCELLABLE_STATES,
  MOVABLE_STATES,
  REMOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRYABLE_STATES,
} from "../core/states.js";
import { histogramPercentile, hourOf, latest, recoveryStats } from "../core/stats.js";
import { emitEnqueued, type SluiceEventEmitter } from "../runtime/events.js";
import { jobFromTemplate, timingOf } from "../runtime/scheduler.js";
import type {
  BulkOptions,
  BulkResult,
  JobFilter,
  KeyHold,
  MigrationStatus,
  QueueStats,
  RecoveredJob,
  ScheduleRecord,
  Store,
  StoreInfo,
  StuckBlockedJob,
  WorkerInfo,
} from "../store/contract.js";

/** Filter accepted by listing and bulk actions. */
export interface AdminFilter {
  ids?: readonly string[];
  queue?: string;
  state?: JobState | readonly JobState[];
  task?: string;
  tag?: string;
  /** Only jobs created more than this many ms ago. */
  olderThanMs?: number;
  /** Only jobs whose id starts with this text (taken literally: `%`, `_` and `*` match themselves). */
  idPrefix?: string;
  /**
   * Only jobs whose payload holds `equals` at `path` (object keys from the payload's root). A JSON scalar
   * compared by type and value: `"7"` does not match `7`.
   */
  payloadField?: { path: readonly string[]; equals: string | number | boolean | null };
  /** Members of this batch (`sluice cancel --batch B` cancels its unfinished members). */
  batchId?: string;
  /** Children of this job (enqueued by its handler). */
  parentId?: string;
}

export interface QueueOverview extends QueueStats {
  /** Age of the oldest job ready to run (waiting, or scheduled and due) in ms; 0 when none is. */
  latencyMs: number;
}

export interface WorkerOverview extends WorkerInfo {
  /** Heartbeat seen within `staleAfterMs` (default 60 s). */
  alive: boolean;
}

export interface JobDetail extends JobRecord {
  logs: JobLogLine[];
}

/** One queue's outcomes in one hour (`sluice stats`). */
export interface HourlyStats {
  queue: string;
  /** Start of the hour, epoch ms. */
  hour: number;
  completed: number;
  failed: number;
  dead: number;
  /** Duration percentiles of completed jobs, as the upper bound of their histogram bucket (ms); null when none. */
  p50Ms: number | null;
  p95Ms: number | null;
  /** Epoch ms of the latest completion in this hour (as of the workers' last stats flush), or null. */
  lastCompletedAt: number | null;
}

export interface BulkRunOptions {
  /** Jobs per store call, 1 to 10,000. Default 1000. */
  batchSize?: number;
  /** Called after each batch with the running total. */
  onProgress?: (done: number) => void;
  /** Stops between batches. */
  signal?: AbortSignal;
}

/** What `runScheduleNow` enqueued. */
export interface ScheduleRun {
  schedule: string;
  /** `schedule:<name>:manual:<epoch ms>`: apart from the ticks' ids, so it never takes a tick's place. */
  id: string;
  state: JobState;
  /** False when a job with that id already existed (the same millisecond, twice). */
  created: boolean;
}

/** States each bulk action can change (listing is narrowed to them, the store checks them again). */
const BULK_STATES = {
  retry: RETRYABLE_STATES,
  cancel: CANCELLABLE_STATES,
  remove: REMOVABLE_STATES,
  move: MOVABLE_STATES,
  reprioritize: REPRIORITIZABLE_STATES,
} as const satisfies Record<string, readonly JobState[]>;

/**
 * The admin API (`sluice.admin`): what an operator reads and repairs. Every surface — CLI, HTTP API,
 * dashboard — calls this and nothing below it.
 */
export class Admin {
  constructor(
    private readonly store: () => Promise<Store>,
    private readonly events?: SluiceEventEmitter,
  ) {}

  /** One round trip to the store (connecting and migrating first if needed); the time it took. */
  async ping(): Promise<{ rttMs: number }> {
    const store = await this.store();
    const started = performance.now();
    await store.ping();
    return { rttMs: performance.now() - started };
  }

  /** Engine, version, location (password removed) and hazards an operator should know (`sluice doctor`). */
  async storeInfo(): Promise<StoreInfo> {
    return (await this.store()).info();
  }

  /** Schema version of the store and the migrations this process applied when it opened it (`sluice migrate`). */
  async migrations(): Promise<MigrationStatus> {
    return (await this.store()).migrations();
  }

  /** Recurring schedules with their next and latest ticks and whether an operator paused them, by name. */
  async schedules(): Promise<ScheduleRecord[]> {
    return (await this.store()).listSchedules();
  }

  /** One schedule with its job template; throws ScheduleNotFoundError (`SCHEDULE_NOT_FOUND`). */
  async getSchedule(name: string): Promise<ScheduleRecord> {
    validateTaskName(name, "schedule");
    const found = (await (await this.store()).listSchedules()).find((s) => s.name === name);
    if (!found) throw new ScheduleNotFoundError(name);
    return found;
  }

  /**
   * Pauses a schedule: no tick fires until {@link Admin.resumeSchedule}, whichever process runs the
   * scheduler. Declaring it again (`sluice.schedule()` at a worker's start, changed or not) keeps it paused.
   * Pausing a paused schedule changes nothing. Throws ScheduleNotFoundError.
   */
  async pauseSchedule(name: string): Promise<ScheduleRecord> {
    validateTaskName(name, "schedule");
    const paused = await (await this.store()).pauseSchedule(name);
    if (!paused) throw new ScheduleNotFoundError(name);
    return paused;
  }

  /**
   * Resumes a paused schedule from its next tick after now. Ticks that fell while it was paused are
   * dropped, whatever its `missed` policy (that policy is for times when no scheduler ran, not for an
   * operator's pause); `runScheduleNow` runs one at once if one is wanted. A schedule that is not paused is
   * left as it is. Throws ScheduleNotFoundError.
   */
  async resumeSchedule(name: string): Promise<ScheduleRecord> {
    const schedule = await this.getSchedule(name);
    let nextAt = schedule.nextAt;
    try {
      nextAt = nextTick(timingOf(schedule), Date.now());
    } catch {
      // Written by a version with a syntax this one cannot evaluate: keep its clock; that version fires it.
    }
    const resumed = await (await this.store()).resumeSchedule(name, nextAt);
    if (!resumed) throw new ScheduleNotFoundError(name);
    return resumed;
  }

  /**
   * Deletes a schedule (jobs it already enqueued stay) and returns it as it was; with `dryRun`, only
   * returns it. A process that declares it at start (`sluice.schedule()`, a worker config's `schedules:`)
   * creates it again. Throws ScheduleNotFoundError.
   */
  async removeSchedule(name: string, options: { dryRun?: boolean } = {}): Promise<ScheduleRecord> {
    const schedule = await this.getSchedule(name);
    if (options.dryRun) return schedule;
    if (!(await (await this.store()).removeSchedule(name))) throw new ScheduleNotFoundError(name);
    return schedule;
  }

  /**
   * Enqueues one job from a schedule's template now, paused or not, without moving its clock: the next
   * tick fires as it would have. Its id is `schedule:<name>:manual:<epoch ms>` and it carries the
   * schedule's tag (`schedule:<name>`). Throws ScheduleNotFoundError.
   */
  async runScheduleNow(name: string): Promise<ScheduleRun> {
    const schedule = await this.getSchedule(name);
    const now = Date.now();
    const job = jobFromTemplate(schedule, `schedule:${name}:manual:${now}`, now);
    const [result] = await (await this.store()).enqueue([job]);
    if (!result) throw new Error("the store returned no result for the job enqueued");
    if (this.events) emitEnqueued(this.events, [job], [result]);
    return { schedule: name, id: result.id, state: result.state, created: result.created };
  }

  /** Counts per queue and state, latency, pause state. */
  async queues(): Promise<QueueOverview[]> {
    const stats = await (await this.store()).queueStats();
    const now = Date.now();
    return stats.map((s) => ({
      ...s,
      latencyMs: s.oldestWaitingAt === null ? 0 : Math.max(now - s.oldestWaitingAt, 0),
    }));
  }

  /** Registered workers, with liveness judged from their last heartbeat. */
  async workers(options: { staleAfterMs?: number } = {}): Promise<WorkerOverview[]> {
    const staleAfter = options.staleAfterMs ?? 60_000;
    const now = Date.now();
    const workers = await (await this.store()).listWorkers();
    return workers.map((w) => ({ ...w, alive: now - w.lastHeartbeatAt <= staleAfter }));
  }

  /** One page of jobs, newest first unless `order: "asc"`. */
  async listJobs(
    filter: AdminFilter = {},
    page: { limit?: number; cursor?: string | null; order?: "asc" | "desc" } = {},
  ): Promise<{ jobs: JobRecord[]; nextCursor: string | null }> {
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new ValidationError("INVALID_OPTION", `limit must be an integer from 1 to 10000, got ${limit}`, {
        field: "limit",
      });
    }
    return (await this.store()).listJobs({
      filter: toStoreFilter(filter),
      limit,
      cursor: page.cursor ?? null,
      order: page.order ?? "desc",
    });
  }

  /** A job with every attempt's error and its log; throws JobNotFoundError. */
  async getJob(id: string, options: { logLimit?: number } = {}): Promise<JobDetail> {
    const store = await this.store();
    const job = await store.getJob(id);
    if (!job) throw new JobNotFoundError(id);
    const logs = await store.getLogs(id, options.logLimit ?? 200);
    return { ...job, logs };
  }

  /**
   * Everything a job is connected to: its dependencies and dependents (with the policy of each edge and
   * whether it was applied), its parent, its children (at most 10,000) and its batch.
   */
  async flow(id: string): Promise<FlowView> {
    const flow = await (await this.store()).getFlow(id);
    if (!flow) throw new JobNotFoundError(id);
    return flow;
  }

  /** Limit keys held by a rate limit now, with their backlog, largest backlog first (`sluice doctor`). */
  async keyHolds(limit = 20): Promise<KeyHold[]> {
    return (await this.store()).keyHolds(limit);
  }

  /** Blocked jobs that nothing will release (`sluice doctor`); empty on a healthy store. */
  async stuckBlocked(limit = 100): Promise<StuckBlockedJob[]> {
    return (await this.store()).stuckBlocked(limit);
  }

  /** A batch's status: counts by outcome, pending (total minus those), callbacks and when they fired. */
  async batch(id: string): Promise<BatchRecord & { pending: number }> {
    const batch = await (await this.store()).getBatch(id);
    if (!batch) throw new BatchNotFoundError(id);
    return { ...batch, pending: batchPending(batch) };
  }

  /** Batches newest first; `finished: false` keeps those with members still pending. */
  async batches(
    options: { finished?: boolean; limit?: number; cursor?: string | null } = {},
  ): Promise<{ batches: (BatchRecord & { pending: number })[]; nextCursor: string | null }> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000) {
      throw new ValidationError("INVALID_OPTION", `limit must be an integer from 1 to 1000, got ${limit}`, {
        field: "limit",
      });
    }
    const page = await (await this.store()).listBatches({
      limit,
      cursor: options.cursor ?? null,
      ...(options.finished === undefined ? {} : { finished: options.finished }),
    });
    return { ...page, batches: page.batches.map((b) => ({ ...b, pending: batchPending(b) })) };
  }

  /** Back to `waiting` with a fresh attempt count: dead (DLQ requeue), cancelled, completed or scheduled jobs. */
  async retry(filter: AdminFilter | string, options: BulkRunOptions = {}): Promise<BulkResult> {
    return this.bulk(filter, options, BULK_STATES.retry, (store, f, o) => store.retry(f, o));
  }

  /** Cancels waiting / scheduled jobs at once; active ones get their handler's signal aborted. */
  async cancel(
    filter: AdminFilter | string,
    options: BulkRunOptions = {},
  ): Promise<BulkResult & { requested: string[] }> {
    const requested: string[] = [];
    const result = await this.bulk(filter, options, BULK_STATES.cancel, async (store, f, o) => {
      const r = await store.cancel(f, o);
      requested.push(...r.requested);
      return r;
    });
    return { ...result, requested };
  }

  /** Deletes jobs that are not active (a job claimed ahead and not started is waiting: it is deleted). */
  async delete(filter: AdminFilter | string, options: BulkRunOptions = {}): Promise<BulkResult> {
    return this.bulk(filter, options, BULK_STATES.remove, (store, f, o) => store.remove(f, o));
  }

  /**
   * Moves matching jobs that are not running (scheduled, waiting, blocked, dead, cancelled) to `toQueue`,
   * e.g. large documents to a dedicated queue. They keep their id, attempts and place in line.
   */
  async move(
    filter: AdminFilter | string,
    toQueue: string,
    options: BulkRunOptions = {},
  ): Promise<BulkResult> {
    const queue = validateQueueName(toQueue, "toQueue");
    return this.bulk(filter, options, BULK_STATES.move, (store, f, o) => store.move(f, queue, o));
  }

  /** Sets the priority of matching jobs that have not started (lower runs first). */
  async reprioritize(
    filter: AdminFilter | string,
    priority: number,
    options: BulkRunOptions = {},
  ): Promise<BulkResult> {
    if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
      throw new ValidationError(
        "INVALID_OPTION",
        `priority must be an integer from -1000000 to 1000000, got ${priority}`,
        {
          field: "priority",
        },
      );
    }
    return this.bulk(filter, options, BULK_STATES.reprioritize, (store, f, o) =>
      store.reprioritize(f, priority, o),
    );
  }

  /** Stops fetching from a queue (jobs keep arriving and wait). */
  async pause(queue: string): Promise<void> {
    await (await this.store()).pauseQueue(queue, null);
  }

  /** Starts fetching from a paused queue again (also lifts a rate-limit pause). */
  async resume(queue: string): Promise<void> {
    await (await this.store()).resumeQueue(queue);
  }

  /**
   * Manual orphan recovery on top of the automatic one. Without `olderThanMs`: active jobs whose lease
   * expired. With it: any active job started longer ago than that, whatever its lease (for handlers that
   * hang while still heartbeating). `dryRun` lists what would be recovered and changes nothing.
   */
  async recover(
    options: { olderThanMs?: number; dryRun?: boolean; limit?: number } = {},
  ): Promise<RecoveredJob[]> {
    const store = await this.store();
    const mode =
      options.olderThanMs === undefined
        ? ({ kind: "expired" } as const)
        : ({ kind: "startedBefore", at: Date.now() - options.olderThanMs } as const);
    const dryRun = options.dryRun ?? false;
    const recovered = await store.recover({ mode, dryRun, limit: options.limit ?? 10_000 });
    if (!dryRun && recovered.length > 0) {
      const at = Date.now();
      // As the automatic pass does: the roll-up counts the attempts, listeners see each job.
      await store.addHourlyStats(recoveryStats(recovered, at));
      for (const job of recovered) {
        this.events?.emit("recovered", {
          jobId: job.id,
          queue: job.queue,
          task: job.task,
          at,
          attempt: job.attempt,
          to: job.to,
          reason: job.reason,
        });
      }
    }
    return recovered;
  }

  /** Per queue and hour since `sinceMs` ago: completed, failed attempts, dead, p50/p95 duration. From the roll-up. */
  async stats(options: { sinceMs: number }): Promise<HourlyStats[]> {
    if (!Number.isFinite(options.sinceMs) || options.sinceMs < 0) {
      throw new ValidationError("INVALID_OPTION", `sinceMs must be >= 0, got ${options.sinceMs}`, {
        field: "sinceMs",
      });
    }
    const rows = await (await this.store()).readHourlyStats(hourOf(Date.now() - options.sinceMs));
    return rows.map((r) => ({
      queue: r.queue,
      hour: r.hour,
      completed: r.completed,
      failed: r.failed,
      dead: r.dead,
      p50Ms: histogramPercentile(r.durations, 50),
      p95Ms: histogramPercentile(r.durations, 95),
      lastCompletedAt: r.lastCompletedAt,
    }));
  }

  /**
   * Epoch ms of the latest completion per queue within the last `sinceMs` (from the roll-up, as of the
   * workers' last stats flush, every few seconds); queues with none are absent.
   */
  async lastCompletions(options: { sinceMs: number }): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const row of await this.stats(options)) {
      const at = latest(out.get(row.queue) ?? null, row.lastCompletedAt);
      if (at !== null) out.set(row.queue, at);
    }
    return out;
  }

  /**
   * Runs a bulk action in batches of `batchSize`. By ids: the ids in chunks. By filter: the matching jobs
   * are walked once, oldest first, with the listing cursor (enqueue order), and each page is acted on by
   * id; the store checks the filter and the state again. A job the action changes so that it matches
   * again — a retried job that dies again while this runs — is behind the cursor and never taken twice.
   * A single id (a string) that names no job throws JobNotFoundError.
   */
  private async bulk<R extends BulkResult>(
    filter: AdminFilter | string,
    options: BulkRunOptions,
    allowed: readonly JobState[],
    action: (store: Store, filter: JobFilter, options: BulkOptions) => Promise<R>,
  ): Promise<BulkResult> {
    const store = await this.store();
    const storeFilter = toStoreFilter(typeof filter === "string" ? { ids: [filter] } : filter);
    const limit = options.batchSize ?? 1_000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new ValidationError(
        "INVALID_OPTION",
        `batchSize must be an integer from 1 to 10000, got ${limit}`,
        {
          field: "batchSize",
        },
      );
    }
    const total: BulkResult = { count: 0, ids: [] };
    const apply = async (ids: readonly string[]) => {
      // Yield between batches: a store that answers without I/O (SQLite) would otherwise never let an
      // abort (Ctrl-C) or anything else in this process run until the whole action is done.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (options.signal?.aborted) return;
      const result = await action(store, { ...storeFilter, ids }, { limit: ids.length });
      total.count += result.count;
      if (total.ids.length < 10_000) total.ids.push(...result.ids.slice(0, 10_000 - total.ids.length));
      options.onProgress?.(total.count);
    };
    if (storeFilter.ids) {
      for (let at = 0; at < storeFilter.ids.length; at += limit) {
        if (options.signal?.aborted) break;
        await apply(storeFilter.ids.slice(at, at + limit));
      }
      if (typeof filter === "string" && total.count === 0 && !(await store.getJob(filter))) {
        throw new JobNotFoundError(filter);
      }
      return total;
    }
    const states = storeFilter.states ? storeFilter.states.filter((s) => allowed.includes(s)) : allowed;
    if (states.length === 0) return total;
    let cursor: string | null = null;
    do {
      if (options.signal?.aborted) break;
      const page = await store.listJobs({ filter: { ...storeFilter, states }, limit, cursor, order: "asc" });
      if (page.jobs.length > 0) await apply(page.jobs.map((job) => job.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    return total;
  }
}

function toStoreFilter(filter: AdminFilter): JobFilter {
  const out: JobFilter = {};
  if (filter.ids !== undefined) {
    if (!Array.isArray(filter.ids) || filter.ids.some((id) => typeof id !== "string")) {
      throw new ValidationError("INVALID_OPTION", "ids must be an array of job id strings", {
        field: "filter.ids",
      });
    }
    out.ids = filter.ids;
  }
  if (filter.queue !== undefined) out.queue = filter.queue;
  if (filter.task !== undefined) out.task = filter.task;
  if (filter.tag !== undefined) out.tag = filter.tag;
  for (const key of ["batchId", "parentId"] as const) {
    const value = filter[key];
    if (value === undefined) continue;
    if (typeof value !== "string" || value === "") {
      throw new ValidationError("INVALID_OPTION", `${key} must be a non-empty string`, {
        field: `filter.${key}`,
      });
    }
    out[key] = value;
  }
  if (filter.idPrefix !== undefined) {
    if (typeof filter.idPrefix !== "string" || filter.idPrefix === "") {
      throw new ValidationError("INVALID_OPTION", "idPrefix must be a non-empty string", {
        field: "filter.idPrefix",
      });
    }
    out.idPrefix = filter.idPrefix;
  }
  if (filter.payloadField !== undefined) {
    const { path, equals } = filter.payloadField ?? {};
    const scalar =
      equals === null || ["string", "boolean"].includes(typeof equals) || Number.isFinite(equals);
    if (
      !Array.isArray(path) ||
      path.length === 0 ||
      path.some((key) => typeof key !== "string" || key === "") ||
      !scalar
    ) {
      throw new ValidationError(
        "INVALID_OPTION",
        "payloadField must be { path: non-empty list of keys, equals: a string, number, boolean or null }",
        { field: "filter.payloadField" },
      );
    }
    out.payloadField = { path: [...path], equals };
  }
  if (filter.state !== undefined) {
    const states = (Array.isArray(filter.state) ? filter.state : [filter.state]) as unknown[];
    for (const state of states) {
      if (!isJobState(state)) {
        throw new ValidationError(
          "INVALID_OPTION",
          `unknown state "${String(state)}": use scheduled, waiting, active, completed, dead, cancelled or blocked`,
          { field: "filter.state" },
        );
      }
    }
    out.states = states as JobState[];
  }
  if (filter.olderThanMs !== undefined) {
    if (!Number.isFinite(filter.olderThanMs) || filter.olderThanMs < 0) {
      throw new ValidationError("INVALID_OPTION", `olderThanMs must be >= 0, got ${filter.olderThanMs}`, {
        field: "filter.olderThanMs",
      });
    }
    out.createdBefore = Date.now() - filter.olderThanMs;
  }
  return out;
}
