/**
 * The PostgreSQL engine (`pg`): one database shared by a fleet of producers and workers on any number of
 * machines, with enqueue inside the application's own transaction.
 *
 * - **Claims** run `<schema>.claim()` (migrations.ts): due scheduled jobs are promoted, then each requested
 *   queue is read in (priority, run_at, seq) order through a partial index with `FOR UPDATE SKIP LOCKED`,
 *   so concurrent claimers take disjoint jobs without waiting, and a claim of N jobs is one round trip.
 * - **Batches** (enqueue, complete, fail, release, extendLeases, progress, logs) are one statement over
 *   `unnest()` of parallel arrays: one round trip and one plan however many items.
 * - **Fencing** is `WHERE id = … AND lease_token = … AND state = 'active'` in the same statement as the
 *   change; lease times come from the database clock (`now()`), never the caller's.
 * - **Wake-ups**: statements that make work available also call `pg_notify` (delivered on commit);
 *   signals.ts turns notifications into signals. See docs/postgres.md.
 * - **Failures** become StoreUnavailableError with a message that says what to check (errors.ts).
 */

import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { ClosedError, SluiceError, StoreUnavailableError, ValidationError } from "../../core/errors.js";
import { DEFAULT_EVENT_RETENTION, type FleetEvent, type FleetEventType } from "../../core/fleet-events.js";
import type { BatchRecord, FlowView } from "../../core/flows.js";
import type { AttemptError, JobLogLine, JobRecord, JobState, Json } from "../../core/job.js";
import { JOB_STATES } from "../../core/job.js";
import { MAX_WINDOW_MS, type QueueLimits, unlimited } from "../../core/limits.js";
import {
  asSeen,
  CANCEL_AT_ONCE_STATES,
  CANCELLED_REASON,
  MOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRIED_REASON,
  RETRYABLE_STATES,
  recoveryTarget,
} from "../../core/states.js";
import { addHistograms, latest, STATS_RETENTION_MS, type StatsRow } from "../../core/stats.js";
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
import { RecoveryGate } from "../outage.js";
import {
  heldSql,
  rowToSchedule,
  type ScheduleRow,
  scheduleUpsertSet,
  scheduleValues,
  seenStateBranches,
  seenStateSql,
  sqlStateList,
  sqlString,
} from "../sql-common.js";
import { stallsText } from "../stalls.js";
import { healthText } from "../worker-health.js";
import { type PostgresConfig, parsePostgresUrl } from "./config.js";
import { postgresEngine } from "./engine.js";
import { toStoreError } from "./errors.js";
import { enqueueFlow, isFlowCall } from "./flow-enqueue.js";
import { listBatches, readBatches, readFlow, stuckBlocked } from "./flow-reads.js";
import { postgresHazards } from "./hazards.js";
import { dedupesByKey, insertArrays, isQueryable, type Queryable, rowsOf } from "./insert.js";
import { currentVersion, LATEST_VERSION, migrate } from "./migrations.js";
import { type JobRow, num, numOrNull, rowToJob, rowToWorker, type WorkerRow } from "./rows.js";
import { CANCEL_PAYLOAD, jobsPayload, NotificationListener } from "./signals.js";
import { eventInsert, filterSql, NOW_MS, notifyJobsFrom, quoteSchema, statements } from "./sql.js";
import {
  DUE_FOR_VACUUM,
  VACUUM_DEAD_FRACTION,
  VACUUM_MIN_DEAD_ROWS,
  VACUUMED_TABLES,
  VacuumPacer,
} from "./vacuum.js";

/**
 * `bigint` columns (ids, epoch ms) as JS numbers on the store's own connections: epoch ms and sequence
 * numbers stay far below 2^53. Per-pool, so the application's own `pg` type parsers are untouched.
 */
const BIGINT_AS_NUMBER: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as "text")) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * Text from handlers (error messages, log lines) with NUL replaced by U+FFFD: PostgreSQL's text and jsonb
 * cannot hold NUL, and refusing the write would lose the outcome of the attempt over one character.
 */
function withoutNul(text: string): string {
  return text.includes("\u0000") ? text.replaceAll("\u0000", "\uFFFD") : text;
}

/**
 * Times a statement or transaction that PostgreSQL aborted to break a deadlock (SQLSTATE 40P01) runs again.
 * The flow transitions take their locks in one order (migration-flows.ts), so the hot paths never deadlock;
 * an operator's cancel cascade (parent → child) against a child's completion (child → parent) can.
 */
const DEADLOCK_RETRIES = 5;

function isDeadlock(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "40P01";
}

/** An event id as readEvents accepts it: what this engine hands out (a bigint in decimal). */
const EVENT_ID = /^\d{1,18}$/;

/** How long readEvents / lastEventId wait for their own horizon mark to settle (read-your-writes). */
const OWN_MARK_WAIT_MS = 100;
/** Pause between two looks at the snapshot's xmin while waiting. */
const MARK_POLL_MS = 3;
/** Horizon marks kept while they settle; the oldest go first (a newer one settles no earlier). */
const MAX_MARKS = 32;

/** A horizon mark (see `eventHorizon`): ids up to `lastId` are settled once a snapshot's xmin reaches `nextXid`. */
interface EventMark {
  lastId: number;
  nextXid: number;
}

interface EventRow {
  reset: boolean;
  pruned_id: number | string;
  id: number | string | null;
  at: number | string;
  type: FleetEventType;
  queue: string;
  job_id: string | null;
  task: string | null;
  attempt: number | null;
  data: Record<string, Json> | null;
}

interface RecoverCandidate {
  id: string;
  queue: string;
  task: string;
  worker_id: string | null;
  attempt: number;
  max_attempts: number;
  cancel_requested: boolean;
  lease_token: number | string;
  now_ms: number | string;
}

export type { Queryable };

/** The PostgreSQL implementation of the store contract. */
/** How often one store summarizes the events BRIN index while it reads events. */
const EVENT_SUMMARIZE_MS = 200;

export class PostgresStore implements Store {
  /** When this store last summarized the events index (summarizeEvents). */
  private eventsSummarizedAt = 0;
  readonly engine = "postgres" as const;
  readonly traits: StoreTraits = postgresEngine.traits;
  /** Parsed URL: schema, pool size, redacted location. */
  readonly config: PostgresConfig;
  private readonly pool: pg.Pool;
  private readonly listener: NotificationListener;
  private readonly s: string;
  private readonly sql: ReturnType<typeof statements>;
  /** Statement text → prepared statement name, for the fixed statements in `sql`. */
  private readonly prepared: Map<string, string>;
  /** The pool's connections: statements on them may be named (prepared once per connection). */
  private readonly ownClients = new WeakSet<object>();
  private opening: Promise<void> | null = null;
  private appliedOnOpen: number[] = [];
  private closed = false;
  private readonly vacuums: VacuumPacer;
  /** This process's connection to the server (lost / back) and the expired-lease recovery rule after outages. */
  private readonly gate: RecoveryGate;
  /** Whether transitions write fleet events (StoreOptions.events). */
  private readonly eventsOn: boolean;
  /** Horizon marks not yet settled, oldest first (`eventHorizon`). */
  private marks: EventMark[] = [];
  /** The highest snapshot xmin seen: every xid below it had ended when it was seen. */
  private xminSeen = 0;
  /** The newest settled horizon: every event id up to it is committed or rolled back for good. */
  private settledId = 0;

  constructor(
    url: string,
    private readonly options: StoreOptions,
  ) {
    this.config = parsePostgresUrl(url);
    this.vacuums = new VacuumPacer(this.config.vacuum);
    this.gate = new RecoveryGate(options.logger, { engine: "postgres", location: this.config.location });
    this.s = quoteSchema(this.config.schema);
    this.eventsOn = (options.events ?? DEFAULT_EVENT_RETENTION).enabled;
    this.sql = statements(this.s, this.eventsOn, this.config.asyncClaims);
    this.prepared = new Map(
      Object.entries(this.sql).flatMap(([key, text]) =>
        typeof text === "string" ? [[text, `sluice_${key}`]] : [],
      ),
    );
    const client: pg.ClientConfig = {
      connectionString: this.config.connectionString,
      connectionTimeoutMillis: this.config.connectTimeoutMs,
      // Detects a silently dead peer (host gone, partition) in seconds instead of the OS default of hours.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: "sluice",
      types: BIGINT_AS_NUMBER,
    };
    // With queryTimeoutMs, a statement unanswered that long fails (StoreUnavailableError) and its connection
    // is discarded: a half-open connection is noticed in seconds, and the caller's retry takes a fresh one.
    this.pool = new pg.Pool({
      ...client,
      ...(this.config.queryTimeoutMs > 0 ? { query_timeout: this.config.queryTimeoutMs } : {}),
      max: this.config.poolSize,
      idleTimeoutMillis: 30_000,
    });
    this.pool.on("connect", (connection) => this.ownClients.add(connection));
    // An idle pooled connection that the server drops (restart, idle timeout) emits 'error' on the pool;
    // without a listener that would crash the process. The pool discards the connection by itself.
    this.pool.on("error", (error) => {
      this.gate.connection.lost();
      this.options.logger.warn(
        { engine: "postgres", location: this.config.location, err: { message: error.message } },
        "idle PostgreSQL connection lost; it will be replaced on next use",
      );
    });
    this.listener = new NotificationListener({
      client,
      channel: this.config.schema,
      logger: this.options.logger,
      location: this.config.location,
      checkMs: this.config.listenCheckMs,
    });
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────────

  open(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError("PostgreSQL store"));
    this.opening ??= this.openNow().catch((error: unknown) => {
      this.opening = null;
      throw error;
    });
    return this.opening;
  }

