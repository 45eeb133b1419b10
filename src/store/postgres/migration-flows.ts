/**
 * Migration 11: flows (core/flows.ts) — dependency edges, batches with callbacks, and the one place where
 * a job that became final is "settled" (`settle`, below). Kept apart from migrations.ts for its size;
 * shipped as it is, never edited afterwards (append a new migration).
 *
 * ## Lock order (READ COMMITTED, many workers)
 *
 * Every flow transition takes row locks in this order, so the hot paths never deadlock among themselves:
 *
 * 1. The jobs the transition finishes (complete / fail / release / recover / cancel / delete lock them
 *    with their own UPDATE or DELETE), or, for `block`, the job that blocks.
 * 2. Dependencies of a job being created or blocking (`enqueue`, `block`): locked in id order
 *    (`FOR NO KEY UPDATE`, which conflicts with the UPDATE of a completion) and marked `has_dependents`,
 *    THEN their states are read, THEN the edges are written. A settle locks the finishing job before it
 *    reads edges, in a later statement (a fresh snapshot): so each interleaving either shows the edge to
 *    the settle (the edge's transaction committed before the job's UPDATE got its lock) or shows the final
 *    state to the edge's writer (the completion committed first). Never neither.
 * 3. Dependents of the finished jobs, in id order, and only those `blocked` (`state = 'blocked'` in the
 *    locking statement). A job running `block` is `active` in every committed version, so a settle never
 *    waits on it: block (blocker, then its children) and a child's completion (child, then its blocked
 *    dependents) cannot wait on each other in a cycle.
 * 4. Children of jobs that became cancelled (rule 4), in id order.
 * 5. Batches, in id order, once per transition, after every job row (counts are aggregated per batch
 *    for the whole transition: completing 100 members of one batch is ONE counter update), then their
 *    callback rows.
 *
 * Two dependents released by two transactions that each complete one of its last two dependencies: both
 * decrement `pending_deps` in an UPDATE of the dependent's row; the row lock serialises them and the second
 * re-reads the first's committed count (EvalPlanQual), so exactly one sees 0 and releases it.
 *
 * The cancel cascade (rule 4) walks parent → child, against the direction of 3: an operator cancelling a
 * blocked parent while one of its children completes can deadlock with that completion. PostgreSQL detects
 * it and aborts one; the store retries the aborted transaction (postgres-store.ts, DEADLOCK_RETRIES). So do
 * two enqueues that name the same dependencies in different calls' orders: rare, and retried.
 */
import { NOW_MS } from "./sql.js";

/** Planner settings of the lease-keyed batch functions (migration 6): index probes whatever the statistics. */
const PROBES =
  "SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off " +
  "SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off";
const HELD = "j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";

/** The dependency-failed message (core/flows.ts dependencyFailedMessage) from SQL expressions. */
export function dependencyFailedSql(id: string, task: string, state: string, error: string): string {
  return `format('dependency %s (%s) ended %s%s', ${id}, ${task}, ${state},
    CASE WHEN coalesce(${error}, '') = '' THEN '' ELSE ': ' || ${error} END)`;
}

/** The attempt error of a job killed by a dependency (AttemptError, outcome dependency-failed). */
function killedErrorSql(attempt: string, message: string, at: string): string {
  return `jsonb_build_object('attempt', ${attempt}, 'outcome', 'dependency-failed', 'name', 'DependencyFailedError',
    'code', 'DEPENDENCY_FAILED', 'message', ${message}, 'at', ${at})`;
}

