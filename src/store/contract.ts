/**
 * The store contract: the one interface every engine (SQLite, PostgreSQL, Redis) implements.
 *
 * Rules every engine follows (the conformance suite in `test/conformance` checks them):
 * - **Atomic transitions.** Each method that changes a job's state does so atomically with its guard
 *   (state check, lease token check). Batch methods are one round trip / one transaction per call.
 * - **Fencing.** `claim` bumps the job's `leaseToken`. `complete`, `fail`, `release`, `extendLeases` and
 *   `progress` act only when the caller's token equals the stored one and the job is still `active`;
 *   otherwise they change nothing and report the item as not applied (never throw for a stale token).
 * - **Clocks.** Absolute times passed in (`runAt`) are epoch ms from the caller. Lease expiry is computed
 *   and compared with the engine's own clock (the database's for PostgreSQL, the server's for Redis), so
 *   skew between worker hosts cannot expire a healthy lease.
 * - **Order.** Within a queue, claims take `priority` ascending, then `runAt`, then `seq` (enqueue order).
 *   Queues in a claim request are served strictly in the given order; weighting is the runtime's job.
 * - **Promotion.** `claim` first moves due `scheduled` jobs of the requested queues to `waiting`, so a
 *   delayed job never needs a separate scheduler process to start.
 * - **Limits.** `claim` never takes a job that would break its queue's limits (core/limits.ts) — queue
 *   concurrency and rate, per-key concurrency and rate, key holds — counted atomically with the claim
 *   across every process (a claim racing another claim cannot both take the last slot). Jobs of a key at
 *   its limit are skipped, not waited for: other keys of the queue keep flowing.
 * - **No partial writes.** Invalid input is rejected by the caller before the store is called; a store
 *   failure rejects with `StoreUnavailableError` and leaves nothing half-written.
 *
 *
 * **Unstable for outside implementers.** The contract is exported so tests and tools can type against it,
 * but it changes with every feature (new methods, new fields); an engine written outside this repository
 * will break between minor versions. New engines belong in `src/store/<engine>/` with the conformance suite
 * (CONTRIBUTING.md, "Add an engine").
 */

import type { MissedTicks } from "../core/cron.js";
import type { FailNext } from "../core/failure-policy.js";
import type { FleetEvent } from "../core/fleet-events.js";
import type { BatchEvent, BatchRecord, Dependency, FlowView } from "../core/flows.js";
import type { AttemptError, BackoffSpec, JobLogLine, JobRecord, JobState, Retention } from "../core/job.js";
import type { QueueLimits } from "../core/limits.js";
import type { StatsRow } from "../core/stats.js";

/** Where a failed attempt sends the job; the runtime decides it (core/failure-policy.ts). */
export type { FailNext };

/** A validated job ready to be written. Built by the producer API; engines never validate again. */
export interface NewJob {
  id: string;
  /** True when `id` came from the caller's `jobId`: an existing job with that id is returned, not replaced. */
  idempotent: boolean;
  task: string;
  queue: string;
  /** The payload, already serialised as JSON text (and size-checked). */
  payload: string;
  priority: number;
  /** Epoch ms. A job whose `runAt` is in the future starts `scheduled`, otherwise `waiting`. */
  runAt: number;
  maxAttempts: number;
  backoff: BackoffSpec | null;
  timeoutMs: number | null;
  /**
   * Deduplication key, scoped to the job's queue: while a job of the same queue with this key is in one of
   * `uniqueStates` (and before its `uniqueUntil`), enqueue returns it. Per queue so every key of a queue
   * lives in one Redis Cluster slot; put the queue-independent identity in `id` (idempotent jobId) instead.
   */
  uniqueKey: string | null;
  uniqueStates: readonly JobState[];
  /** Epoch ms after which the key no longer deduplicates; null = no time window. */
  uniqueUntil: number | null;
  tags: readonly string[];
  retention: Retention;
  /** The job whose handler enqueued this one (`ctx.enqueue`); cancelling the parent cancels it (core/flows.ts). */
  parentId: string | null;
  /**
   * Jobs this one waits for (core/flows.ts rule 1): each must exist in the store or earlier in the same
   * enqueue call, else the whole call rejects with DependencyNotFoundError and writes nothing. Empty = none.
   * The caller has checked there is no cycle among the jobs of the call.
   */
  dependsOn: readonly Dependency[];
  /**
   * The batch the job joins: the call's `batch`, or an existing batch that has not finished (else the call
   * rejects with BatchNotFoundError / BatchFinishedError and writes nothing). Null = none.
   */
  batchId: string | null;
  /** The job's limit key (core/limits.ts: per-key concurrency, rate and holds), or null. */
  limitKey: string | null;
}

