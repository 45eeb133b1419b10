/**
 * Versioned schema migrations for the PostgreSQL engine.
 *
 * `migrate()` runs in one transaction that first takes a transaction-level advisory lock keyed on the
 * schema name: when ten processes start at once, one migrates and the other nine wait on the lock, then
 * read `schema_migrations`, find nothing pending and commit having done nothing. The lock is released by
 * the COMMIT/ROLLBACK itself, so a process killed mid-migration cannot leave it held; DDL is
 * transactional in PostgreSQL, so such a process leaves no half-applied migration either.
 *
 * Time columns are `bigint` epoch milliseconds: the job model is in epoch ms, comparisons with caller
 * times (`run_at`) need no conversion, and lease times are computed from the database clock with
 * `now_ms` (see sql.ts) so worker clock skew cannot expire a healthy lease.
 *
 * Never edit a shipped migration; append a new one.
 */
import type pg from "pg";
import { flowsMigrationSql } from "./migration-flows.js";
import { limitsMigrationSql } from "./migration-limits.js";
import { NOW_MS } from "./sql.js";

export interface Migration {
  version: number;
  description: string;
  /** The SQL for schema `s` (already quoted). */
  sql: (s: string) => string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "jobs, job_logs, queues, workers, leaders, claim function",
    sql: (s) => `
      CREATE TABLE ${s}.jobs (
        -- Enqueue order: breaks ties on priority and run time, and is the listing cursor. An identity
        -- sequence never hands out the same value twice, so cursors stay valid after deletes.
        seq              bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id               text    NOT NULL UNIQUE,
        task             text    NOT NULL,
        queue            text    NOT NULL,
        state            text    NOT NULL
                         CHECK (state IN ('scheduled', 'waiting', 'active', 'completed', 'dead', 'cancelled', 'blocked')),
        -- Payload, result, progress and backoff are JSON text exactly as the producer serialised it:
        -- no server-side parse on the hot insert, and byte-for-byte what the producer size-checked.
        payload          text    NOT NULL,
        result           text,
        priority         integer NOT NULL DEFAULT 0,
        run_at           bigint  NOT NULL,
        created_at       bigint  NOT NULL,
        started_at       bigint,
        finished_at      bigint,
        attempt          integer NOT NULL DEFAULT 0,
        max_attempts     integer NOT NULL,
        backoff          text,
        timeout_ms       bigint,
        unique_key       text,
        unique_until     bigint,
        -- jsonb so that admin filters can use the containment operator (tags ? 'x').
        tags             jsonb   NOT NULL DEFAULT '[]',
        progress         text,
        lease_token      bigint  NOT NULL DEFAULT 0,
        lease_expires_at bigint,
        worker_id        text,
        cancel_requested boolean NOT NULL DEFAULT false,
        -- Retention of a completed job: 'all' | 'none' | 'age' (keep_value = ms) | 'count' (keep_value = N per queue).
        keep_mode        text    NOT NULL DEFAULT 'age',
        keep_value       bigint,
        -- finished_at + keep_value for 'age' retention: the prune pass deletes completed rows past it.
        keep_until       bigint,
        -- jsonb so that a failed attempt is appended in the same UPDATE (errors || $error) without a read.
        errors           jsonb   NOT NULL DEFAULT '[]',
        reason           text,
        parent_id        text
      );

      -- A queue table is insert/update/delete heavy; vacuum it after 1% of changes instead of 20% so dead
      -- tuples (which claim index scans must step over) do not pile up between autovacuum runs.
      ALTER TABLE ${s}.jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                                 autovacuum_analyze_scale_factor = 0.02);

      -- Claim: the next waiting jobs of one queue in (priority, run_at, seq) order, read in index order
      -- with LIMIT and FOR UPDATE SKIP LOCKED, so a claim never sorts and never waits on another claimer.
      -- Partial: it holds only the backlog, not the (much larger) history of finished jobs.
      CREATE INDEX jobs_claim ON ${s}.jobs (queue, priority, run_at, seq) WHERE state = 'waiting';

      -- Promotion of due jobs: every claim moves scheduled jobs with run_at <= now of its queues to
      -- waiting; nextRunAt reads min(run_at) of the same rows to arm the worker's timer. Partial: only
      -- delayed and backed-off jobs.
      CREATE INDEX jobs_due ON ${s}.jobs (queue, run_at) WHERE state = 'scheduled';

      -- Lease expiry: the recovery pass looks only at active jobs, oldest lease first. Partial: the active
      -- set is at most the fleet's total concurrency.
      CREATE INDEX jobs_lease ON ${s}.jobs (lease_expires_at) WHERE state = 'active';

      -- Listing by queue and state (dashboard, 'sluice jobs list --queue q --state dead') with seq cursors,
      -- and per queue x state counts for stats as an index-only scan. Partial: not for active jobs, so a
      -- claim (waiting -> active) does not insert into it; the small active set is listed and counted
      -- through jobs_lease instead.
      CREATE INDEX jobs_queue_state ON ${s}.jobs (queue, state, seq) WHERE state <> 'active';

      -- Listing by state across queues ('sluice retry --state dead', every dead job) in seq order. Partial:
      -- it leaves out the states of the hot path (waiting -> active -> completed), so a claim or a completion
      -- does not pay for one more index insert per job (measured: ~15% of claim+complete time). Waiting and
      -- active jobs across queues are listed through jobs_claim / jobs_lease, completed ones through the
      -- primary key (they are the bulk of the table).
      CREATE INDEX jobs_state ON ${s}.jobs (state, seq) WHERE state NOT IN ('waiting', 'active', 'completed');

      -- Retention by age: prune deletes completed jobs whose keep_until has passed, oldest first.
      CREATE INDEX jobs_keep_until ON ${s}.jobs (keep_until) WHERE state = 'completed' AND keep_until IS NOT NULL;

      -- Retention by count: prune keeps the newest N completed jobs of each queue.
      CREATE INDEX jobs_keep_count ON ${s}.jobs (queue, finished_at DESC, seq DESC)
        WHERE state = 'completed' AND keep_mode = 'count';

      -- Deduplication at enqueue: the newest job of a queue with a unique key (keys are scoped per queue).
      CREATE INDEX jobs_unique ON ${s}.jobs (queue, unique_key, seq) WHERE unique_key IS NOT NULL;

      CREATE TABLE ${s}.job_logs (
        seq     bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        -- Logs go with their job: deleting or pruning a job deletes its lines.
        job_id  text    NOT NULL REFERENCES ${s}.jobs (id) ON DELETE CASCADE,
        at      bigint  NOT NULL,
        attempt integer NOT NULL,
        message text    NOT NULL
      );
      -- A job's lines in order; also what the ON DELETE CASCADE uses to find them.
      CREATE INDEX job_logs_job ON ${s}.job_logs (job_id, seq);

      CREATE TABLE ${s}.queues (
        name         text    PRIMARY KEY,
        paused       boolean NOT NULL DEFAULT false,
        paused_until bigint
      );

      CREATE TABLE ${s}.workers (
        id                text    PRIMARY KEY,
        host              text    NOT NULL,
        pid               integer NOT NULL,
        queues            jsonb   NOT NULL,
        concurrency       integer NOT NULL,
        busy              integer NOT NULL,
        started_at        bigint  NOT NULL,
        last_heartbeat_at bigint  NOT NULL,
        version           text    NOT NULL
      );

      CREATE TABLE ${s}.leaders (
        name       text   PRIMARY KEY,
        owner      text   NOT NULL,
        expires_at bigint NOT NULL
      );

      -- Claim in one round trip: promotion of due jobs, then queues in the given order, each read through
      -- jobs_claim with SKIP LOCKED so concurrent claimers take disjoint rows without waiting. A function
      -- (rather than one SQL statement) because a statement cannot see rows promoted by its own CTE, and
      -- because per-queue LIMITs read exactly as many index entries as jobs are taken.
      CREATE FUNCTION ${s}.claim(p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint)
      RETURNS SETOF ${s}.jobs
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_now   bigint := ${NOW_MS};
        v_queue text;
        v_left  integer := p_limit;
        v_got   integer;
      BEGIN
        UPDATE ${s}.jobs SET state = 'waiting'
        WHERE seq IN (SELECT seq FROM ${s}.jobs
                      WHERE state = 'scheduled' AND queue = ANY (p_queues) AND run_at <= v_now
                      ORDER BY run_at LIMIT 10000
                      FOR UPDATE SKIP LOCKED);
        FOREACH v_queue IN ARRAY p_queues LOOP
          EXIT WHEN v_left <= 0;
          CONTINUE WHEN EXISTS (SELECT 1 FROM ${s}.queues q
                                WHERE q.name = v_queue AND (q.paused OR q.paused_until > v_now));
          RETURN QUERY
            UPDATE ${s}.jobs j
            SET state = 'active', attempt = j.attempt + 1, lease_token = j.lease_token + 1, started_at = v_now,
                worker_id = p_worker, lease_expires_at = v_now + p_lease_ms, reason = NULL
            WHERE j.seq IN (SELECT c.seq FROM ${s}.jobs c
                            WHERE c.state = 'waiting' AND c.queue = v_queue
                            ORDER BY c.priority, c.run_at, c.seq
                            LIMIT v_left
                            FOR UPDATE SKIP LOCKED)
            RETURNING j.*;
          GET DIAGNOSTICS v_got = ROW_COUNT;
          v_left := v_left - v_got;
        END LOOP;
      END
      $fn$;
    `,
  },
  {
    version: 2,
    description: "hourly stats roll-up",
    sql: (s) => `
      -- One row per queue and hour; workers add their increments (INSERT … ON CONFLICT DO UPDATE adds, so
      -- concurrent flushes from many workers merge). durations holds histogram counts per bucket of
      -- src/core/stats.ts. Read by 'sluice stats' without scanning jobs; prune drops rows past 30 days.
      CREATE TABLE ${s}.queue_stats (
        queue     text     NOT NULL,
        hour      bigint   NOT NULL,
        completed bigint   NOT NULL DEFAULT 0,
        failed    bigint   NOT NULL DEFAULT 0,
        dead      bigint   NOT NULL DEFAULT 0,
        durations bigint[] NOT NULL,
        -- hour first: readHourlyStats reads a time range across queues, prune deletes the oldest hours.
        PRIMARY KEY (hour, queue)
      );
    `,
  },
  {
    version: 3,
    description: "claim never sorts the backlog",
    sql: (s) => `
      -- Right after a burst of enqueues, before autovacuum has analysed the table, the planner believes a
      -- queue has about one waiting job. Both jobs_claim (already in claim order) and jobs_queue_state
      -- (queue, state, seq) then look equally cheap, and with the latter every claim read and sorted the
      -- queue's whole backlog: draining 40,000 fresh jobs ran 2-3x slower than draining 20,000, and
      -- quadratically worse beyond. Sorting is never what a claim wants, so the function plans without it
      -- and always walks jobs_claim in order, reading only the jobs it takes. Disabling a plan node works
      -- through a huge cost, which would make PostgreSQL JIT-compile the statement (~200 ms per claim), so
      -- JIT is off for the function too; a claim is a short indexed statement that never gains from it.
      ALTER FUNCTION ${s}.claim(text[], integer, text, bigint) SET enable_sort = off;
      ALTER FUNCTION ${s}.claim(text[], integer, text, bigint) SET jit = off;
    `,
  },
  {
    version: 4,
    description: "latest completion per queue and hour",
    sql: (s) => `
      -- Max-merged (GREATEST, not summed): sluice doctor's stagnation check reads "no completion for 10
      -- minutes" from it without scanning jobs, at the resolution of a worker's stats flush, not the hour.
      ALTER TABLE ${s}.queue_stats ADD COLUMN last_completed_at bigint;
    `,
  },
  {
    version: 5,
    description: "recurring schedules",
    sql: (s) => `
      -- One row per schedule. next_at is the compare-and-set key of a firing: a scheduler fires a tick only
      -- if next_at is still the value it read, in the transaction that inserts the tick's job, so a tick
      -- fires once however many schedulers run. template is the job without id and run time (JSON text).
      -- A handful of rows read by the maintenance leader every few seconds: no index beyond the key.
      CREATE TABLE ${s}.schedules (
        name         text    PRIMARY KEY,
        version      text    NOT NULL,
        task         text    NOT NULL,
        queue        text    NOT NULL,
        cron         text,
        timezone     text,
        every_ms     bigint,
        missed       text    NOT NULL CHECK (missed IN ('once', 'all', 'skip')),
        template     text    NOT NULL,
        next_at      bigint,
        last_tick_at bigint,
        updated_at   bigint  NOT NULL
      );
    `,
  },
  {
    version: 6,
    description: "lease-keyed batch writes planned as index probes",
    sql: (s) => {
      // Planner settings of every lease-keyed batch function: with hash and merge joins, materialisation,
      // bitmap and sequential scans off, and a state test the planner cannot match to jobs_lease's
      // predicate (state is NOT NULL, so COALESCE changes nothing), the one plan left is a nested loop from
      // the batch's items into the unique id index: O(batch), whatever the table's statistics say.
      const probes =
        "SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off " +
        "SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off";
      const held = "j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";
      return `
      -- Completions, failures, releases, lease extensions and progress as functions planned with the
      -- settings above. As plain statements, right after a burst filled the table (no statistics until
      -- autovacuum's analyze) the planner believed jobs tiny: it scanned it and joined every job with every
      -- item of the batch (80 ms to complete 500 jobs among 20,000; 8 ms now), or read every active job
      -- through jobs_lease as a bitmap, which revisits the dead index entries of every job finished since
      -- the last vacuum. Under load, completions fell behind claims by 3x.
      CREATE FUNCTION ${s}.jobs_payload(p_queues text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $fn$
        SELECT CASE WHEN sum(length(q)) < 3000 THEN json_build_object('q', array_agg(q))::text ELSE '{"q":null}' END
        FROM unnest(p_queues) AS q
      $fn$;

      CREATE FUNCTION ${s}.complete_jobs(p_ids text[], p_tokens bigint[], p_results text[])
      RETURNS SETOF text LANGUAGE sql ${probes} AS $fn$
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_results) AS u(id, token, result)),
        kept AS (
          UPDATE ${s}.jobs j SET state = 'completed', result = u.result, finished_at = ${NOW_MS},
            lease_expires_at = NULL, keep_until = CASE j.keep_mode WHEN 'age' THEN ${NOW_MS} + j.keep_value END
          FROM u WHERE ${held} AND j.keep_mode <> 'none'
          RETURNING j.id),
        -- retention false: the job leaves the table at once (its logs go by ON DELETE CASCADE).
        dropped AS (
          DELETE FROM ${s}.jobs j USING u WHERE ${held} AND j.keep_mode = 'none'
          RETURNING j.id)
        SELECT id FROM kept UNION ALL SELECT id FROM dropped
      $fn$;

      CREATE FUNCTION ${s}.fail_jobs(p_ids text[], p_tokens bigint[], p_next text[], p_run_at bigint[],
        p_reason text[], p_error text[], p_channel text)
      RETURNS SETOF text LANGUAGE plpgsql ${probes} AS $fn$
      DECLARE
        v_now    bigint := ${NOW_MS};
        v_ids    text[];
        v_queues text[];
      BEGIN
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_next, p_run_at, p_reason, p_error)
                     AS u(id, token, next, run_at, reason, error)),
        changed AS (
          UPDATE ${s}.jobs j SET state = u.next,
            run_at = CASE u.next WHEN 'scheduled' THEN u.run_at WHEN 'waiting' THEN v_now ELSE j.run_at END,
            finished_at = CASE WHEN u.next IN ('dead', 'cancelled') THEN v_now END,
            lease_expires_at = NULL, errors = j.errors || jsonb_build_array(u.error::jsonb), reason = u.reason
          FROM u WHERE ${held}
          RETURNING j.id, j.queue, j.state)
        SELECT array_agg(c.id), array_agg(DISTINCT c.queue) FILTER (WHERE c.state IN ('waiting', 'scheduled'))
        INTO v_ids, v_queues FROM changed c;
        -- Delivered on commit, like every NOTIFY of the store.
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(p_channel, ${s}.jobs_payload(v_queues)); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      CREATE FUNCTION ${s}.release_jobs(p_ids text[], p_tokens bigint[], p_run_at bigint[], p_reason text[],
        p_next text[], p_channel text)
      RETURNS SETOF text LANGUAGE plpgsql ${probes} AS $fn$
      DECLARE
        v_now    bigint := ${NOW_MS};
        v_ids    text[];
        v_queues text[];
      BEGIN
        -- A job whose cancel was requested while it ran is cancelled instead of going back to run again.
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_run_at, p_reason, p_next)
                     AS u(id, token, run_at, reason, next)),
        changed AS (
          UPDATE ${s}.jobs j SET attempt = greatest(j.attempt - 1, 0), lease_expires_at = NULL,
            state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE u.next END,
            run_at = CASE WHEN j.cancel_requested THEN j.run_at ELSE COALESCE(u.run_at, j.run_at) END,
            finished_at = CASE WHEN j.cancel_requested THEN v_now ELSE j.finished_at END,
            reason = CASE WHEN j.cancel_requested THEN 'cancelled by operator while active' ELSE u.reason END
          FROM u WHERE ${held}
          RETURNING j.id, j.queue, j.state)
        SELECT array_agg(c.id), array_agg(DISTINCT c.queue) FILTER (WHERE c.state <> 'cancelled')
        INTO v_ids, v_queues FROM changed c;
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(p_channel, ${s}.jobs_payload(v_queues)); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      CREATE FUNCTION ${s}.extend_leases(p_ids text[], p_tokens bigint[], p_lease_ms bigint)
      RETURNS TABLE (id text, cancel_requested boolean) LANGUAGE sql ${probes} AS $fn$
        UPDATE ${s}.jobs j SET lease_expires_at = ${NOW_MS} + p_lease_ms
        FROM unnest(p_ids, p_tokens) AS u(id, token)
        WHERE ${held}
        RETURNING j.id, j.cancel_requested
      $fn$;

      CREATE FUNCTION ${s}.job_progress(p_ids text[], p_tokens bigint[], p_progress text[])
      RETURNS SETOF text LANGUAGE sql ${probes} AS $fn$
        UPDATE ${s}.jobs j SET progress = u.progress
        FROM unnest(p_ids, p_tokens, p_progress) AS u(id, token, progress)
        WHERE ${held}
        RETURNING j.id
      $fn$;
    `;
    },
  },
  {
    version: 7,
    description: "event-loop stalls per worker",
    sql: (s) => `
      -- WorkerStalls (count, longest, last stall), written by registerWorker and by heartbeats that carry
      -- it; NULL until the worker observed one. Read by sluice info and sluice doctor.
      ALTER TABLE ${s}.workers ADD COLUMN stalls jsonb;
    `,
  },
  {
    version: 8,
    description: "lease extensions name the token of each lease they report",
    sql: (s) => {
      // The same plan settings and lease test as migration 6.
      const probes =
        "SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off " +
        "SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off";
      const held = "j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";
      return `
      -- A worker may ask about two leases of one job in one call (a claim it has not yet learned was
      -- recovered, and its own newer claim of the same job): each row names the token it extended, so a
      -- report about the older claim never touches the newer one. Each row also says whether the job's
      -- queue is paused now, so a worker gives back the jobs of a paused queue it claimed ahead. The return
      -- type changes, hence the drop; a statement selecting (id, cancel_requested) by name still works.
      DROP FUNCTION ${s}.extend_leases(text[], bigint[], bigint);
      CREATE FUNCTION ${s}.extend_leases(p_ids text[], p_tokens bigint[], p_lease_ms bigint)
      RETURNS TABLE (id text, token bigint, cancel_requested boolean, paused boolean)
      LANGUAGE sql ${probes} AS $fn$
        UPDATE ${s}.jobs j SET lease_expires_at = ${NOW_MS} + p_lease_ms
        FROM unnest(p_ids, p_tokens) AS u(id, token)
        WHERE ${held}
        RETURNING j.id, j.lease_token, j.cancel_requested,
          EXISTS (SELECT 1 FROM ${s}.queues q
                  WHERE q.name = j.queue AND (q.paused OR q.paused_until > ${NOW_MS}))
      $fn$;
    `;
    },
  },
  {
    version: 9,
    description: "claims hold jobs ahead without starting them; start marks them",
    sql: (s) => {
      const probes =
        "SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off " +
        "SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off";
      const held = "j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";
      const take = (startedAt: string, limit: string) => `
          RETURN QUERY
            UPDATE ${s}.jobs j
            SET state = 'active', attempt = j.attempt + 1, lease_token = j.lease_token + 1, started_at = ${startedAt},
                worker_id = p_worker, lease_expires_at = v_now + p_lease_ms, reason = NULL
            WHERE j.seq IN (SELECT c.seq FROM ${s}.jobs c
                            WHERE c.state = 'waiting' AND c.queue = v_queue
                            ORDER BY c.priority, c.run_at, c.seq
                            LIMIT ${limit}
                            FOR UPDATE SKIP LOCKED)
            RETURNING j.*;
          GET DIAGNOSTICS v_got = ROW_COUNT;
          v_left := v_left - v_got;`;
      return `
      -- The claim of migration 1 (with migration 3's settings) taking one more argument: how many of the
      -- jobs taken start at once (started_at set). The rest are held ahead by the worker with started_at
      -- NULL, which users see as waiting, until start_jobs marks them. The old signature stays for workers
      -- of the previous version during a rolling deploy.
      CREATE FUNCTION ${s}.claim(p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint, p_start integer)
      RETURNS SETOF ${s}.jobs
      LANGUAGE plpgsql SET enable_sort = off SET jit = off AS $fn$
      DECLARE
        v_now   bigint := ${NOW_MS};
        v_queue text;
        v_left  integer := p_limit;
        v_start integer := least(p_start, p_limit);
        v_got   integer;
      BEGIN
        UPDATE ${s}.jobs SET state = 'waiting'
        WHERE seq IN (SELECT seq FROM ${s}.jobs
                      WHERE state = 'scheduled' AND queue = ANY (p_queues) AND run_at <= v_now
                      ORDER BY run_at LIMIT 10000
                      FOR UPDATE SKIP LOCKED);
        FOREACH v_queue IN ARRAY p_queues LOOP
          EXIT WHEN v_left <= 0;
          CONTINUE WHEN EXISTS (SELECT 1 FROM ${s}.queues q
                                WHERE q.name = v_queue AND (q.paused OR q.paused_until > v_now));
          IF v_start > 0 THEN${take("v_now", "v_start")}
            v_start := v_start - v_got;
          END IF;
          IF v_left > 0 AND v_start <= 0 THEN${take("NULL", "v_left")}
          END IF;
        END LOOP;
      END
      $fn$;

      -- Starts held jobs: the lease still held and the queue not paused (a claim would skip it).
      CREATE FUNCTION ${s}.start_jobs(p_ids text[], p_tokens bigint[])
      RETURNS SETOF text LANGUAGE sql ${probes} AS $fn$
        UPDATE ${s}.jobs j SET started_at = COALESCE(j.started_at, ${NOW_MS})
        FROM unnest(p_ids, p_tokens) AS u(id, token)
        WHERE ${held}
          AND NOT EXISTS (SELECT 1 FROM ${s}.queues q
                          WHERE q.name = j.queue AND (q.paused OR q.paused_until > ${NOW_MS}))
        RETURNING j.id
      $fn$;
    `;
    },
  },
  {
    version: 10,
    description: "fleet-wide events, written by the transitions themselves",
    sql: (s) => {
      const probes =
        "SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off " +
        "SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off";
      const held = "j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";
      const notPaused = `NOT EXISTS (SELECT 1 FROM ${s}.queues q
                          WHERE q.name = j.queue AND (q.paused OR q.paused_until > ${NOW_MS}))`;
      // Every event is inserted by a data-modifying CTE that reads the RETURNING rows of the transition's own
      // UPDATE / INSERT / DELETE: the row change has given the transaction its xid before nextval() hands
      // out the event id (readEvents' horizon relies on that, see postgres-store.ts), the event commits or
      // rolls back with the transition, and a fenced or skipped change returns no row, hence writes no event.
      const events = `INSERT INTO ${s}.events (at, type, queue, job_id, task, attempt, data)`;
      const take = (startedAt: string, limit: string, emit: boolean) => `
          RETURN QUERY
            WITH moved AS (
              UPDATE ${s}.jobs j
              SET state = 'active', attempt = j.attempt + 1, lease_token = j.lease_token + 1, started_at = ${startedAt},
                  worker_id = p_worker, lease_expires_at = v_now + p_lease_ms, reason = NULL
              WHERE j.seq IN (SELECT c.seq FROM ${s}.jobs c
                              WHERE c.state = 'waiting' AND c.queue = v_queue
                              ORDER BY c.priority, c.run_at, c.seq
                              LIMIT ${limit}
                              FOR UPDATE SKIP LOCKED)
              RETURNING j.*)${
                emit
                  ? `,
            ev AS (
              ${events}
              SELECT v_now, 'active', m.queue, m.id, m.task, m.attempt, jsonb_build_object('workerId', p_worker)
              FROM moved m WHERE p_events)`
                  : ""
              }
            SELECT * FROM moved;
          GET DIAGNOSTICS v_got = ROW_COUNT;
          v_left := v_left - v_got;`;
      return `
      -- One row per transition (core/fleet-events.ts). Ids come from events_id_seq (CACHE 1, so ids are
      -- handed out in call order across sessions); readers never trust "id > after" alone, because a
      -- transaction may commit after a later id's: they read up to a horizon every id below which is
      -- settled (postgres-store.ts, docs/postgres.md). Append at the tail, delete at the head by prune:
      -- never updated, so fillfactor 100 (no room left for HOT updates), and vacuumed after 2% dead rows so
      -- pruned pages are reused. No b-tree at all, not even a primary key: every transition appends to the
      -- index's rightmost leaf, and with two worker processes that hot leaf (its locks and WAL) cost a
      -- quarter of the throughput (bench/events-cost.ts and the 2 × 50 row of npm run bench). A BRIN index
      -- costs nothing on insert (new pages stay unsummarized until autovacuum) and still lets readers and
      -- prune skip to an id range; ids are unique because only the sequence assigns them.
      CREATE SEQUENCE ${s}.events_id_seq AS bigint CACHE 1;
      CREATE TABLE ${s}.events (
        id      bigint  NOT NULL DEFAULT nextval('${s}.events_id_seq'),
        at      bigint  NOT NULL,
        type    text    NOT NULL,
        queue   text    NOT NULL,
        job_id  text,
        task    text,
        attempt integer,
        data    jsonb
      ) WITH (fillfactor = 100, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);
      ALTER SEQUENCE ${s}.events_id_seq OWNED BY ${s}.events.id;
      CREATE INDEX events_id ON ${s}.events USING brin (id) WITH (pages_per_range = 16, autosummarize = on);
      -- Readers summarize the pages appended since (readEvents, at most a few times a second): a BRIN index
      -- leaves new pages unsummarized until autovacuum, and a read scans every unsummarized page. One
      -- summarizer at a time per store (the others skip: they will read what it summarized).
      CREATE FUNCTION ${s}.summarize_events() RETURNS void LANGUAGE plpgsql AS $fn$
      BEGIN
        IF pg_try_advisory_xact_lock(hashtext('${s}.events_id')) THEN
          PERFORM brin_summarize_new_values('${s}.events_id'::regclass);
        END IF;
      END
      $fn$;

      -- The newest event id prune deleted (0: none), durable, so a reader whose id is older learns that it
      -- lost events (reset). One row, written by prune in the transaction that deletes.
      CREATE TABLE ${s}.event_state (
        one       boolean PRIMARY KEY DEFAULT true CHECK (one),
        pruned_id bigint  NOT NULL DEFAULT 0
      );
      INSERT INTO ${s}.event_state DEFAULT VALUES;

      -- One read of events (postgres-store.ts readEvents), in a function only for its settings: with no
      -- statistics (a young table) or stale ones the planner picks a sequential scan of every retained event
      -- over the BRIN bitmap scan of the few pages in range, and parallel workers cost more than such a
      -- read (nor JIT: disabling the sequential scan inflates the cost estimates past its threshold). $1 after (null: from the oldest), $2 the sequence's last value, $3 the settled horizon, $4
      -- queue, $5 job id, $6 limit. Reset: $1 older than the newest pruned id, or newer than any id handed
      -- out (one statement with the read, so a prune cannot slip between them).
      CREATE FUNCTION ${s}.read_events(bigint, bigint, bigint, text, text, integer)
      RETURNS TABLE (reset boolean, pruned_id bigint, id bigint, at bigint, type text, queue text,
        job_id text, task text, attempt integer, data jsonb)
      LANGUAGE sql STABLE SET enable_seqscan = off SET max_parallel_workers_per_gather = 0 SET jit = off AS $fn$
      WITH a AS (
        SELECT st.pruned_id, ($1::bigint IS NOT NULL AND ($1::bigint < st.pruned_id OR $1::bigint > $2::bigint)) AS reset
        FROM ${s}.event_state st)
      SELECT a.reset, a.pruned_id, e.id, e.at, e.type, e.queue, e.job_id, e.task, e.attempt, e.data
      FROM a LEFT JOIN LATERAL (
        SELECT * FROM ${s}.events e
        WHERE e.id > CASE WHEN a.reset OR $1::bigint IS NULL THEN 0 ELSE $1::bigint END AND e.id <= $3::bigint
          AND ($4::text IS NULL OR e.queue = $4::text) AND ($5::text IS NULL OR e.job_id = $5::text)
        ORDER BY e.id LIMIT $6) e ON true
      ORDER BY e.id
      $fn$;

      -- A reader's horizon mark, in one round trip and in this order: (1) last_id, the sequence's last
      -- value (read outside MVCC: it includes ids of transactions still in progress), THEN (2) next_xid, an
      -- upper bound of every xid assigned before (1). age(xid) of a transaction without an xid measures from
      -- ReadNextTransactionId() (GetStableLatestTransactionId), so xmin + age(xmin) is the next xid to be
      -- assigned at the first call, which comes after (1). (pg_current_snapshot()'s xmax is NOT such a
      -- bound: it is latestCompletedXid + 1, and running xids above it are simply left out of the snapshot.)
      -- Every id <= last_id was taken by a transaction whose xid was assigned before (its row change came
      -- first), hence < next_xid. A snapshot whose xmin >= next_xid therefore proves all of them committed or
      -- rolled back: ids <= last_id are settled. (3) xmin of a snapshot taken now, for that test.
      CREATE FUNCTION ${s}.event_mark(OUT last_id bigint, OUT next_xid bigint, OUT snapshot_xmin bigint)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_snap pg_snapshot;
        v_age  integer;
      BEGIN
        SELECT CASE WHEN q.is_called THEN q.last_value ELSE 0 END INTO last_id FROM ${s}.events_id_seq q;
        v_snap := pg_current_snapshot();
        snapshot_xmin := pg_snapshot_xmin(v_snap)::text::bigint;
        v_age := age(xid(pg_snapshot_xmin(v_snap)));
        -- age() of a special xid is INT_MAX: no usable bound, the mark never becomes safe.
        next_xid := CASE WHEN v_age = 2147483647 THEN 9223372036854775807 ELSE snapshot_xmin + v_age END;
      END
      $fn$;

      -- The payload as jsonb, or NULL when it does not parse, for the payloadField filter (sql.ts): one
      -- corrupt payload must not make every filtered listing fail. Admin path only (a subtransaction per
      -- call, for the EXCEPTION block).
      CREATE FUNCTION ${s}.json_or_null(p_text text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
      BEGIN
        RETURN p_text::jsonb;
      EXCEPTION WHEN others THEN
        RETURN NULL;
      END
      $fn$;

      -- The transitions that write events, each with a p_events flag (StoreOptions.events.enabled: false
      -- makes the INSERT select no rows). New signatures; the old ones stay for workers of the previous
      -- version during a rolling deploy (they write no events).
      CREATE FUNCTION ${s}.claim(p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint, p_start integer,
        p_events boolean)
      RETURNS SETOF ${s}.jobs
      LANGUAGE plpgsql SET enable_sort = off SET jit = off AS $fn$
      DECLARE
        v_now   bigint := ${NOW_MS};
        v_queue text;
        v_left  integer := p_limit;
        v_start integer := least(p_start, p_limit);
        v_got   integer;
      BEGIN
        -- Promotion writes no event (scheduled -> waiting is not a transition users follow).
        UPDATE ${s}.jobs SET state = 'waiting'
        WHERE seq IN (SELECT seq FROM ${s}.jobs
                      WHERE state = 'scheduled' AND queue = ANY (p_queues) AND run_at <= v_now
                      ORDER BY run_at LIMIT 10000
                      FOR UPDATE SKIP LOCKED);
        FOREACH v_queue IN ARRAY p_queues LOOP
          EXIT WHEN v_left <= 0;
          CONTINUE WHEN EXISTS (SELECT 1 FROM ${s}.queues q
                                WHERE q.name = v_queue AND (q.paused OR q.paused_until > v_now));
          -- Jobs that start now are 'active'; jobs held ahead write theirs when start_jobs starts them.
          IF v_start > 0 THEN${take("v_now", "v_start", true)}
            v_start := v_start - v_got;
          END IF;
          IF v_left > 0 AND v_start <= 0 THEN${take("NULL", "v_left", false)}
          END IF;
        END LOOP;
      END
      $fn$;

      -- Jobs started here for the first time write 'active'; one started already is reported applied again
      -- (as before) without a second event.
      CREATE FUNCTION ${s}.start_jobs(p_ids text[], p_tokens bigint[], p_events boolean)
      RETURNS SETOF text LANGUAGE sql ${probes} AS $fn$
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens) AS u(id, token)),
        started AS (
          UPDATE ${s}.jobs j SET started_at = ${NOW_MS}
          FROM u WHERE ${held} AND j.started_at IS NULL AND ${notPaused}
          RETURNING j.id, j.queue, j.task, j.attempt, j.worker_id),
        ev AS (
          ${events}
          SELECT ${NOW_MS}, 'active', c.queue, c.id, c.task, c.attempt, jsonb_build_object('workerId', c.worker_id)
          FROM started c WHERE p_events),
        already AS (
          SELECT j.id FROM ${s}.jobs j JOIN u ON ${held} WHERE j.started_at IS NOT NULL AND ${notPaused})
        SELECT id FROM started UNION ALL SELECT id FROM already
      $fn$;

      -- PL/pgSQL (the version of migration 6 was SQL): its statement's plan is cached per connection,
      -- where a SQL function's body is planned again on every call, and with the events CTE that planning
      -- cost more than the event rows themselves.
      CREATE FUNCTION ${s}.complete_jobs(p_ids text[], p_tokens bigint[], p_results text[], p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql ${probes} AS $fn$
      BEGIN
        RETURN QUERY
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_results) AS u(id, token, result)),
        kept AS (
          UPDATE ${s}.jobs j SET state = 'completed', result = u.result, finished_at = ${NOW_MS},
            lease_expires_at = NULL, keep_until = CASE j.keep_mode WHEN 'age' THEN ${NOW_MS} + j.keep_value END
          FROM u WHERE ${held} AND j.keep_mode <> 'none'
          RETURNING j.id, j.queue, j.task, j.attempt),
        dropped AS (
          DELETE FROM ${s}.jobs j USING u WHERE ${held} AND j.keep_mode = 'none'
          RETURNING j.id, j.queue, j.task, j.attempt),
        done AS (SELECT * FROM kept UNION ALL SELECT * FROM dropped),
        -- Never the result: events stay small.
        ev AS (
          ${events}
          SELECT ${NOW_MS}, 'completed', d.queue, d.id, d.task, d.attempt, NULL FROM done d WHERE p_events)
        SELECT d.id FROM done d;
      END
      $fn$;

      CREATE FUNCTION ${s}.fail_jobs(p_ids text[], p_tokens bigint[], p_next text[], p_run_at bigint[],
        p_reason text[], p_error text[], p_channel text, p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql ${probes} AS $fn$
      DECLARE
        v_now    bigint := ${NOW_MS};
        v_ids    text[];
        v_queues text[];
      BEGIN
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_next, p_run_at, p_reason, p_error)
                     AS u(id, token, next, run_at, reason, error)),
        changed AS (
          UPDATE ${s}.jobs j SET state = u.next,
            run_at = CASE u.next WHEN 'scheduled' THEN u.run_at WHEN 'waiting' THEN v_now ELSE j.run_at END,
            finished_at = CASE WHEN u.next IN ('dead', 'cancelled') THEN v_now END,
            lease_expires_at = NULL, errors = j.errors || jsonb_build_array(u.error::jsonb), reason = u.reason
          FROM u WHERE ${held}
          RETURNING j.id, j.queue, j.state, j.task, j.attempt, j.run_at, u.reason AS why, u.error AS err),
        ev AS (
          ${events}
          SELECT v_now, CASE WHEN c.state IN ('dead', 'cancelled') THEN c.state ELSE 'retrying' END,
            c.queue, c.id, c.task, c.attempt,
            CASE c.state
              WHEN 'dead' THEN jsonb_build_object('error', c.err::jsonb ->> 'message', 'reason', c.why)
              WHEN 'cancelled' THEN jsonb_build_object('reason', c.why)
              ELSE jsonb_build_object('error', c.err::jsonb ->> 'message', 'runAt', c.run_at)
            END
          FROM changed c WHERE p_events)
        SELECT array_agg(c.id), array_agg(DISTINCT c.queue) FILTER (WHERE c.state IN ('waiting', 'scheduled'))
        INTO v_ids, v_queues FROM changed c;
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(p_channel, ${s}.jobs_payload(v_queues)); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      -- Only a job that had started writes an event ('released', or 'cancelled' when its cancel was
      -- requested); a held job going back was never visible as running. attempt: the attempt given back.
      CREATE FUNCTION ${s}.release_jobs(p_ids text[], p_tokens bigint[], p_run_at bigint[], p_reason text[],
        p_next text[], p_channel text, p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql ${probes} AS $fn$
      DECLARE
        v_now    bigint := ${NOW_MS};
        v_ids    text[];
        v_queues text[];
      BEGIN
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_run_at, p_reason, p_next)
                     AS u(id, token, run_at, reason, next)),
        changed AS (
          UPDATE ${s}.jobs j SET attempt = greatest(j.attempt - 1, 0), lease_expires_at = NULL,
            state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE u.next END,
            run_at = CASE WHEN j.cancel_requested THEN j.run_at ELSE COALESCE(u.run_at, j.run_at) END,
            finished_at = CASE WHEN j.cancel_requested THEN v_now ELSE j.finished_at END,
            reason = CASE WHEN j.cancel_requested THEN 'cancelled by operator while active' ELSE u.reason END
          FROM u WHERE ${held}
          RETURNING j.id, j.queue, j.state, j.task, j.attempt, j.started_at, j.reason, u.run_at AS asked_run_at),
        ev AS (
          ${events}
          SELECT v_now, CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE 'released' END,
            c.queue, c.id, c.task, c.attempt + 1,
            CASE WHEN c.state = 'cancelled' THEN jsonb_build_object('reason', c.reason)
                 ELSE jsonb_build_object('reason', c.reason, 'runAt', c.asked_run_at) END
          FROM changed c WHERE p_events AND c.started_at IS NOT NULL)
        SELECT array_agg(c.id), array_agg(DISTINCT c.queue) FILTER (WHERE c.state <> 'cancelled')
        INTO v_ids, v_queues FROM changed c;
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(p_channel, ${s}.jobs_payload(v_queues)); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      -- p_events: per item, the progress as JSON text for its event, or NULL for none (events off, or the
      -- task turned progress events off).
      CREATE FUNCTION ${s}.job_progress(p_ids text[], p_tokens bigint[], p_progress text[], p_events text[])
      RETURNS SETOF text LANGUAGE sql ${probes} AS $fn$
        WITH changed AS (
          UPDATE ${s}.jobs j SET progress = u.progress
          FROM unnest(p_ids, p_tokens, p_progress, p_events) AS u(id, token, progress, event)
          WHERE ${held}
          RETURNING j.id, j.queue, j.task, j.attempt, u.event),
        ev AS (
          ${events}
          SELECT ${NOW_MS}, 'progress', c.queue, c.id, c.task, c.attempt, jsonb_build_object('progress', c.event::jsonb)
          FROM changed c WHERE c.event IS NOT NULL)
        SELECT id FROM changed
      $fn$;
    `;
    },
  },
  {
    version: 11,
    description: "flows: dependency edges, batches with callbacks, settling of final jobs",
    sql: flowsMigrationSql,
  },
  {
    version: 12,
    description: "schedules an operator paused",
    sql: (s) => `
      -- True while an operator has paused the schedule (sluice schedules pause): firings skip it. Declaring
      -- the schedule again at a worker's start never touches it, so a redeploy does not undo a pause.
      ALTER TABLE ${s}.schedules ADD COLUMN paused boolean NOT NULL DEFAULT false;
    `,
  },
  {
    version: 13,
    description: "limits: job limit keys, queue limits and key holds, enforced by claim",
    sql: limitsMigrationSql,
  },
  {
    // 14, not 13: the limits migration (issue 13) takes 13.
    version: 14,
    description: "worker health checks and clock",
    sql: (s) => `
      -- QueueHealth[] (runtime/health.ts), the worker's clock at its last registration or heartbeat, and
      -- that clock minus the database's clock when it was recorded. Read by sluice info and sluice doctor.
      ALTER TABLE ${s}.workers ADD COLUMN health jsonb;
      ALTER TABLE ${s}.workers ADD COLUMN clock bigint;
      ALTER TABLE ${s}.workers ADD COLUMN clock_skew_ms bigint NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 15,
    description: "start_jobs in PL/pgSQL: a start is cheap enough to claim ahead",
    sql: (s) => {
      const held = "j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";
      const notPaused = `NOT EXISTS (SELECT 1 FROM ${s}.queues q
                          WHERE q.name = j.queue AND (q.paused OR q.paused_until > ${NOW_MS}))`;
      return `
      -- The start of a job claimed ahead (migration 10's, same signature and result) in PL/pgSQL: its plan
      -- is cached per connection, where the SQL function's body was planned on every call (a start of one
      -- job cost about as much as a claim, so holding jobs ahead saved nothing; runtime/claim-ahead.ts).
      CREATE OR REPLACE FUNCTION ${s}.start_jobs(p_ids text[], p_tokens bigint[], p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql
      SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off
      SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off AS $fn$
      BEGIN
        RETURN QUERY
          WITH u AS (SELECT * FROM unnest(p_ids, p_tokens) AS u(id, token)),
          started AS (
            UPDATE ${s}.jobs j SET started_at = ${NOW_MS}
            FROM u WHERE ${held} AND j.started_at IS NULL AND ${notPaused}
            RETURNING j.id, j.queue, j.task, j.attempt, j.worker_id),
          ev AS (
            INSERT INTO ${s}.events (at, type, queue, job_id, task, attempt, data)
            SELECT ${NOW_MS}, 'active', c.queue, c.id, c.task, c.attempt, jsonb_build_object('workerId', c.worker_id)
            FROM started c WHERE p_events),
          already AS (
            SELECT j.id FROM ${s}.jobs j JOIN u ON ${held} WHERE j.started_at IS NOT NULL AND ${notPaused})
          SELECT started.id FROM started UNION ALL SELECT already.id FROM already;
      END
      $fn$;
    `;
    },
  },
  {
    version: 16,
    description: "the worker's functions keep one generic plan per statement instead of planning every call",
    sql: (s) => `
      -- PL/pgSQL caches a plan per statement, but for a statement with parameters (every one of these: the
      -- batch arrays, the queue, the limit) the plan cache plans it afresh on every call once a custom plan
      -- looks no dearer than the generic one, which for these writable CTEs it always does. Planning was most
      -- of a call: a start of one job 0.55 ms, of which 0.41 ms planning (pgbench -M prepared, no other load);
      -- a claim from an empty queue 0.36 ms, 0.17 ms planning. The generic plans are the index probes the
      -- functions' planner settings already force, whatever the parameters (and the claim reads jobs_claim
      -- in index order with enable_sort off), so nothing is lost by planning them once per connection.
      -- Functions these call (claim_limited, settle, ...) run under the same setting.
      ALTER FUNCTION ${s}.claim(text[], integer, text, bigint, integer, boolean) SET plan_cache_mode = force_generic_plan;
      ALTER FUNCTION ${s}.start_jobs(text[], bigint[], boolean) SET plan_cache_mode = force_generic_plan;
      ALTER FUNCTION ${s}.complete_jobs(text[], bigint[], text[], boolean) SET plan_cache_mode = force_generic_plan;
      ALTER FUNCTION ${s}.fail_jobs(text[], bigint[], text[], bigint[], text[], text[], text, boolean)
        SET plan_cache_mode = force_generic_plan;
      ALTER FUNCTION ${s}.release_jobs(text[], bigint[], bigint[], text[], text[], text, boolean)
        SET plan_cache_mode = force_generic_plan;
      ALTER FUNCTION ${s}.extend_leases(text[], bigint[], bigint) SET plan_cache_mode = force_generic_plan;
      ALTER FUNCTION ${s}.job_progress(text[], bigint[], text[], text[]) SET plan_cache_mode = force_generic_plan;
    `,
  },
];

/** Latest schema version this build knows. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Migrations (an index build on a large table) and the wait for another process's migration may take far
 * longer than the store's queryTimeoutMs, which is there to catch dead connections in ordinary calls.
 */
const UNBOUNDED_MS = 2_147_483_647;

/** A statement without the pool's query timeout (`pg` reads `query_timeout` per query; its types omit it). */
function unbounded(text: string, values?: unknown[]): pg.QueryConfig {
  return { text, ...(values ? { values } : {}), query_timeout: UNBOUNDED_MS } as pg.QueryConfig;
}

/** Advisory lock key for migrating `schema` (two schemas on one server migrate independently). */
function lockKey(schema: string): string {
  return `sluice.migrate:${schema}`;
}

/**
 * Applies pending migrations to `schema` on `client` (which must not be inside a transaction).
 * Returns the versions this call applied (empty when another process already did).
 */
export async function migrate(client: pg.ClientBase, schema: string): Promise<number[]> {
  const s = `"${schema}"`;
  const applied: number[] = [];
  await client.query("BEGIN");
  try {
    // hashtextextended() maps the key into the bigint advisory lock space; a collision would only
    // serialise two schemas' migrations, never skip one.
    await client.query(unbounded("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [lockKey(schema)]));
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
         version     integer     PRIMARY KEY,
         description text        NOT NULL,
         applied_at  timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number | null }>(
      `SELECT max(version) AS version FROM ${s}.schema_migrations`,
    );
    const current = rows[0]?.version ?? 0;
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query(unbounded(migration.sql(s)));
      await client.query(`INSERT INTO ${s}.schema_migrations (version, description) VALUES ($1, $2)`, [
        migration.version,
        migration.description,
      ]);
      applied.push(migration.version);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
  return applied;
}

/** The schema version currently applied (0 when the schema does not exist yet). */
export async function currentVersion(client: pg.ClientBase, schema: string): Promise<number> {
  const { rows } = await client.query<{ version: number | null }>(
    `SELECT CASE WHEN to_regclass($1) IS NULL THEN 0 ELSE NULL END AS version`,
    [`"${schema}".schema_migrations`],
  );
  if (rows[0]?.version === 0) return 0;
  const result = await client.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM "${schema}".schema_migrations`,
  );
  return result.rows[0]?.version ?? 0;
}
