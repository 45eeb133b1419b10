/**
 * The embedded SQLite engine (better-sqlite3): one database file shared by any number of processes on one
 * machine — an API process that enqueues, worker processes that run jobs.
 *
 * - WAL journal: readers never block the writer; `synchronous=NORMAL` by default (durable across process
 *   crashes; `?synchronous=full` also across power loss).
 * - Every write is one `BEGIN IMMEDIATE` transaction, so the write lock is taken up front and two processes
 *   can never deadlock upgrading a read lock. Contention waits briefly on `busy_timeout` (5 ms), then
 *   retries asynchronously until a deadline (see retryWhileBusy); SQLITE_BUSY never reaches the caller (it
 *   becomes StoreUnavailableError only if the lock is held for longer than the deadline).
 * - better-sqlite3 is synchronous: a batch of 50 claims is ~0.1 ms of CPU, cheaper than any async driver's
 *   round trip, and it keeps each transaction's critical section short.
 * - Wake-ups: see signals.ts.
 * - Transactional enqueue: through the application's own connection, inside its transaction (see
 *   enqueueInTransaction).
 */

import { realpathSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { SluiceError, StoreUnavailableError, ValidationError } from "../../core/errors.js";
import { DEFAULT_EVENT_RETENTION, type FleetEvent, type FleetEventType } from "../../core/fleet-events.js";
import type { BatchRecord, FlowView } from "../../core/flows.js";
import type { AttemptError, JobLogLine, JobRecord, JobState, Json } from "../../core/job.js";
import { JOB_STATES } from "../../core/job.js";
import type { QueueLimits } from "../../core/limits.js";
import {
  asSeen,
  CANCEL_AT_ONCE_STATES,
  CANCELLABLE_STATES,
  CANCELLED_REASON,
  CANCELLED_WHILE_ACTIVE_REASON,
  MOVABLE_STATES,
  REMOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRIED_REASON,
  RETRYABLE_STATES,
  recoveryTarget,
} from "../../core/states.js";
import { addHistograms, STATS_RETENTION_MS, type StatsRow } from "../../core/stats.js";
import type {
  BlockRequest,
  BulkOptions,
  BulkResult,
  ClaimRequest,
  CompleteRequest,
  EnqueueResult,
  EventsPage,
  ExtendResult,
  FailRequest,
  FireRequest,
  JobFilter,
  JobPage,
  KeyHold,
  LeaseRef,
  ListRequest,
  LogRequest,
  MigrationStatus,
  NewBatch,
  NewJob,
  ProgressRequest,
  QueueStats,
  ReadEventsRequest,
  RecoveredJob,
  RecoverRequest,
  ReleaseRequest,
  ScheduleRecord,
  ScheduleUpsert,
  Store,
  StoreInfo,
  StoreSignal,
  StoreTraits,
  StuckBlockedJob,
  TransactionHandle,
  WorkerBeat,
  WorkerInfo,
  WorkerStalls,
} from "../contract.js";
import type { StoreOptions } from "../engine.js";
import {
  heldSql,
  retentionColumns,
  rowToSchedule,
  type ScheduleRow,
  scheduleUpsertSet,
  scheduleValues,
  seenStateBranches,
  seenStateSql,
  sqlStateList,
  sqlString,
} from "../sql-common.js";
import { parseStalls, stallsText } from "../stalls.js";
import { healthText, parseHealth } from "../worker-health.js";
import { BACKSTOP_AUTOCHECKPOINT_PAGES, Checkpointer } from "./checkpointer.js";
import { parseSqliteUrl, type SqliteConfig } from "./config.js";
import { sqliteEngine } from "./engine.js";
import {
  COUNT_FINAL,
  type FlowEffects,
  isFinal,
  needsSettle,
  newEffects,
  type PreparedJob,
  SETTLE_RETURNING,
  type SettleColumns,
  type Settled,
  SqliteFlows,
  settled,
} from "./flows.js";
import { sqliteHazards } from "./hazards.js";
import { type Gate, parseLimits, SqliteLimits } from "./limits.js";
import { LATEST_VERSION, migrate } from "./migrations.js";
import { byClaimOrder, columnIndex, type JobRow, jobRowFromRaw, rowToJob } from "./rows.js";
import { WakeChannel } from "./signals.js";

type Statement = Database.Statement<unknown[], unknown>;

/** A write waiting for the next group transaction (see SqliteStore.write). */
interface PendingWrite {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

const ACTIVE_ONLY = "state = 'active'";

/** What an event id looks like here: the decimal rowid of the `events` table. */
const EVENT_ID = /^\d{1,18}$/;
/** Most event ids one readEvents call scans past (a filtered reader far behind moves on in steps). */
const EVENT_SCAN_WINDOW = 10_000;

/** The columns of a job an event names, as UPDATE / DELETE … RETURNING gives them. */
interface EventJob {
  queue: string;
  task: string;
  attempt: number;
}

/** An `events` row. */
interface EventRow {
  id: number;
  at: number;
  type: string;
  queue: string;
  job_id: string | null;
  task: string | null;
  attempt: number | null;
  data: string | null;
}

/**
 * The oldest and newest event ids, one subquery per end: SQLite reads a b-tree's end only for a query with
 * a single MIN or MAX. With both in one SELECT it scanned every event, 6 ms at 130,000 events, in every
 * maintenance pass's write lock, where it held up the worker's jobs (test/sqlite/events.test.ts).
 */
export const EVENT_ENDS_SQL =
  "SELECT (SELECT MIN(id) FROM events) AS oldest, (SELECT MAX(id) FROM events) AS newest";

/**
 * Retention's two deletes, each named to its partial index. They run in every maintenance pass's write lock,
 * and the planner (no statistics) read `state = 'completed'` through jobs_state instead: every retained
 * completed job, 17 ms a pass with 50,000 kept, while the processes' enqueues and claims waited
 * (test/sqlite/retention-prune.test.ts). `INDEXED BY` fails the statement rather than plan it otherwise.
 * Expired: `?` now, `?` the most to delete.
 */
export const PRUNE_EXPIRED_SQL = `DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_keep_until
    WHERE state = 'completed' AND keep_until IS NOT NULL AND keep_until < ? LIMIT (? + 0))`;
/** Beyond each queue's newest `keep_value` completed jobs kept by count; `?` the most to delete. */
export const PRUNE_BY_COUNT_SQL = `DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM (
      SELECT seq, keep_value, ROW_NUMBER() OVER (PARTITION BY queue ORDER BY finished_at DESC, seq DESC) AS rn
      FROM jobs INDEXED BY jobs_keep_count WHERE state = 'completed' AND keep_mode = 'count')
    WHERE rn > keep_value LIMIT (? + 0))`;

/**
 * Most jobs, and most events, one transaction of a prune deletes; a prune of more runs several, pausing
 * between them. Every other process's enqueues, claims and completions wait for the write lock meanwhile:
 * a transaction deleting 5,000 expired jobs held it 12.5 ms, one of 500 holds it about 1.3 ms.
 */
export const PRUNE_ROWS_PER_TRANSACTION = 500;

/**
 * How long a prune waits after a transaction that took `tookMs` before its next one. SQLite's write lock is
 * not fair: a process waiting for it sleeps in its busy handler and retries 1 ms, then 3 ms after it first
 * tried, and would find the next prune transaction running if the pause were short. A pause of at least
 * 4 ms lets every waiter's second retry in; twice the transaction's time keeps prunes to a third of the lock
 * if they slow.
 */
export function prunePause(tookMs: number): number {
  return Math.max(4, 2 * tookMs);
}

export class SqliteStore implements Store {
  /** Writes waiting for the next group transaction (write()). */
  private pendingWrites: PendingWrite[] = [];
  readonly engine = "sqlite" as const;
  readonly traits: StoreTraits = sqliteEngine.traits;
  private readonly config: SqliteConfig;
  private db: Database.Database | null = null;
  private wake: WakeChannel | null = null;
  private checkpointer: Checkpointer | null = null;
  private transactionRunner: Database.Transaction<(fn: () => unknown) => unknown> | null = null;
  private readonly statements = new Map<string, Statement>();
  private opening: Promise<void> | null = null;
  private appliedOnOpen: number[] = [];
  private storeFlows: SqliteFlows | null = null;
  private storeLimits: SqliteLimits | null = null;
  /**
   * Queues with a concurrency limit (queue or key), as this process's last claim read them: a job of one
   * leaving \`active\` frees a slot that idle workers of other processes should race for, so they are woken
   * (they otherwise wait for their poll, and the worker that freed the slot refills it alone).
   */
  private slotLimited: ReadonlySet<string> = new Set();
  /** Whether transitions write fleet-wide events (StoreOptions.events.enabled). */
  private readonly eventsOn: boolean;

  constructor(
    url: string,
    private readonly options: StoreOptions,
  ) {
    this.config = parseSqliteUrl(url);
    this.eventsOn = (options.events ?? DEFAULT_EVENT_RETENTION).enabled;
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────────

  open(): Promise<void> {
    this.opening ??= this.openNow();
    return this.opening;
  }

  private async openNow(): Promise<void> {
    const deadline = Date.now() + this.config.lockDeadlineMs;
    for (;;) {
      try {
        const db = new Database(this.config.memory ? ":memory:" : this.config.path, {
          timeout: this.config.busyTimeoutMs,
        });
        try {
          db.pragma("journal_mode = WAL");
          db.pragma(`synchronous = ${this.config.synchronous.toUpperCase()}`);
          // Checkpoints run in a background thread (checkpointer.ts); commits only checkpoint as a backstop.
          if (!this.config.memory && this.config.checkpointMs > 0) {
            db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
          }
          db.pragma("foreign_keys = ON");
          db.pragma(`cache_size = -${this.config.cacheKiB}`); // see config.ts: resident memory of a worker
          const applied = migrate(db);
          this.appliedOnOpen = applied;
          if (applied.length > 0) {
            this.options.logger.info(
              { engine: "sqlite", path: this.config.path, applied },
              "sqlite migrations applied",
            );
          }
        } catch (error) {
          db.close();
          throw error;
        }
        this.db = db;
        break;
      } catch (error) {
        if (isBusy(error) && Date.now() < deadline) {
          await sleep(5 + Math.random() * 20);
          continue;
        }
        this.opening = null;
        const translated = this.translate(error, "open the database");
        if (translated instanceof SluiceError) throw translated;
        // better-sqlite3 reports a missing directory as a plain TypeError: still "cannot reach the store".
        throw new StoreUnavailableError(
          `cannot open SQLite database ${this.config.path}: ${translated.message}; check that the directory exists and is writable`,
          { cause: error },
        );
      }
    }
    this.wake = new WakeChannel(
      this.config.memory ? `memory:${hostname()}:${process.pid}:${Math.random()}` : this.config.path,
      this.config.memory ? null : this.config.path,
    );
    if (!this.config.memory && this.config.checkpointMs > 0) {
      this.checkpointer = new Checkpointer(
        this.config.path,
        { intervalMs: this.config.checkpointMs },
        (message) => {
          this.options.logger.warn(
            { engine: "sqlite", path: this.config.path, error: message },
            "background WAL checkpoints unavailable; SQLite checkpoints inside commits instead",
          );
          this.db?.pragma("wal_autocheckpoint = 1000"); // SQLite's own default
        },
      );
    }
  }

  async close(): Promise<void> {
    // Writes asked for before close() are written (or rejected), never left pending with no transaction.
    if (this.pendingWrites.length > 0 && this.db) await this.flushWrites();
    this.wake?.close();
    this.wake = null;
    await this.checkpointer?.close();
    this.checkpointer = null;
    this.statements.clear();
    this.transactionRunner = null;
    this.db?.close();
    this.db = null;
    this.opening = null;
  }

  async ping(): Promise<void> {
    await this.read(() => this.stmt("SELECT 1").get());
  }

  async info(): Promise<StoreInfo> {
    return this.read(() => {
      const db = this.conn();
      const hazards = sqliteHazards({
        journalMode: String(db.pragma("journal_mode", { simple: true })),
        schemaVersion: Number(db.pragma("user_version", { simple: true })),
        memory: this.config.memory,
        path: this.config.path,
      });
      const version = String((this.stmt("SELECT sqlite_version() AS v").get() as { v: string }).v);
      return {
        engine: "sqlite",
        version,
        location: this.config.memory ? ":memory:" : this.config.path,
        hazards,
      };
    });
  }

  async migrations(): Promise<MigrationStatus> {
    const current = await this.read(() => Number(this.conn().pragma("user_version", { simple: true })));
    return { current, latest: LATEST_VERSION, applied: [...this.appliedOnOpen] };
  }

  // ── producing ──────────────────────────────────────────────────────────────────────────────────

  async enqueue(
    jobs: readonly NewJob[],
    options?: { transaction?: TransactionHandle; batch?: NewBatch },
  ): Promise<EnqueueResult[]> {
    const transaction = options?.transaction;
    const batch = options?.batch;
    if (transaction !== undefined && transaction !== null)
      return this.enqueueInTransaction(transaction, jobs, batch);
    if (jobs.length === 0 && batch === undefined) return [];
    const effects = newEffects();
    const results = await this.write(() => this.insertJobs(jobs, Date.now(), undefined, batch, effects));
    this.notifyCreated(jobs, results);
    this.notifyEffects(effects);
    return results;
  }

  /**
   * Transactional enqueue: `handle` is the application's own better-sqlite3 connection to this database
   * file, with a transaction open (`db.exec("BEGIN IMMEDIATE")`). The jobs are written through that
   * connection, so they commit or roll back with the application's writes. The batch runs in a savepoint
   * (better-sqlite3 nests `db.transaction()` that way): if it fails, none of it is written and the
   * application's transaction stays open and usable. No retry on a locked database here (a transaction
   * that has read may not retry its way to the write lock): the connection's own busy timeout applies.
   *
   * Workers are woken when the transaction has ended (committed or rolled back: a wake that finds nothing
   * is harmless), seen by polling `inTransaction`; SQLite has no commit hook to tie it to. A transaction
   * open for over a minute is not waited for: the workers' safety poll finds its jobs.
   */
  private async enqueueInTransaction(
    handle: unknown,
    jobs: readonly NewJob[],
    batch: NewBatch | undefined,
  ): Promise<EnqueueResult[]> {
    const db = this.applicationConnection(handle);
    if (jobs.length === 0 && batch === undefined) return [];
    let results: EnqueueResult[];
    try {
      results = db.transaction(() =>
        this.insertJobs(jobs, Date.now(), (sql) => db.prepare(sql), batch, newEffects()),
      )();
    } catch (error) {
      if (isBusy(error)) {
        throw new StoreUnavailableError(
          `SQLite database ${this.config.path} is locked by another connection, so the enqueue in the ` +
            "application's transaction could not write (its savepoint was rolled back; the transaction is " +
            'still open): begin it with db.exec("BEGIN IMMEDIATE") to take the write lock up front, or retry',
          { cause: error },
        );
      }
      throw this.translate(error, "enqueue in the application's transaction");
    }
    if (results.some((r) => r.created) || batch !== undefined) {
      // A batch may have fired a callback into a queue of its own: wake every queue then.
      const queues = batch === undefined ? [...new Set(jobs.map((j) => j.queue))] : null;
      const signal: StoreSignal = { type: "jobs", queues };
      const started = Date.now();
      let delay = 1;
      const afterTransaction = () => {
        if (db.open && db.inTransaction && Date.now() - started < 60_000) {
          delay = Math.min(delay * 2, 100);
          setTimeout(afterTransaction, delay).unref();
          return;
        }
        this.notify(signal);
      };
      setTimeout(afterTransaction, delay).unref();
    }
    return results;
  }

  /** Checks that `handle` can carry a transactional enqueue into this database; INVALID_TRANSACTION if not. */
  private applicationConnection(handle: unknown): Database.Database {
    const what =
      "pass the application's better-sqlite3 Database opened on the same file as the store, with a " +
      'transaction open: db.exec("BEGIN IMMEDIATE"), await sluice.withTransaction(db).enqueue(…), then ' +
      'db.exec("COMMIT")';
    const invalid = (why: string) =>
      new ValidationError("INVALID_TRANSACTION", `${why}; ${what}`, { field: "transaction" });
    const db = handle as Partial<Database.Database> | null;
    if (
      typeof db !== "object" ||
      db === null ||
      typeof db.prepare !== "function" ||
      typeof db.transaction !== "function" ||
      typeof db.inTransaction !== "boolean" ||
      typeof db.name !== "string"
    ) {
      throw invalid("the transaction handle is not a better-sqlite3 Database");
    }
    this.conn(); // the store is open: the schema exists
    if (this.config.memory) {
      throw invalid(
        "an in-memory SQLite store cannot share a transaction with another connection (use a database file)",
      );
    }
    if (!db.open) throw invalid("the transaction's connection is closed");
    if (db.memory || realPath(db.name) !== realPath(this.config.path)) {
      throw invalid(
        `the transaction's connection is on ${db.memory ? ":memory:" : resolve(db.name)}, not on the store's file ${this.config.path}`,
      );
    }
    if (db.readonly) throw invalid("the transaction's connection is read-only");
    if (!db.inTransaction) {
      throw invalid(
        "no transaction is open on the connection (better-sqlite3's db.transaction(fn) cannot span an " +
          "await: begin one with BEGIN IMMEDIATE and commit after the enqueue resolves)",
      );
    }
    return db as Database.Database;
  }

  /**
   * Inserts `jobs` inside the caller's write transaction (dedup by id and unique key), with their flows
   * (flows.ts): the call's batch, edges, first states; `effects` collects whom to wake after the commit.
   */
  private insertJobs(
    jobs: readonly NewJob[],
    now: number,
    prepare?: (sql: string) => Statement,
    batch?: NewBatch,
    effects: FlowEffects = newEffects(),
  ): EnqueueResult[] {
    const sql = prepare ?? ((text: string) => this.stmt(text));
    const insert = sql(
      `INSERT INTO jobs (id, task, queue, state, payload, priority, run_at, created_at, max_attempts, backoff,
         timeout_ms, unique_key, unique_until, tags, keep_mode, keep_value, parent_id, batch_id, pending_deps,
         finished_at, reason, errors, batch_counted, limit_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    );
    const byId = sql("SELECT id, state FROM jobs WHERE id = ?");
    // Null for a call without dependencies or batches: the plain path does no flow work at all.
    const plan = (prepare ? this.flowsOn(prepare) : this.flows()).enqueuePlan(jobs, batch, now);
    // The seq of the first job this batch creates: every later one is higher, and no job stored before it
    // is (AUTOINCREMENT, one writer at a time).
    let firstCreated: number | bigint | null = null;
    const out: EnqueueResult[] = [];
    for (const job of jobs) {
      if (job.uniqueKey !== null) {
        const existing = this.findUnique(job, now, sql);
        if (existing) {
          plan?.returnedFor(job, existing.id);
          out.push({ id: existing.id, state: existing.state, created: false });
          continue;
        }
      }
      let prepared: PreparedJob | null = null;
      if (plan && (job.dependsOn.length > 0 || job.batchId !== null)) {
        // An existing job is returned as is, before its dependencies or batch are looked at.
        const existing = byId.get(job.id) as { id: string; state: JobState } | undefined;
        if (existing) {
          plan.returnedFor(job, existing.id);
          out.push({ id: existing.id, state: existing.state, created: false });
          continue;
        }
        prepared = plan.prepareJob(job);
      }
      const state: JobState = prepared?.state ?? (job.runAt > now ? "scheduled" : "waiting");
      const dead = state === "dead";
      const keep = retentionColumns(job.retention);
      const info = insert.run(
        job.id,
        job.task,
        job.queue,
        state,
        job.payload,
        job.priority,
        job.runAt,
        now,
        job.maxAttempts,
        job.backoff ? JSON.stringify(job.backoff) : null,
        job.timeoutMs,
        job.uniqueKey,
        job.uniqueUntil,
        JSON.stringify(job.tags),
        keep.mode,
        keep.value,
        job.parentId,
        job.batchId,
        prepared?.pending ?? 0,
        dead ? now : null,
        prepared?.deadMessage ?? null,
        prepared?.errors ?? "[]",
        // A member written dead has become final once: counted (flows.ts settles it below).
        dead && job.batchId !== null ? 1 : 0,
        // A schedule's template stored before limits existed has no limitKey at all.
        job.limitKey ?? null,
      );
      if (info.changes === 1) {
        firstCreated ??= info.lastInsertRowid;
        if (prepared) plan?.created(job, prepared);
        plan?.returnedFor(job, job.id);
        out.push({ id: job.id, state, created: true });
      } else {
        // Same id already stored: idempotent enqueue returns it. A generated id never collides.
        const existing = byId.get(job.id) as { id: string; state: JobState };
        plan?.returnedFor(job, existing.id);
        out.push({ id: existing.id, state: existing.state, created: false });
      }
    }
    // One statement for the batch's `enqueued` events, in enqueue order (jobs returned as existing: none).
    // Before the flow's callbacks, which write their own.
    if (firstCreated !== null && this.eventsOn) {
      sql(
        `INSERT INTO events (at, type, queue, job_id, task, attempt, data)
         SELECT ?, 'enqueued', queue, id, task, NULL, json_object('state', state) FROM jobs WHERE seq >= ? ORDER BY seq`,
      ).run(now, firstCreated);
    }
    plan?.finish(effects);
    return out;
  }

  /** The flow statements on the store's own connection (one instance: its statements are cached). */
  private flows(): SqliteFlows {
    this.storeFlows ??= new SqliteFlows(
      (text) => this.stmt(text),
      this.eventsOn,
      (jobs, now) => this.insertJobs(jobs, now),
    );
    return this.storeFlows;
  }

  /** The limit statements (limits.ts), on the store's own connection. */
  private limits(): SqliteLimits {
    this.storeLimits ??= new SqliteLimits((text) => this.stmt(text));
    return this.storeLimits;
  }

  /** The flow statements on an application's connection (a transactional enqueue). */
  private flowsOn(prepare: (sql: string) => Statement): SqliteFlows {
    return new SqliteFlows(prepare, this.eventsOn, (jobs, now) => this.insertJobs(jobs, now, prepare));
  }

  /** Wakes workers of limited queues where a job left `active` (see slotLimited). */
  private notifyFreed(queues: ReadonlySet<string>): void {
    if (queues.size > 0) this.notify({ type: "jobs", queues: [...queues] });
  }

  /** Wakes whom a flow transition made runnable, and the workers of children whose cancel was requested. */
  private notifyEffects(effects: FlowEffects): void {
    if (effects.wake.size > 0) this.notify({ type: "jobs", queues: [...effects.wake] });
    if (effects.cancel) this.notify({ type: "cancel" });
  }

  /**
   * Wakes workers after a commit that created jobs. Scheduled ones too: an idle worker arms its timer for
   * the earliest run time only when it looks, and a new delayed job may now be the earliest.
   */
  private notifyCreated(jobs: readonly NewJob[], results: readonly EnqueueResult[]): void {
    if (results.some((r) => r.created)) {
      this.notify({ type: "jobs", queues: [...new Set(jobs.map((j) => j.queue))] });
    }
  }

  private findUnique(
    job: NewJob,
    now: number,
    prepare: (sql: string) => Statement,
  ): { id: string; state: JobState } | undefined {
    const states = job.uniqueStates;
    if (states.length === 0) return undefined;
    // A job held ahead by a worker (not started) is waiting, as users see it.
    return prepare(
      `SELECT id, CASE WHEN ${heldSql()} THEN 'waiting' ELSE state END AS state
       FROM jobs WHERE unique_key = ? AND queue = ? AND ${seenStateSql(states)}
         AND (unique_until IS NULL OR unique_until > ?) ORDER BY seq DESC LIMIT 1`,
    ).get(job.uniqueKey, job.queue, now) as { id: string; state: JobState } | undefined;
  }

  // ── consuming ──────────────────────────────────────────────────────────────────────────────────

  async claim(request: ClaimRequest): Promise<JobRecord[]> {
    if (request.limit <= 0 || request.queues.length === 0) return [];
    const rows = await this.write(() => {
      const now = Date.now();
      // Paused, limited and key-holding queues, in one statement; a queue not in it is plain.
      const gates = this.limits().gates(now);
      if (gates.size > 0 || this.slotLimited.size > 0) this.slotLimited = slotLimitedQueues(gates);
      const promote = this.stmt(
        "UPDATE jobs SET state = 'waiting' WHERE queue = ? AND state = 'scheduled' AND run_at <= ?",
      );
      // `LIMIT (? + 0)`, never a bare `LIMIT ?`: SQLite (better-sqlite3 builds it with STAT4) lets a bare LIMIT
      // parameter steer the plan, so every new binding re-prepares the statement: parse and plan on every
      // claim, 2-3x its cost (measured). Every LIMIT of this engine is written so.
      const take = this.stmt(
        `UPDATE jobs SET state = 'active', attempt = attempt + 1, lease_token = lease_token + 1, started_at = ?,
           worker_id = ?, lease_expires_at = ?, reason = NULL
         WHERE seq IN (SELECT seq FROM jobs WHERE queue = ? AND state = 'waiting'
                       ORDER BY priority, run_at, seq LIMIT (? + 0))
         RETURNING *`,
      );
      const active = this.eventStmt("active", "?");
      const out: JobRow[] = [];
      // The first `start` jobs start now; the rest are held ahead (started_at NULL) until start().
      const starting = request.start ?? request.limit;
      const took = (taken: JobRow[], startedAt: number | null): JobRow[] => {
        taken.sort(byClaimOrder);
        // Jobs that start now are `active`; those held ahead say so when start() starts them. One prepared
        // insert per row, from the rows the claim returned (no second lookup of the jobs).
        if (startedAt !== null && this.eventsOn) {
          const data = JSON.stringify({ workerId: request.workerId });
          for (const row of taken) active.run(now, row.queue, row.id, row.task, row.attempt, data);
        }
        out.push(...taken);
        return taken;
      };
      const takeFrom = (queue: string, limit: number, startedAt: number | null): JobRow[] =>
        limit <= 0
          ? []
          : took(
              rawJobRows(take, [startedAt, request.workerId, now + request.leaseMs, queue, limit]),
              startedAt,
            );
      // The exact jobs a limited queue allows (keys at a limit skipped), already in claim order.
      const takeSeqs = (seqs: readonly number[], startedAt: number | null): JobRow[] =>
        seqs.length === 0
          ? []
          : took(
              rawJobRows(
                this.stmt(
                  `UPDATE jobs SET state = 'active', attempt = attempt + 1, lease_token = lease_token + 1,
                     started_at = ?, worker_id = ?, lease_expires_at = ?, reason = NULL
                   WHERE seq IN (SELECT value FROM json_each(?)) AND state = 'waiting'
                   RETURNING *`,
                ),
                [startedAt, request.workerId, now + request.leaseMs, JSON.stringify(seqs)],
              ),
              startedAt,
            );
      for (const queue of request.queues) {
        const gate = gates.get(queue);
        if (gate?.blocked) continue;
        promote.run(queue, now);
        const startNow = Math.min(starting, request.limit) - out.length;
        if (gate === undefined) {
          takeFrom(queue, startNow, now);
          takeFrom(queue, request.limit - out.length, null);
        } else {
          const allowed = this.limits().allowance(queue, gate, now, request.limit - out.length);
          let taken: JobRow[];
          if ("count" in allowed) {
            const first = takeFrom(queue, Math.min(startNow, allowed.count), now);
            taken = [...first, ...takeFrom(queue, allowed.count - first.length, null)];
          } else {
            const split = Math.max(0, startNow);
            taken = [
              ...takeSeqs(allowed.seqs.slice(0, split), now),
              ...takeSeqs(allowed.seqs.slice(split), null),
            ];
          }
          this.limits().consume(queue, gate, now, taken);
        }
        if (out.length >= request.limit) break;
      }
      return out;
    });
    return rows.map(rowToJob);
  }

  /** Queues that are paused, or rate-limited until a time still in the future. */
  private blockedQueues(now: number): Set<string> {
    const rows = this.stmt(
      "SELECT name FROM queues WHERE paused = 1 OR (paused_until IS NOT NULL AND paused_until > ?)",
    ).all(now) as { name: string }[];
    return new Set(rows.map((r) => r.name));
  }

  async start(leases: readonly LeaseRef[]): Promise<boolean[]> {
    if (leases.length === 0) return [];
    return this.write(() => {
      const now = Date.now();
      const blocked = this.blockedQueues(now);
      const held = this.stmt(
        `SELECT queue, task, attempt, worker_id, started_at FROM jobs WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY}`,
      );
      const mark = this.stmt("UPDATE jobs SET started_at = ? WHERE id = ? AND started_at IS NULL");
      const active = this.eventsOn ? this.eventStmt("active", "json_object('workerId', ?)") : null;
      return leases.map((l) => {
        const row = held.get(l.id, l.token) as
          | (EventJob & { worker_id: string | null; started_at: number | null })
          | undefined;
        // A job of a paused queue is not started (a claim would have skipped it): the worker gives it back.
        if (!row || blocked.has(row.queue)) return false;
        if (mark.run(now, l.id).changes === 1) {
          active?.run(now, row.queue, l.id, row.task, row.attempt, row.worker_id);
        }
        return true;
      });
    });
  }

  async complete(requests: readonly CompleteRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const effects = newEffects();
    const freed = new Set<string>();
    const applied = await this.write(() => {
      const now = Date.now();
      // Jobs kept for no time at all (retention: false) are deleted in one statement; the others are updated.
      // Both return the flow columns (batch_counted as it was for the delete, counted for the update).
      const drop = this.stmt(
        `DELETE FROM jobs WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY} AND keep_mode = 'none'
         RETURNING queue, task, attempt, batch_id, batch_counted, has_dependents`,
      );
      const done = this.stmt(
        `UPDATE jobs SET state = 'completed', result = ?, finished_at = ?, lease_expires_at = NULL, ${COUNT_FINAL},
           keep_until = CASE keep_mode WHEN 'age' THEN ? + keep_value ELSE NULL END
         WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY}
         RETURNING queue, task, attempt, batch_id, batch_counted, has_dependents`,
      );
      // From RETURNING: retention may have deleted the row.
      const completed = this.eventsOn ? this.eventStmt("completed", "NULL") : null;
      const toSettle: Settled[] = [];
      const out = requests.map((r) => {
        let job = drop.get(r.id, r.token) as (EventJob & SettleColumns) | undefined;
        const counted = job ? 0 : 1;
        job ??= done.get(r.result, now, now, r.id, r.token) as (EventJob & SettleColumns) | undefined;
        if (!job) return false;
        if (this.slotLimited.has(job.queue)) freed.add(job.queue);
        completed?.run(now, job.queue, r.id, job.task, job.attempt);
        if (needsSettle(job, "completed"))
          toSettle.push(settled({ ...job, id: r.id }, job, "completed", counted));
        return true;
      });
      // Once for the whole call: one counter update per batch, however many of its members completed.
      this.flows().settle(toSettle, now, effects);
      return out;
    });
    this.notifyFreed(freed);
    this.notifyEffects(effects);
    return applied;
  }

  async fail(requests: readonly FailRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    let wake = false;
    const effects = newEffects();
    const freed = new Set<string>();
    const applied = await this.write(() => {
      const now = Date.now();
      const update = this.stmt(
        `UPDATE jobs SET state = ?, run_at = COALESCE(?, run_at), finished_at = ?, lease_expires_at = NULL,
           errors = json_insert(errors, '$[#]', json(?)), reason = ?,
           batch_counted = batch_counted + (batch_id IS NOT NULL AND ?)
         WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY}
         RETURNING queue, task, attempt, batch_id, batch_counted, has_dependents`,
      );
      const toSettle: Settled[] = [];
      const out = requests.map((r) => {
        const next = r.next;
        const runAt = next.state === "scheduled" ? next.runAt : next.state === "waiting" ? now : null;
        const final = next.state === "dead" || next.state === "cancelled";
        const reason = final ? next.reason : null;
        const job = update.get(
          next.state,
          runAt,
          final ? now : null,
          JSON.stringify(r.error),
          reason,
          final ? 1 : 0,
          r.id,
          r.token,
        ) as (EventJob & SettleColumns) | undefined;
        if (!job) return false;
        if (this.slotLimited.has(job.queue)) freed.add(job.queue);
        if (final && needsSettle(job, next.state)) {
          // The dependents' error is this attempt's: the latest one.
          toSettle.push(settled({ ...job, id: r.id }, job, next.state, 1, r.error.message));
        }
        if (this.eventsOn) {
          const at = [now, job.queue, r.id, job.task, job.attempt] as const;
          if (next.state === "dead")
            this.eventStmt("dead", "json_object('error', ?, 'reason', ?)").run(
              ...at,
              r.error.message,
              reason,
            );
          else if (next.state === "cancelled")
            this.eventStmt("cancelled", "json_object('reason', ?)").run(...at, reason);
          else
            this.eventStmt("retrying", "json_object('error', ?, 'runAt', CAST(? AS INTEGER))").run(
              ...at,
              r.error.message,
              runAt,
            );
        }
        if (next.state === "waiting") wake = true;
        return true;
      });
      this.flows().settle(toSettle, now, effects);
      return out;
    });
    if (wake) this.notify({ type: "jobs", queues: null });
    else this.notifyFreed(freed);
    this.notifyEffects(effects);
    return applied;
  }

  async release(requests: readonly ReleaseRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const effects = newEffects();
    const applied = await this.write(() => {
      const now = Date.now();
      // A job whose cancel was requested while it ran is cancelled instead of going back to run again.
      const update = this.stmt(
        `UPDATE jobs SET attempt = MAX(attempt - 1, 0), lease_expires_at = NULL,
           state = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE ? END,
           run_at = CASE WHEN cancel_requested = 1 THEN run_at ELSE COALESCE(?, run_at) END,
           finished_at = CASE WHEN cancel_requested = 1 THEN ? ELSE finished_at END,
           reason = CASE WHEN cancel_requested = 1 THEN ${sqlString(CANCELLED_WHILE_ACTIVE_REASON)} ELSE ? END,
           batch_counted = batch_counted + (batch_id IS NOT NULL AND cancel_requested = 1)
         WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY}
         RETURNING queue, task, attempt + 1 AS attempt, state, started_at, reason, ${SETTLE_RETURNING}`,
      );
      const toSettle: Settled[] = [];
      const out = requests.map((r) => {
        const state: JobState = r.runAt !== undefined && r.runAt > now ? "scheduled" : "waiting";
        const job = update.get(state, r.runAt ?? null, now, r.reason, r.id, r.token) as
          | (EventJob & SettleColumns & { state: JobState; started_at: number | null; reason: string | null })
          | undefined;
        if (!job) return false;
        if (job.state === "cancelled") toSettle.push(settled({ ...job, id: r.id }, job, "cancelled", 1));
        if (this.eventsOn) {
          // The event names the attempt that was running (the release gave it back). A held job that never
          // started goes back unseen: users saw it waiting all along.
          if (job.state === "cancelled") {
            this.eventStmt("cancelled", "json_object('reason', ?)").run(
              now,
              job.queue,
              r.id,
              job.task,
              job.attempt,
              job.reason,
            );
          } else if (job.started_at !== null) {
            this.eventStmt("released", "json_object('reason', ?, 'runAt', CAST(? AS INTEGER))").run(
              now,
              job.queue,
              r.id,
              job.task,
              job.attempt,
              r.reason,
              r.runAt ?? null,
            );
          }
        }
        return true;
      });
      this.flows().settle(toSettle, now, effects);
      return out;
    });
    if (applied.some(Boolean)) this.notify({ type: "jobs", queues: null });
    this.notifyEffects(effects);
    return applied;
  }

  async extendLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<ExtendResult> {
    const result: ExtendResult = { lost: [], cancelRequested: [], paused: [] };
    if (leases.length === 0) return result;
    return this.write(() => {
      const now = Date.now();
      const blocked = this.blockedQueues(now);
      const extend = this.stmt(
        `UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY}
         RETURNING cancel_requested, queue`,
      );
      for (const lease of leases) {
        const row = extend.get(now + leaseMs, lease.id, lease.token) as
          | { cancel_requested: number; queue: string }
          | undefined;
        const ref = { id: lease.id, token: lease.token };
        if (!row) result.lost.push(ref);
        else {
          if (row.cancel_requested === 1) result.cancelRequested.push(ref);
          if (blocked.has(row.queue)) result.paused.push(ref);
        }
      }
      return result;
    });
  }

  async saveProgress(requests: readonly ProgressRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    return this.write(() => {
      const update = this.stmt(
        `UPDATE jobs SET progress = ? WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY}
         RETURNING queue, task, attempt`,
      );
      const now = Date.now();
      return requests.map((r) => {
        const job = update.get(r.progress, r.id, r.token) as EventJob | undefined;
        if (!job) return false;
        if (this.eventsOn && r.event !== false) {
          this.eventStmt("progress", "json_object('progress', json(?))").run(
            now,
            job.queue,
            r.id,
            job.task,
            job.attempt,
            r.progress,
          );
        }
        return true;
      });
    });
  }

  async appendLogs(lines: readonly LogRequest[]): Promise<void> {
    if (lines.length === 0) return;
    await this.write(() => {
      const insert = this.stmt(
        "INSERT INTO job_logs (job_id, at, attempt, message) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?)",
      );
      for (const line of lines) insert.run(line.id, line.at, line.attempt, line.message, line.id);
    });
  }

  async annotateAttempt(id: string, attempt: number, note: string): Promise<boolean> {
    return this.write(() => {
      const row = this.stmt("SELECT errors FROM jobs WHERE id = ?").get(id) as { errors: string } | undefined;
      if (!row) return false;
      let errors: AttemptError[];
      try {
        errors = JSON.parse(row.errors) as AttemptError[];
      } catch {
        return false; // unreadable: left for forensics (getJob reports it as dataError)
      }
      const target = errors.findLast((e) => e.attempt === attempt);
      if (!target) return false;
      target.note = note;
      // Compare-and-set on the text read: the same transaction, but kept exact should the read ever move out.
      return (
        this.stmt("UPDATE jobs SET errors = ? WHERE id = ? AND errors = ?").run(
          JSON.stringify(errors),
          id,
          row.errors,
        ).changes === 1
      );
    });
  }

  async nextRunAt(queues: readonly string[]): Promise<number | null> {
    if (queues.length === 0) return null;
    return this.read(() => {
      const placeholders = queues.map(() => "?").join(", ");
      const row = this.stmt(
        `SELECT MIN(run_at) AS at FROM jobs WHERE state = 'scheduled' AND queue IN (${placeholders})`,
      ).get(...queues) as { at: number | null };
      return row.at;
    });
  }

  subscribe(listener: (signal: StoreSignal) => void): () => void {
    if (!this.wake) throw new SluiceError("CLOSED", "store is not open; call open() before subscribe()");
    return this.wake.subscribe(listener);
  }

  private notify(signal: StoreSignal): void {
    this.wake?.notify(signal);
  }

  // ── maintenance ────────────────────────────────────────────────────────────────────────────────

  async recover(request: RecoverRequest): Promise<RecoveredJob[]> {
    const effects = newEffects();
    const recovered = await this.write(() => {
      const now = Date.now();
      const candidates = (
        request.mode.kind === "expired"
          ? this.stmt(
              `SELECT id, queue, task, worker_id, attempt, max_attempts, cancel_requested, lease_token FROM jobs
               WHERE state = 'active' AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT (? + 0)`,
            ).all(now, request.limit)
          : this.stmt(
              `SELECT id, queue, task, worker_id, attempt, max_attempts, cancel_requested, lease_token FROM jobs
               WHERE state = 'active' AND started_at < ? ORDER BY started_at LIMIT (? + 0)`,
            ).all(request.mode.at, request.limit)
      ) as {
        id: string;
        queue: string;
        task: string;
        worker_id: string | null;
        attempt: number;
        max_attempts: number;
        cancel_requested: number;
        lease_token: number;
      }[];
      const update = this.stmt(
        `UPDATE jobs SET state = ?, finished_at = ?, lease_expires_at = NULL, reason = ?,
           errors = json_insert(errors, '$[#]', json(?)), batch_counted = batch_counted + (batch_id IS NOT NULL AND ?)
         WHERE id = ? AND lease_token = ? AND ${ACTIVE_ONLY}
         RETURNING ${SETTLE_RETURNING}`,
      );
      const out: RecoveredJob[] = [];
      const toSettle: Settled[] = [];
      for (const job of candidates) {
        const { to, reason } = recoveryTarget({
          cancelRequested: job.cancel_requested === 1,
          attempt: job.attempt,
          maxAttempts: job.max_attempts,
          workerId: job.worker_id,
          forced: request.mode.kind === "startedBefore",
        });
        if (!request.dryRun) {
          const error: AttemptError = {
            attempt: job.attempt,
            outcome: "lease-expired",
            name: "LeaseExpiredError",
            message: reason,
            at: now,
            ...(job.worker_id ? { workerId: job.worker_id } : {}),
          };
          const finished = to === "waiting" ? null : now;
          const row = update.get(
            to,
            finished,
            reason,
            JSON.stringify(error),
            to === "waiting" ? 0 : 1,
            job.id,
            job.lease_token,
          ) as SettleColumns | undefined;
          if (!row) continue;
          if (to !== "waiting" && needsSettle(row, to)) toSettle.push(settled(job, row, to, 1, reason));
          if (this.eventsOn) {
            this.eventStmt("recovered", "json_object('to', ?, 'reason', ?)").run(
              now,
              job.queue,
              job.id,
              job.task,
              job.attempt,
              to,
              reason,
            );
          }
        }
        out.push({
          id: job.id,
          queue: job.queue,
          task: job.task,
          workerId: job.worker_id,
          attempt: job.attempt,
          maxAttempts: job.max_attempts,
          to,
          reason,
        });
      }
      this.flows().settle(toSettle, now, effects);
      return out;
    });
    if (!request.dryRun && recovered.some((r) => r.to === "waiting"))
      this.notify({ type: "jobs", queues: null });
    this.notifyEffects(effects);
    return recovered;
  }

  async prune(options: {
    limit: number;
    workersSilentSince: number;
    eventsBefore?: number;
    maxEvents?: number;
  }): Promise<{ jobs: number; workers: number; events: number }> {
    const total = { jobs: 0, workers: 0, events: 0 };
    // Jobs and events each stop at the limit, or at the first transaction that found fewer than it could
    // take.
    let jobsLeft = options.limit;
    let eventsLeft = options.limit;
    for (let first = true; ; first = false) {
      const jobsCap = Math.max(Math.min(jobsLeft, PRUNE_ROWS_PER_TRANSACTION), 0);
      const eventsCap = Math.max(Math.min(eventsLeft, PRUNE_ROWS_PER_TRANSACTION), 0);
      const started = performance.now();
      const pruned = await this.write(() => {
        const now = Date.now();
        let jobs = jobsCap > 0 ? this.stmt(PRUNE_EXPIRED_SQL).run(now, jobsCap).changes : 0;
        if (jobs < jobsCap) jobs += this.stmt(PRUNE_BY_COUNT_SQL).run(jobsCap - jobs).changes;
        let workers = 0;
        if (first) {
          workers = this.stmt("DELETE FROM workers WHERE last_heartbeat_at < ?").run(
            options.workersSilentSince,
          ).changes;
          this.stmt("DELETE FROM queue_stats WHERE hour < ?").run(now - STATS_RETENTION_MS);
          this.limits().prune(now, options.limit);
        }
        const events = this.pruneEvents(eventsCap, options.eventsBefore, options.maxEvents);
        return { jobs, workers, events };
      });
      total.jobs += pruned.jobs;
      total.workers += pruned.workers;
      total.events += pruned.events;
      jobsLeft = pruned.jobs < jobsCap ? 0 : jobsLeft - pruned.jobs;
      eventsLeft = pruned.events < eventsCap ? 0 : eventsLeft - pruned.events;
      if (jobsLeft <= 0 && eventsLeft <= 0) return total;
      await sleep(prunePause(performance.now() - started));
    }
  }

  /**
   * Deletes the oldest events: those before `before` (epoch ms) and those beyond the newest `max`, at most
   * `limit`, always a run of the oldest ids. Only this ever deletes events and every insert that commits
   * keeps its rows, so the retained ids are one contiguous range: the count is `newest - oldest + 1`
   * (exact, read from the rowid b-tree's two ends) and the newest pruned id tells a reader exactly whether
   * it lost any. The age scan reads at most `limit` rows from the oldest, so a call costs what it deletes,
   * not what is kept (it runs in the write lock).
   */
  private pruneEvents(limit: number, before: number | undefined, max: number | undefined): number {
    if (limit <= 0 || (before === undefined && max === undefined)) return 0;
    const ends = this.stmt(EVENT_ENDS_SQL).get() as {
      oldest: number | null;
      newest: number | null;
    };
    if (ends.oldest === null || ends.newest === null) return 0;
    let upto = 0; // delete ids <= upto
    if (max !== undefined) upto = ends.newest - Math.max(0, max);
    if (before !== undefined) {
      // The first event not older than `before` among the next `limit`; none: all of them are older.
      const kept = (
        this.stmt(
          "SELECT MIN(id) AS id FROM (SELECT id, at FROM events ORDER BY id LIMIT (? + 0)) WHERE at >= ?",
        ).get(limit, before) as { id: number | null }
      ).id;
      upto = Math.max(upto, kept === null ? ends.newest : kept - 1);
    }
    // Never the newest: new ids are the largest + 1 (no AUTOINCREMENT), so keeping it keeps ids unique.
    const last = Math.min(upto, ends.oldest + limit - 1, ends.newest - 1);
    if (last < ends.oldest) return 0;
    const deleted = this.stmt("DELETE FROM events WHERE id <= ?").run(last).changes;
    this.stmt("UPDATE events_meta SET pruned_upto = MAX(pruned_upto, ?) WHERE one = 1").run(last);
    return deleted;
  }

  async tryLead(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.write(() => {
      const now = Date.now();
      const row = this.stmt(
        `INSERT INTO leaders (name, owner, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
           WHERE leaders.owner = excluded.owner OR leaders.expires_at < ?
         RETURNING owner`,
      ).get(name, owner, now + ttlMs, now) as { owner: string } | undefined;
      return row?.owner === owner;
    });
  }

  async resign(name: string, owner: string): Promise<void> {
    await this.write(() => this.stmt("DELETE FROM leaders WHERE name = ? AND owner = ?").run(name, owner));
  }

  // ── worker registry ────────────────────────────────────────────────────────────────────────────

  async registerWorker(worker: WorkerInfo): Promise<void> {
    await this.write(() => {
      // The process clock is the store's clock here: a worker on this host has no skew beyond the call.
      const now = Date.now();
      this.stmt(
        `INSERT OR REPLACE INTO workers (id, host, pid, queues, concurrency, busy, started_at, last_heartbeat_at, version, stalls, health, clock, clock_skew_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        worker.id,
        worker.host,
        worker.pid,
        JSON.stringify(worker.queues),
        worker.concurrency,
        worker.busy,
        worker.startedAt,
        now,
        worker.version,
        stallsText(worker.stalls),
        healthText(worker.health),
        worker.clock,
        worker.clock - now,
      );
    });
  }

  async heartbeatWorker(
    id: string,
    busy: number,
    stalls?: WorkerStalls,
    beat?: WorkerBeat,
  ): Promise<boolean> {
    return this.write(() => {
      const now = Date.now();
      const clock = beat?.clock ?? null;
      return (
        this.stmt(
          `UPDATE workers SET busy = ?, last_heartbeat_at = ?, stalls = coalesce(?, stalls),
             health = CASE WHEN ? THEN ? ELSE health END, clock = coalesce(?, clock),
             clock_skew_ms = coalesce(?, clock_skew_ms) WHERE id = ?`,
        ).run(
          busy,
          now,
          stalls ? stallsText(stalls) : null,
          beat?.health ? 1 : 0,
          healthText(beat?.health),
          clock,
          clock === null ? null : clock - now,
          id,
        ).changes === 1
      );
    });
  }

  async unregisterWorker(id: string): Promise<void> {
    await this.write(() => this.stmt("DELETE FROM workers WHERE id = ?").run(id));
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return this.read(() => {
      const rows = this.stmt("SELECT * FROM workers ORDER BY started_at").all() as {
        id: string;
        host: string;
        pid: number;
        queues: string;
        concurrency: number;
        busy: number;
        started_at: number;
        last_heartbeat_at: number;
        version: string;
        stalls: string | null;
        health: string | null;
        clock: number | null;
        clock_skew_ms: number;
      }[];
      return rows.map((r) => ({
        id: r.id,
        host: r.host,
        pid: r.pid,
        queues: JSON.parse(r.queues) as string[],
        concurrency: r.concurrency,
        busy: r.busy,
        startedAt: r.started_at,
        lastHeartbeatAt: r.last_heartbeat_at,
        version: r.version,
        stalls: parseStalls(r.stalls),
        health: parseHealth(r.health),
        clock: r.clock ?? r.last_heartbeat_at,
        clockSkewMs: r.clock_skew_ms,
      }));
    });
  }

  // ── admin ──────────────────────────────────────────────────────────────────────────────────────

  async queueStats(): Promise<QueueStats[]> {
    // One read transaction: every count, the latency and the pause states come from the same snapshot.
    return this.read(() => this.runInTransaction()(() => this.statsNow()) as QueueStats[]);
  }

  private statsNow(): QueueStats[] {
    const now = Date.now();
    const byQueue = new Map<string, QueueStats>();
    const entry = (queue: string): QueueStats => {
      let stats = byQueue.get(queue);
      if (!stats) {
        const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
        stats = {
          queue,
          counts,
          due: 0,
          oldestWaitingAt: null,
          paused: false,
          pausedUntil: null,
          limits: null,
          limitedActive: 0,
          heldKeys: 0,
        };
        byQueue.set(queue, stats);
      }
      return stats;
    };
    // Counts from the covering index jobs_queue_state alone (GROUP BY in its order, no table read): with
    // 1,000,000 jobs 68 ms, where reading each row's started_at to tell held jobs apart took 502 ms. The held
    // jobs (claimed ahead, not started; few, one worker's line) are counted apart and moved to waiting.
    for (const row of this.stmt(
      "SELECT queue, state, COUNT(*) AS n FROM jobs GROUP BY queue, state",
    ).all() as {
      queue: string;
      state: JobState;
      n: number;
    }[]) {
      entry(row.queue).counts[row.state] = row.n;
    }
    for (const row of this.stmt(
      `SELECT queue, COUNT(*) AS n, MIN(run_at) AS at FROM jobs WHERE ${heldSql()} GROUP BY queue`,
    ).all() as { queue: string; n: number; at: number }[]) {
      const stats = entry(row.queue);
      stats.counts.waiting += row.n;
      stats.counts.active -= row.n;
      stats.oldestWaitingAt = row.at;
    }
    // The oldest waiting job per queue: one probe of jobs_claim (queue, priority, run_at) per queue and
    // priority, the pairs found by stepping from one to the next (a loose index scan; the next priority of
    // the same queue, else the first of the next queue), instead of reading every waiting job: 353 ms with
    // 1,000,000 waiting, this 0.02 ms. INDEXED BY: the planner otherwise sorts the state index's matches.
    for (const row of this.stmt(
      `WITH RECURSIVE pairs(queue, priority) AS (
         SELECT queue, priority FROM jobs WHERE seq = (
           SELECT seq FROM jobs INDEXED BY jobs_claim WHERE state = 'waiting' ORDER BY queue, priority LIMIT 1)
         UNION ALL
         SELECT j.queue, j.priority FROM pairs p JOIN jobs j ON j.seq = coalesce(
           (SELECT k.seq FROM jobs k INDEXED BY jobs_claim
            WHERE k.state = 'waiting' AND k.queue = p.queue AND k.priority > p.priority ORDER BY k.priority LIMIT 1),
           (SELECT k.seq FROM jobs k INDEXED BY jobs_claim
            WHERE k.state = 'waiting' AND k.queue > p.queue ORDER BY k.queue, k.priority LIMIT 1)))
       SELECT p.queue, (SELECT MIN(k.run_at) FROM jobs k INDEXED BY jobs_claim
         WHERE k.state = 'waiting' AND k.queue = p.queue AND k.priority = p.priority) AS at
       FROM pairs p`,
    ).all() as { queue: string; at: number }[]) {
      const stats = entry(row.queue);
      stats.oldestWaitingAt = Math.min(stats.oldestWaitingAt ?? row.at, row.at);
    }
    for (const row of this.stmt(
      "SELECT queue, COUNT(*) AS n, MIN(run_at) AS at FROM jobs WHERE state = 'scheduled' AND run_at <= ? GROUP BY queue",
    ).all(now) as { queue: string; n: number; at: number }[]) {
      const stats = entry(row.queue);
      stats.due = row.n;
      stats.oldestWaitingAt = Math.min(stats.oldestWaitingAt ?? row.at, row.at);
    }
    for (const q of this.queueStates(now)) {
      const stats = entry(q.queue);
      stats.paused = q.paused;
      stats.pausedUntil = q.pausedUntil;
      stats.limits = q.limits;
    }
    const { active, held } = this.limits().statsParts(now);
    for (const [queue, n] of active) entry(queue).limitedActive = n;
    for (const [queue, n] of held) entry(queue).heldKeys = n;
    return [...byQueue.values()].sort((a, b) => a.queue.localeCompare(b.queue));
  }

  async listJobs(request: ListRequest): Promise<JobPage> {
    return this.read(() => {
      const order = request.order ?? "desc";
      const { states, ...rest } = request.filter;
      if (states && states.length === 0) return { jobs: [], nextCursor: null };
      const { where, params } = filterSql(rest);
      if (request.cursor) {
        const cursor = Number(request.cursor);
        if (!Number.isSafeInteger(cursor)) {
          throw new ValidationError(
            "INVALID_OPTION",
            `cursor "${request.cursor}" is not one this store returned: pass the nextCursor of the previous page, or none for the first`,
            { field: "cursor" },
          );
        }
        where.push(order === "desc" ? "seq < ?" : "seq > ?");
        params.push(cursor);
      }
      const direction = order === "desc" ? "DESC" : "ASC";
      const select = (conditions: string[]) =>
        `SELECT * FROM jobs ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""}
         ORDER BY seq ${direction} LIMIT (? + 0)`;
      const take = request.limit + 1;
      // One index range scan per stored state, merged (sql-common.ts seenStateBranches).
      const branches = states ? seenStateBranches(states) : null;
      const sql = branches
        ? `SELECT * FROM (${branches.map((b) => `SELECT * FROM (${select([...where, b])})`).join(" UNION ALL ")})
           ORDER BY seq ${direction} LIMIT (? + 0)`
        : select(where);
      const args = branches ? [...branches.flatMap(() => [...params, take]), take] : [...params, take];
      const rows = this.stmt(sql).all(...args) as JobRow[];
      const more = rows.length > request.limit;
      const page = more ? rows.slice(0, request.limit) : rows;
      const last = page[page.length - 1];
      return {
        jobs: page.map((row) => asSeen(rowToJob(row))),
        nextCursor: more && last ? String(last.seq) : null,
      };
    });
  }

  async getJob(id: string): Promise<JobRecord | null> {
    return this.read(() => {
      const row = this.stmt("SELECT * FROM jobs WHERE id = ?").get(id) as JobRow | undefined;
      return row ? asSeen(rowToJob(row)) : null;
    });
  }

  // ── flows (core/flows.ts; statements in flows.ts) ──────────────────────────────────────────────

  async block(requests: readonly BlockRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const effects = newEffects();
    const applied = await this.write(() => {
      const now = Date.now();
      return requests.map((r) => this.flows().block(r, now, effects));
    });
    this.notifyEffects(effects);
    return applied;
  }

  async getFlow(id: string): Promise<FlowView | null> {
    // One read transaction: the job, its edges, children and batch from the same snapshot.
    return this.read(() => this.runInTransaction()(() => this.flows().getFlow(id)) as FlowView | null);
  }

  async getBatch(id: string): Promise<BatchRecord | null> {
    return this.read(() => this.runInTransaction()(() => this.flows().getBatch(id)) as BatchRecord | null);
  }

  async listBatches(request: {
    limit: number;
    cursor?: string | null;
    finished?: boolean;
  }): Promise<{ batches: BatchRecord[]; nextCursor: string | null }> {
    return this.read(
      () =>
        this.runInTransaction()(() => this.flows().listBatches(request)) as {
          batches: BatchRecord[];
          nextCursor: string | null;
        },
    );
  }

  async stuckBlocked(limit: number): Promise<StuckBlockedJob[]> {
    return this.read(
      () => this.runInTransaction()(() => this.flows().stuckBlocked(limit)) as StuckBlockedJob[],
    );
  }

  // ── limits (core/limits.ts; statements in limits.ts) ──────────────────────────────────────────

  async setQueueLimits(queue: string, limits: QueueLimits | null): Promise<void> {
    await this.write(() => this.limits().setLimits(queue, limits));
    // Raised or removed limits may let waiting jobs run now.
    this.notify({ type: "jobs", queues: [queue] });
  }

  async holdKey(queue: string, key: string, until: number): Promise<void> {
    await this.write(() => this.limits().holdKey(queue, key, until));
  }

  async keyHolds(limit: number): Promise<KeyHold[]> {
    return this.read(() => this.limits().keyHolds(Date.now(), limit));
  }

  async getLogs(id: string, limit: number): Promise<JobLogLine[]> {
    return this.read(() =>
      (
        this.stmt(
          "SELECT at, attempt, message FROM (SELECT rowid, * FROM job_logs WHERE job_id = ? ORDER BY rowid DESC LIMIT (? + 0)) ORDER BY rowid",
        ).all(id, limit) as JobLogLine[]
      ).map((l) => ({ at: l.at, attempt: l.attempt, message: l.message })),
    );
  }

  async retry(filter: JobFilter, options: BulkOptions): Promise<BulkResult> {
    const result = await this.write(() => {
      const ids = this.selectIds(filter, RETRYABLE_STATES, options.limit);
      const update = this.stmt(
        `UPDATE jobs SET state = 'waiting', attempt = 0, run_at = ?, finished_at = NULL, cancel_requested = 0,
           keep_until = NULL, reason = ${sqlString(RETRIED_REASON)}
         WHERE id = ? AND state IN (${sqlStateList(RETRYABLE_STATES)})
         RETURNING queue, task`,
      );
      const now = Date.now();
      const retried = this.eventsOn ? this.eventStmt("retried", "NULL") : null;
      const changed = ids.filter((id) => {
        const job = update.get(now, id) as EventJob | undefined;
        if (job) retried?.run(now, job.queue, id, job.task, null);
        return job !== undefined;
      });
      return { count: changed.length, ids: changed };
    });
    if (result.count > 0) this.notify({ type: "jobs", queues: null });
    return result;
  }

  async cancel(filter: JobFilter, options: BulkOptions): Promise<BulkResult & { requested: string[] }> {
    const effects = newEffects();
    const result = await this.write(() => {
      const now = Date.now();
      // Active jobs already flagged are not picked again, so a caller looping "until a batch is short" goes on.
      const ids = this.selectIds(filter, CANCELLABLE_STATES, options.limit, [
        "NOT (state = 'active' AND cancel_requested = 1)",
      ]);
      // A held job (claimed ahead, not started) is cancelled at once too; its claim's attempt is given back.
      const cancelNow = this.stmt(
        `UPDATE jobs SET state = 'cancelled', finished_at = ?, reason = ${sqlString(CANCELLED_REASON)},
           attempt = CASE WHEN ${heldSql()} THEN MAX(attempt - 1, 0) ELSE attempt END, lease_expires_at = NULL,
           ${COUNT_FINAL}
         WHERE id = ? AND ${seenStateSql(CANCEL_AT_ONCE_STATES)}
         RETURNING queue, task, reason, ${SETTLE_RETURNING}`,
      );
      const cancelledEvent = this.eventsOn ? this.eventStmt("cancelled", "json_object('reason', ?)") : null;
      const request = this.stmt(
        "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'active' AND cancel_requested = 0",
      );
      const cancelled: string[] = [];
      const requested: string[] = [];
      // Each cancelled job resolves its dependents and cancels its children (flows.ts), in this write.
      const toSettle: Settled[] = [];
      for (const id of ids) {
        const job = cancelNow.get(now, id) as (EventJob & SettleColumns & { reason: string }) | undefined;
        if (job) {
          cancelledEvent?.run(now, job.queue, id, job.task, null, job.reason);
          cancelled.push(id);
          toSettle.push(settled({ ...job, id }, job, "cancelled", 1));
        } else if (request.run(id).changes === 1) requested.push(id);
      }
      this.flows().settle(toSettle, now, effects);
      return { count: cancelled.length, ids: cancelled, requested };
    });
    if (result.requested.length > 0) this.notify({ type: "cancel" });
    this.notifyEffects(effects);
    return result;
  }

  async remove(filter: JobFilter, options: BulkOptions): Promise<BulkResult> {
    const effects = newEffects();
    const result = await this.write(() => {
      const ids = this.selectIds(filter, REMOVABLE_STATES, options.limit);
      // RETURNING gives the row as it was: its state says whether it had finished.
      const drop = this.stmt(
        `DELETE FROM jobs WHERE id = ? AND (state != 'active' OR ${heldSql()})
         RETURNING queue, task, state, ${SETTLE_RETURNING}`,
      );
      const now = Date.now();
      const deleted = this.eventsOn ? this.eventStmt("deleted", "NULL") : null;
      // A job deleted before it finished resolves its dependents and counts in its batch (flows.ts).
      const toSettle: Settled[] = [];
      const changed = ids.filter((id) => {
        const job = drop.get(id) as (EventJob & SettleColumns & { state: string }) | undefined;
        if (job) deleted?.run(now, job.queue, id, job.task, null);
        if (job && !isFinal(job.state) && needsSettle(job, "deleted"))
          toSettle.push(settled({ ...job, id }, job, "deleted", 0));
        return job !== undefined;
      });
      this.flows().settle(toSettle, now, effects);
      return { count: changed.length, ids: changed };
    });
    this.notifyEffects(effects);
    return result;
  }

  async move(filter: JobFilter, toQueue: string, options: BulkOptions): Promise<BulkResult> {
    const result = await this.write(() => {
      const ids = this.selectIds(filter, MOVABLE_STATES, options.limit, ["queue != ?", toQueue]);
      // A held job (claimed ahead, not started) moves as the waiting job it is; its claim is undone.
      const update = this.stmt(
        `UPDATE jobs SET queue = ?,
           attempt = CASE WHEN ${heldSql()} THEN MAX(attempt - 1, 0) ELSE attempt END,
           lease_expires_at = CASE WHEN ${heldSql()} THEN NULL ELSE lease_expires_at END,
           state = CASE WHEN ${heldSql()} THEN 'waiting' ELSE state END
         WHERE id = ? AND queue != ? AND ${seenStateSql(MOVABLE_STATES)}`,
      );
      // The event needs the queue the job leaves, which RETURNING cannot give after the update: it is
      // written first, under the update's own guard, and the update runs only when it was.
      const moved = this.eventsOn
        ? this.stmt(
            `INSERT INTO events (at, type, queue, job_id, task, attempt, data)
             SELECT ?, 'moved', ?, id, task, NULL, json_object('from', queue) FROM jobs
             WHERE id = ? AND queue != ? AND ${seenStateSql(MOVABLE_STATES)}`,
          )
        : null;
      const now = Date.now();
      const changed = ids.filter((id) => {
        if (moved && moved.run(now, toQueue, id, toQueue).changes !== 1) return false;
        return update.run(toQueue, id, toQueue).changes === 1;
      });
      return { count: changed.length, ids: changed };
    });
    if (result.count > 0) this.notify({ type: "jobs", queues: [toQueue] });
    return result;
  }

  async reprioritize(filter: JobFilter, priority: number, options: BulkOptions): Promise<BulkResult> {
    return this.write(() => {
      const ids = this.selectIds(filter, REPRIORITIZABLE_STATES, options.limit, ["priority != ?", priority]);
      const update = this.stmt(
        `UPDATE jobs SET priority = ? WHERE id = ? AND state IN (${REPRIORITIZABLE_STATES.map(() => "?").join(", ")})`,
      );
      const changed = ids.filter((id) => update.run(priority, id, ...REPRIORITIZABLE_STATES).changes === 1);
      return { count: changed.length, ids: changed };
    });
  }

  async pauseQueue(queue: string, until: number | null): Promise<void> {
    await this.write(() => {
      // A rate limit (until) never lifts an operator's pause and only ever extends an earlier limit.
      this.stmt(
        `INSERT INTO queues (name, paused, paused_until) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET
           paused = MAX(queues.paused, excluded.paused),
           paused_until = CASE WHEN excluded.paused_until IS NULL THEN queues.paused_until
                               ELSE MAX(COALESCE(queues.paused_until, 0), excluded.paused_until) END`,
      ).run(queue, until === null ? 1 : 0, until);
      if (this.eventsOn) {
        this.stmt(
          `INSERT INTO events (at, type, queue, job_id, task, attempt, data)
           VALUES (?, 'paused', ?, NULL, NULL, NULL, json_object('until', CAST(? AS INTEGER)))`,
        ).run(Date.now(), queue, until);
      }
    });
    // Workers holding jobs of the queue claimed ahead give them back (they learn which from extendLeases).
    if (until === null) this.notify({ type: "cancel" });
  }

  async resumeQueue(queue: string): Promise<void> {
    await this.write(() => {
      this.stmt("UPDATE queues SET paused = 0, paused_until = NULL WHERE name = ?").run(queue);
      this.limits().clearHolds(queue);
      if (this.eventsOn) {
        this.stmt(
          `INSERT INTO events (at, type, queue, job_id, task, attempt, data)
           VALUES (?, 'resumed', ?, NULL, NULL, NULL, NULL)`,
        ).run(Date.now(), queue);
      }
    });
    this.notify({ type: "jobs", queues: [queue] });
  }

  private queueStates(
    now: number,
  ): { queue: string; paused: boolean; pausedUntil: number | null; limits: QueueLimits | null }[] {
    const rows = this.stmt("SELECT name, paused, paused_until, limits FROM queues ORDER BY name").all() as {
      name: string;
      paused: number;
      paused_until: number | null;
      limits: string | null;
    }[];
    return rows.map((r) => ({
      queue: r.name,
      paused: r.paused === 1,
      pausedUntil: r.paused_until !== null && r.paused_until > now ? r.paused_until : null,
      limits: parseLimits(r.limits),
    }));
  }

  // ── schedules ──────────────────────────────────────────────────────────────────────────────────

  async upsertSchedule(schedule: ScheduleUpsert): Promise<ScheduleRecord> {
    return this.write(() => {
      const row = this.stmt(
        `INSERT INTO schedules (name, version, task, queue, cron, timezone, every_ms, missed, template, next_at,
           last_tick_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)
         ON CONFLICT (name) DO UPDATE SET ${scheduleUpsertSet("schedules")}
         RETURNING *`,
      ).get(...scheduleValues(schedule), Date.now()) as ScheduleRow;
      return rowToSchedule(row);
    });
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.read(() =>
      (this.stmt("SELECT * FROM schedules ORDER BY name").all() as ScheduleRow[]).map(rowToSchedule),
    );
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.write(() => this.stmt("DELETE FROM schedules WHERE name = ?").run(name).changes === 1);
  }

  async pauseSchedule(name: string): Promise<ScheduleRecord | null> {
    return this.write(() => {
      const row = this.stmt("UPDATE schedules SET paused = 1 WHERE name = ? RETURNING *").get(name) as
        | ScheduleRow
        | undefined;
      return row ? rowToSchedule(row) : null;
    });
  }

  async resumeSchedule(name: string, nextAt: number | null): Promise<ScheduleRecord | null> {
    return this.write(() => {
      this.stmt("UPDATE schedules SET paused = 0, next_at = ? WHERE name = ? AND paused = 1").run(
        nextAt,
        name,
      );
      const row = this.stmt("SELECT * FROM schedules WHERE name = ?").get(name) as ScheduleRow | undefined;
      return row ? rowToSchedule(row) : null;
    });
  }

  async fireSchedule(request: FireRequest): Promise<EnqueueResult[] | null> {
    const results = await this.write(() => {
      const fired = this.stmt(
        "UPDATE schedules SET next_at = ?, last_tick_at = ? WHERE name = ? AND next_at = ? AND paused = 0",
      ).run(request.nextAt, request.lastTickAt, request.name, request.dueAt).changes;
      return fired === 1 ? this.insertJobs(request.jobs, Date.now()) : null;
    });
    if (results) this.notifyCreated(request.jobs, results);
    return results;
  }

  async addHourlyStats(rows: readonly StatsRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.write(() => {
      const read = this.stmt("SELECT durations FROM queue_stats WHERE hour = ? AND queue = ?");
      const upsert = this.stmt(
        `INSERT INTO queue_stats (queue, hour, completed, failed, dead, durations, last_completed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (hour, queue) DO UPDATE SET completed = completed + excluded.completed,
           failed = failed + excluded.failed, dead = dead + excluded.dead, durations = excluded.durations,
           last_completed_at = MAX(COALESCE(last_completed_at, 0), COALESCE(excluded.last_completed_at, 0))`,
      );
      for (const row of rows) {
        // Inside the write transaction, so read-add-write of the histogram is atomic across processes.
        const existing = read.get(row.hour, row.queue) as { durations: string } | undefined;
        const merged = addHistograms(
          existing ? (JSON.parse(existing.durations) as number[]) : [],
          row.durations,
        );
        upsert.run(
          row.queue,
          row.hour,
          row.completed,
          row.failed,
          row.dead,
          JSON.stringify(merged),
          row.lastCompletedAt,
        );
      }
    });
  }

  /**
   * Events after `after`, in id order. One read transaction (a WAL snapshot): every event committed before
   * it has an id at most the newest one it sees, and every later commit gets a higher id (one writer at a
   * time; the newest id is never pruned, so ids are never reused), so the cursor never passes an event a
   * later read could still return.
   */
  async readEvents(request: ReadEventsRequest): Promise<EventsPage> {
    const { after } = request;
    if (after !== null && !EVENT_ID.test(after)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `event id "${after}" is not one this store returned: SQLite event ids are decimal integers ("0" or ` +
          "more, at most 18 digits); pass the cursor or an event id it returned, or null to read from the oldest",
        { field: "after" },
      );
    }
    return this.read(
      () =>
        this.runInTransaction()(() => {
          const meta = this.stmt(
            `SELECT (SELECT pruned_upto FROM events_meta WHERE one = 1) AS pruned,
               (SELECT MAX(id) FROM events) AS newest`,
          ).get() as { pruned: number | null; newest: number | null };
          const pruned = meta.pruned ?? 0;
          const requested = after === null ? null : BigInt(after);
          // Older than what retention kept, or beyond anything this store assigned (wiped or replaced).
          const reset =
            requested !== null && (requested < BigInt(pruned) || requested > BigInt(meta.newest ?? 0));
          const from = requested === null || reset ? pruned : Number(requested);
          const newest = meta.newest ?? 0;
          const unchanged = reset ? String(pruned) : after;
          if (newest <= from || request.limit <= 0) return { events: [], cursor: unchanged, reset };
          const upto = Math.min(newest, from + EVENT_SCAN_WINDOW);
          const where = ["id > ?", "id <= ?"];
          const params: unknown[] = [from, upto];
          if (request.queue !== undefined) {
            where.push("queue = ?");
            params.push(request.queue);
          }
          if (request.jobId !== undefined) {
            where.push("job_id = ?");
            params.push(request.jobId);
          }
          const rows = this.stmt(
            `SELECT id, at, type, queue, job_id, task, attempt, data FROM events
             WHERE ${where.join(" AND ")} ORDER BY id LIMIT (? + 0)`,
          ).all(...params, request.limit) as EventRow[];
          const last = rows[rows.length - 1];
          // A full page covers up to its last event; a short one covers the whole range it scanned.
          const cursor = String(last && rows.length >= request.limit ? last.id : upto);
          return { events: rows.map(rowToEvent), cursor, reset };
        }) as EventsPage,
    );
  }

  async lastEventId(): Promise<string | null> {
    return this.read(() => {
      const row = this.stmt("SELECT MAX(id) AS id FROM events").get() as { id: number | null };
      return row.id === null ? null : String(row.id);
    });
  }

  async readHourlyStats(since: number): Promise<StatsRow[]> {
    return this.read(() =>
      (
        this.stmt("SELECT * FROM queue_stats WHERE hour >= ? ORDER BY hour, queue").all(since) as {
          queue: string;
          hour: number;
          completed: number;
          failed: number;
          dead: number;
          durations: string;
          last_completed_at: number | null;
        }[]
      ).map((r) => ({
        queue: r.queue,
        hour: r.hour,
        completed: r.completed,
        failed: r.failed,
        dead: r.dead,
        durations: JSON.parse(r.durations) as number[],
        lastCompletedAt: r.last_completed_at || null,
      })),
    );
  }

  /** Ids matching `filter` restricted to `allowed` states, oldest first, at most `limit`. */
  private selectIds(
    filter: JobFilter,
    allowed: readonly JobState[],
    limit: number,
    extra?: [clause: string, ...values: unknown[]],
  ): string[] {
    const states = filter.states ? filter.states.filter((s) => allowed.includes(s)) : allowed;
    if (states.length === 0) return [];
    const { where, params } = filterSql({ ...filter, states });
    if (extra) {
      const [clause, ...values] = extra;
      where.push(clause);
      params.push(...values);
    }
    const rows = this.stmt(`SELECT id FROM jobs WHERE ${where.join(" AND ")} ORDER BY seq LIMIT (? + 0)`).all(
      ...params,
      limit,
    ) as { id: string }[];
    return rows.map((r) => r.id);
  }

  // ── plumbing ───────────────────────────────────────────────────────────────────────────────────

  private conn(): Database.Database {
    if (!this.db)
      throw new SluiceError("CLOSED", "SQLite store is not open; call open() first (or it was closed)");
    return this.db;
  }

  /** One transaction wrapper per connection (building one per write is measurable on the claim path). */
  private runInTransaction(): Database.Transaction<(fn: () => unknown) => unknown> {
    this.transactionRunner ??= this.conn().transaction((fn: () => unknown) => fn());
    return this.transactionRunner;
  }

  /**
   * The insert of one job event of `type`; parameters: at, queue, job id, task, attempt, then those of
   * `data` (an SQL expression, json_object(…) so no JSON is built in JS on the hot path).
   */
  private eventStmt(type: FleetEventType, data: string): Statement {
    return this.stmt(
      `INSERT INTO events (at, type, queue, job_id, task, attempt, data) VALUES (?, '${type}', ?, ?, ?, ?, ${data})`,
    );
  }

  private stmt(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      // Admin queries with id lists produce many shapes; keep the cache bounded.
      if (this.statements.size > 500) this.statements.clear();
      statement = this.conn().prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * Runs a read outside any transaction (WAL gives it a consistent snapshot without blocking writers). A
   * reader meets SQLITE_BUSY only in rare moments (WAL recovery, the last connection closing); it retries
   * like a write.
   */
  private read<T>(fn: () => T): Promise<T> {
    return this.retryWhileBusy(fn, "read");
  }

  /**
   * Runs `fn` in a write transaction. Writes asked for in the same turn of the event loop (a worker's
   * completion and its next claim, a heartbeat) share one transaction: a write that throws rolls back alone
   * and rejects alone, the others commit together. One commit instead of several: each commit appends every
   * page it touched to the WAL.
   *
   * The first write of a transaction runs in it directly, the others each in a savepoint. Inside a savepoint
   * SQLite copies every page before changing it into a statement journal, which spills to a temporary file
   * past 64 KiB: a batch of 50 completions spent more time there than in the update itself (measured: 44 %
   * of a completion's CPU, mostly the kernel writing the temporary file). The first write needs no savepoint:
   * if it throws, the whole transaction rolls back (nothing else ran in it yet) and the rest of the group is
   * written in a new one.
   */
  private write<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingWrites.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => void this.flushWrites());
    });
  }

  private async flushWrites(): Promise<void> {
    const group = this.pendingWrites;
    this.pendingWrites = [];
    if (group.length === 0) return; // close() wrote them already
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    /** Writes whose outcome is final: committed, or rolled back alone. */
    let settled = 0;
    try {
      // Inside the try: a store closed meanwhile must reject the group's writes, not leave them pending
      // forever (their callers would hang) with an unhandled rejection instead.
      const runner = this.runInTransaction();
      while (settled < group.length) {
        const from = settled;
        await this.retryWhileBusy(() => {
          outcomes.length = from;
          let firstThrew = false;
          try {
            runner.immediate(() => {
              try {
                outcomes.push({ ok: true, value: (group[from] as PendingWrite).fn() });
              } catch (error) {
                firstThrew = true;
                outcomes.push({ ok: false, error });
                throw error; // rolls the transaction back: only this write ran in it
              }
              for (let i = from + 1; i < group.length; i++) {
                try {
                  // Nested: better-sqlite3 runs it in a savepoint, rolled back if it throws.
                  outcomes.push({ ok: true, value: runner((group[i] as PendingWrite).fn) });
                } catch (error) {
                  outcomes.push({ ok: false, error });
                }
              }
            });
          } catch (error) {
            if (!firstThrew) throw error; // BEGIN or COMMIT failed: retried while busy, else the rest fail
          }
        }, "write");
        settled = outcomes.length;
      }
    } catch (error) {
      group.forEach((item, i) => {
        if (i >= settled) item.reject(error);
      });
    }
    group.forEach((item, i) => {
      if (i >= settled) return;
      const outcome = outcomes[i];
      if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(this.translate(outcome?.error, "write"));
    });
  }

  /**
   * Retries `attempt` while the database is locked by another process, until `lockDeadlineMs`.
   * SQLite's own busy handler sleeps inside the call and so blocks this process's event loop, in steps that
   * grow to tens of milliseconds; `busy_timeout` is therefore kept short (5 ms) and the rest of the wait
   * happens here, asynchronously, with short jittered pauses first (a write transaction of another process
   * takes well under a millisecond), so heartbeats, other jobs and an HTTP server keep running meanwhile.
   */
  private async retryWhileBusy<T>(attempt: () => T, action: string): Promise<T> {
    const deadline = Date.now() + this.config.lockDeadlineMs;
    for (let n = 0; ; n++) {
      try {
        return attempt();
      } catch (error) {
        if (isBusy(error) && Date.now() < deadline) {
          await sleep(Math.min(0.5 * 2 ** n, 50) * (0.5 + Math.random()));
          continue;
        }
        throw this.translate(error, action);
      }
    }
  }

  private translate(error: unknown, action: string): Error {
    if (error instanceof SluiceError) return error;
    const code = (error as { code?: string }).code ?? "";
    const where = this.config.memory ? ":memory:" : this.config.path;
    if (isBusy(error)) {
      return new StoreUnavailableError(
        `SQLite database ${where} stayed locked for over ${this.config.lockDeadlineMs} ms while trying to ${action}; ` +
          "another process holds a long write transaction (check for a stuck process or an open sqlite3 shell)",
        { cause: error },
      );
    }
    if (
      code === "SQLITE_CANTOPEN" ||
      code === "SQLITE_READONLY" ||
      code === "SQLITE_PERM" ||
      code === "SQLITE_IOERR"
    ) {
      return new StoreUnavailableError(
        `cannot ${action} SQLite database ${where} (${code}): check that the directory exists and is writable`,
        { cause: error },
      );
    }
    if (code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB") {
      return new SluiceError(
        "STORE_CORRUPT",
        `SQLite database ${where} is corrupt or not a database (${code}); restore it from a backup`,
        {
          cause: error,
        },
      );
    }
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** The queues of `gates` whose limits include a concurrency (queue or key). */
function slotLimitedQueues(gates: ReadonlyMap<string, Gate>): Set<string> {
  const out = new Set<string>();
  for (const [queue, gate] of gates) {
    if (gate.limits?.concurrency != null || gate.limits?.keyConcurrency != null) out.add(queue);
  }
  return out;
}

function rowToEvent(row: EventRow): FleetEvent {
  return {
    id: String(row.id),
    type: row.type as FleetEventType,
    at: row.at,
    queue: row.queue,
    jobId: row.job_id,
    task: row.task,
    attempt: row.attempt,
    data: row.data === null ? null : (JSON.parse(row.data) as Record<string, Json>),
  };
}

/** The file's real path (symlinks resolved), or the absolute path when it cannot be resolved. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

/** WHERE clauses for a filter (parameters in order). */
function filterSql(filter: JobFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.ids) {
    if (filter.ids.length === 0) where.push("0");
    else {
      where.push(`id IN (${filter.ids.map(() => "?").join(", ")})`);
      params.push(...filter.ids);
    }
  }
  if (filter.queue !== undefined) {
    where.push("queue = ?");
    params.push(filter.queue);
  }
  if (filter.states) {
    // As users see states: a held job (claimed ahead, not started) is waiting, not active.
    if (filter.states.length === 0) where.push("0");
    else where.push(seenStateSql(filter.states));
  }
  if (filter.task !== undefined) {
    where.push("task = ?");
    params.push(filter.task);
  }
  if (filter.createdBefore !== undefined) {
    where.push("created_at < ?");
    params.push(filter.createdBefore);
  }
  if (filter.batchId !== undefined) {
    where.push("batch_id = ?");
    params.push(filter.batchId);
  }
  if (filter.parentId !== undefined) {
    where.push("parent_id = ?");
    params.push(filter.parentId);
  }
  if (filter.tag !== undefined) {
    where.push("EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE json_each.value = ?)");
    params.push(filter.tag);
  }
  if (filter.idPrefix !== undefined) {
    // substr, not LIKE / GLOB: every character of the prefix is literal.
    where.push("substr(id, 1, length(?)) = ?");
    params.push(filter.idPrefix, filter.idPrefix);
  }
  if (filter.payloadField !== undefined) {
    const field = payloadFieldSql(filter.payloadField.path, filter.payloadField.equals);
    where.push(field.sql);
    params.push(...field.params);
  }
  return { where, params };
}

