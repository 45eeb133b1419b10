/**
 * Migration 13: fleet-wide limits (core/limits.ts) enforced inside `claim`. Kept apart from migrations.ts
 * for its size; shipped as it is, never edited afterwards (append a new migration).
 *
 * ## Why the counts hold under races (READ COMMITTED, any number of claimers)
 *
 * A claim of a LIMITED queue (`queues.limited`: it has limits, or key holds that may still be live) first
 * locks that queue's row (`SELECT … FOR UPDATE`), THEN counts and claims, each in a later statement of the
 * same PL/pgSQL function. In READ COMMITTED every statement of a volatile function takes a fresh snapshot,
 * and the lock is released only when the claiming transaction commits; so the statements after the lock
 * see every job the previous holder claimed (and its rate counters), as committed. Two claims therefore
 * never both count the same free slot: the second waits, then counts the first's jobs as active. Jobs that
 * leave `active` meanwhile (complete, fail, release, recover, cancel, delete, move) only lower the count;
 * seeing them late makes a claim take fewer, never more.
 *
 * Active counts come from the partial index `jobs_active (queue, limit_key) WHERE state = 'active'`, not
 * from counters: every path that moves a job out of `active` is a state change, which the index follows by
 * itself, so there is nothing that can drift.
 *
 * A queue without limits or holds keeps the plain lock-free claim (jobs_claim with SKIP LOCKED): the flag
 * is read by the same statement that already read the pause state, so it costs no extra round trip and no
 * extra statement.
 *
 * Deadlocks: a claim may name several limited queues. It waits for the row lock of the FIRST limited queue
 * only; for the others it uses SKIP LOCKED and leaves a queue another claim is serving for its next call.
 * A claim therefore never waits while it holds a queue-row lock, and no cycle of claims can form.
 *
 * Head-of-line blocking: the backlog of a limited queue is read in claim order, in pages; a page's jobs
 * whose key is held or at its concurrency / rate limit are skipped, the others are taken, and the next page
 * follows the last one read (keyset on (priority, run_at, seq)) until the claim is full, the backlog ends,
 * or LIMITED_SCAN_ROWS rows were read (the cost bound of one claim under the queue lock).
 */
import { NOW_MS } from "./sql.js";

/** Most waiting jobs one claim of a limited queue reads past (skipped keys included) before it stops. */
export const LIMITED_SCAN_ROWS = 10_000;

/** Planner settings of the lease-keyed batch functions (as migrations 6, 10 and 11). */
const PROBES =
  "SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off " +
  "SET enable_bitmapscan = off SET enable_seqscan = off SET jit = off";
const HELD = "j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";

