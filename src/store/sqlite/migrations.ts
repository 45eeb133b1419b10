/**
 * Versioned schema migrations for the SQLite engine. Applied in `open()` inside `BEGIN IMMEDIATE`, which
 * takes SQLite's single write lock: when several processes start at once, the first migrates and the others
 * wait on the busy timeout, then see `user_version` already current and do nothing.
 *
 * Never edit a shipped migration; append a new one.
 */
import type Database from "better-sqlite3";

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "jobs, queues, workers, leaders, job logs",
    sql: `
      CREATE TABLE jobs (
        -- AUTOINCREMENT: a seq is never reused after a delete, so enqueue order and list cursors stay stable.
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        id               TEXT    NOT NULL UNIQUE,
        task             TEXT    NOT NULL,
        queue            TEXT    NOT NULL,
        state            TEXT    NOT NULL,
        payload          TEXT    NOT NULL,
        result           TEXT,
        priority         INTEGER NOT NULL DEFAULT 0,
        run_at           INTEGER NOT NULL,
        created_at       INTEGER NOT NULL,
        started_at       INTEGER,
        finished_at      INTEGER,
        attempt          INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL,
        backoff          TEXT,
        timeout_ms       INTEGER,
        unique_key       TEXT,
        unique_until     INTEGER,
        tags             TEXT    NOT NULL DEFAULT '[]',
        progress         TEXT,
        lease_token      INTEGER NOT NULL DEFAULT 0,
        lease_expires_at INTEGER,
        worker_id        TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        -- Retention of a completed job: 'all' | 'none' | 'age' (keep_value = ms) | 'count' (keep_value = N per queue).
        keep_mode        TEXT    NOT NULL DEFAULT 'age',
        keep_value       INTEGER,
        -- finished_at + age for 'age' retention; the prune pass deletes completed rows past it.
        keep_until       INTEGER,
        errors           TEXT    NOT NULL DEFAULT '[]',
        reason           TEXT,
        parent_id        TEXT
      );

      -- Claim: the next waiting jobs of one queue in priority, run time, enqueue order. Partial, so it holds
      -- only the (usually small) backlog, not the history of completed jobs.
      CREATE INDEX jobs_claim ON jobs (queue, priority, run_at, seq) WHERE state = 'waiting';
      -- Promotion of due delayed / backed-off jobs, and the timer for the next one (nextRunAt).
      CREATE INDEX jobs_due ON jobs (queue, run_at) WHERE state = 'scheduled';
      -- Lease expiry: the recovery pass looks only at active jobs, oldest lease first.
      CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'active';
      -- Listing by queue and state with seq cursors; counts per queue and state read this index only.
      CREATE INDEX jobs_queue_state ON jobs (queue, state, seq);
      -- Listing by state across queues (e.g. every dead job).
      CREATE INDEX jobs_state ON jobs (state, seq);
      -- Retention by age: prune deletes completed jobs whose keep_until passed.
      CREATE INDEX jobs_keep_until ON jobs (keep_until) WHERE state = 'completed' AND keep_until IS NOT NULL;
      -- Deduplication lookups at enqueue.
      CREATE INDEX jobs_unique ON jobs (unique_key, seq) WHERE unique_key IS NOT NULL;

      CREATE TABLE job_logs (
        job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        at      INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        message TEXT    NOT NULL
      );
      CREATE INDEX job_logs_job ON job_logs (job_id, at);

      CREATE TABLE queues (
        name         TEXT PRIMARY KEY,
        paused       INTEGER NOT NULL DEFAULT 0,
        paused_until INTEGER
      );

      CREATE TABLE workers (
        id                TEXT PRIMARY KEY,
        host              TEXT    NOT NULL,
        pid               INTEGER NOT NULL,
        queues            TEXT    NOT NULL,
        concurrency       INTEGER NOT NULL,
        busy              INTEGER NOT NULL,
        started_at        INTEGER NOT NULL,
        last_heartbeat_at INTEGER NOT NULL,
        version           TEXT    NOT NULL
      );

      CREATE TABLE leaders (
        name       TEXT PRIMARY KEY,
        owner      TEXT    NOT NULL,
        expires_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: "hourly stats roll-up",
    sql: `
      -- One row per queue and hour; workers add their increments (upsert-add). durations is a JSON array of
      -- histogram counts (see src/core/stats.ts). Read by sluice stats without scanning jobs.
      CREATE TABLE queue_stats (
        queue     TEXT    NOT NULL,
        hour      INTEGER NOT NULL,
        completed INTEGER NOT NULL DEFAULT 0,
        failed    INTEGER NOT NULL DEFAULT 0,
        dead      INTEGER NOT NULL DEFAULT 0,
        durations TEXT    NOT NULL,
        PRIMARY KEY (hour, queue)
      );
    `,
  },
  {
    version: 3,
    description: "latest completion per queue and hour",
    sql: `
      -- Max-merged (not summed): sluice doctor's stagnation check reads "no completion for 10 minutes" from
      -- it without scanning jobs, at the resolution of a worker's stats flush rather than of the hour.
      ALTER TABLE queue_stats ADD COLUMN last_completed_at INTEGER;
    `,
  },
  {
    version: 4,
    description: "recurring schedules",
    sql: `
      -- One row per schedule. next_at is the compare-and-set key of a firing: a scheduler fires a tick only
      -- if next_at is still the value it read, in the transaction that inserts the tick's job, so a tick
      -- fires once however many schedulers run. template is the job without id and run time (JSON).
      CREATE TABLE schedules (
        name         TEXT    PRIMARY KEY,
        version      TEXT    NOT NULL,
        task         TEXT    NOT NULL,
        queue        TEXT    NOT NULL,
        cron         TEXT,
        timezone     TEXT,
        every_ms     INTEGER,
        missed       TEXT    NOT NULL,
        template     TEXT    NOT NULL,
        next_at      INTEGER,
        last_tick_at INTEGER,
        updated_at   INTEGER NOT NULL
      );
    `,
  },
  {
    version: 5,
    description: "event-loop stalls per worker",
    sql: `
      -- WorkerStalls as JSON (count, longest, last stall), written by registerWorker and by heartbeats that
      -- carry it; NULL until the worker observed one. Read by sluice info and sluice doctor.
      ALTER TABLE workers ADD COLUMN stalls TEXT;
    `,
  },
  {
    version: 6,
    description: "fleet-wide events",
    sql: `
      -- One row per job transition (core/fleet-events.ts), written in the transition's own transaction.
      -- A plain rowid (no AUTOINCREMENT, whose sqlite_sequence page would be one more page written by every
      -- commit): a new id is the largest + 1, and prune never deletes the newest event, so an id is never
      -- reused. SQLite has one writer at a time, so ids grow in commit order and a reader that resumes after
      -- the last id it saw misses nothing. No other index: readers scan by id, maintenance prunes the oldest.
      CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        type    TEXT    NOT NULL,
        queue   TEXT    NOT NULL,
        job_id  TEXT,
        task    TEXT,
        attempt INTEGER,
        data    TEXT
      );
      -- The newest event id pruned (0: none yet): a reader asking for an older one lost events (reset).
      CREATE TABLE events_meta (
        one         INTEGER PRIMARY KEY CHECK (one = 1),
        pruned_upto INTEGER NOT NULL
      );
      INSERT INTO events_meta (one, pruned_upto) VALUES (1, 0);
    `,
  },
  {
    version: 7,
    description: "flows: dependencies, batches",
    sql: `
      -- Flows (core/flows.ts). pending_deps: edges from the job not yet resolved (a blocked job waits while
      -- it is above 0). has_dependents: some edge points at the job, so its final transition looks for
      -- edges only then (plain jobs never read job_deps). batch_counted: how many times the job became
      -- final as a batch member; it is counted in its batch when this becomes 1 (the first time only), read
      -- from the final transition's own RETURNING, with no extra statement.
      ALTER TABLE jobs ADD COLUMN batch_id TEXT;
      ALTER TABLE jobs ADD COLUMN pending_deps INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN batch_counted INTEGER NOT NULL DEFAULT 0;
      -- Children of a parent (cancel cascade, flow view, --parent filter) and members of a batch.
      CREATE INDEX jobs_parent ON jobs (parent_id, seq) WHERE parent_id IS NOT NULL;
      CREATE INDEX jobs_batch ON jobs (batch_id, seq) WHERE batch_id IS NOT NULL;

      -- One edge per (dependent, dependency). The dependent's edges go with it when it is deleted (it no
      -- longer waits); edges to a deleted dependency stay (resolved), so its dependents' flow views show it
      -- gone. The rowid keeps declaration order for the flow view.
      CREATE TABLE job_deps (
        job_id     TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        depends_on TEXT    NOT NULL,
        on_failure TEXT    NOT NULL,
        resolved   INTEGER NOT NULL DEFAULT 0
      );
      CREATE UNIQUE INDEX job_deps_dependent ON job_deps (job_id, depends_on);
      -- Settle: the unresolved edges pointing at a job that just became final.
      CREATE INDEX job_deps_dependency ON job_deps (depends_on, resolved);

      -- Batches: counts by first final outcome; finished_at set when every member is final. data is the
      -- JSON text handed to the callbacks.
      CREATE TABLE batches (
        id          TEXT    PRIMARY KEY,
        description TEXT,
        data        TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        finished_at INTEGER,
        total       INTEGER NOT NULL DEFAULT 0,
        completed   INTEGER NOT NULL DEFAULT 0,
        dead        INTEGER NOT NULL DEFAULT 0,
        cancelled   INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX batches_created ON batches (created_at, id);
      -- A callback fires at most once: fired_at is its compare-and-set key (set in the transaction that
      -- enqueues the callback job). template is the JobTemplate as JSON.
      CREATE TABLE batch_callbacks (
        batch_id TEXT    NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
        event    TEXT    NOT NULL,
        task     TEXT    NOT NULL,
        queue    TEXT    NOT NULL,
        template TEXT    NOT NULL,
        fired_at INTEGER,
        PRIMARY KEY (batch_id, event)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 8,
    description: "schedules an operator paused",
    sql: `
      -- 1 while an operator has paused the schedule (sluice schedules pause): firings skip it. Declaring the
      -- schedule again at a worker's start never touches it, so a redeploy does not undo a pause.
      ALTER TABLE schedules ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 9,
    description: "limits: limit keys, queue limits and rate windows, key holds and key rate windows",
    sql: `
      -- A job's limit key (core/limits.ts): per-key concurrency, rate and holds. NULL: no key.
      ALTER TABLE jobs ADD COLUMN limit_key TEXT;
      -- The claim index again, with limit_key last: a keyed claim skips the jobs of keys at their limit by
      -- reading the index entry alone (no row lookup per skipped job). Plain claims use the same prefix.
      DROP INDEX jobs_claim;
      CREATE INDEX jobs_claim ON jobs (queue, priority, run_at, seq, limit_key) WHERE state = 'waiting';
      -- Active jobs per key, counted at claim (held-ahead jobs are active too). Keyed jobs only, so plain
      -- jobs never write to it. Counted from the index, not kept in a counter: every path that moves a job
      -- out of active (complete, fail, release, recover, cancel, delete, move) keeps it exact by itself.
      CREATE INDEX jobs_active_key ON jobs (queue, limit_key) WHERE state = 'active' AND limit_key IS NOT NULL;

      -- limits: QueueLimits as JSON, NULL = none. holds_until: the latest key hold of the queue. Claims read
      -- both in the statement that reads pauses, so a queue with neither costs nothing more than before.
      -- rate_window_end / rate_count: the queue rate's current fixed window and the claims counted in it.
      ALTER TABLE queues ADD COLUMN limits TEXT;
      ALTER TABLE queues ADD COLUMN holds_until INTEGER;
      ALTER TABLE queues ADD COLUMN rate_window_end INTEGER;
      ALTER TABLE queues ADD COLUMN rate_count INTEGER NOT NULL DEFAULT 0;

      -- Keys held by a RateLimitedError until a time (only ever extended); resumeQueue clears them.
      CREATE TABLE key_holds (
        queue TEXT    NOT NULL,
        key   TEXT    NOT NULL,
        until INTEGER NOT NULL,
        PRIMARY KEY (queue, key)
      ) WITHOUT ROWID;
      -- Per-key rate: the key's current fixed window and the claims counted in it (a claim in a later window
      -- starts the count again). Rows whose window ended are pruned by maintenance.
      CREATE TABLE key_rates (
        queue      TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        window_end INTEGER NOT NULL,
        count      INTEGER NOT NULL,
        PRIMARY KEY (queue, key)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 10,
    description: "worker health checks and clock",
    sql: `
      -- QueueHealth[] as JSON (runtime/health.ts), the worker's clock at its last registration or heartbeat
      -- and that clock minus the store's (the process clock here: 0 on one host). Read by sluice info and
      -- sluice doctor.
      ALTER TABLE workers ADD COLUMN health TEXT;
      ALTER TABLE workers ADD COLUMN clock INTEGER;
      ALTER TABLE workers ADD COLUMN clock_skew_ms INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 11,
    description: "retention by count reads its own index",
    sql: `
      -- Retention by count: the completed jobs kept as the newest N of their queue, in the order prune ranks
      -- them. Without it the maintenance pass's prune read every retained completed job (through jobs_state)
      -- to find the few kept by count, in the write lock: 17 ms a pass with 50,000 jobs kept by age.
      CREATE INDEX jobs_keep_count ON jobs (queue, finished_at DESC, seq DESC)
        WHERE state = 'completed' AND keep_mode = 'count';
    `,
  },
];

/** Applies pending migrations; returns the versions applied by this call. */
export function migrate(db: Database.Database): number[] {
  const applied: number[] = [];
  const run = db.transaction(() => {
    const current = db.pragma("user_version", { simple: true }) as number;
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
      applied.push(migration.version);
    }
  });
  run.immediate();
  return applied;
}

/** Latest schema version this build knows. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