/** A batch created by an enqueue call together with its first members (core/flows.ts rule 3). */
export interface NewBatch {
  id: string;
  description: string | null;
  /**
   * Callbacks by moment. The engine enqueues each (at most once) as job `<batch id>:<event>` from its
   * template, with payload `{ batchId, event, total, completed, dead, cancelled, data }` where `data` is
   * `dataJson` (JSON text; "null" when none) — BatchCallbackPayload.
   */
  callbacks: readonly { event: BatchEvent; template: JobTemplate }[];
  dataJson: string;
}

/** What enqueue did for one job. */
export interface EnqueueResult {
  /** The id of the job now in the store: the new one, or the existing one when deduplicated. */
  id: string;
  state: JobState;
  /** False when an existing job was returned (idempotent id or unique key). */
  created: boolean;
}

export interface ClaimRequest {
  /** Queues to take from, in strict order. */
  queues: readonly string[];
  /** Most jobs to take. */
  limit: number;
  workerId: string;
  /** Lease length; the engine sets `leaseExpiresAt = its now + leaseMs`. */
  leaseMs: number;
  /**
   * How many of the jobs taken (the first, in claim order) start at once: their `startedAt` is set. The
   * others are held ahead (`startedAt` null) until `start` marks them; users see them as `waiting`
   * (core/states.ts `asSeen`). Default: all.
   */
  start?: number;
}

/** Identifies one lease: a job and the token its claim received. */
export interface LeaseRef {
  id: string;
  token: number;
}

export interface CompleteRequest extends LeaseRef {
  /** Result as JSON text, or null. */
  result: string | null;
}

export interface FailRequest extends LeaseRef {
  error: AttemptError;
  next: FailNext;
}

export interface ReleaseRequest extends LeaseRef {
  /** When to run again; absent = at once. The attempt is not charged. */
  runAt?: number;
  reason: string;
}

/**
 * A running job that enqueued children with `wait` ends its attempt by waiting for them (core/flows.ts
 * rule 5): fenced like `release`, its attempt is not charged; it becomes `blocked` on `dependsOn` (edges to
 * jobs already final are resolved at once; a missing job counts as deleted), or `waiting` when nothing is
 * left to wait for, or `dead` when a policy says so, or `cancelled` when a cancel was requested meanwhile.
 */
export interface BlockRequest extends LeaseRef {
  dependsOn: readonly Dependency[];
}

/** A blocked job that cannot leave `blocked` by itself (`sluice doctor`): an engine bug or a hand-edited store. */
export interface StuckBlockedJob {
  id: string;
  queue: string;
  task: string;
  createdAt: number;
  pendingDependencies: number;
  /** Its unresolved dependencies with their states (null = the job no longer exists). */
  waitingFor: { id: string; state: JobState | null }[];
}

export interface ProgressRequest extends LeaseRef {
  /** Progress as JSON text. */
  progress: string;
  /** False: store the progress without writing a `progress` fleet event (the task turned them off). Default true. */
  event?: boolean;
}

export interface LogRequest extends JobLogLine {
  id: string;
}

/**
 * What `extendLeases` found. Both lists name the lease (job id AND token) they are about, never the job
 * alone: a report about an older claim of a job must not touch a newer claim of the same job (a heartbeat
 * sent before a recovery and answered after the same worker claimed the job again).
 */
export interface ExtendResult {
  /** Leases that no longer belong to the caller (expired and recovered, deleted, or re-claimed). */
  lost: LeaseRef[];
  /** Leases of jobs an operator asked to cancel: the runtime aborts their handlers. */
  cancelRequested: LeaseRef[];
  /**
   * Leases still held whose queue is paused now (by an operator, or by a rate limit not yet over): the
   * runtime gives back at once those it claimed ahead and has not started, so a pause stops every job that
   * was not running yet.
   */
  paused: LeaseRef[];
}