  private async openNow(): Promise<void> {
    const applied = await this.withClient("apply migrations", (client) =>
      migrate(client, this.config.schema),
    );
    this.appliedOnOpen = applied;
    if (applied.length > 0) {
      this.options.logger.info(
        { engine: "postgres", location: this.config.location, schema: this.config.schema, applied },
        "postgres migrations applied",
      );
    }
  }

  /** Applies pending migrations now (what `open()` does); returns the versions this call applied. */
  async migrate(): Promise<number[]> {
    return this.withClient("apply migrations", (client) => migrate(client, this.config.schema));
  }

  async migrations(): Promise<MigrationStatus> {
    const current = await this.withClient("read the schema version", (client) =>
      currentVersion(client, this.config.schema),
    );
    return { current, latest: LATEST_VERSION, applied: [...this.appliedOnOpen] };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    await this.pool.end();
  }

  async ping(): Promise<void> {
    await this.query("reach the database", "SELECT 1");
  }

  async info(): Promise<StoreInfo> {
    const rows = await this.query<{
      version: string;
      synchronous_commit: string;
      fsync: string;
      full_page_writes: string;
    }>(
      "read server settings",
      `SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS synchronous_commit,
              current_setting('fsync') AS fsync, current_setting('full_page_writes') AS full_page_writes`,
    );
    const settings = rows[0];
    if (!settings)
      throw new StoreUnavailableError(`PostgreSQL at ${this.config.location} returned no settings`);
    const schemaVersion = await this.withClient("read the schema version", (client) =>
      currentVersion(client, this.config.schema),
    );
    const hazards = postgresHazards(settings, this.config.schema, schemaVersion);
    return { engine: "postgres", version: settings.version, location: this.config.location, hazards };
  }

  // ── producing ──────────────────────────────────────────────────────────────────────────────────

  async enqueue(
    jobs: readonly NewJob[],
    options?: { transaction?: TransactionHandle; batch?: NewBatch },
  ): Promise<EnqueueResult[]> {
    if (jobs.length === 0) return [];
    const batch = options?.batch;
    const flow = isFlowCall(jobs, batch);
    const transaction = options?.transaction;
    if (transaction !== undefined && transaction !== null) {
      if (!isQueryable(transaction)) {
        throw new SluiceError(
          "INVALID_OPTION",
          "transaction must be a pg client (pg.Client or a PoolClient inside BEGIN) or an object with query(text, values)",
        );
      }
      // The caller's transaction: no BEGIN/COMMIT of ours, and the NOTIFY rides on their commit.
      try {
        if (!flow) return await this.enqueueOn(transaction, jobs);
        // A flow is several statements: a savepoint undoes ours alone when the call is refused (a missing
        // dependency or batch), and leaves the application's transaction usable.
        await transaction.query("SAVEPOINT sluice_enqueue");
        try {
          const results = await this.enqueueFlowOn(transaction, jobs, batch);
          await transaction.query("RELEASE SAVEPOINT sluice_enqueue");
          return results;
        } catch (error) {
          if (!(error instanceof SluiceError)) throw error;
          await transaction.query("ROLLBACK TO SAVEPOINT sluice_enqueue");
          throw error;
        }
      } catch (error) {
        if (error instanceof SluiceError) throw error;
        const failure = toStoreError(error, "enqueue in the application's transaction", this.config.location);
        if (!(failure instanceof StoreUnavailableError)) throw failure;
        // PostgreSQL aborts the whole transaction on an error: say so, or the application's next statement
        // fails with "current transaction is aborted" and nobody knows why.
        throw new StoreUnavailableError(
          `${failure.message}; the application's transaction is aborted now: roll it back (ROLLBACK) and retry`,
          { cause: error, rejected: failure.rejected },
        );
      }
    }
    // A flow writes several statements (edges, batch counts): a transaction of ours.
    if (flow) return this.transaction("enqueue", (client) => this.enqueueFlowOn(client, jobs, batch));
    if (!jobs.some(dedupesByKey)) {
      // The common case is one statement, hence atomic without an explicit transaction.
      try {
        return await this.enqueueOn(this.pool, jobs);
      } catch (error) {
        throw toStoreError(error, "enqueue", this.config.location);
      }
    }
    return this.transaction("enqueue", (client) => this.enqueueOn(client, jobs));
  }

  /**
   * Writes `jobs` on `db`. Without unique keys this is a single INSERT … SELECT FROM unnest() that also
   * sends the NOTIFY. With unique keys (callers run this inside a transaction) it first takes an advisory
   * lock per key, so two producers racing on one key serialise and the second sees the first's job.
   */
  private async enqueueOn(db: Queryable, jobs: readonly NewJob[]): Promise<EnqueueResult[]> {
    // Schedules' templates may carry dependencies or a batch too (fireSchedule runs in a transaction).
    if (isFlowCall(jobs, undefined)) return this.enqueueFlowOn(db, jobs, undefined);
    const results: (EnqueueResult | null)[] = new Array(jobs.length).fill(null);
    const queues = jobs.map((job) => job.queue);
    if (!jobs.some(dedupesByKey)) {
      await this.insertRun(db, jobs, 0, results, jobsPayload(queues));
    } else {
      // Keys are scoped to their queue: lock on the pair, JSON-encoded so that no two pairs share a text.
      const keys = [
        ...new Set(jobs.filter(dedupesByKey).map((job) => JSON.stringify([job.queue, job.uniqueKey]))),
      ];
      await this.run(db, this.sql.lockUniqueKeys, [this.config.schema, keys]);
      let runStart = 0;
      for (let i = 0; i <= jobs.length; i++) {
        const job = jobs[i];
        if (job !== undefined && !dedupesByKey(job)) continue;
        if (i > runStart) await this.insertRun(db, jobs.slice(runStart, i), runStart, results, null);
        runStart = i + 1;
        if (job === undefined) break;
        const existing = rowsOf<{ id: string; state: JobState }>(
          await this.run(db, this.sql.findUnique, [job.uniqueKey, job.uniqueStates, job.queue]),
        )[0];
        if (existing) results[i] = { id: existing.id, state: existing.state, created: false };
        else await this.insertRun(db, [job], i, results, null);
      }
      if (results.some((r) => r?.created)) {
        await db.query("SELECT pg_notify($1, $2)", [this.config.schema, jobsPayload(queues)]);
      }
    }
    // Ids that were already stored (idempotent jobId): report the stored job.
    const missing = jobs.filter((_, i) => results[i] === null).map((job) => job.id);
    if (missing.length > 0) {
      const rows = rowsOf<{ id: string; state: JobState }>(
        await this.run(db, this.sql.statesById, [missing]),
      );
      const states = new Map(rows.map((row) => [row.id, row.state]));
      jobs.forEach((job, i) => {
        if (results[i] !== null) return;
        const state = states.get(job.id);
        if (state === undefined) {
          // Its id existed at insert time and was deleted a moment later by someone else: rare, retryable.
          throw new StoreUnavailableError(
            `job "${job.id}" already existed and was deleted while this enqueue ran; enqueue it again`,
          );
        }
        results[i] = { id: job.id, state, created: false };
      });
    }
    return results as EnqueueResult[];
  }

  /** Writes a flow on `db`, inside a transaction (flow-enqueue.ts). */
  private enqueueFlowOn(db: Queryable, jobs: readonly NewJob[], batch: NewBatch | undefined) {
    return enqueueFlow(db, jobs, batch, {
      s: this.s,
      schema: this.config.schema,
      sql: this.sql,
      events: this.eventsOn,
      run: (on, text, values) => this.run(on, text, values),
    });
  }

  /** Inserts `run` (jobs[offset…]) in one statement; fills `results` for the rows it created. */
  private async insertRun(
    db: Queryable,
    run: readonly NewJob[],
    offset: number,
    results: (EnqueueResult | null)[],
    notify: string | null,
  ): Promise<void> {
    const arrays: unknown[] = insertArrays(run);
    // ON CONFLICT costs a speculative insertion per row; generated ids never collide, so it is used only
    // when a caller-chosen jobId may already exist.
    const idempotent = run.some((job) => job.idempotent);
    const text =
      notify === null
        ? idempotent
          ? this.sql.insertIdempotent
          : this.sql.insert
        : idempotent
          ? this.sql.insertIdempotentNotify
          : this.sql.insertNotify;
    const values = notify === null ? arrays : [...arrays, this.config.schema, notify];
    const rows = rowsOf<{ id: string; state: JobState }>(await this.run(db, text, values));
    const created = new Map(rows.map((row) => [row.id, row.state]));
    run.forEach((job, i) => {
      const state = created.get(job.id);
      if (state === undefined) return;
      created.delete(job.id); // a second job with the same id in this batch was not created
      results[offset + i] = { id: job.id, state, created: true };
    });
  }