export function flowsMigrationSql(s: string): string {
  const channel = `'${s.slice(1, -1)}'`;
  const events = `INSERT INTO ${s}.events (at, type, queue, job_id, task, attempt, data)`;
  const settled = `${s}.settled_job`;
  return `
      -- Flow columns of a job. has_dependents: an edge to this job was ever written, so settling it must
      -- look for edges (plain jobs never do). batch_counted: the job already counted in its batch (rule 3:
      -- only its first final state counts, an operator's retry changes nothing).
      ALTER TABLE ${s}.jobs ADD COLUMN batch_id text, ADD COLUMN pending_deps integer NOT NULL DEFAULT 0,
        ADD COLUMN has_dependents boolean NOT NULL DEFAULT false,
        ADD COLUMN batch_counted boolean NOT NULL DEFAULT false;
      -- Children of a job (flow view, cancel cascade) and members of a batch (filters): partial, so plain
      -- jobs pay no index insert.
      CREATE INDEX jobs_parent ON ${s}.jobs (parent_id, seq) WHERE parent_id IS NOT NULL;
      CREATE INDEX jobs_batch ON ${s}.jobs (batch_id, seq) WHERE batch_id IS NOT NULL;

      -- One edge per (dependent, dependency). No foreign keys: a dependency may be deleted or pruned (the
      -- flow view shows it gone), and a cascade trigger would cost every plain delete. Edges of a deleted
      -- dependent go with it (remove, prune).
      CREATE TABLE ${s}.job_deps (
        job_id     text    NOT NULL,
        dep_id     text    NOT NULL,
        on_failure text    NOT NULL CHECK (on_failure IN ('fail', 'continue', 'ignore')),
        resolved   boolean NOT NULL DEFAULT false,
        -- Declaration order, for the flow view.
        ord        bigint  GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (job_id, dep_id)
      );
      -- Settle reads the edges to a job that became final; the flow view lists a job's dependents.
      CREATE INDEX job_deps_dep ON ${s}.job_deps (dep_id);

      CREATE TABLE ${s}.batches (
        id          text    PRIMARY KEY,
        description text,
        created_at  bigint  NOT NULL,
        finished_at bigint,
        total       integer NOT NULL DEFAULT 0,
        completed   integer NOT NULL DEFAULT 0,
        dead        integer NOT NULL DEFAULT 0,
        cancelled   integer NOT NULL DEFAULT 0,
        -- NewBatch.dataJson, spliced into callback payloads as it is.
        data        text    NOT NULL DEFAULT 'null'
      );
      CREATE INDEX batches_created ON ${s}.batches (created_at DESC, id DESC);

      -- A callback's job template (JobTemplate as columns) and when it fired (NULL: not yet).
      CREATE TABLE ${s}.batch_callbacks (
        batch_id     text    NOT NULL REFERENCES ${s}.batches (id) ON DELETE CASCADE,
        event        text    NOT NULL CHECK (event IN ('complete', 'success', 'death')),
        ord          integer NOT NULL,
        task         text    NOT NULL,
        queue        text    NOT NULL,
        priority     integer NOT NULL,
        max_attempts integer NOT NULL,
        backoff      text,
        timeout_ms   bigint,
        tags         text    NOT NULL,
        keep_mode    text    NOT NULL,
        keep_value   bigint,
        parent_id    text,
        fired_at     bigint,
        PRIMARY KEY (batch_id, event)
      );

      -- A job that became final (or was deleted before it was): what settle needs to know about it.
      -- state: completed | dead | cancelled | deleted. counted: NULL when the row still exists (settle sets
      -- batch_counted itself), else the deleted row's batch_counted. error: its latest error or reason.
      CREATE TYPE ${settled} AS (id text, task text, state text, batch_id text, counted boolean,
        has_deps boolean, error text);

      -- Fires the callbacks of p_ids whose moment has come and that have not fired: death once a member is
      -- dead, complete once the batch finished, success then too when none was dead or cancelled. The job
      -- id is deterministic, and an existing one is left alone (idempotent).
      CREATE FUNCTION ${s}.fire_batch_callbacks(p_ids text[], p_events boolean) RETURNS void
      LANGUAGE plpgsql SET jit = off AS $fn$
      DECLARE
        v_now    bigint := ${NOW_MS};
        v_queues text[];
      BEGIN
        WITH due AS (
          UPDATE ${s}.batch_callbacks c SET fired_at = v_now
          FROM ${s}.batches b
          WHERE c.batch_id = ANY (p_ids) AND b.id = c.batch_id AND c.fired_at IS NULL
            AND CASE c.event WHEN 'death' THEN b.dead > 0
                             WHEN 'complete' THEN b.finished_at IS NOT NULL
                             ELSE b.finished_at IS NOT NULL AND b.dead = 0 AND b.cancelled = 0 END
          RETURNING c.*, b.total, b.completed, b.dead, b.cancelled, b.data),
        ins AS (
          INSERT INTO ${s}.jobs (id, task, queue, state, payload, priority, run_at, created_at, max_attempts,
            backoff, timeout_ms, tags, keep_mode, keep_value, parent_id)
          SELECT d.batch_id || ':' || d.event, d.task, d.queue, 'waiting',
            '{"batchId":' || to_json(d.batch_id)::text || ',"event":"' || d.event || '","total":' || d.total
              || ',"completed":' || d.completed || ',"dead":' || d.dead || ',"cancelled":' || d.cancelled
              || ',"data":' || d.data || '}',
            d.priority, v_now, v_now, d.max_attempts, d.backoff, d.timeout_ms, d.tags::jsonb, d.keep_mode,
            d.keep_value, d.parent_id
          FROM due d ORDER BY d.ord
          ON CONFLICT (id) DO NOTHING
          RETURNING id, queue, task),
        ev AS (
          ${events}
          SELECT v_now, 'enqueued', i.queue, i.id, i.task, NULL::int, '{"state":"waiting"}'::jsonb FROM ins i WHERE p_events)
        SELECT array_agg(DISTINCT i.queue) INTO v_queues FROM ins i;
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(${channel}, ${s}.jobs_payload(v_queues)); END IF;
      END
      $fn$;

      -- Adds first-final outcomes to batches (one UPDATE per batch, in id order: lock order step 5), sets
      -- finished_at when none is pending any more, and fires what is due.
      CREATE FUNCTION ${s}.count_batches(p_ids text[], p_completed integer[], p_dead integer[],
        p_cancelled integer[], p_events boolean) RETURNS void
      LANGUAGE plpgsql SET jit = off AS $fn$
      DECLARE
        v_now bigint := ${NOW_MS};
      BEGIN
        PERFORM 1 FROM ${s}.batches WHERE id = ANY (p_ids) ORDER BY id FOR NO KEY UPDATE;
        UPDATE ${s}.batches b SET completed = b.completed + u.c, dead = b.dead + u.d, cancelled = b.cancelled + u.x,
          finished_at = CASE WHEN b.finished_at IS NULL
                               AND b.total - b.completed - u.c - b.dead - u.d - b.cancelled - u.x <= 0
                             THEN v_now ELSE b.finished_at END
        FROM unnest(p_ids, p_completed, p_dead, p_cancelled) AS u(id, c, d, x)
        WHERE b.id = u.id;
        PERFORM ${s}.fire_batch_callbacks(p_ids, p_events);
      END
      $fn$;

      -- Settles jobs that became final in this transaction (core/flows.ts rules 2-4), with a work list
      -- rather than recursion: each round cancels the children of the jobs that became cancelled, resolves
      -- the unresolved edges to the round's jobs (exactly once: the UPDATE that reads an edge marks it), and
      -- releases or kills their blocked dependents; jobs killed or cancelled by the round are the next
      -- round. Batches are counted once at the end, aggregated per batch.
      CREATE FUNCTION ${s}.settle(p_jobs ${settled}[], p_events boolean) RETURNS void
      LANGUAGE plpgsql SET jit = off AS $fn$
      DECLARE
        v_now        bigint := ${NOW_MS};
        v_work       ${settled}[] := p_jobs;
        v_all        ${settled}[] := '{}';
        v_next       ${settled}[];
        v_more       ${settled}[];
        v_parents    text[];
        v_dependents text[];
        v_counts     integer[];
        v_messages   text[];
        v_queues     text[] := '{}';
        v_woken      text[];
        v_requested  boolean;
        v_signal     boolean := false;
        v_batches    text[];
        v_c          integer[];
        v_d          integer[];
        v_x          integer[];
      BEGIN
        WHILE cardinality(v_work) > 0 LOOP
          v_all := v_all || v_work;
          v_next := '{}';

          -- Rule 4: unfinished children of jobs that became cancelled. Not started: cancelled at once (a
          -- held one gives its claim's attempt back); running: cancel requested, its worker aborts it.
          SELECT array_agg(w.id) INTO v_parents FROM unnest(v_work) w WHERE w.state = 'cancelled';
          IF v_parents IS NOT NULL THEN
            PERFORM 1 FROM ${s}.jobs c
            WHERE c.parent_id = ANY (v_parents)
              AND (c.state IN ('scheduled', 'waiting', 'blocked') OR (c.state = 'active' AND NOT c.cancel_requested))
            ORDER BY c.id FOR NO KEY UPDATE;
            WITH changed AS (
              UPDATE ${s}.jobs j SET
                state = CASE WHEN j.state = 'active' AND j.started_at IS NOT NULL THEN 'active' ELSE 'cancelled' END,
                cancel_requested = j.cancel_requested OR (j.state = 'active' AND j.started_at IS NOT NULL),
                finished_at = CASE WHEN j.state = 'active' AND j.started_at IS NOT NULL THEN j.finished_at ELSE v_now END,
                reason = CASE WHEN j.state = 'active' AND j.started_at IS NOT NULL THEN j.reason
                              ELSE 'cancelled with its parent ' || j.parent_id END,
                attempt = CASE WHEN j.state = 'active' AND j.started_at IS NULL THEN greatest(j.attempt - 1, 0) ELSE j.attempt END,
                lease_expires_at = CASE WHEN j.state = 'active' AND j.started_at IS NULL THEN NULL ELSE j.lease_expires_at END
              WHERE j.parent_id = ANY (v_parents)
                AND (j.state IN ('scheduled', 'waiting', 'blocked') OR (j.state = 'active' AND NOT j.cancel_requested))
              RETURNING j.id, j.task, j.queue, j.attempt, j.state, j.batch_id, j.has_dependents, j.reason),
            ev AS (
              ${events}
              SELECT v_now, 'cancelled', c.queue, c.id, c.task, c.attempt, jsonb_build_object('reason', c.reason)
              FROM changed c WHERE p_events AND c.state = 'cancelled')
            SELECT coalesce(array_agg(ROW(c.id, c.task, 'cancelled', c.batch_id, NULL, c.has_dependents, c.reason)::${settled})
                              FILTER (WHERE c.state = 'cancelled'), '{}'),
                   coalesce(bool_or(c.state = 'active'), false)
            INTO v_more, v_requested FROM changed c;
            v_next := v_next || v_more;
            v_signal := v_signal OR v_requested;
          END IF;

          -- Rule 2: resolve the edges to the round's jobs, then each blocked dependent: count down, and at 0
          -- release it; a failed dependency with policy fail kills it at once.
          IF EXISTS (SELECT 1 FROM unnest(v_work) w WHERE w.has_deps) THEN
            WITH w AS (SELECT * FROM unnest(v_work) w WHERE w.has_deps),
            e AS (
              UPDATE ${s}.job_deps e SET resolved = true FROM w
              WHERE e.dep_id = w.id AND NOT e.resolved
              RETURNING e.job_id, e.dep_id, e.on_failure, w.task AS dep_task, w.state AS dep_state, w.error AS dep_error)
            SELECT array_agg(g.job_id ORDER BY g.job_id), array_agg(g.n ORDER BY g.job_id),
                   array_agg(g.message ORDER BY g.job_id)
            INTO v_dependents, v_counts, v_messages
            FROM (SELECT e.job_id, count(*)::int AS n,
                    (array_agg(${dependencyFailedSql("e.dep_id", "e.dep_task", "e.dep_state", "e.dep_error")} ORDER BY e.dep_id)
                      FILTER (WHERE e.on_failure = 'fail' AND e.dep_state <> 'completed'))[1] AS message
                  FROM e GROUP BY e.job_id) g;
            IF v_dependents IS NOT NULL THEN
              PERFORM 1 FROM ${s}.jobs WHERE id = ANY (v_dependents) AND state = 'blocked' ORDER BY id FOR NO KEY UPDATE;
              WITH r AS (SELECT * FROM unnest(v_dependents, v_counts, v_messages) AS r(id, n, message)),
              changed AS (
                UPDATE ${s}.jobs j SET pending_deps = greatest(j.pending_deps - r.n, 0),
                  state = CASE WHEN r.message IS NOT NULL THEN 'dead'
                               WHEN j.pending_deps - r.n > 0 THEN 'blocked'
                               WHEN j.run_at > v_now THEN 'scheduled' ELSE 'waiting' END,
                  finished_at = CASE WHEN r.message IS NOT NULL THEN v_now ELSE j.finished_at END,
                  reason = CASE WHEN r.message IS NOT NULL THEN r.message ELSE j.reason END,
                  errors = CASE WHEN r.message IS NOT NULL
                                THEN j.errors || jsonb_build_array(${killedErrorSql("j.attempt", "r.message", "v_now")})
                                ELSE j.errors END
                FROM r WHERE j.id = r.id AND j.state = 'blocked'
                RETURNING j.id, j.task, j.queue, j.attempt, j.state, j.batch_id, j.has_dependents, j.reason),
              ev AS (
                ${events}
                SELECT v_now, CASE c.state WHEN 'dead' THEN 'dead' ELSE 'unblocked' END, c.queue, c.id, c.task, c.attempt,
                  CASE c.state WHEN 'dead' THEN jsonb_build_object('error', c.reason, 'reason', c.reason)
                               ELSE jsonb_build_object('state', c.state) END
                FROM changed c WHERE p_events AND c.state <> 'blocked')
              SELECT coalesce(array_agg(ROW(c.id, c.task, 'dead', c.batch_id, NULL, c.has_dependents, c.reason)::${settled})
                                FILTER (WHERE c.state = 'dead'), '{}'),
                     array_agg(DISTINCT c.queue) FILTER (WHERE c.state IN ('waiting', 'scheduled'))
              INTO v_more, v_woken FROM changed c;
              v_next := v_next || v_more;
              v_queues := v_queues || coalesce(v_woken, '{}');
            END IF;
          END IF;
          v_work := v_next;
        END LOOP;

        -- Rule 3: each member counts once, by its first final state (a deleted one as cancelled).
        IF EXISTS (SELECT 1 FROM unnest(v_all) a WHERE a.batch_id IS NOT NULL) THEN
          WITH a AS (SELECT * FROM unnest(v_all) a WHERE a.batch_id IS NOT NULL),
          flagged AS (
            UPDATE ${s}.jobs j SET batch_counted = true FROM a
            WHERE a.counted IS NULL AND j.id = a.id AND NOT j.batch_counted AND j.batch_id IS NOT NULL
            RETURNING j.batch_id, a.state),
          counted AS (
            SELECT f.batch_id, f.state FROM flagged f
            UNION ALL SELECT a.batch_id, a.state FROM a WHERE a.counted = false)
          SELECT array_agg(g.batch_id ORDER BY g.batch_id), array_agg(g.c ORDER BY g.batch_id),
                 array_agg(g.d ORDER BY g.batch_id), array_agg(g.x ORDER BY g.batch_id)
          INTO v_batches, v_c, v_d, v_x
          FROM (SELECT k.batch_id, count(*) FILTER (WHERE k.state = 'completed')::int AS c,
                  count(*) FILTER (WHERE k.state = 'dead')::int AS d,
                  count(*) FILTER (WHERE k.state IN ('cancelled', 'deleted'))::int AS x
                FROM counted k GROUP BY k.batch_id) g;
          IF v_batches IS NOT NULL THEN
            PERFORM ${s}.count_batches(v_batches, v_c, v_d, v_x, p_events);
          END IF;
        END IF;

        IF cardinality(v_queues) > 0 THEN
          PERFORM pg_notify(${channel}, ${s}.jobs_payload(ARRAY(SELECT DISTINCT unnest(v_queues))));
        END IF;
        IF v_signal THEN PERFORM pg_notify(${channel}, '{"t":"cancel"}'); END IF;
      END
      $fn$;

      -- Settles jobs by id, reading what settle needs from their rows (recover, operator cancel, jobs written
      -- dead at enqueue). Jobs that are not final are skipped.
      CREATE FUNCTION ${s}.settle_ids(p_ids text[], p_events boolean) RETURNS void
      LANGUAGE plpgsql SET jit = off AS $fn$
      DECLARE
        v_jobs ${settled}[];
      BEGIN
        SELECT array_agg(ROW(j.id, j.task, j.state, j.batch_id, NULL, j.has_dependents,
                             coalesce(j.errors -> -1 ->> 'message', j.reason))::${settled})
        INTO v_jobs FROM ${s}.jobs j WHERE j.id = ANY (p_ids) AND j.state IN ('completed', 'dead', 'cancelled');
        IF v_jobs IS NOT NULL THEN PERFORM ${s}.settle(v_jobs, p_events); END IF;
      END
      $fn$;

      -- Settles jobs an operator deleted (rows already gone, so their flags come as arrays): those that were
      -- not final resolve their dependents as "deleted" and count as cancelled in their batch.
      CREATE FUNCTION ${s}.settle_deleted(p_ids text[], p_tasks text[], p_states text[], p_batches text[],
        p_counted boolean[], p_has_deps boolean[], p_events boolean) RETURNS void
      LANGUAGE plpgsql SET jit = off AS $fn$
      DECLARE
        v_jobs ${settled}[];
      BEGIN
        SELECT array_agg(ROW(u.id, u.task, 'deleted', u.batch_id, u.counted, u.has_deps, NULL)::${settled})
        INTO v_jobs
        FROM unnest(p_ids, p_tasks, p_states, p_batches, p_counted, p_has_deps) AS u(id, task, state, batch_id, counted, has_deps)
        WHERE u.state NOT IN ('completed', 'dead', 'cancelled') AND (u.has_deps OR u.batch_id IS NOT NULL);
        IF v_jobs IS NOT NULL THEN PERFORM ${s}.settle(v_jobs, p_events); END IF;
      END
      $fn$;

      -- The outcome functions of migration 10, the same signatures (workers of the previous version get
      -- flows right too), now settling the jobs that became final. A plain job (no batch, no dependents,
      -- not cancelled) costs a FILTER over the returned rows and nothing more.
      CREATE OR REPLACE FUNCTION ${s}.complete_jobs(p_ids text[], p_tokens bigint[], p_results text[], p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql ${PROBES} AS $fn$
      DECLARE
        v_ids  text[];
        v_flow ${settled}[];
      BEGIN
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_results) AS u(id, token, result)),
        kept AS (
          UPDATE ${s}.jobs j SET state = 'completed', result = u.result, finished_at = ${NOW_MS},
            lease_expires_at = NULL, keep_until = CASE j.keep_mode WHEN 'age' THEN ${NOW_MS} + j.keep_value END
          FROM u WHERE ${HELD} AND j.keep_mode <> 'none'
          RETURNING j.id, j.queue, j.task, j.attempt, j.batch_id, j.has_dependents, NULL::boolean AS counted),
        dropped AS (
          DELETE FROM ${s}.jobs j USING u WHERE ${HELD} AND j.keep_mode = 'none'
          RETURNING j.id, j.queue, j.task, j.attempt, j.batch_id, j.has_dependents, j.batch_counted),
        done AS (SELECT * FROM kept UNION ALL SELECT * FROM dropped),
        ev AS (
          ${events}
          SELECT ${NOW_MS}, 'completed', d.queue, d.id, d.task, d.attempt, NULL FROM done d WHERE p_events)
        SELECT array_agg(d.id),
               array_agg(ROW(d.id, d.task, 'completed', d.batch_id, d.counted, d.has_dependents, NULL)::${settled})
                 FILTER (WHERE d.batch_id IS NOT NULL OR d.has_dependents)
        INTO v_ids, v_flow FROM done d;
        IF v_flow IS NOT NULL THEN PERFORM ${s}.settle(v_flow, p_events); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      CREATE OR REPLACE FUNCTION ${s}.fail_jobs(p_ids text[], p_tokens bigint[], p_next text[], p_run_at bigint[],
        p_reason text[], p_error text[], p_channel text, p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql ${PROBES} AS $fn$
      DECLARE
        v_now    bigint := ${NOW_MS};
        v_ids    text[];
        v_queues text[];
        v_flow   ${settled}[];
      BEGIN
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_next, p_run_at, p_reason, p_error)
                     AS u(id, token, next, run_at, reason, error)),
        changed AS (
          UPDATE ${s}.jobs j SET state = u.next,
            run_at = CASE u.next WHEN 'scheduled' THEN u.run_at WHEN 'waiting' THEN v_now ELSE j.run_at END,
            finished_at = CASE WHEN u.next IN ('dead', 'cancelled') THEN v_now END,
            lease_expires_at = NULL, errors = j.errors || jsonb_build_array(u.error::jsonb), reason = u.reason
          FROM u WHERE ${HELD}
          RETURNING j.id, j.queue, j.state, j.task, j.attempt, j.run_at, j.batch_id, j.has_dependents,
            u.reason AS why, u.error AS err),
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
        SELECT array_agg(c.id), array_agg(DISTINCT c.queue) FILTER (WHERE c.state IN ('waiting', 'scheduled')),
          array_agg(ROW(c.id, c.task, c.state, c.batch_id, NULL, c.has_dependents,
                        coalesce(c.err::jsonb ->> 'message', c.why))::${settled})
            FILTER (WHERE c.state = 'cancelled' OR (c.state = 'dead' AND (c.batch_id IS NOT NULL OR c.has_dependents)))
        INTO v_ids, v_queues, v_flow FROM changed c;
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(p_channel, ${s}.jobs_payload(v_queues)); END IF;
        IF v_flow IS NOT NULL THEN PERFORM ${s}.settle(v_flow, p_events); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      CREATE OR REPLACE FUNCTION ${s}.release_jobs(p_ids text[], p_tokens bigint[], p_run_at bigint[], p_reason text[],
        p_next text[], p_channel text, p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql ${PROBES} AS $fn$
      DECLARE
        v_now    bigint := ${NOW_MS};
        v_ids    text[];
        v_queues text[];
        v_flow   ${settled}[];
      BEGIN
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens, p_run_at, p_reason, p_next)
                     AS u(id, token, run_at, reason, next)),
        changed AS (
          UPDATE ${s}.jobs j SET attempt = greatest(j.attempt - 1, 0), lease_expires_at = NULL,
            state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE u.next END,
            run_at = CASE WHEN j.cancel_requested THEN j.run_at ELSE COALESCE(u.run_at, j.run_at) END,
            finished_at = CASE WHEN j.cancel_requested THEN v_now ELSE j.finished_at END,
            reason = CASE WHEN j.cancel_requested THEN 'cancelled by operator while active' ELSE u.reason END
          FROM u WHERE ${HELD}
          RETURNING j.id, j.queue, j.state, j.task, j.attempt, j.started_at, j.reason, j.batch_id,
            j.has_dependents, u.run_at AS asked_run_at),
        ev AS (
          ${events}
          SELECT v_now, CASE WHEN c.state = 'cancelled' THEN 'cancelled' ELSE 'released' END,
            c.queue, c.id, c.task, c.attempt + 1,
            CASE WHEN c.state = 'cancelled' THEN jsonb_build_object('reason', c.reason)
                 ELSE jsonb_build_object('reason', c.reason, 'runAt', c.asked_run_at) END
          FROM changed c WHERE p_events AND c.started_at IS NOT NULL)
        SELECT array_agg(c.id), array_agg(DISTINCT c.queue) FILTER (WHERE c.state <> 'cancelled'),
          array_agg(ROW(c.id, c.task, 'cancelled', c.batch_id, NULL, c.has_dependents, c.reason)::${settled})
            FILTER (WHERE c.state = 'cancelled')
        INTO v_ids, v_queues, v_flow FROM changed c;
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(p_channel, ${s}.jobs_payload(v_queues)); END IF;
        IF v_flow IS NOT NULL THEN PERFORM ${s}.settle(v_flow, p_events); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      -- A running job ends its attempt waiting for p_edge_dep (core/flows.ts rule 5). Lock order: the
      -- blocking job (its fenced UPDATE), then its dependencies in id order, then the edges (see above).
      -- Edges: (p_edge_job[i] waits for p_edge_dep[i] with p_edge_policy[i]), in declaration order.
      CREATE FUNCTION ${s}.block_jobs(p_ids text[], p_tokens bigint[], p_edge_job text[], p_edge_dep text[],
        p_edge_policy text[], p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql SET jit = off AS $fn$
      DECLARE
        v_now       bigint := ${NOW_MS};
        v_ids       text[];
        v_blocking  text[];
        v_deps      text[];
        v_flow      ${settled}[];
        v_killed    ${settled}[];
        v_queues    text[];
      BEGIN
        WITH u AS (SELECT * FROM unnest(p_ids, p_tokens) AS u(id, token)),
        changed AS (
          UPDATE ${s}.jobs j SET attempt = greatest(j.attempt - 1, 0), lease_expires_at = NULL, worker_id = NULL,
            state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'blocked' END,
            finished_at = CASE WHEN j.cancel_requested THEN v_now ELSE j.finished_at END,
            reason = CASE WHEN j.cancel_requested THEN 'cancelled by operator while active' ELSE j.reason END
          FROM u WHERE ${HELD}
          RETURNING j.id, j.queue, j.state, j.task, j.attempt, j.started_at, j.reason, j.batch_id, j.has_dependents),
        ev AS (
          ${events}
          SELECT v_now, 'cancelled', c.queue, c.id, c.task, c.attempt + 1, jsonb_build_object('reason', c.reason)
          FROM changed c WHERE p_events AND c.state = 'cancelled' AND c.started_at IS NOT NULL)
        SELECT array_agg(c.id), array_agg(c.id) FILTER (WHERE c.state = 'blocked'),
          array_agg(ROW(c.id, c.task, 'cancelled', c.batch_id, NULL, c.has_dependents, c.reason)::${settled})
            FILTER (WHERE c.state = 'cancelled')
        INTO v_ids, v_blocking, v_flow FROM changed c;

        IF v_blocking IS NOT NULL THEN
          -- The dependencies named now and those still unresolved from an earlier round.
          SELECT array_agg(DISTINCT d) INTO v_deps FROM (
            SELECT e.dep FROM unnest(p_edge_job, p_edge_dep) AS e(job, dep) WHERE e.job = ANY (v_blocking)
            UNION SELECT x.dep_id FROM ${s}.job_deps x WHERE x.job_id = ANY (v_blocking) AND NOT x.resolved) t(d);
          IF v_deps IS NOT NULL THEN
            PERFORM 1 FROM ${s}.jobs WHERE id = ANY (v_deps) ORDER BY id FOR NO KEY UPDATE;
            UPDATE ${s}.jobs SET has_dependents = true WHERE id = ANY (v_deps) AND NOT has_dependents;
          END IF;
          -- A fresh snapshot: every dependency's state as committed now that it is locked.
          INSERT INTO ${s}.job_deps (job_id, dep_id, on_failure, resolved)
          SELECT e.job, e.dep, e.policy, coalesce(d.state IN ('completed', 'dead', 'cancelled'), true)
          FROM (SELECT DISTINCT ON (e.job, e.dep) e.job, e.dep, e.policy, e.ord
                FROM unnest(p_edge_job, p_edge_dep, p_edge_policy) WITH ORDINALITY AS e(job, dep, policy, ord)
                WHERE e.job = ANY (v_blocking) ORDER BY e.job, e.dep, e.ord DESC) e
          LEFT JOIN ${s}.jobs d ON d.id = e.dep
          ORDER BY e.ord
          ON CONFLICT (job_id, dep_id) DO UPDATE SET on_failure = EXCLUDED.on_failure, resolved = EXCLUDED.resolved;
          -- Edges of an earlier round not named again: resolved once their job is final or gone.
          UPDATE ${s}.job_deps x SET resolved = true
          WHERE x.job_id = ANY (v_blocking) AND NOT x.resolved
            AND NOT EXISTS (SELECT 1 FROM ${s}.jobs d WHERE d.id = x.dep_id AND d.state NOT IN ('completed', 'dead', 'cancelled'));

          WITH k AS (
            SELECT b.id,
              (SELECT count(*) FROM ${s}.job_deps x WHERE x.job_id = b.id AND NOT x.resolved)::int AS pending,
              (SELECT ${dependencyFailedSql("e.dep", "coalesce(d.task, '')", "coalesce(d.state, 'deleted')", "coalesce(d.errors -> -1 ->> 'message', d.reason)")}
               FROM unnest(p_edge_job, p_edge_dep, p_edge_policy) WITH ORDINALITY AS e(job, dep, policy, ord)
               LEFT JOIN ${s}.jobs d ON d.id = e.dep
               WHERE e.job = b.id AND e.policy = 'fail' AND (d.id IS NULL OR d.state IN ('dead', 'cancelled'))
               ORDER BY e.ord LIMIT 1) AS message
            FROM unnest(v_blocking) AS b(id)),
          changed AS (
            UPDATE ${s}.jobs j SET pending_deps = k.pending,
              state = CASE WHEN k.message IS NOT NULL THEN 'dead' WHEN k.pending > 0 THEN 'blocked' ELSE 'waiting' END,
              finished_at = CASE WHEN k.message IS NOT NULL THEN v_now ELSE j.finished_at END,
              reason = CASE WHEN k.message IS NOT NULL THEN k.message ELSE j.reason END,
              errors = CASE WHEN k.message IS NOT NULL
                            THEN j.errors || jsonb_build_array(${killedErrorSql("j.attempt", "k.message", "v_now")})
                            ELSE j.errors END
            FROM k WHERE j.id = k.id
            RETURNING j.id, j.task, j.queue, j.attempt, j.state, j.batch_id, j.has_dependents, j.reason, j.pending_deps),
          ev AS (
            ${events}
            SELECT v_now, CASE c.state WHEN 'dead' THEN 'dead' WHEN 'blocked' THEN 'blocked' ELSE 'unblocked' END,
              c.queue, c.id, c.task, c.attempt + 1,
              CASE c.state WHEN 'dead' THEN jsonb_build_object('error', c.reason, 'reason', c.reason)
                           WHEN 'blocked' THEN jsonb_build_object('pending', c.pending_deps)
                           ELSE jsonb_build_object('state', c.state) END
            FROM changed c WHERE p_events)
          SELECT coalesce(array_agg(ROW(c.id, c.task, 'dead', c.batch_id, NULL, c.has_dependents, c.reason)::${settled})
                            FILTER (WHERE c.state = 'dead'), '{}'),
                 array_agg(DISTINCT c.queue) FILTER (WHERE c.state = 'waiting')
          INTO v_killed, v_queues FROM changed c;
          v_flow := coalesce(v_flow, '{}') || v_killed;
          IF v_queues IS NOT NULL THEN PERFORM pg_notify(${channel}, ${s}.jobs_payload(v_queues)); END IF;
        END IF;
        IF cardinality(v_flow) > 0 THEN PERFORM ${s}.settle(v_flow, p_events); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;
    `;
}