/** Which active jobs a recovery pass takes. */
export interface RecoverRequest {
  /**
   * `expired` (the automatic pass): leases past their expiry. `startedBefore`: any active job that
   * started before this epoch ms, whatever its lease (the operator's "stuck for 30 minutes" hammer).
   *
   * `waitAfterRestartMs` (set by the maintenance pass to one lease period): no expired lease is recovered
   * until the store server has been up, and this process's connection to it has been back, at least that
   * long. Leases that ran out during an outage belong to workers that may well be alive, holding finished
   * outcomes they could not write; they get one lease period to write them or extend their leases before
   * recovery calls them orphans. Engines without a server (SQLite) ignore it.
   */
  mode: { kind: "expired"; waitAfterRestartMs?: number } | { kind: "startedBefore"; at: number };
  dryRun: boolean;
  limit: number;
}

export interface RecoveredJob {
  id: string;
  queue: string;
  task: string;
  workerId: string | null;
  attempt: number;
  maxAttempts: number;
  /** Where the job went (or would go, on a dry run). */
  to: "waiting" | "dead" | "cancelled";
  reason: string;
}

/** Filter for listing and bulk admin actions. Fields combine with AND; absent fields match everything. */
export interface JobFilter {
  ids?: readonly string[];
  queue?: string;
  states?: readonly JobState[];
  task?: string;
  /** Jobs created before this epoch ms (`--older-than`). */
  createdBefore?: number;
  /** Members of this batch. */
  batchId?: string;
  /** Children of this job (`parentId`). */
  parentId?: string;
  tag?: string;
  /** Jobs whose id starts with this text (taken literally: `%`, `_` and `*` match themselves). */
  idPrefix?: string;
  /**
   * Jobs whose payload has `equals` at `path` (object keys from the payload's root; a JSON scalar compared by
   * type and value: `"7"` does not match `7`). The API's `payload.docId=7` filter.
   */
  payloadField?: { path: readonly string[]; equals: string | number | boolean | null };
}

export interface ListRequest {
  filter: JobFilter;
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: string | null;
  /** `desc` (newest first, default) or `asc` (oldest first). */
  order?: "asc" | "desc";
}

export interface JobPage {
  jobs: JobRecord[];
  /** Pass back to get the next page; null when this was the last. */
  nextCursor: string | null;
}

export interface QueueStats {
  queue: string;
  counts: Record<JobState, number>;
  /**
   * Scheduled jobs whose run time has passed (delays and backoffs that are over). Claims promote them to
   * `waiting`, so they are backlog too: a queue with no live worker keeps them here, not in `waiting`.
   */
  due: number;
  /**
   * Run time of the oldest job ready to run — waiting, or scheduled and due (latency = now - this) — or
   * null when none is.
   */
  oldestWaitingAt: number | null;
  paused: boolean;
  /** Epoch ms until which the queue is paused by a rate limit, or null. */
  pausedUntil: number | null;
  /** The queue's limits (`setQueueLimits`), or null when it has none. */
  limits: QueueLimits | null;
  /**
   * Active jobs as the limits count them — claimed-ahead included, unlike `counts.active`, which shows
   * those as waiting — whether or not the queue has limits.
   */
  limitedActive: number;
  /** Keys of the queue held by a rate limit now (`holdKey`). */
  heldKeys: number;
}

/** A limit key held by a `RateLimitedError` (`sluice doctor`: held keys with a backlog, top offenders first). */
export interface KeyHold {
  queue: string;
  key: string;
  /** Epoch ms when the hold ends. */
  until: number;
  /** Jobs of the key ready to run (waiting, or scheduled and due). */
  backlog: number;
}

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  busy: number;
  startedAt: number;
  lastHeartbeatAt: number;
  /** Library version of the worker (for mixed fleets during a rolling deploy). */
  version: string;
  /** Event-loop stalls the worker observed (runtime/loop-monitor.ts); zeros and null when none. */
  stalls: WorkerStalls;
  /**
   * The worker's dependency health checks (runtime/health.ts), one per queue that has one; empty when none.
   * Per worker: a failing check stops only this worker fetching that queue.
   */
  health: QueueHealth[];
  /** The worker's clock (its Date.now()) when it sent its last registration or heartbeat. */
  clock: number;
  /**
   * `clock` minus the store's clock when the store recorded it (PostgreSQL: the database's clock; Redis: its
   * TIME; SQLite: the process clock, so 0 on one host), in ms: positive = the worker's clock is ahead.
   * Includes the one-way latency of the call (milliseconds). Schedules and `runAt` rely on worker clocks.
   */
  clockSkewMs: number;
}