/**
 * "The payload has `equals` at `path`": a walk down the payload's objects with json_each, one level per
 * key, each key a bound parameter compared as text. No JSON path is built from the keys (SQLite's path
 * syntax cannot quote every key: `"` inside a quoted label has no escape), so any key is data. Only
 * objects are descended into (an array's indexes are integers and never equal a text key), and the value
 * must have the scalar's JSON type: 7 does not match "7", null matches JSON null and not a missing key.
 */
function payloadFieldSql(
  path: readonly string[],
  equals: string | number | boolean | null,
): { sql: string; params: unknown[] } {
  if (path.length === 0) return { sql: "0", params: [] };
  const params: unknown[] = [];
  const from: string[] = [];
  const where: string[] = [];
  path.forEach((key, i) => {
    const source = i === 0 ? "jobs.payload" : `CASE WHEN p${i - 1}.type = 'object' THEN p${i - 1}.value END`;
    from.push(`json_each(${source}) AS p${i}`);
    where.push(`p${i}.key = ?`);
    params.push(key);
  });
  const leaf = `p${path.length - 1}`;
  if (equals === null) where.push(`${leaf}.type = 'null'`);
  else if (typeof equals === "boolean") where.push(`${leaf}.type = '${equals ? "true" : "false"}'`);
  else if (typeof equals === "number") {
    where.push(`${leaf}.type IN ('integer', 'real') AND ${leaf}.atom = ?`);
    params.push(equals);
  } else {
    where.push(`${leaf}.type = 'text' AND ${leaf}.atom = ?`);
    params.push(equals);
  }
  return { sql: `EXISTS (SELECT 1 FROM ${from.join(", ")} WHERE ${where.join(" AND ")})`, params };
}

/**
 * The `jobs` rows a statement returns, read raw (arrays; see jobRowFromRaw for why). The statement is
 * switched to raw mode for good: only the claim's statements are read this way.
 */
function rawJobRows(statement: Statement, params: unknown[]): JobRow[] {
  statement.raw(true);
  const index = columnIndex(statement);
  const rows = statement.all(...params) as unknown[][];
  const out: JobRow[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = jobRowFromRaw(rows[i] as unknown[], index);
  return out;
}