  // ── consuming ──────────────────────────────────────────────────────────────────────────────────

  async claim(request: ClaimRequest): Promise<JobRecord[]> {
    if (request.limit <= 0 || request.queues.length === 0) return [];
    const rows = await this.query<JobRow>("claim jobs", this.sql.claim, [
      request.queues,
      request.limit,
      request.workerId,
      request.leaseMs,
      request.start ?? request.limit,
    ]);
    // RETURNING order is unspecified: restore queue order, then priority, run time, enqueue order.
    const rank = new Map(request.queues.map((queue, i) => [queue, i]));
    const jobs = rows.map(rowToJob);
    jobs.sort(
      (a, b) =>
        (rank.get(a.queue) ?? 0) - (rank.get(b.queue) ?? 0) ||
        a.priority - b.priority ||
        a.runAt - b.runAt ||
        a.seq - b.seq,
    );
    return jobs;
  }

  async start(leases: readonly LeaseRef[]): Promise<boolean[]> {
    if (leases.length === 0) return [];
    const rows = await this.query<{ id: string }>("start jobs", this.sql.start, [
      leases.map((l) => l.id),
      leases.map((l) => l.token),
    ]);
    const applied = new Set(rows.map((row) => row.id));
    return leases.map((l) => applied.has(l.id));
  }

  async complete(requests: readonly CompleteRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const rows = await this.query<{ id: string }>("complete jobs", this.sql.complete, [
      requests.map((r) => r.id),
      requests.map((r) => r.token),
      requests.map((r) => r.result),
    ]);
    const done = new Set(rows.map((row) => row.id));
    return requests.map((r) => done.has(r.id));
  }

  async completeAndStart(
    completions: readonly CompleteRequest[],
    starts: readonly LeaseRef[],
  ): Promise<{ completed: boolean[]; started: boolean[] }> {
    const rows = await this.query<{ kind: "c" | "s"; id: string }>(
      "complete and start jobs",
      this.sql.completeAndStart,
      [
        completions.map((r) => r.id),
        completions.map((r) => r.token),
        completions.map((r) => r.result),
        starts.map((l) => l.id),
        starts.map((l) => l.token),
      ],
    );
    const done = new Set<string>();
    const started = new Set<string>();
    for (const row of rows) (row.kind === "c" ? done : started).add(row.id);
    return {
      completed: completions.map((r) => done.has(r.id)),
      started: starts.map((l) => started.has(l.id)),
    };
  }

  async fail(requests: readonly FailRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const rows = await this.query<{ id: string }>("record failed attempts", this.sql.fail, [
      requests.map((r) => r.id),
      requests.map((r) => r.token),
      requests.map((r) => r.next.state),
      requests.map((r) => (r.next.state === "scheduled" ? r.next.runAt : null)),
      requests.map((r) =>
        r.next.state === "dead" || r.next.state === "cancelled" ? withoutNul(r.next.reason) : null,
      ),
      requests.map((r) =>
        JSON.stringify(r.error, (_key, value: unknown) =>
          typeof value === "string" ? withoutNul(value) : value,
        ),
      ),
      this.config.schema,
    ]);
    const applied = new Set(rows.map((row) => row.id));
    return requests.map((r) => applied.has(r.id));
  }

  async release(requests: readonly ReleaseRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    // As at enqueue, "in the future" is judged with the caller's clock, the one runAt was computed with.
    const now = Date.now();
    const rows = await this.query<{ id: string }>("release jobs", this.sql.release, [
      requests.map((r) => r.id),
      requests.map((r) => r.token),
      requests.map((r) => r.runAt ?? null),
      requests.map((r) => withoutNul(r.reason)),
      requests.map((r) => (r.runAt !== undefined && r.runAt > now ? "scheduled" : "waiting")),
      this.config.schema,
    ]);
    const applied = new Set(rows.map((row) => row.id));
    return requests.map((r) => applied.has(r.id));
  }

  async extendLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<ExtendResult> {
    const result: ExtendResult = { lost: [], cancelRequested: [], paused: [] };
    if (leases.length === 0) return result;
    const rows = await this.query<{ id: string; token: string; cancel_requested: boolean; paused: boolean }>(
      "extend leases",
      this.sql.extend,
      [leases.map((l) => l.id), leases.map((l) => l.token), leaseMs],
    );
    // Keyed by lease, not job: one call may name two claims of the same job (see ExtendResult).
    const key = (id: string, token: number | string) => `${token}:${id}`;
    const held = new Map(rows.map((row) => [key(row.id, row.token), row]));
    for (const lease of leases) {
      const row = held.get(key(lease.id, lease.token));
      const ref = { id: lease.id, token: lease.token };
      if (row === undefined) result.lost.push(ref);
      else {
        if (row.cancel_requested) result.cancelRequested.push(ref);
        if (row.paused) result.paused.push(ref);
      }
    }
    return result;
  }

  async saveProgress(requests: readonly ProgressRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const rows = await this.query<{ id: string }>("store progress", this.sql.progress, [
      requests.map((r) => r.id),
      requests.map((r) => r.token),
      requests.map((r) => r.progress),
      // The event's copy of the progress (jsonb), or null for no event. jsonb refuses \u0000 in strings:
      // the event gets U+FFFD there rather than failing the progress write.
      requests.map((r) =>
        this.eventsOn && r.event !== false ? r.progress.replaceAll("\\u0000", "\\ufffd") : null,
      ),
    ]);
    const applied = new Set(rows.map((row) => row.id));
    return requests.map((r) => applied.has(r.id));
  }

  async appendLogs(lines: readonly LogRequest[]): Promise<void> {
    if (lines.length === 0) return;
    await this.query("append job logs", this.sql.appendLogs, [
      lines.map((l) => l.id),
      lines.map((l) => l.at),
      lines.map((l) => l.attempt),
      lines.map((l) => withoutNul(l.message)),
    ]);
  }

  async annotateAttempt(id: string, attempt: number, note: string): Promise<boolean> {
    // Rebuilt in order with the note merged into the error(s) of that attempt (one per attempt).
    const rows = await this.query(
      "annotate the attempt",
      `UPDATE ${this.s}.jobs SET errors = (
         SELECT jsonb_agg(CASE WHEN e @> jsonb_build_object('attempt', $2::int)
                               THEN e || jsonb_build_object('note', $3::text) ELSE e END ORDER BY n)
         FROM jsonb_array_elements(errors) WITH ORDINALITY AS t(e, n))
       WHERE id = $1 AND errors @> jsonb_build_array(jsonb_build_object('attempt', $2::int))
       RETURNING id`,
      [id, attempt, withoutNul(note)],
    );
    return rows.length === 1;
  }

  async nextRunAt(queues: readonly string[]): Promise<number | null> {
    if (queues.length === 0) return null;
    const rows = await this.query<{ at: number | string | null }>(
      "read the next run time",
      this.sql.nextRunAt,
      [queues],
    );
    return numOrNull(rows[0]?.at ?? null);
  }

  subscribe(listener: (signal: StoreSignal) => void): () => void {
    if (this.closed) throw new ClosedError("PostgreSQL store");
    return this.listener.subscribe(listener);
  }

  /** Resolves once the LISTEN connection is established (or its first attempt failed). For tests. */
  async listening(): Promise<boolean> {
    await this.listener.ready();
    return this.listener.connected;
  }

  // ── maintenance ────────────────────────────────────────────────────────────────────────────────