/** The state of one queue's dependency health check on one worker. */
export interface QueueHealth {
  queue: string;
  /** True while the check passes (or has not run yet). */
  ok: boolean;
  /** Epoch ms (worker clock) since when it is in this state. */
  since: number;
  /** The latest failure's message (kept after it passes again), or null when it never failed. */
  lastError: string | null;
  /** Epoch ms of the latest completed check, or null before the first. */
  checkedAt: number | null;
}

/** What a heartbeat carries besides the busy count (`heartbeatWorker`). */
export interface WorkerBeat {
  /** Event-loop stalls; absent = the stored ones stay. */
  stalls?: WorkerStalls;
  /** Health checks; absent = the stored ones stay. */
  health?: QueueHealth[];
  /** The worker's Date.now() as it sends the beat; absent = clock and skew stay as stored. */
  clock?: number;
}

/**
 * Event-loop stalls of one worker: blocks of its event loop longer than a third of its lease (a handler
 * doing CPU-bound or synchronous work), during which no heartbeat can run.
 */
export interface WorkerStalls {
  /** Stalls since the worker started. */
  count: number;
  /** The longest one, in ms (0 when none). */
  longestMs: number;
  /** The latest one, or null. */
  last: StallRecord | null;
}

/** One event-loop stall as the worker observed it. */
export interface StallRecord {
  /** Epoch ms when it was observed (its end). */
  at: number;
  /** How long the event loop was blocked. */
  ms: number;
  /** The worker's lease: a stall longer than this lets leases expire. */
  leaseMs: number;
  /** Tasks of the jobs running during the stall (distinct), and their ids (at most 20). */
  tasks: string[];
  jobIds: string[];
}

/** A worker with no stall observed. */
export const NO_STALLS: WorkerStalls = Object.freeze({ count: 0, longestMs: 0, last: null });

/** Something about the store an operator should know (`sluice doctor`). */
export interface StoreHazard {
  severity: "ok" | "warn" | "critical";
  code: string;
  message: string;
  /** The exact command or setting that fixes it. */
  fix?: string;
}

/** What a schedule enqueues at each tick: a job without its id, idempotency flag and run time. */
export type JobTemplate = Omit<NewJob, "id" | "idempotent" | "runAt">;

/** A recurring schedule as the store keeps it. Exactly one of `cron` / `everyMs` is set. */
export interface ScheduleRecord {
  name: string;
  /** The template's task and queue (the queue decides where the schedule's state lives on Redis). */
  task: string;
  queue: string;
  cron: string | null;
  /** IANA zone of `cron`. */
  timezone: string | null;
  everyMs: number | null;
  missed: MissedTicks;
  template: JobTemplate;
  /**
   * Fingerprint of the definition. Upserting the same version keeps `nextAt` and `lastTickAt`, so every
   * process of a deployment can declare its schedules at start without moving their clocks.
   */
  version: string;
  /** The next tick to fire (epoch ms), or null when the cron expression matches no later date. */
  nextAt: number | null;
  /** The latest tick fired (or skipped by the missed-ticks policy), or null before the first. */
  lastTickAt: number | null;
  /**
   * Paused by an operator (`pauseSchedule`): no tick fires (`fireSchedule` refuses it, atomically with the
   * pause) until `resumeSchedule`. Declaring the schedule again (`upsertSchedule`, at every worker start),
   * changed or not, keeps the pause: an operator's pause wins over a redeploy.
   */
  paused: boolean;
  updatedAt: number;
}

/** A schedule as declared (`upsertSchedule`): its clock's past and its pause are the store's. */
export type ScheduleUpsert = Omit<ScheduleRecord, "lastTickAt" | "updatedAt" | "paused">;

/** One firing of a schedule: compare-and-set on its next tick, and the jobs of the ticks, atomically. */
export interface FireRequest {
  name: string;
  /** The schedule's queue (as read): where its jobs go, and where Redis keeps its clock. */
  queue: string;
  /** The `nextAt` the caller read: the firing applies only if it is still the stored one. */
  dueAt: number;
  /** The tick to wait for next. */
  nextAt: number | null;
  /** The latest tick this firing covers. */
  lastTickAt: number;
  /** One job per tick that fires (ids unique per schedule and tick; empty when ticks are skipped). */
  jobs: readonly NewJob[];
}