export function limitsMigrationSql(s: string): string {
  const events = `INSERT INTO ${s}.events (at, type, queue, job_id, task, attempt, data)`;
  const settled = `${s}.settled_job`;
  const channel = `'${s.slice(1, -1)}'`;
  const WAKE = `SELECT array_agg(q.name) INTO v_limited FROM ${s}.queues q WHERE q.name = ANY (v_touched) AND q.limited;
        IF v_limited IS NOT NULL THEN PERFORM pg_notify(${channel}, ${s}.jobs_payload(v_limited)); END IF;`;
  return `
      -- A job's limit key (NewJob.limitKey); NULL = no key (key limits and holds do not apply). Adding a
      -- nullable column without a default rewrites nothing.
      ALTER TABLE ${s}.jobs ADD COLUMN limit_key text;

      -- Active jobs per queue and key: the counts of queue and key concurrency (limited claims only). Partial:
      -- only the active set, which is at most the fleet's total concurrency.
      CREATE INDEX jobs_active ON ${s}.jobs (queue, limit_key) WHERE state = 'active';

      -- Backlog of held keys (keyHolds, sluice doctor): only jobs that have a key, so unkeyed queues pay nothing.
      CREATE INDEX jobs_key_backlog ON ${s}.jobs (queue, limit_key)
        WHERE limit_key IS NOT NULL AND state IN ('waiting', 'scheduled');

      -- limits: QueueLimits as JSON, NULL = none. limited: the claim's cached flag, true while the queue has
      -- limits or key holds (a claim that finds neither turns it off). rate_window / rate_count: the queue's
      -- rate counter, jobs claimed in the fixed window starting at rate_window (database clock).
      ALTER TABLE ${s}.queues ADD COLUMN limits jsonb,
        ADD COLUMN limited boolean NOT NULL DEFAULT false,
        ADD COLUMN rate_window bigint,
        ADD COLUMN rate_count integer NOT NULL DEFAULT 0;

      -- Keys held by a RateLimitedError until "until" (holdKey; resumeQueue clears a queue's).
      CREATE TABLE ${s}.key_holds (
        queue text   NOT NULL,
        key   text   NOT NULL,
        until bigint NOT NULL,
        PRIMARY KEY (queue, key)
      );

      -- Per-key rate counters: jobs of the key claimed in the window starting at window_start. One row per
      -- key, reused window after window; prune drops rows a day old (no window is longer).
      CREATE TABLE ${s}.key_rates (
        queue        text    NOT NULL,
        key          text    NOT NULL,
        window_start bigint  NOT NULL,
        n            integer NOT NULL,
        PRIMARY KEY (queue, key)
      );

      -- One limited queue's part of a claim (see migration-limits.ts for why it holds under races). p_wait:
      -- wait for the queue's row lock (the claim holds no other), else skip the queue when it is locked.
      CREATE FUNCTION ${s}.claim_limited(p_queue text, p_limit integer, p_start integer, p_worker text,
        p_lease_ms bigint, p_events boolean, p_wait boolean)
      RETURNS SETOF ${s}.jobs
      LANGUAGE plpgsql SET jit = off AS $fn$
      DECLARE
        v_now     bigint := ${NOW_MS};
        v_limits  jsonb;
        v_paused  boolean;
        v_rwindow bigint;
        v_rcount  integer;
        v_cap     integer := p_limit;
        v_start   integer := p_start;
        v_conc    integer;
        v_rmax    integer;
        v_ws      bigint;
        v_kc      integer;
        v_krmax   integer;
        v_kws     bigint;
        v_holds   boolean;
        v_page    integer;
        v_pick    bigint[];
        v_seen    integer;
        v_scanned integer := 0;
        v_ap      integer := -2147483648;
        v_ar      bigint := -9223372036854775808;
        v_as      bigint := 0;
        v_got     integer;
        v_taken   integer := 0;
      BEGIN
        IF p_wait THEN
          SELECT q.limits, q.paused OR coalesce(q.paused_until > v_now, false), q.rate_window, q.rate_count
          INTO v_limits, v_paused, v_rwindow, v_rcount
          FROM ${s}.queues q WHERE q.name = p_queue FOR UPDATE;
        ELSE
          SELECT q.limits, q.paused OR coalesce(q.paused_until > v_now, false), q.rate_window, q.rate_count
          INTO v_limits, v_paused, v_rwindow, v_rcount
          FROM ${s}.queues q WHERE q.name = p_queue FOR UPDATE SKIP LOCKED;
        END IF;
        -- Paused while this claim waited for the lock: nothing (the plain path has the same check, unlocked).
        IF NOT FOUND OR v_paused THEN RETURN; END IF;
        -- The clock read AFTER the lock, not now() (the transaction's start, before the wait): so the holders
        -- of the lock see time in the order they held it, and a claim that waited across a window boundary
        -- cannot count its starts in a window a later holder already moved the counter past.
        v_now := floor(extract(epoch from clock_timestamp()) * 1000)::bigint;
        v_holds := EXISTS (SELECT 1 FROM ${s}.key_holds h WHERE h.queue = p_queue AND h.until > v_now);
        IF v_limits IS NULL AND NOT v_holds THEN
          -- No limits and no live hold: back to the plain path from the next claim on (this one finishes here,
          -- taking jobs in order as the plain path would).
          DELETE FROM ${s}.key_holds WHERE queue = p_queue;
          UPDATE ${s}.queues SET limited = false WHERE name = p_queue;
        END IF;
        v_conc := (v_limits ->> 'concurrency')::integer;
        IF v_conc IS NOT NULL THEN
          v_cap := least(v_cap, v_conc - (SELECT count(*) FROM ${s}.jobs a
                                          WHERE a.state = 'active' AND a.queue = p_queue)::integer);
        END IF;
        v_rmax := (v_limits #>> '{rate,max}')::integer;
        IF v_rmax IS NOT NULL THEN
          v_ws := v_now - v_now % (v_limits #>> '{rate,windowMs}')::bigint;
          -- A stored window newer than ours (a clock step between two holders): count in it, never reset it.
          v_ws := greatest(v_ws, v_rwindow);
          v_cap := least(v_cap, v_rmax - CASE WHEN v_rwindow = v_ws THEN v_rcount ELSE 0 END);
        END IF;
        v_kc := (v_limits ->> 'keyConcurrency')::integer;
        v_krmax := (v_limits #>> '{keyRate,max}')::integer;
        IF v_krmax IS NOT NULL THEN
          v_kws := v_now - v_now % (v_limits #>> '{keyRate,windowMs}')::bigint;
        END IF;
        -- Without key limits or holds every job read is taken: a page of exactly what is left to take. With
        -- them, twice what is left (at least 16): each distinct key of a page costs an index probe, so the page
        -- stays proportional to the claim; a second page is read only when keys at their limit fill the first.
        v_page := CASE WHEN v_kc IS NULL AND v_krmax IS NULL AND NOT v_holds THEN v_cap
                       ELSE greatest(v_cap * 2, 16) END;
        WHILE v_cap > 0 AND v_scanned < ${LIMITED_SCAN_ROWS} LOOP
          -- One page of the backlog in claim order; per key, how many more it may start now (0 while held);
          -- the page's jobs allowed, in claim order, at most v_cap. Keys taken on an earlier page are counted
          -- again here: this transaction's own claims are visible to its later statements.
          WITH page AS MATERIALIZED (
            SELECT c.seq, c.limit_key, c.priority, c.run_at,
                   row_number() OVER (ORDER BY c.priority, c.run_at, c.seq) AS ord
            FROM (SELECT w.seq, w.limit_key, w.priority, w.run_at FROM ${s}.jobs w
                  WHERE w.state = 'waiting' AND w.queue = p_queue
                    AND (w.priority, w.run_at, w.seq) > (v_ap, v_ar, v_as)
                  ORDER BY w.priority, w.run_at, w.seq
                  LIMIT v_page) c),
          -- MATERIALIZED: computed once per key. Inlined, the planner re-ran the per-key counts for every job of
          -- the page (3,791 index probes for a page of 108: 11.9 ms; materialized: 1.2 ms).
          allow AS MATERIALIZED (
            SELECT k.limit_key,
              CASE WHEN v_holds AND EXISTS (SELECT 1 FROM ${s}.key_holds h
                                            WHERE h.queue = p_queue AND h.key = k.limit_key AND h.until > v_now)
                   THEN 0
                   ELSE least(
                     CASE WHEN v_kc IS NULL THEN 2147483647
                          ELSE v_kc - (SELECT count(*) FROM ${s}.jobs a WHERE a.state = 'active'
                                         AND a.queue = p_queue AND a.limit_key = k.limit_key)::integer END,
                     CASE WHEN v_krmax IS NULL THEN 2147483647
                          ELSE v_krmax - coalesce((SELECT r.n FROM ${s}.key_rates r
                                                   WHERE r.queue = p_queue AND r.key = k.limit_key
                                                     AND r.window_start >= v_kws), 0) END)
              END AS n
            FROM (SELECT DISTINCT p.limit_key FROM page p WHERE p.limit_key IS NOT NULL) k),
          ranked AS (
            SELECT p.seq, p.ord, p.limit_key, row_number() OVER (PARTITION BY p.limit_key ORDER BY p.ord) AS rn
            FROM page p),
          chosen AS (
            SELECT r.seq, r.ord FROM ranked r LEFT JOIN allow a ON a.limit_key = r.limit_key
            WHERE r.limit_key IS NULL OR r.rn <= a.n
            ORDER BY r.ord LIMIT v_cap),
          tail AS (SELECT p.priority, p.run_at, p.seq FROM page p ORDER BY p.ord DESC LIMIT 1)
          SELECT (SELECT array_agg(c.seq ORDER BY c.ord) FROM chosen c), (SELECT count(*) FROM page)::integer,
                 t.priority, t.run_at, t.seq
          INTO v_pick, v_seen, v_ap, v_ar, v_as
          FROM (SELECT 1) one LEFT JOIN tail t ON true;
          v_scanned := v_scanned + v_seen;
          IF v_pick IS NOT NULL THEN
            -- Lock only the jobs chosen (SKIP LOCKED: one being cancelled or deleted right now is left out),
            -- start the first v_start of them, and count the key rates, in one statement.
            RETURN QUERY
              WITH locked AS (
                SELECT c.seq, u.ord FROM unnest(v_pick) WITH ORDINALITY AS u(seq, ord)
                JOIN ${s}.jobs c ON c.seq = u.seq
                WHERE c.state = 'waiting'
                FOR UPDATE OF c SKIP LOCKED),
              ranked AS (SELECT l.seq, row_number() OVER (ORDER BY l.ord) AS rn FROM locked l),
              moved AS (
                UPDATE ${s}.jobs j
                SET state = 'active', attempt = j.attempt + 1, lease_token = j.lease_token + 1,
                    started_at = CASE WHEN r.rn <= v_start THEN v_now END,
                    worker_id = p_worker, lease_expires_at = v_now + p_lease_ms, reason = NULL
                FROM ranked r WHERE j.seq = r.seq
                RETURNING j.*),
              ev AS (
                ${events}
                SELECT v_now, 'active', m.queue, m.id, m.task, m.attempt, jsonb_build_object('workerId', p_worker)
                FROM moved m WHERE p_events AND m.started_at IS NOT NULL),
              kr AS (
                INSERT INTO ${s}.key_rates AS r (queue, key, window_start, n)
                SELECT p_queue, m.limit_key, v_kws, count(*)::integer FROM moved m
                WHERE v_kws IS NOT NULL AND m.limit_key IS NOT NULL GROUP BY m.limit_key
                ON CONFLICT (queue, key) DO UPDATE SET
                  n = CASE WHEN r.window_start >= EXCLUDED.window_start THEN r.n + EXCLUDED.n ELSE EXCLUDED.n END,
                  window_start = greatest(r.window_start, EXCLUDED.window_start))
              SELECT * FROM moved;
            GET DIAGNOSTICS v_got = ROW_COUNT;
            v_cap := v_cap - v_got;
            v_taken := v_taken + v_got;
            v_start := greatest(v_start - v_got, 0);
          END IF;
          EXIT WHEN v_seen < v_page;
        END LOOP;
        IF v_rmax IS NOT NULL AND v_taken > 0 THEN
          UPDATE ${s}.queues
          SET rate_count = CASE WHEN rate_window = v_ws THEN rate_count ELSE 0 END + v_taken, rate_window = v_ws
          WHERE name = p_queue;
        END IF;
      END
      $fn$;

      -- The claim of migration 10, with the same signature (so workers of the previous version enforce limits
      -- too): the pause check now also reads the queue's limited flag (same statement, same cost), and a
      -- limited queue is claimed by claim_limited. The plain path is unchanged.
      CREATE OR REPLACE FUNCTION ${s}.claim(p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint,
        p_start integer, p_events boolean)
      RETURNS SETOF ${s}.jobs
      LANGUAGE plpgsql SET enable_sort = off SET jit = off AS $fn$
      DECLARE
        v_now     bigint := ${NOW_MS};
        v_queue   text;
        v_left    integer := p_limit;
        v_start   integer := least(p_start, p_limit);
        v_got     integer;
        v_paused  boolean;
        v_limited boolean;
        v_locking boolean := false;
      BEGIN
        -- Promotion writes no event (scheduled -> waiting is not a transition users follow).
        UPDATE ${s}.jobs SET state = 'waiting'
        WHERE seq IN (SELECT seq FROM ${s}.jobs
                      WHERE state = 'scheduled' AND queue = ANY (p_queues) AND run_at <= v_now
                      ORDER BY run_at LIMIT 10000
                      FOR UPDATE SKIP LOCKED);
        FOREACH v_queue IN ARRAY p_queues LOOP
          EXIT WHEN v_left <= 0;
          v_paused := NULL;
          v_limited := NULL;
          SELECT q.paused OR coalesce(q.paused_until > v_now, false), q.limited INTO v_paused, v_limited
          FROM ${s}.queues q WHERE q.name = v_queue;
          CONTINUE WHEN v_paused;
          IF v_limited THEN
            RETURN QUERY SELECT * FROM ${s}.claim_limited(v_queue, v_left, v_start, p_worker, p_lease_ms, p_events,
                                                         NOT v_locking);
            GET DIAGNOSTICS v_got = ROW_COUNT;
            v_locking := true;
            v_left := v_left - v_got;
            v_start := greatest(v_start - v_got, 0);
            CONTINUE;
          END IF;
          -- Jobs that start now are 'active'; jobs held ahead write theirs when start_jobs starts them.
          IF v_start > 0 THEN
            RETURN QUERY
              WITH moved AS (
                UPDATE ${s}.jobs j
                SET state = 'active', attempt = j.attempt + 1, lease_token = j.lease_token + 1, started_at = v_now,
                    worker_id = p_worker, lease_expires_at = v_now + p_lease_ms, reason = NULL
                WHERE j.seq IN (SELECT c.seq FROM ${s}.jobs c
                                WHERE c.state = 'waiting' AND c.queue = v_queue
                                ORDER BY c.priority, c.run_at, c.seq
                                LIMIT v_start
                                FOR UPDATE SKIP LOCKED)
                RETURNING j.*),
              ev AS (
                ${events}
                SELECT v_now, 'active', m.queue, m.id, m.task, m.attempt, jsonb_build_object('workerId', p_worker)
                FROM moved m WHERE p_events)
              SELECT * FROM moved;
            GET DIAGNOSTICS v_got = ROW_COUNT;
            v_left := v_left - v_got;
            v_start := v_start - v_got;
          END IF;
          IF v_left > 0 AND v_start <= 0 THEN
            RETURN QUERY
              WITH moved AS (
                UPDATE ${s}.jobs j
                SET state = 'active', attempt = j.attempt + 1, lease_token = j.lease_token + 1, started_at = NULL,
                    worker_id = p_worker, lease_expires_at = v_now + p_lease_ms, reason = NULL
                WHERE j.seq IN (SELECT c.seq FROM ${s}.jobs c
                                WHERE c.state = 'waiting' AND c.queue = v_queue
                                ORDER BY c.priority, c.run_at, c.seq
                                LIMIT v_left
                                FOR UPDATE SKIP LOCKED)
                RETURNING j.*)
              SELECT * FROM moved;
            GET DIAGNOSTICS v_got = ROW_COUNT;
            v_left := v_left - v_got;
          END IF;
        END LOOP;
      END
      $fn$;


      -- The outcome functions of migration 11, the same signatures, now waking the fleet when a job of a
      -- LIMITED queue leaves active: the slot it frees may be any worker's to fill, and without a wake-up the
      -- worker that freed it would be the only one to look (it claims again at once; the others at their next
      -- poll). One probe of the queues primary key per call; plain queues send nothing.
      CREATE OR REPLACE FUNCTION ${s}.complete_jobs(p_ids text[], p_tokens bigint[], p_results text[], p_events boolean)
      RETURNS SETOF text LANGUAGE plpgsql ${PROBES} AS $fn$
      DECLARE
        v_ids     text[];
        v_flow    ${settled}[];
        v_touched text[];
        v_limited text[];
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
                 FILTER (WHERE d.batch_id IS NOT NULL OR d.has_dependents),
               array_agg(DISTINCT d.queue)
        INTO v_ids, v_flow, v_touched FROM done d;
        ${WAKE}
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
        v_touched text[];
        v_limited text[];
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
            FILTER (WHERE c.state = 'cancelled' OR (c.state = 'dead' AND (c.batch_id IS NOT NULL OR c.has_dependents))),
          array_agg(DISTINCT c.queue)
        INTO v_ids, v_queues, v_flow, v_touched FROM changed c;
        ${WAKE}
        IF v_queues IS NOT NULL THEN PERFORM pg_notify(p_channel, ${s}.jobs_payload(v_queues)); END IF;
        IF v_flow IS NOT NULL THEN PERFORM ${s}.settle(v_flow, p_events); END IF;
        RETURN QUERY SELECT unnest(v_ids);
      END
      $fn$;

      -- The signatures kept for workers of older versions (migrations 1 and 9) now go through the claim above,
      -- so an old worker cannot take jobs past a queue's limits.
      CREATE OR REPLACE FUNCTION ${s}.claim(p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint,
        p_start integer)
      RETURNS SETOF ${s}.jobs LANGUAGE sql AS $fn$
        SELECT * FROM ${s}.claim(p_queues, p_limit, p_worker, p_lease_ms, p_start, false)
      $fn$;
      CREATE OR REPLACE FUNCTION ${s}.claim(p_queues text[], p_limit integer, p_worker text, p_lease_ms bigint)
      RETURNS SETOF ${s}.jobs LANGUAGE sql AS $fn$
        SELECT * FROM ${s}.claim(p_queues, p_limit, p_worker, p_lease_ms, p_limit, false)
      $fn$;
  `;
}