  async recover(request: RecoverRequest): Promise<RecoveredJob[]> {
    const byAge = request.mode.kind === "startedBefore";
    const cutoff = request.mode.kind === "startedBefore" ? request.mode.at : null;
    const select = byAge ? this.sql.recoverStartedBefore : this.sql.recoverExpired;
    const describe = (job: RecoverCandidate): RecoveredJob => ({
      id: job.id,
      queue: job.queue,
      task: job.task,
      workerId: job.worker_id,
      attempt: job.attempt,
      maxAttempts: job.max_attempts,
      ...recoveryTarget({
        cancelRequested: job.cancel_requested,
        attempt: job.attempt,
        maxAttempts: job.max_attempts,
        workerId: job.worker_id,
        forced: byAge,
      }),
    });
    if (request.mode.kind === "expired" && request.mode.waitAfterRestartMs !== undefined) {
      // After a restart (or this process's reconnect) leases that ran out during the outage may belong to
      // live workers holding finished outcomes: give them one lease period first (see ../outage.ts).
      const [up] = await this.query<{ up_ms: number }>(
        "read the server start time",
        "SELECT floor(extract(epoch from now() - pg_postmaster_start_time()) * 1000)::bigint AS up_ms",
      );
      if (this.gate.defer(request.mode.waitAfterRestartMs, num(up?.up_ms ?? 0))) return [];
    }
    if (request.dryRun) {
      const rows = await this.query<RecoverCandidate>("list recoverable jobs", select(false), [
        request.limit,
        ...(byAge ? [cutoff] : []),
      ]);
      return rows.map(describe);
    }
    return this.transaction("recover jobs", async (client) => {
      const candidates = rowsOf<RecoverCandidate>(
        await client.query(select(true), [request.limit, ...(byAge ? [cutoff] : [])]),
      );
      if (candidates.length === 0) return [];
      const recovered = candidates.map(describe);
      const errors = candidates.map((job, i): AttemptError => {
        const item = recovered[i] as RecoveredJob;
        return {
          attempt: job.attempt,
          outcome: "lease-expired",
          name: "LeaseExpiredError",
          message: item.reason,
          at: num(job.now_ms),
          ...(job.worker_id ? { workerId: job.worker_id } : {}),
        };
      });
      const rows = rowsOf<{ id: string; state: JobState }>(
        await client.query(this.sql.recoverApply, [
          candidates.map((job) => job.id),
          candidates.map((job) => job.lease_token),
          recovered.map((job) => job.to),
          recovered.map((job) => job.reason),
          errors.map((error) => JSON.stringify(error)),
          this.config.schema,
        ]),
      );
      // Jobs that became final settle in the same transaction (core/flows.ts rules 2-4).
      const final = rows.filter((row) => row.state !== "waiting").map((row) => row.id);
      if (final.length > 0) await client.query(this.sql.settleIds, [final]);
      const applied = new Set(rows.map((row) => row.id));
      return recovered.filter((job) => applied.has(job.id));
    });
  }

  async prune(options: {
    limit: number;
    workersSilentSince: number;
    eventsBefore?: number;
    maxEvents?: number;
  }): Promise<{ jobs: number; workers: number; events: number }> {
    const byAge = await this.query<{ n: number }>("prune completed jobs", this.sql.pruneByAge, [
      options.limit,
    ]);
    let jobs = byAge[0]?.n ?? 0;
    if (jobs < options.limit) {
      const byCount = await this.query<{ n: number }>("prune completed jobs", this.sql.pruneByCount, [
        options.limit - jobs,
      ]);
      jobs += byCount[0]?.n ?? 0;
    }
    const workers = await this.query<{ n: number }>("prune silent workers", this.sql.pruneWorkers, [
      options.workersSilentSince,
    ]);
    await this.query("prune the stats roll-up", `DELETE FROM ${this.s}.queue_stats WHERE hour < $1`, [
      Date.now() - STATS_RETENTION_MS,
    ]);
    // Limit bookkeeping past its use: key rate counters of windows over (no window is longer than a day)
    // and key holds that ended. SKIP LOCKED: a claim updating a counter now keeps it, and is never waited on.
    await this.query(
      "prune limit counters",
      `WITH rates AS (
         DELETE FROM ${this.s}.key_rates WHERE (queue, key) IN (
           SELECT queue, key FROM ${this.s}.key_rates WHERE window_start < ${NOW_MS} - $1::bigint
           LIMIT $2 FOR UPDATE SKIP LOCKED)),
       holds AS (
         DELETE FROM ${this.s}.key_holds WHERE (queue, key) IN (
           SELECT queue, key FROM ${this.s}.key_holds WHERE until <= ${NOW_MS}
           LIMIT $2 FOR UPDATE SKIP LOCKED))
       SELECT 1`,
      [MAX_WINDOW_MS, options.limit],
    );
    const events = await this.pruneEvents(options.limit, options.eventsBefore, options.maxEvents);
    await this.vacuumIfDue();
    return { jobs: num(jobs), workers: num(workers[0]?.n ?? 0), events };
  }

  /**
   * Deletes the oldest events that are due (older than `before`, or beyond the newest `max`): those in the
   * window of `limit` ids after the newest id pruned so far (ids come from one sequence, so a window holds
   * at most `limit` events), and any below it that committed late. A window with no event at all is a gap
   * of ids that never became events (a rolled-back transaction's): the window moves to the next event,
   * looked for in ranges 8× wider each time. Each step is a BRIN range scan, whatever the table holds.
   */
  private async pruneEvents(
    limit: number,
    before: number | undefined,
    max: number | undefined,
  ): Promise<number> {
    if (limit <= 0 || (before === undefined && max === undefined)) return 0;
    const [window] = await this.query<{ lo: number | string; last_id: number | string }>(
      "prune events",
      this.sql.eventWindow,
    );
    if (!window) return 0;
    const lastId = num(window.last_id);
    // All but the newest `max` ids (the events the sequence handed out last) are due.
    const keepAfter = max === undefined ? null : lastId - Math.max(0, max);
    // The window's bounds go to the delete as values, not read inside it: with them the planner sees how few
    // rows the window holds and picks the BRIN range scan (from a subquery it assumes a third of the table).
    for (let start = num(window.lo); start < lastId; ) {
      const end = Math.min(start + limit, lastId);
      const [row] = await this.query<{ n: number; window_rows: boolean }>(
        "prune events",
        this.sql.pruneEvents,
        [end, keepAfter, before ?? null, start],
      );
      const n = num(row?.n ?? 0);
      if (n > 0 || row?.window_rows) return n;
      // No event in the window: a gap of ids that never became events. The next window starts at the next event.
      const next = await this.nextEventAfter(end, lastId, limit * 8);
      if (next === null) return 0;
      start = next - 1;
    }
    return 0;
  }

  /** The first event with an id in (`from`, `upto`], looked for in ranges `width` wide, 8× wider each time. */
  private async nextEventAfter(from: number, upto: number, width: number): Promise<number | null> {
    for (let lo = from, w = width; lo < upto; lo += w, w *= 8) {
      const [found] = await this.query<{ id: number | string | null }>("prune events", this.sql.nextEvent, [
        lo,
        Math.min(lo + w, upto),
      ]);
      if (found?.id != null) return num(found.id);
    }
    return null;
  }

  /**
   * Vacuums the busy tables whose dead rows passed the threshold (vacuum.ts: why, and when; tables this role
   * does not own are never due). A failure is logged, never thrown: pruning succeeded.
   */
  private async vacuumIfDue(): Promise<void> {
    if (!this.vacuums.mayCheck(Date.now())) return;
    try {
      const due = await this.query<{ relname: string }>("find tables to vacuum", DUE_FOR_VACUUM, [
        this.config.schema,
        VACUUMED_TABLES,
        VACUUM_MIN_DEAD_ROWS,
        VACUUM_DEAD_FRACTION,
      ]);
      if (!this.vacuums.found(due.length, Date.now())) return;
      for (const { relname } of due) {
        const started = Date.now();
        // VACUUM runs outside a transaction block: a plain pooled query (autocommit) is one.
        await this.query(`vacuum ${relname}`, `VACUUM (SKIP_LOCKED) ${this.s}."${relname}"`);
        this.options.logger.debug({ table: relname, ms: Date.now() - started }, "vacuumed");
      }
      this.vacuums.finished(Date.now());
    } catch (error) {
      this.options.logger.warn(
        { err: error },
        "could not vacuum the job tables; trying again at a later maintenance pass (?vacuum=off leaves it to autovacuum)",
      );
    }
  }

  async tryLead(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const rows = await this.query<{ owner: string }>("take the leader lease", this.sql.tryLead, [
      name,
      owner,
      ttlMs,
    ]);
    return rows[0]?.owner === owner;
  }

  async resign(name: string, owner: string): Promise<void> {
    await this.query(
      "give up the leader lease",
      `DELETE FROM ${this.s}.leaders WHERE name = $1 AND owner = $2`,
      [name, owner],
    );
  }

  // ── worker registry ────────────────────────────────────────────────────────────────────────────

  async registerWorker(worker: WorkerInfo): Promise<void> {
    // The skew is measured against the database's clock, the one leases and schedules are compared with.
    await this.query(
      "register the worker",
      `INSERT INTO ${this.s}.workers (id, host, pid, queues, concurrency, busy, started_at, last_heartbeat_at, version, stalls, health, clock, clock_skew_ms)
       VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, ${NOW_MS}, $8, $9::jsonb, $10::jsonb, $11::bigint, $11::bigint - ${NOW_MS})
       ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
         concurrency = EXCLUDED.concurrency, busy = EXCLUDED.busy, started_at = EXCLUDED.started_at,
         last_heartbeat_at = EXCLUDED.last_heartbeat_at, version = EXCLUDED.version, stalls = EXCLUDED.stalls,
         health = EXCLUDED.health, clock = EXCLUDED.clock, clock_skew_ms = EXCLUDED.clock_skew_ms`,
      [
        worker.id,
        worker.host,
        worker.pid,
        JSON.stringify(worker.queues),
        worker.concurrency,
        worker.busy,
        worker.startedAt,
        worker.version,
        stallsText(worker.stalls),
        healthText(worker.health),
        worker.clock,
      ],
    );
  }