/** Schema migrations of a store (`sluice migrate`). */
export interface MigrationStatus {
  /** Schema version now in the store. */
  current: number;
  /** Latest version this build knows. */
  latest: number;
  /** Versions this store object applied when it opened (empty when the schema was already current). */
  applied: number[];
}

/** The engines Sluice ships; `ENGINES` in ./index.ts lists one descriptor per name (checked by its type). */
export type EngineName = "sqlite" | "postgres" | "redis";

/** What the store says about itself. */
export interface StoreInfo {
  engine: EngineName;
  /** Server or library version. */
  version: string;
  /** Where it points, with any password removed. */
  location: string;
  hazards: StoreHazard[];
}

/**
 * A wake-up: new work may be available (`jobs`), or an operator changed something a worker holding jobs must
 * react to (`cancel`: a cancel request, or an operator's pause — `extendLeases` then reports which leases).
 */
export type StoreSignal = { type: "jobs"; queues: readonly string[] | null } | { type: "cancel" };

/** Bulk admin result. */
export interface BulkResult {
  /** Jobs changed. */
  count: number;
  /** Ids changed (at most the request's limit). */
  ids: string[];
}

/** Options for bulk admin actions; run in batches of `limit` so callers can report progress and stop. */
export interface BulkOptions {
  limit: number;
}

/**
 * Opaque engine-specific connection for transactional enqueue: a `pg` client for PostgreSQL, the
 * application's better-sqlite3 `Database` on the same file (inside its open transaction) for SQLite.
 * Redis refuses one (TRANSACTION_UNSUPPORTED).
 */
export type TransactionHandle = unknown;

/** What the runtime may assume about an engine; it reads these instead of comparing engine names. */
export interface StoreTraits {
  /**
   * Calls run inside this process with no network round trip (SQLite). The worker then claims no jobs
   * ahead of free slots (a claim costs nothing to repeat) and writes outcomes in one lane (one write lock).
   */
  readonly inProcess: boolean;
  /**
   * Holding jobs ahead pays: a claim is a round trip (PostgreSQL, whose claim also waits for the WAL flush;
   * Redis), and a claim starts the held jobs due within the start window, so they cost no write of their
   * own. A worker on `prefetch: "auto"` then holds ahead what it will start in the next moment at its
   * observed rate (runtime/claim-ahead.ts); elsewhere (SQLite, in process) "auto" holds nothing.
   */
  readonly claimAhead?: boolean;
}

/**
 * Reads fleet-wide events (`Store.readEvents`). Events are scanned in id order after `after`; those that
 * match the filter are returned.
 */
export interface ReadEventsRequest {
  /**
   * The last id the reader has seen, or null to start at the oldest event retained. Use `lastEventId()` to
   * start from now.
   */
  after: string | null;
  /** Most events to return. */
  limit: number;
  /** Only events of this queue (for a `moved` event: the queue it moved to). */
  queue?: string;
  /** Only events of this job. */
  jobId?: string;
}

export interface EventsPage {
  /** Matching events in id order (commit order), at most `limit`. */
  events: FleetEvent[];
  /**
   * Pass as the next `after`: the last id this read covered, matching or not (so a filtered reader moves on
   * past events of other queues). Equals `after` when nothing new was readable.
   */
  cursor: string | null;
  /**
   * True when events after `after` were lost to the reader: `after` is older than what retention kept, or
   * newer than anything the store assigned (the store was wiped or replaced). Reading went on from the
   * oldest retained event; the reader should reload whatever state it derives from events.
   */
  reset: boolean;
}

/** The store contract. */
export interface Store {
  readonly engine: StoreInfo["engine"];
  readonly traits: StoreTraits;

  /** Connects and applies migrations (safely when many processes start at once). Idempotent. */
  open(): Promise<void>;
  /** Releases connections, timers and subscriptions. */
  close(): Promise<void>;
  /** Round trip to the store; rejects with StoreUnavailableError when unreachable. */
  ping(): Promise<void>;
  info(): Promise<StoreInfo>;
  /** Schema version and what `open()` applied. Engines without a schema (Redis) report version 1 and nothing applied. */
  migrations(): Promise<MigrationStatus>;

  // ── producing ──────────────────────────────────────────────────────────────────────────────────
  /**
   * Writes all jobs in one transaction (or none on error). Results are in input order. With `batch`, the
   * batch is created in the same transaction (its members are the jobs whose `batchId` is its id; at least
   * one). Jobs with dependencies start `blocked` (or as their dependencies already decide: core/flows.ts).
   * Rejects with DependencyNotFoundError, BatchNotFoundError or BatchFinishedError (nothing written).
   */
  enqueue(
    jobs: readonly NewJob[],
    options?: { transaction?: TransactionHandle; batch?: NewBatch },
  ): Promise<EnqueueResult[]>;

  // ── consuming ──────────────────────────────────────────────────────────────────────────────────
  /** Promotes due scheduled jobs, then takes up to `limit` waiting jobs of unpaused queues under a new lease. */
  claim(request: ClaimRequest): Promise<JobRecord[]>;
  /**
   * Starts held jobs (claimed ahead, `startedAt` null): sets `startedAt` when the lease is still held and
   * the queue is not paused (claims would skip it). Per item: applied, or refused (an operator deleted,
   * moved or cancelled it, it was recovered, or its queue is paused): the worker then gives it back (a
   * fenced release, so only a paused one goes back to waiting) and never runs it.
   */
  start(leases: readonly LeaseRef[]): Promise<boolean[]>;
  /** Marks jobs completed (applying retention). Returns, per item, whether the token was still valid. */
  complete(requests: readonly CompleteRequest[]): Promise<boolean[]>;
  /**
   * Optional: `complete(completions)` and `start(starts)` in one call, one transaction (all or nothing),
   * durable as a completion is. For engines where a call is a network round trip (PostgreSQL); the worker
   * uses it when a start write finds completions waiting to be written, or a completion write finds starts.
   */
  completeAndStart?(
    completions: readonly CompleteRequest[],
    starts: readonly LeaseRef[],
  ): Promise<{ completed: boolean[]; started: boolean[] }>;
  /** Records a failed attempt and moves the job to `next`. Per item: applied or fenced. */
  fail(requests: readonly FailRequest[]): Promise<boolean[]>;
  /**
   * Returns active jobs to `waiting` (or `scheduled` when `runAt` is future) without charging the attempt;
   * a job whose cancel was requested meanwhile goes to `cancelled` instead.
   */
  release(requests: readonly ReleaseRequest[]): Promise<boolean[]>;
  /** Ends attempts by waiting for children (BlockRequest). Per item: applied or fenced. */
  block(requests: readonly BlockRequest[]): Promise<boolean[]>;
  /** Extends leases still held; reports those lost and those with a pending cancel. */
  extendLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<ExtendResult>;
  /** Stores handler progress (fenced). */
  saveProgress(requests: readonly ProgressRequest[]): Promise<boolean[]>;
  /** Appends handler log lines. */
  appendLogs(lines: readonly LogRequest[]): Promise<void>;
  /**
   * Sets `note` on the stored error of attempt `attempt` of job `id` (replacing an earlier note), whatever
   * the job's state and lease: not fenced by a token, matched by the attempt number. The worker that lost
   * a lease tells why (an event-loop stall) on the error lease recovery wrote. False when the job has no
   * error for that attempt.
   */
  annotateAttempt(id: string, attempt: number, note: string): Promise<boolean>;
  /** Earliest `runAt` among scheduled jobs of these queues (to arm a timer), or null. */
  nextRunAt(queues: readonly string[]): Promise<number | null>;
  /** Calls `listener` when work may be available or a cancel was requested. Returns an unsubscribe function. */
  subscribe(listener: (signal: StoreSignal) => void): () => void;