  async heartbeatWorker(
    id: string,
    busy: number,
    stalls?: WorkerStalls,
    beat?: WorkerBeat,
  ): Promise<boolean> {
    const rows = await this.query(
      "record the worker heartbeat",
      `UPDATE ${this.s}.workers SET busy = $2, last_heartbeat_at = ${NOW_MS},
         stalls = coalesce($3::jsonb, stalls),
         health = CASE WHEN $4::boolean THEN $5::jsonb ELSE health END,
         clock = coalesce($6::bigint, clock),
         clock_skew_ms = coalesce($6::bigint - ${NOW_MS}, clock_skew_ms)
       WHERE id = $1 RETURNING id`,
      [
        id,
        busy,
        stalls ? stallsText(stalls) : null,
        beat?.health !== undefined,
        healthText(beat?.health),
        beat?.clock ?? null,
      ],
    );
    return rows.length === 1;
  }

  async unregisterWorker(id: string): Promise<void> {
    await this.query("unregister the worker", `DELETE FROM ${this.s}.workers WHERE id = $1`, [id]);
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    const rows = await this.query<WorkerRow>(
      "list workers",
      `SELECT * FROM ${this.s}.workers ORDER BY started_at, id`,
    );
    return rows.map(rowToWorker);
  }

  // ── admin ──────────────────────────────────────────────────────────────────────────────────────