  // ── maintenance ────────────────────────────────────────────────────────────────────────────────
  /** Recovers active jobs per `request.mode`: back to waiting (counted as an attempt), dead when out of attempts. */
  recover(request: RecoverRequest): Promise<RecoveredJob[]>;
  /**
   * Deletes completed jobs past their retention, workers silent since `workersSilentSince`, and fleet
   * events older than `eventsBefore` (epoch ms) or beyond the newest `maxEvents` (at most `limit` of each
   * per call; Redis trims its stream approximately, and PostgreSQL also deletes the due events below its
   * window of `limit` ids whose transactions committed after an earlier prune passed their ids). Remembers
   * the newest event id pruned, so `readEvents` can tell a reader that asks for one that it lost events
   * (`reset`).
   */
  prune(options: {
    limit: number;
    workersSilentSince: number;
    eventsBefore?: number;
    maxEvents?: number;
  }): Promise<{ jobs: number; workers: number; events: number }>;
  /** Takes or renews a named leadership lease; true when `owner` holds it afterwards. */
  tryLead(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Gives up leadership if held by `owner`. */
  resign(name: string, owner: string): Promise<void>;

  // ── worker registry ────────────────────────────────────────────────────────────────────────────
  /** Adds or replaces a worker's entry. */
  registerWorker(worker: WorkerInfo): Promise<void>;
  /**
   * Records a heartbeat, and the worker's event-loop stalls when given (left as stored when absent); with
   * `beat`, its health checks and its clock (the store computes `clockSkewMs` against its own clock).
   * `registerWorker` computes the skew from `WorkerInfo.clock` the same way. Returns false when the worker has no entry (pruned after a long outage or a partition): the runtime
   * then registers it again, so it never silently disappears from the registry.
   */
  heartbeatWorker(id: string, busy: number, stalls?: WorkerStalls, beat?: WorkerBeat): Promise<boolean>;
  unregisterWorker(id: string): Promise<void>;
  listWorkers(): Promise<WorkerInfo[]>;

  // ── admin ──────────────────────────────────────────────────────────────────────────────────────
  queueStats(): Promise<QueueStats[]>;
  listJobs(request: ListRequest): Promise<JobPage>;
  getJob(id: string): Promise<JobRecord | null>;
  getLogs(id: string, limit: number): Promise<JobLogLine[]>;
  /** The job's dependencies, dependents, parent, children (at most 10,000) and batch; null when no such job. */
  getFlow(id: string): Promise<FlowView | null>;
  getBatch(id: string): Promise<BatchRecord | null>;
  /**
   * Batches newest first (by creation, then id); `finished` true / false keeps only finished / open ones.
   * The cursor is opaque.
   */
  listBatches(request: {
    limit: number;
    cursor?: string | null;
    finished?: boolean;
  }): Promise<{ batches: BatchRecord[]; nextCursor: string | null }>;
  /**
   * Blocked jobs that nothing will release: no unresolved dependency left, or one whose job is final or gone
   * without having resolved the edge. Correct engines keep this empty; `sluice doctor` reports it.
   */
  stuckBlocked(limit: number): Promise<StuckBlockedJob[]>;
  /** Moves matching dead / cancelled / completed / scheduled jobs to `waiting` with a fresh attempt count. */
  retry(filter: JobFilter, options: BulkOptions): Promise<BulkResult>;
  /**
   * Cancels matching scheduled / waiting / blocked jobs at once; flags matching active jobs (see
   * `extendLeases`). Jobs cancelled resolve their dependents and cancel their children (core/flows.ts).
   */
  cancel(filter: JobFilter, options: BulkOptions): Promise<BulkResult & { requested: string[] }>;
  /**
   * Deletes matching jobs that are not active. A deleted job that was not final resolves its dependents and
   * counts in its batch as cancelled (core/flows.ts).
   */
  remove(filter: JobFilter, options: BulkOptions): Promise<BulkResult>;
  /**
   * Moves matching jobs in `MOVABLE_STATES` whose queue is not already `toQueue` to `toQueue`, keeping id,
   * payload, attempts, priority and run time (so they keep their place by priority → runAt → seq).
   * Never touches active jobs (they finish where they are).
   */
  move(filter: JobFilter, toQueue: string, options: BulkOptions): Promise<BulkResult>;
  /** Sets `priority` on matching scheduled / waiting / blocked jobs whose priority differs. */
  reprioritize(filter: JobFilter, priority: number, options: BulkOptions): Promise<BulkResult>;
  /**
   * Pauses a queue: `until` = null until resumed (an operator), a time = until then (a rate limit). A rate
   * limit never lifts an operator's pause and only extends an earlier limit; `resumeQueue` clears both.
   * An operator's pause emits a `cancel` signal, so workers give back the jobs of the queue they claimed
   * ahead and have not started (`ExtendResult.paused`).
   */
  pauseQueue(queue: string, until: number | null): Promise<void>;
  resumeQueue(queue: string): Promise<void>;
  /**
   * Sets (replaces) a queue's limits; null removes them. Claims apply them from the next call on, in every
   * process. Jobs already active stay active (a lowered concurrency drains down to the new limit).
   */
  setQueueLimits(queue: string, limits: QueueLimits | null): Promise<void>;
  /**
   * Holds a limit key of a queue until `until` (a job with that key met an upstream 429): claims skip its
   * jobs until then; only ever extends an earlier hold. `resumeQueue` clears the queue's key holds too.
   */
  holdKey(queue: string, key: string, until: number): Promise<void>;
  /** Keys held now, with their backlog, largest backlog first (at most `limit`). */
  keyHolds(limit: number): Promise<KeyHold[]>;

  // ── schedules ──────────────────────────────────────────────────────────────────────────────────
  /**
   * Adds or replaces a schedule. When the stored one has the same `version`, its `nextAt` and `lastTickAt`
   * are kept (the given `nextAt` is used for a new or changed schedule). Returns the schedule as stored.
   */
  upsertSchedule(schedule: ScheduleUpsert): Promise<ScheduleRecord>;
  /** Every schedule, by name. */
  listSchedules(): Promise<ScheduleRecord[]>;
  /** Deletes a schedule; false when there was none. Jobs it already enqueued stay. */
  removeSchedule(name: string): Promise<boolean>;
  /**
   * Pauses a schedule: from now on `fireSchedule` refuses it, so no tick fires, whatever scheduler runs.
   * Its clock (`nextAt`, `lastTickAt`) stays as it was. Pausing a paused schedule changes nothing. Returns
   * the schedule as stored, or null when there is none.
   */
  pauseSchedule(name: string): Promise<ScheduleRecord | null>;
  /**
   * Resumes a paused schedule and sets its next tick to `nextAt` (the caller's next tick after now), so the
   * ticks that fell while it was paused are dropped, whatever its `missed` policy: a pause is an operator's
   * decision, not an outage to catch up on. A schedule that is not paused is left as it is (its clock does
   * not move). Returns the schedule as stored, or null when there is none.
   */
  resumeSchedule(name: string, nextAt: number | null): Promise<ScheduleRecord | null>;
  /**
   * Fires a schedule: if its stored `nextAt` still equals `dueAt`, sets `nextAt` / `lastTickAt` and enqueues
   * `jobs`, in one transaction (one script on Redis), so a tick fires once across any number of schedulers.
   * A paused schedule does not fire. Returns the enqueue results, or null when another scheduler fired it
   * first, it changed, or it is paused.
   */
  fireSchedule(request: FireRequest): Promise<EnqueueResult[] | null>;

  // ── fleet-wide events ──────────────────────────────────────────────────────────────────────────
  /**
   * Reads events after `request.after` (core/fleet-events.ts). Events are written by the transitions
   * themselves, in their transaction or script, so an event is readable exactly when its transition has
   * committed, and ids only ever grow in commit order: a reader that resumes from the last id it saw misses
   * nothing and sees nothing twice (while that id is retained; otherwise `reset`). Rejects a malformed
   * `after` with ValidationError (INVALID_OPTION).
   */
  readEvents(request: ReadEventsRequest): Promise<EventsPage>;
  /** The newest event id readable now (a reader that starts "from now" passes it as `after`), or null when none. */
  lastEventId(): Promise<string | null>;

  // ── stats roll-up ──────────────────────────────────────────────────────────────────────────────
  /**
   * Adds increments to the hourly roll-up: for each (queue, hour), counters and histogram slots are ADDED
   * to what is stored (upsert-add), so many workers can flush concurrently. One transaction / round trip.
   */
  addHourlyStats(rows: readonly StatsRow[]): Promise<void>;
  /** Roll-up rows with `hour >= since`, ordered by hour then queue. `prune` drops rows older than 30 days. */
  readHourlyStats(since: number): Promise<StatsRow[]>;
}

// The state lists and reasons moved to core/states.ts (their one home); re-exported for code that imports them here.
export {
  forcedRecoveryReason,
  leaseExpiredReason,
  MOVABLE_STATES,
  REPRIORITIZABLE_STATES,
} from "../core/states.js";