  async queueStats(): Promise<QueueStats[]> {
    const rows = await this.query<{
      queue: string;
      state: JobState | "due" | "held" | null;
      n: number;
      oldest: number | null;
      paused: boolean | null;
      paused_until: number | null;
      limits: QueueLimits | null;
      held_keys: number | null;
    }>("read queue stats", this.sql.stats);
    const byQueue = new Map<string, QueueStats>();
    for (const row of rows) {
      let stats = byQueue.get(row.queue);
      if (!stats) {
        const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
        stats = {
          queue: row.queue,
          counts,
          due: 0,
          oldestWaitingAt: null,
          paused: false,
          pausedUntil: null,
          limits: null,
          limitedActive: 0,
          heldKeys: 0,
        };
        byQueue.set(row.queue, stats);
      }
      if (row.state === "due") stats.due = num(row.n);
      else if (row.state === "held") {
        // Claimed ahead, not started: waiting as users see it, active for the limits.
        stats.counts.waiting += num(row.n);
        stats.limitedActive += num(row.n);
      } else if (row.state !== null) {
        stats.counts[row.state] += num(row.n);
        if (row.state === "active") stats.limitedActive += num(row.n);
      }
      if (row.oldest !== null) {
        const oldest = num(row.oldest);
        stats.oldestWaitingAt = Math.min(stats.oldestWaitingAt ?? oldest, oldest);
      }
      if (row.paused !== null) {
        stats.paused = row.paused;
        stats.pausedUntil = numOrNull(row.paused_until);
        stats.limits = row.limits;
        stats.heldKeys = row.held_keys ?? 0;
      }
    }
    return [...byQueue.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
  }

  async listJobs(request: ListRequest): Promise<JobPage> {
    const order = request.order ?? "desc";
    const params: unknown[] = [];
    const { states, ...rest } = request.filter;
    if (states && states.length === 0) return { jobs: [], nextCursor: null };
    const where = filterSql(rest, params, this.s);
    if (request.cursor) {
      const cursor = Number(request.cursor);
      if (!Number.isSafeInteger(cursor)) {
        throw new ValidationError(
          "INVALID_OPTION",
          `cursor "${request.cursor}" is not one this store returned: pass the nextCursor of the previous page, or none for the first`,
          { field: "cursor" },
        );
      }
      params.push(cursor);
      where.push(order === "desc" ? `seq < $${params.length}` : `seq > $${params.length}`);
    }
    params.push(request.limit + 1);
    const direction = order === "desc" ? "DESC" : "ASC";
    const limit = `$${params.length}`;
    const select = (conditions: string[]) =>
      `SELECT * FROM ${this.s}.jobs ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""}
       ORDER BY seq ${direction} LIMIT ${limit}`;
    // One index range scan per stored state, merged: see seenStateBranches.
    const sql = states
      ? `SELECT * FROM (${seenStateBranches(states)
          .map((branch) => `(${select([...where, branch])})`)
          .join(" UNION ALL ")}) page ORDER BY seq ${direction} LIMIT ${limit}`
      : select(where);
    const rows = await this.query<JobRow>("list jobs", sql, params);
    const more = rows.length > request.limit;
    const page = more ? rows.slice(0, request.limit) : rows;
    const last = page[page.length - 1];
    return {
      jobs: page.map((row) => asSeen(rowToJob(row))),
      nextCursor: more && last ? String(last.seq) : null,
    };
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const rows = await this.query<JobRow>("read a job", `SELECT * FROM ${this.s}.jobs WHERE id = $1`, [id]);
    return rows[0] ? asSeen(rowToJob(rows[0])) : null;
  }

  // ── flows (core/flows.ts; transitions in migration-flows.ts, reads in flow-reads.ts) ──────────────

  async block(requests: readonly BlockRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const edges = requests.flatMap((r) => r.dependsOn.map((dep) => [r.id, dep.id, dep.onFailure] as const));
    const rows = await this.query<{ id: string }>("block jobs on their children", this.sql.block, [
      requests.map((r) => r.id),
      requests.map((r) => r.token),
      edges.map((e) => e[0]),
      edges.map((e) => e[1]),
      edges.map((e) => e[2]),
    ]);
    const applied = new Set(rows.map((row) => row.id));
    return requests.map((r) => applied.has(r.id));
  }

  async getFlow(id: string): Promise<FlowView | null> {
    return this.withClient("read the flow", (client) => readFlow(client, this.s, id));
  }

  async getBatch(id: string): Promise<BatchRecord | null> {
    return this.withClient(
      "read the batch",
      async (client) => (await readBatches(client, this.s, [id]))[0] ?? null,
    );
  }

  async listBatches(request: {
    limit: number;
    cursor?: string | null;
    finished?: boolean;
  }): Promise<{ batches: BatchRecord[]; nextCursor: string | null }> {
    return this.withClient("list batches", (client) => listBatches(client, this.s, request));
  }

  async stuckBlocked(limit: number): Promise<StuckBlockedJob[]> {
    return this.withClient("list stuck blocked jobs", (client) => stuckBlocked(client, this.s, limit));
  }

  /**
   * Runs an operator's statement and settles the jobs it made final (`final` picks them from its rows)
   * in the same transaction: their dependents, children and batches (core/flows.ts).
   */
  private settling<T>(action: string, text: string, params: unknown[], final: (rows: T[]) => string[]) {
    return this.transaction(action, async (client) => {
      const rows = rowsOf<T>(await client.query(text, params));
      const ids = final(rows);
      if (ids.length > 0) await client.query(this.sql.settleIds, [ids]);
      return rows;
    });
  }

  /** Runs a delete statement and settles, as deleted, the jobs it removed before they were final. */
  private removing(text: string, params: unknown[]) {
    return this.transaction("delete jobs", async (client) => {
      const rows = rowsOf<{
        id: string;
        seq: number;
        task: string;
        state: string;
        batch_id: string | null;
        batch_counted: boolean;
        has_dependents: boolean;
      }>(await client.query(text, params));
      const flow = rows.filter((row) => row.batch_id !== null || row.has_dependents);
      if (flow.length > 0) {
        await client.query(
          `SELECT ${this.s}.settle_deleted($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::boolean[], ${this.eventsOn})`,
          [
            flow.map((row) => row.id),
            flow.map((row) => row.task),
            flow.map((row) => row.state),
            flow.map((row) => row.batch_id),
            flow.map((row) => row.batch_counted),
            flow.map((row) => row.has_dependents),
          ],
        );
      }
      return rows;
    });
  }

  // ── limits (core/limits.ts; enforced by claim, migration-limits.ts) ──

  async setQueueLimits(queue: string, limits: QueueLimits | null): Promise<void> {
    await this.transaction("set the queue's limits", async (client) => {
      // The queue row first: its lock orders this call after (or before) any claim or holdKey of the queue,
      // so the flag below is computed from the holds as committed once the lock is held.
      await client.query(
        `INSERT INTO ${this.s}.queues AS q (name, limits, limited) VALUES ($1, $2::jsonb, true)
         ON CONFLICT (name) DO UPDATE SET limits = EXCLUDED.limits`,
        // Limits that limit nothing are stored as none, so claims take the plain path.
        [queue, unlimited(limits) ? null : JSON.stringify(limits)],
      );
      await client.query(
        `UPDATE ${this.s}.queues SET limited = limits IS NOT NULL
           OR EXISTS (SELECT 1 FROM ${this.s}.key_holds h WHERE h.queue = $1 AND h.until > ${NOW_MS})
         WHERE name = $1`,
        [queue],
      );
      // Raised or removed limits may free jobs now: wake the workers of the queue.
      await client.query("SELECT pg_notify($1, $2)", [this.config.schema, jobsPayload([queue])]);
    });
  }

  async holdKey(queue: string, key: string, until: number): Promise<void> {
    await this.transaction("hold the limit key", async (client) => {
      // The queue row (and its flag) first, under its lock: a claim or setQueueLimits running now either
      // finishes before (and the next claim sees the flag and the hold) or waits for this commit.
      await client.query(
        `INSERT INTO ${this.s}.queues AS q (name, limited) VALUES ($1, true)
         ON CONFLICT (name) DO UPDATE SET limited = true`,
        [queue],
      );
      // Only ever extends an earlier hold.
      await client.query(
        `INSERT INTO ${this.s}.key_holds AS h (queue, key, until) VALUES ($1, $2, $3::bigint)
         ON CONFLICT (queue, key) DO UPDATE SET until = greatest(h.until, EXCLUDED.until)`,
        [queue, key, until],
      );
    });
  }

  async keyHolds(limit: number): Promise<KeyHold[]> {
    if (limit <= 0) return [];
    const rows = await this.query<{ queue: string; key: string; until: number | string; backlog: number }>(
      "read key holds",
      // Backlog from jobs_key_backlog (keyed waiting and scheduled jobs only).
      `SELECT h.queue, h.key, h.until,
         (SELECT count(*)::int FROM ${this.s}.jobs j
          WHERE j.queue = h.queue AND j.limit_key = h.key AND j.limit_key IS NOT NULL
            AND (j.state = 'waiting' OR (j.state = 'scheduled' AND j.run_at <= ${NOW_MS}))) AS backlog
       FROM ${this.s}.key_holds h WHERE h.until > ${NOW_MS}
       ORDER BY backlog DESC, h.until DESC, h.queue, h.key LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({
      queue: row.queue,
      key: row.key,
      until: num(row.until),
      backlog: row.backlog,
    }));
  }

  async getLogs(id: string, limit: number): Promise<JobLogLine[]> {
    const rows = await this.query<{ at: number; attempt: number; message: string }>(
      "read job logs",
      `SELECT at, attempt, message FROM (
         SELECT seq, at, attempt, message FROM ${this.s}.job_logs WHERE job_id = $1 ORDER BY seq DESC LIMIT $2
       ) recent ORDER BY seq`,
      [id, limit],
    );
    return rows.map((row) => ({ at: num(row.at), attempt: row.attempt, message: row.message }));
  }

  async retry(filter: JobFilter, options: BulkOptions): Promise<BulkResult> {
    const params: unknown[] = [];
    const where = filterSql(filter, params, this.s);
    params.push(options.limit, this.config.schema);
    const rows = await this.query<{ id: string }>(
      "retry jobs",
      `WITH picked AS (
         SELECT seq FROM ${this.s}.jobs
         WHERE state IN (${sqlStateList(RETRYABLE_STATES)}) ${where.map((w) => `AND ${w}`).join(" ")}
         ORDER BY seq LIMIT $${params.length - 1} FOR UPDATE
       ), changed AS (
         UPDATE ${this.s}.jobs j SET state = 'waiting', attempt = 0, run_at = ${NOW_MS}, finished_at = NULL,
           cancel_requested = false, lease_expires_at = NULL, keep_until = NULL, reason = ${sqlString(RETRIED_REASON)}
         FROM picked WHERE j.seq = picked.seq AND j.state IN (${sqlStateList(RETRYABLE_STATES)})
         RETURNING j.id, j.queue, j.seq, j.task
       )${this.eventsCte("'retried', queue, id, task, NULL::int, NULL::jsonb", "changed")}
       SELECT id, ${notifyJobsFrom("changed", "true", `$${params.length}`)} AS notified FROM changed ORDER BY seq`,
      params,
    );
    return { count: rows.length, ids: rows.map((row) => row.id) };
  }

  async cancel(filter: JobFilter, options: BulkOptions): Promise<BulkResult & { requested: string[] }> {
    const params: unknown[] = [];
    const where = filterSql(filter, params, this.s);
    params.push(options.limit, CANCEL_PAYLOAD, this.config.schema);
    const n = params.length;
    // Active jobs already flagged are not picked again, so a caller looping "until count is 0" stops.
    const running = "(j.state = 'active' AND j.started_at IS NOT NULL)";
    const rows = await this.settling<{ id: string; state: JobState }>(
      "cancel jobs",
      `WITH picked AS (
         SELECT seq FROM ${this.s}.jobs
         WHERE (state IN (${sqlStateList(CANCEL_AT_ONCE_STATES)}) OR (state = 'active' AND NOT cancel_requested))
           ${where.map((w) => `AND ${w}`).join(" ")}
         ORDER BY seq LIMIT $${n - 2} FOR UPDATE
       ), changed AS (
         UPDATE ${this.s}.jobs j SET
           state = CASE WHEN ${running} THEN 'active' ELSE 'cancelled' END,
           cancel_requested = j.cancel_requested OR ${running},
           finished_at = CASE WHEN ${running} THEN j.finished_at ELSE ${NOW_MS} END,
           reason = CASE WHEN ${running} THEN j.reason ELSE ${sqlString(CANCELLED_REASON)} END,
           -- A held job (claimed ahead, not started) is cancelled at once, its claim's attempt given back.
           attempt = CASE WHEN ${heldSql("j.")} THEN greatest(j.attempt - 1, 0) ELSE j.attempt END,
           lease_expires_at = CASE WHEN ${heldSql("j.")} THEN NULL ELSE j.lease_expires_at END
         FROM picked
         WHERE j.seq = picked.seq
           AND (j.state IN (${sqlStateList(CANCEL_AT_ONCE_STATES)}) OR (j.state = 'active' AND NOT j.cancel_requested))
         RETURNING j.id, j.state, j.seq, j.queue, j.task, j.attempt
       )${this.eventsCte(
         `'cancelled', queue, id, task, attempt, jsonb_build_object('reason', ${sqlString(CANCELLED_REASON)})`,
         "changed WHERE state = 'cancelled'",
       )}
       SELECT id, state,
         (SELECT pg_notify($${n}, $${n - 1}) FROM changed WHERE state = 'active' HAVING count(*) > 0) AS notified
       FROM changed ORDER BY seq`,
      params,
      (changed) => changed.filter((row) => row.state === "cancelled").map((row) => row.id),
    );
    const cancelled = rows.filter((row) => row.state === "cancelled").map((row) => row.id);
    const requested = rows.filter((row) => row.state === "active").map((row) => row.id);
    return { count: cancelled.length, ids: cancelled, requested };
  }

  async remove(filter: JobFilter, options: BulkOptions): Promise<BulkResult> {
    const params: unknown[] = [];
    const where = filterSql(filter, params, this.s);
    params.push(options.limit);
    // REMOVABLE_STATES is every state but active: written as the predicate of jobs_queue_state says it
    // (test/unit/states.test.ts checks the two agree).
    const rows = await this.removing(
      `WITH gone AS (
         DELETE FROM ${this.s}.jobs WHERE seq IN (
           SELECT seq FROM ${this.s}.jobs WHERE (state <> 'active' OR started_at IS NULL) ${where.map((w) => `AND ${w}`).join(" ")}
           ORDER BY seq LIMIT $${params.length} FOR UPDATE
         ) AND (state <> 'active' OR started_at IS NULL)
         RETURNING id, seq, queue, task, state, batch_id, batch_counted, has_dependents
       )${this.eventsCte("'deleted', queue, id, task, NULL::int, NULL::jsonb", "gone")},
       -- A deleted job's own edges go with it (job_deps has no foreign key).
       edges AS (DELETE FROM ${this.s}.job_deps WHERE job_id IN (SELECT id FROM gone))
       SELECT id, seq, task, state, batch_id, batch_counted, has_dependents FROM gone`,
      params,
    );
    rows.sort((a, b) => num(a.seq) - num(b.seq));
    return { count: rows.length, ids: rows.map((row) => row.id) };
  }

  async move(filter: JobFilter, toQueue: string, options: BulkOptions): Promise<BulkResult> {
    const params: unknown[] = [];
    const where = filterSql(filter, params, this.s);
    params.push(toQueue, options.limit, this.config.schema);
    const n = params.length;
    // A held job (claimed ahead, not started) moves as the waiting job it is; its claim is undone.
    const movable = seenStateSql(MOVABLE_STATES);
    const held = heldSql("j.");
    // Jobs already in the target queue are not picked, so a caller looping "until count is 0" stops.
    const rows = await this.query<{ id: string }>(
      "move jobs",
      `WITH picked AS (
         SELECT seq, queue AS from_queue FROM ${this.s}.jobs
         WHERE ${movable} AND queue <> $${n - 2} ${where.map((w) => `AND ${w}`).join(" ")}
         ORDER BY seq LIMIT $${n - 1} FOR UPDATE
       ), changed AS (
         UPDATE ${this.s}.jobs j SET queue = $${n - 2},
           attempt = CASE WHEN ${held} THEN greatest(j.attempt - 1, 0) ELSE j.attempt END,
           lease_expires_at = CASE WHEN ${held} THEN NULL ELSE j.lease_expires_at END,
           state = CASE WHEN ${held} THEN 'waiting' ELSE j.state END
         FROM picked WHERE j.seq = picked.seq AND j.queue <> $${n - 2} AND ${seenStateSql(MOVABLE_STATES, "j.")}
         RETURNING j.id, j.queue, j.seq, j.state, j.task, picked.from_queue
       )${this.eventsCte("'moved', queue, id, task, NULL::int, jsonb_build_object('from', from_queue)", "changed")}
       SELECT id, ${notifyJobsFrom("changed", "state IN ('waiting', 'scheduled')", `$${n}`)} AS notified
       FROM changed ORDER BY seq`,
      params,
    );
    return { count: rows.length, ids: rows.map((row) => row.id) };
  }

  async reprioritize(filter: JobFilter, priority: number, options: BulkOptions): Promise<BulkResult> {
    const params: unknown[] = [];
    const where = filterSql(filter, params, this.s);
    params.push(REPRIORITIZABLE_STATES, priority, options.limit);
    const n = params.length;
    const rows = await this.query<{ id: string }>(
      "reprioritize jobs",
      `WITH picked AS (
         SELECT seq FROM ${this.s}.jobs
         WHERE state = ANY ($${n - 2}::text[]) AND priority <> $${n - 1} ${where.map((w) => `AND ${w}`).join(" ")}
         ORDER BY seq LIMIT $${n} FOR UPDATE
       ), changed AS (
         UPDATE ${this.s}.jobs j SET priority = $${n - 1}
         FROM picked WHERE j.seq = picked.seq AND j.state = ANY ($${n - 2}::text[])
         RETURNING j.id, j.seq
       )
       SELECT id FROM changed ORDER BY seq`,
      params,
    );
    return { count: rows.length, ids: rows.map((row) => row.id) };
  }

  async pauseQueue(queue: string, until: number | null): Promise<void> {
    await this.query(
      "pause the queue",
      // A rate limit (until) never lifts an operator's pause and only ever extends an earlier limit.
      `WITH paused AS (
         INSERT INTO ${this.s}.queues AS q (name, paused, paused_until) VALUES ($1, $2, $3::bigint)
         ON CONFLICT (name) DO UPDATE SET
           paused = q.paused OR EXCLUDED.paused,
           paused_until = CASE WHEN EXCLUDED.paused_until IS NULL THEN q.paused_until
                               ELSE greatest(q.paused_until, EXCLUDED.paused_until) END
         RETURNING name
       )${this.eventsCte("'paused', name, NULL, NULL, NULL::int, jsonb_build_object('until', $3::bigint)", "paused")}
       SELECT count(*) AS n FROM paused`,
      [queue, until === null, until],
    );
    // Workers holding jobs of the queue claimed ahead give them back (they learn which from extendLeases).
    if (until === null) {
      await this.query("signal the pause", "SELECT pg_notify($1, $2)", [this.config.schema, CANCEL_PAYLOAD]);
    }
  }

  async resumeQueue(queue: string): Promise<void> {
    await this.query(
      "resume the queue",
      // Key holds end too; the claim's flag stays on only while the queue has limits.
      `WITH resumed AS (UPDATE ${this.s}.queues SET paused = false, paused_until = NULL, limited = limits IS NOT NULL
                        WHERE name = $1 RETURNING name),
       unheld AS (DELETE FROM ${this.s}.key_holds WHERE queue = $1)${this.eventsCte(
         "'resumed', name, NULL, NULL, NULL::int, NULL::jsonb",
         "resumed",
       )}
       SELECT pg_notify($2, $3), (SELECT count(*) FROM resumed) AS n`,
      [queue, this.config.schema, jobsPayload([queue])],
    );
  }

  // ── schedules ──────────────────────────────────────────────────────────────────────────────────

  async upsertSchedule(schedule: ScheduleUpsert): Promise<ScheduleRecord> {
    const rows = await this.query<ScheduleRow>(
      "save the schedule",
      `INSERT INTO ${this.s}.schedules AS s (name, version, task, queue, cron, timezone, every_ms, missed, template,
         next_at, last_tick_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, ${NOW_MS})
       ON CONFLICT (name) DO UPDATE SET ${scheduleUpsertSet("s")}
       RETURNING *`,
      scheduleValues(schedule),
    );
    return rowToSchedule(rows[0] as ScheduleRow);
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    const rows = await this.query<ScheduleRow>(
      "list schedules",
      `SELECT * FROM ${this.s}.schedules ORDER BY name`,
    );
    return rows.map(rowToSchedule);
  }

  async removeSchedule(name: string): Promise<boolean> {
    const rows = await this.query(
      "remove the schedule",
      `DELETE FROM ${this.s}.schedules WHERE name = $1 RETURNING name`,
      [name],
    );
    return rows.length === 1;
  }

  async pauseSchedule(name: string): Promise<ScheduleRecord | null> {
    const rows = await this.query<ScheduleRow>(
      "pause the schedule",
      `UPDATE ${this.s}.schedules SET paused = true WHERE name = $1 RETURNING *`,
      [name],
    );
    return rows[0] ? rowToSchedule(rows[0]) : null;
  }

  async resumeSchedule(name: string, nextAt: number | null): Promise<ScheduleRecord | null> {
    // One statement: the row as it is after the update (resumed, or untouched when it was not paused).
    const rows = await this.query<ScheduleRow>(
      "resume the schedule",
      `WITH resumed AS (
         UPDATE ${this.s}.schedules SET paused = false, next_at = $2 WHERE name = $1 AND paused RETURNING *)
       SELECT * FROM resumed
       UNION ALL
       SELECT * FROM ${this.s}.schedules WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM resumed)`,
      [name, nextAt],
    );
    return rows[0] ? rowToSchedule(rows[0]) : null;
  }

  async fireSchedule(request: FireRequest): Promise<EnqueueResult[] | null> {
    return this.transaction("fire the schedule", async (client) => {
      const { rows } = await client.query(
        `UPDATE ${this.s}.schedules SET next_at = $3, last_tick_at = $4
         WHERE name = $1 AND next_at = $2 AND NOT paused RETURNING name`,
        [request.name, request.dueAt, request.nextAt, request.lastTickAt],
      );
      if (rows.length === 0) return null;
      return request.jobs.length === 0 ? [] : this.enqueueOn(client, request.jobs);
    });
  }

  // ── stats roll-up ──────────────────────────────────────────────────────────────────────────────

  async addHourlyStats(rows: readonly StatsRow[]): Promise<void> {
    if (rows.length === 0) return;
    // One statement must not touch a (hour, queue) row twice (ON CONFLICT DO UPDATE forbids it): merge first.
    const merged = new Map<string, StatsRow>();
    for (const row of rows) {
      const key = JSON.stringify([row.hour, row.queue]);
      const seen = merged.get(key);
      if (!seen) merged.set(key, { ...row, durations: [...row.durations] });
      else {
        seen.completed += row.completed;
        seen.failed += row.failed;
        seen.dead += row.dead;
        seen.durations = addHistograms(seen.durations, row.durations);
        seen.lastCompletedAt = latest(seen.lastCompletedAt, row.lastCompletedAt);
      }
    }
    const list = [...merged.values()];
    await this.query("add to the stats roll-up", this.sql.addHourlyStats, [
      list.map((r) => r.queue),
      list.map((r) => r.hour),
      list.map((r) => r.completed),
      list.map((r) => r.failed),
      list.map((r) => r.dead),
      list.map((r) => JSON.stringify(r.durations)),
      list.map((r) => r.lastCompletedAt),
    ]);
  }

  // ── fleet events ───────────────────────────────────────────────────────────────────────────────

  /**
   * `, ev AS (INSERT INTO events …)` over the rows of CTE `from` (a table name, optionally with a WHERE), or
   * nothing when events are off. `values`: type, queue, job_id, task, attempt, data (`at` is the database
   * clock). The CTE reads the RETURNING rows of the transition's own change, see `eventInsert`.
   */
  private eventsCte(values: string, from: string): string {
    return this.eventsOn ? `, ev AS (${eventInsert(this.s, `${NOW_MS}, ${values}`, from)})` : "";
  }

  /**
   * The settled event horizon: an id H such that every event id <= H belongs to a transaction that has
   * committed or rolled back for good, so `id > after AND id <= H` never skips an event that a later read
   * could return (the no-gap guarantee), whatever order concurrent transactions commit in.
   *
   * Why a horizon: ids come from a sequence when the INSERT runs, not when its transaction commits, so
   * transaction A can take id 7, B take id 8 and commit, and A commit a moment later. A reader going by
   * "the newest id I saw" would read 8, move its cursor past 7 and never see A's event (the classic outbox
   * gap). Waiting for 7 instead is what the horizon does.
   *
   * How (event_mark in migration 10, one round trip): (1) L = the sequence's last value. Sequences are
   * outside MVCC, so L covers ids of transactions still in progress. (2) N = the next xid to be assigned,
   * read after (1). Every event insert reads the RETURNING rows of its transition's row change, so its
   * transaction had an xid before nextval() ran: every id <= L belongs to a transaction whose xid < N.
   * (3) Any later snapshot whose xmin >= N therefore shows that all those transactions have ended: a
   * running xid below N is either listed in the snapshot (then xmin <= it) or above the snapshot's xmax
   * (then xmin <= xmax <= it). From then on, L is settled. (pg_current_snapshot()'s xmax is not N: it is
   * latestCompletedXid + 1, and a running xid above it is left out of the snapshot, so "xmin reached the
   * earlier xmax" proves nothing about it.)
   *
   * Marks are kept (bounded) so a later call can use the newest one that settled meanwhile. For
   * read-your-writes a call waits up to OWN_MARK_WAIT_MS, looking at the xmin every few ms, for its own
   * mark (which covers everything the caller committed before the call); after that it falls back to the
   * newest settled mark. A write transaction that stays open (an application transaction with a
   * transactional enqueue, or ANY transaction holding an xid on the server, in any database: xmin is
   * server-wide) holds the horizon back while it is open: events after it are delayed, never lost; they
   * are read once it ends. Ids of rolled-back transactions are gaps that nobody waits for.
   */
  private async eventHorizon(): Promise<{ settled: number; lastId: number }> {
    const [row] = await this.query<{ last_id: number; next_xid: number; snapshot_xmin: number }>(
      "read the event horizon",
      this.sql.eventMark,
    );
    if (!row)
      throw new StoreUnavailableError(`PostgreSQL at ${this.config.location} returned no event horizon`);
    const mark: EventMark = { lastId: num(row.last_id), nextXid: num(row.next_xid) };
    this.marks.push(mark);
    if (this.marks.length > MAX_MARKS) this.marks.shift();
    this.settleMarks(num(row.snapshot_xmin));
    const deadline = Date.now() + OWN_MARK_WAIT_MS;
    while (mark.nextXid > this.xminSeen && Date.now() < deadline) {
      await sleep(MARK_POLL_MS);
      const [now] = await this.query<{ xmin: number }>("read the event horizon", this.sql.snapshotXmin);
      this.settleMarks(num(now?.xmin ?? 0));
    }
    if (mark.nextXid <= this.xminSeen) this.settledId = Math.max(this.settledId, mark.lastId);
    return { settled: this.settledId, lastId: mark.lastId };
  }

  /** Takes note of a snapshot's xmin: marks whose transactions have all ended settle. */
  private settleMarks(xmin: number): void {
    this.xminSeen = Math.max(this.xminSeen, xmin);
    this.marks = this.marks.filter((mark) => {
      if (mark.nextXid > this.xminSeen) return true;
      this.settledId = Math.max(this.settledId, mark.lastId);
      return false;
    });
  }

  /**
   * Summarizes the events pages appended since the last call (migration 10 `summarize_events`), at most
   * every EVENT_SUMMARIZE_MS per store: the BRIN index then lets a read near the head skip all but the
   * newest pages.
   */
  private async summarizeEvents(): Promise<void> {
    const now = Date.now();
    if (now - this.eventsSummarizedAt < EVENT_SUMMARIZE_MS) return;
    this.eventsSummarizedAt = now;
    await this.query("summarize events", `SELECT ${this.s}.summarize_events()`, []);
  }

  async readEvents(request: ReadEventsRequest): Promise<EventsPage> {
    const after = request.after;
    if (after !== null && (typeof after !== "string" || !EVENT_ID.test(after))) {
      throw new ValidationError(
        "INVALID_OPTION",
        `after "${String(after)}" is not an event id of this store: pass the id or cursor of an event read earlier (a decimal number of at most 18 digits, as PostgreSQL hands them out), or null to read from the oldest event kept`,
        { field: "after" },
      );
    }
    const { settled, lastId } = await this.eventHorizon();
    await this.summarizeEvents();
    const rows = await this.query<EventRow>("read events", this.sql.readEvents, [
      after,
      lastId,
      settled,
      request.queue ?? null,
      request.jobId ?? null,
      Math.max(0, request.limit),
    ]);
    const reset = rows[0]?.reset ?? false;
    const events: FleetEvent[] = [];
    for (const row of rows) {
      if (row.id === null) continue;
      events.push({
        id: String(row.id),
        type: row.type,
        at: num(row.at),
        queue: row.queue,
        jobId: row.job_id,
        task: row.task,
        attempt: row.attempt,
        data: row.data,
      });
    }
    // The read covered (from, settled]: up to the last event when the page is full, else the whole range.
    const from = reset || after === null ? 0 : Number(after);
    let covered = events.length > 0 && events.length >= request.limit ? Number(events.at(-1)?.id) : settled;
    // After a reset the reader goes on past what was pruned, even if the horizon has not reached it yet.
    if (reset) covered = Math.max(covered, num(rows[0]?.pruned_id ?? 0));
    if (covered <= from) return { events, cursor: reset ? String(from) : after, reset };
    return { events, cursor: String(covered), reset };
  }

  async lastEventId(): Promise<string | null> {
    const { settled } = await this.eventHorizon();
    return settled > 0 ? String(settled) : null;
  }

  async readHourlyStats(since: number): Promise<StatsRow[]> {
    const rows = await this.query<{
      queue: string;
      hour: number | string;
      completed: number | string;
      failed: number | string;
      dead: number | string;
      durations: (number | string)[];
      last_completed_at: number | string | null;
    }>(
      "read the stats roll-up",
      `SELECT queue, hour, completed, failed, dead, durations, last_completed_at FROM ${this.s}.queue_stats
       WHERE hour >= $1 ORDER BY hour, queue`,
      [since],
    );
    return rows.map((r) => ({
      queue: r.queue,
      hour: num(r.hour),
      completed: num(r.completed),
      failed: num(r.failed),
      dead: num(r.dead),
      durations: r.durations.map(num),
      lastCompletedAt: numOrNull(r.last_completed_at),
    }));
  }

  // ── plumbing ───────────────────────────────────────────────────────────────────────────────────

  /** One statement on the pool (autocommit: atomic by itself). */
  private async query<T>(action: string, text: string, values?: unknown[]): Promise<T[]> {
    if (this.closed) throw new ClosedError("PostgreSQL store");
    // The store's fixed statements run as named prepared statements: each pooled connection parses and
    // plans them once instead of on every call (planning was most of the cost of a 50-job complete).
    const name = this.prepared.get(text);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.pool.query(name ? { name, text, values } : { text, values });
        this.gate.connection.reached();
        return result.rows as T[];
      } catch (error) {
        // One statement: aborted as a whole, so running it again is safe (migration-flows.ts, lock order).
        if (isDeadlock(error) && attempt < DEADLOCK_RETRIES) continue;
        throw this.failed(toStoreError(error, action, this.config.location));
      }
    }
  }

  /**
   * One of the fixed statements on `db`, in an enqueue: named (parsed and planned once per connection) on the
   * store's own pool and connections; as plain text on an application's connection or ORM handle, whose
   * statement names are the application's (and a `Queryable` may take only text and values). Planning the
   * insert was a third of a one-job enqueue (docs/postgres.md, "Enqueue statements are prepared too").
   */
  private run(db: Queryable, text: string, values: unknown[]): Promise<unknown> {
    const name = db === this.pool || this.ownClients.has(db) ? this.prepared.get(text) : undefined;
    return name ? (db as pg.Pool | pg.ClientBase).query({ name, text, values }) : db.query(text, values);
  }

  /** Runs `fn` with a dedicated pooled connection (not in a transaction). */
  private async withClient<T>(action: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new ClosedError("PostgreSQL store");
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.failed(toStoreError(error, action, this.config.location));
    }
    // A checked-out client has no pool listener: without this, a connection dropped between two of our
    // statements would be an unhandled 'error' event. The failing statement reports the error itself.
    const onError = () => undefined;
    client.on("error", onError);
    let failure: unknown;
    try {
      const result = await fn(client);
      this.gate.connection.reached();
      return result;
    } catch (error) {
      failure = error;
      throw this.failed(toStoreError(error, action, this.config.location));
    } finally {
      client.off("error", onError);
      // A connection that failed mid-use is discarded rather than returned to the pool in an unknown state.
      client.release(failure instanceof Error && !(failure instanceof SluiceError) ? failure : undefined);
    }
  }

  /** Notes an unreachable server (the connection watch of the recovery rule); returns `error`. */
  private failed(error: SluiceError): SluiceError {
    if (error instanceof StoreUnavailableError && !error.rejected) this.gate.connection.lost();
    return error;
  }

  /** Runs `fn` in BEGIN … COMMIT on one connection; rolls back on any error. */
  private async transaction<T>(action: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withClient(action, async (client) => {
          await client.query("BEGIN");
          try {
            const result = await fn(client);
            await client.query("COMMIT");
            return result;
          } catch (error) {
            await client.query("ROLLBACK").catch(() => undefined);
            throw error;
          }
        });
      } catch (error) {
        // PostgreSQL aborted the transaction to break a deadlock: nothing of it was written, run it again.
        if (isDeadlock((error as { cause?: unknown }).cause) && attempt < DEADLOCK_RETRIES) continue;
        throw error;
      }
    }
  }
}
