/**
 * SQL text shared by the PostgreSQL store. Every statement is schema-qualified (never relying on
 * `search_path`) because transactional enqueue runs on the application's own connection, whose
 * search_path is the application's business.
 */
import type { JobFilter } from "../contract.js";
import { seenStateSql } from "../sql-common.js";

/** The database clock in epoch ms. `now()` is the transaction's start: one value for a whole statement. */
export const NOW_MS = "floor(extract(epoch from now()) * 1000)::bigint";

/** The quoted schema, e.g. `"sluice"`. Names are validated in config.ts, so quoting never needs escaping. */
export function quoteSchema(schema: string): string {
  return `"${schema}"`;
}

/**
 * A scalar subquery that sends one NOTIFY built from the rows of CTE `changed` matching `where`, or
 * none when no row matches. As an uncorrelated subquery it runs once per statement (an InitPlan), and
 * PostgreSQL delivers it only if the surrounding transaction commits.
 * `$channel` is the parameter holding the channel name.
 */
export function notifyJobsFrom(changed: string, where: string, channel: string): string {
  return `(SELECT pg_notify(${channel},
             CASE WHEN sum(length(q)) < 3000 THEN json_build_object('q', array_agg(q))::text ELSE '{"q":null}' END)
           FROM (SELECT DISTINCT queue AS q FROM ${changed} WHERE ${where}) d
           HAVING count(*) > 0)`;
}

/** WHERE clauses for an admin filter on schema `schema` (quoted); placeholders continue from `params.length`. */
export function filterSql(filter: JobFilter, params: unknown[], schema: string): string[] {
  const where: string[] = [];
  const add = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.ids) where.push(`id = ANY (${add(filter.ids)}::text[])`);
  if (filter.queue !== undefined) where.push(`queue = ${add(filter.queue)}`);
  // As users see states: a held job (claimed ahead, not started) is waiting, not active.
  if (filter.states) where.push(filter.states.length === 0 ? "false" : seenStateSql(filter.states));
  if (filter.task !== undefined) where.push(`task = ${add(filter.task)}`);
  if (filter.createdBefore !== undefined) where.push(`created_at < ${add(filter.createdBefore)}`);
  if (filter.batchId !== undefined) where.push(`batch_id = ${add(filter.batchId)}`);
  if (filter.parentId !== undefined) where.push(`parent_id = ${add(filter.parentId)}`);
  if (filter.tag !== undefined) where.push(`tags ? ${add(filter.tag)}`);
  // Literal prefix: no LIKE, so %, _ and \\ in it are plain characters.
  if (filter.idPrefix !== undefined) where.push(`starts_with(id, ${add(filter.idPrefix)}::text)`);
  if (filter.payloadField !== undefined) {
    // The path is a text[] parameter (segments are data, never path syntax); the value is compared as jsonb,
    // so 7 and "7" differ and null matches a JSON null only (a missing key gives SQL NULL). A payload that
    // is not valid JSON matches nothing instead of failing the statement (json_or_null, migration 10).
    const path = add(filter.payloadField.path);
    const equals = add(JSON.stringify(filter.payloadField.equals));
    where.push(`${schema}.json_or_null(payload) #> ${path}::text[] = ${equals}::jsonb`);
  }
  return where;
}

/** Columns of the batch insert, in the order of the unnest() arrays. */
export const INSERT_ARRAYS = [
  ["id", "text"],
  ["task", "text"],
  ["queue", "text"],
  ["state", "text"],
  ["payload", "text"],
  ["priority", "int"],
  ["run_at", "bigint"],
  ["max_attempts", "int"],
  ["backoff", "text"],
  ["timeout_ms", "bigint"],
  ["unique_key", "text"],
  ["unique_until", "bigint"],
  ["tags", "text"],
  ["keep_mode", "text"],
  ["keep_value", "bigint"],
  ["parent_id", "text"],
  ["limit_key", "text"],
] as const;

/**
 * Extra columns of a flow enqueue (jobs with dependencies or a batch), after INSERT_ARRAYS: only that path
 * pays for them. `errors` is JSON text ('[]', or the dependency-failed error of a job written dead).
 */
export const FLOW_ARRAYS = [
  ["batch_id", "text"],
  ["pending_deps", "int"],
  ["has_dependents", "boolean"],
  ["reason", "text"],
  ["errors", "text"],
] as const;

/**
 * `INSERT INTO events …` of one event per row of `from`; `values` lists (at, type, queue, job_id, task,
 * attempt, data). Used only in data-modifying CTEs over the RETURNING rows of the transition itself, so the
 * event commits with it, and the transaction has its xid before the event takes its id (readEvents).
 */
export function eventInsert(s: string, values: string, from: string): string {
  return `INSERT INTO ${s}.events (at, type, queue, job_id, task, attempt, data) SELECT ${values} FROM ${from}`;
}

/**
 * Makes the statement's own transaction commit without waiting for the WAL flush. The setting is read at
 * commit, so where it is evaluated within the statement does not matter; `true`: this transaction only.
 */
const ASYNC_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit";

/**
 * The store's fixed statements for schema `s` (quoted), built once per store; `events`: write fleet events;
 * `asyncClaims`: claims and starts commit without waiting for the flush (config.ts, `claimCommit`).
 */
export function statements(s: string, events: boolean, asyncClaims = false) {
  const asyncCommit = asyncClaims ? `, ${ASYNC_COMMIT}` : "";
  const insertColumns = INSERT_ARRAYS.map(([name]) => name).join(", ");
  const unnestArgs = INSERT_ARRAYS.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ");
  const insertSql = (
    onConflict: string,
  ) => `INSERT INTO ${s}.jobs (id, task, queue, state, payload, priority, run_at, created_at, max_attempts,
      backoff, timeout_ms, unique_key, unique_until, tags, keep_mode, keep_value, parent_id, limit_key)
    SELECT u.id, u.task, u.queue, u.state, u.payload,
      u.priority, u.run_at, ${NOW_MS}, u.max_attempts, u.backoff, u.timeout_ms, u.unique_key, u.unique_until,
      u.tags::jsonb, u.keep_mode, u.keep_value, u.parent_id, u.limit_key
    FROM unnest(${unnestArgs}) WITH ORDINALITY AS u(${insertColumns}, ord)
    ORDER BY u.ord
    ${onConflict}
    RETURNING id, state${events ? ", queue, task" : ""}`;
  // With events: the insert is a CTE and an 'enqueued' event is written per row it created (an existing id
  // skipped by ON CONFLICT returns no row, hence no event). data is one of two constants (no per-row build).
  const enqueued = events
    ? `, ev AS (${eventInsert(s, `${NOW_MS}, 'enqueued', queue, id, task, NULL::int, CASE state WHEN 'waiting' THEN '{"state":"waiting"}'::jsonb ELSE '{"state":"scheduled"}'::jsonb END`, "ins")})`
    : "";
  const insertStatement = (onConflict: string) =>
    events
      ? `WITH ins AS (${insertSql(onConflict)})${enqueued} SELECT id, state FROM ins`
      : insertSql(onConflict);
  const insert = insertStatement("");
  // The flow insert: INSERT_ARRAYS then FLOW_ARRAYS; any state (blocked, dead at once), so the event's
  // data is built per row. No NOTIFY: the flow enqueue sends one after its last statement.
  const flowColumns = [...INSERT_ARRAYS, ...FLOW_ARRAYS];
  const flowInsert = (onConflict: string) => {
    const names = flowColumns.map(([name]) => name).join(", ");
    const args = flowColumns.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ");
    const ins = `INSERT INTO ${s}.jobs (id, task, queue, state, payload, priority, run_at, created_at, max_attempts,
        backoff, timeout_ms, unique_key, unique_until, tags, keep_mode, keep_value, parent_id, limit_key, batch_id,
        pending_deps, has_dependents, reason, errors, finished_at)
      SELECT u.id, u.task, u.queue, u.state, u.payload, u.priority, u.run_at, ${NOW_MS}, u.max_attempts, u.backoff,
        u.timeout_ms, u.unique_key, u.unique_until, u.tags::jsonb, u.keep_mode, u.keep_value, u.parent_id, u.limit_key,
        u.batch_id,
        u.pending_deps, u.has_dependents, u.reason, u.errors::jsonb, CASE u.state WHEN 'dead' THEN ${NOW_MS} END
      FROM unnest(${args}) WITH ORDINALITY AS u(${names}, ord)
      ORDER BY u.ord
      ${onConflict}
      RETURNING id, state, queue, task`;
    return events
      ? `WITH ins AS (${ins}), ev AS (${eventInsert(s, `${NOW_MS}, 'enqueued', queue, id, task, NULL::int, jsonb_build_object('state', state)`, "ins")})
         SELECT id, state FROM ins`
      : `WITH ins AS (${ins}) SELECT id, state FROM ins`;
  };
  const insertIdempotent = insertStatement("ON CONFLICT (id) DO NOTHING");
  const n = INSERT_ARRAYS.length;
  // The fencing condition of recovery's writes (the hot lease-keyed writes are the functions of migration 6).
  // Two planner guards: `id = ANY ($1)` lets it probe the unique id index once per item; and the state test
  // is written so that the planner cannot prove it implies jobs_lease's predicate (state is NOT NULL, so
  // COALESCE changes nothing): a bitmap scan of jobs_lease revisits the dead index entries of every job
  // finished since the last vacuum.
  const leaseMatch =
    "j.id = ANY ($1::text[]) AND j.id = u.id AND j.lease_token = u.token AND COALESCE(j.state, '') = 'active'";
  const candidates = (where: string, order: string) => (lock: boolean) =>
    `SELECT id, queue, task, worker_id, attempt, max_attempts, cancel_requested, lease_token, ${NOW_MS} AS now_ms
     FROM ${s}.jobs WHERE state = 'active' AND ${where} ORDER BY ${order} LIMIT $1
     ${lock ? "FOR UPDATE SKIP LOCKED" : ""}`;
  return {
    insert,
    insertIdempotent,
    insertFlow: flowInsert(""),
    insertFlowIdempotent: flowInsert("ON CONFLICT (id) DO NOTHING"),
    // Locks store-resident dependencies in id order (lock order, migration-flows.ts) and marks them as
    // having dependents; RETURNING shows each one's state as committed once the lock is held.
    lockDependencies: `WITH l AS (SELECT id FROM ${s}.jobs WHERE id = ANY ($1::text[]) ORDER BY id FOR NO KEY UPDATE)
      UPDATE ${s}.jobs j SET has_dependents = true FROM l WHERE j.id = l.id
      RETURNING j.id, j.task, j.state, coalesce(j.errors -> -1 ->> 'message', j.reason) AS error`,
    insertEdges: `INSERT INTO ${s}.job_deps (job_id, dep_id, on_failure, resolved)
      SELECT a, b, c, d FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[]) WITH ORDINALITY AS u(a, b, c, d, ord)
      ORDER BY ord`,
    settleIds: `SELECT ${s}.settle_ids($1::text[], ${events})`,
    block: `SELECT j AS id FROM ${s}.block_jobs($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], ${events}) AS j`,
    // One statement: the rows and the NOTIFY commit together (the notify runs once, only if rows were created).
    insertNotify: `WITH ins AS (${insertSql("")})${enqueued}
      SELECT id, state, (SELECT pg_notify($${n + 1}, $${n + 2})) AS notified FROM ins`,
    insertIdempotentNotify: `WITH ins AS (${insertSql("ON CONFLICT (id) DO NOTHING")})${enqueued}
      SELECT id, state, (SELECT pg_notify($${n + 1}, $${n + 2})) AS notified FROM ins`,
    lockUniqueKeys: `SELECT pg_advisory_xact_lock(h) FROM (
        SELECT hashtextextended('sluice.unique:' || $1 || ':' || k, 0) AS h FROM unnest($2::text[]) AS k ORDER BY 1
      ) keys`,
    // A job held ahead by a worker (active, not started) is waiting, as users see it.
    findUnique: `SELECT id, seen AS state FROM (
        SELECT id, seq, unique_until,
          CASE WHEN state = 'active' AND started_at IS NULL THEN 'waiting' ELSE state END AS seen
        FROM ${s}.jobs WHERE queue = $3 AND unique_key = $1) j
      WHERE seen = ANY ($2::text[])
        AND (unique_until IS NULL OR unique_until > ${NOW_MS})
      ORDER BY seq DESC LIMIT 1`,
    statesById: `SELECT id, state FROM ${s}.jobs WHERE id = ANY ($1::text[])`,
    claim: `SELECT c.* FROM ${s}.claim($1::text[], $2::int, $3::text, $4::bigint, $5::int, ${events}) AS c${asyncCommit}`,
    // A start never waits for the flush: the claim before it did, so a server crash that loses a start
    // leaves the job claimed by the same worker under the same lease, and its outcome still lands (no
    // second run); the start only marks the job active for users and fences off cancels and pauses.
    start: `SELECT j AS id FROM ${s}.start_jobs($1::text[], $2::bigint[], ${events}) AS j, ${ASYNC_COMMIT}`,
    // Lease-keyed batch writes: functions of migration 6, with events since migration 10 (planned as index
    // probes, see migration 6).
    complete: `SELECT j AS id FROM ${s}.complete_jobs($1::text[], $2::bigint[], $3::text[], ${events}) AS j`,
    // One statement, one transaction, committed durably (the completions need it; the starts ride along).
    completeAndStart:
      `SELECT 'c' AS kind, j AS id FROM ${s}.complete_jobs($1::text[], $2::bigint[], $3::text[], ${events}) AS j ` +
      `UNION ALL SELECT 's', j FROM ${s}.start_jobs($4::text[], $5::bigint[], ${events}) AS j`,
    fail: `SELECT j AS id FROM ${s}.fail_jobs($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[],
      $6::text[], $7::text, ${events}) AS j`,
    release: `SELECT j AS id FROM ${s}.release_jobs($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
      $6::text, ${events}) AS j`,
    extend: `SELECT id, token, cancel_requested, paused FROM ${s}.extend_leases($1::text[], $2::bigint[], $3::bigint)`,
    // $4: per item, the progress for its event or NULL (the caller passes all NULL when events are off).
    progress: `SELECT j AS id FROM ${s}.job_progress($1::text[], $2::bigint[], $3::text[], $4::text[]) AS j`,
    // Lines of jobs that no longer exist are dropped (the job was deleted while its handler ran).
    appendLogs: `INSERT INTO ${s}.job_logs (job_id, at, attempt, message)
      SELECT u.id, u.at, u.attempt, u.message
      FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[]) WITH ORDINALITY AS u(id, at, attempt, message, ord)
      WHERE EXISTS (SELECT 1 FROM ${s}.jobs j WHERE j.id = u.id)
      ORDER BY u.ord`,
    nextRunAt: `SELECT min(run_at) AS at FROM ${s}.jobs WHERE state = 'scheduled' AND queue = ANY ($1::text[])`,
    recoverExpired: candidates(`lease_expires_at < ${NOW_MS}`, "lease_expires_at"),
    recoverStartedBefore: candidates("started_at < $2", "started_at"),
    recoverApply: `WITH u AS (
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])
          AS u(id, token, next, reason, error)),
      changed AS (
        UPDATE ${s}.jobs j SET state = u.next,
          finished_at = CASE WHEN u.next = 'waiting' THEN NULL ELSE ${NOW_MS} END,
          lease_expires_at = NULL, reason = u.reason, errors = j.errors || jsonb_build_array(u.error::jsonb)
        FROM u WHERE ${leaseMatch}
        RETURNING j.id, j.queue, j.state, j.task, j.attempt, j.reason)${
          events
            ? `, ev AS (${eventInsert(s, `${NOW_MS}, 'recovered', queue, id, task, attempt, jsonb_build_object('to', state, 'reason', reason)`, "changed")})`
            : ""
        }
      SELECT id, state, ${notifyJobsFrom("changed", "state = 'waiting'", "$6")} AS notified FROM changed`,
    pruneByAge: `WITH gone AS (
        DELETE FROM ${s}.jobs WHERE seq IN (
          SELECT seq FROM ${s}.jobs WHERE state = 'completed' AND keep_until IS NOT NULL AND keep_until < ${NOW_MS}
          ORDER BY keep_until LIMIT $1)
        RETURNING id),
      -- Edges of pruned dependents go with them (job_deps has no foreign key: migration-flows.ts).
      edges AS (DELETE FROM ${s}.job_deps WHERE job_id IN (SELECT id FROM gone))
      SELECT count(*)::int AS n FROM gone`,
    pruneByCount: `WITH ranked AS (
        SELECT seq, keep_value, row_number() OVER (PARTITION BY queue ORDER BY finished_at DESC, seq DESC) AS rn
        FROM ${s}.jobs WHERE state = 'completed' AND keep_mode = 'count'),
      gone AS (
        DELETE FROM ${s}.jobs WHERE seq IN (SELECT seq FROM ranked WHERE rn > keep_value LIMIT $1)
        RETURNING id),
      edges AS (DELETE FROM ${s}.job_deps WHERE job_id IN (SELECT id FROM gone))
      SELECT count(*)::int AS n FROM gone`,
    // Upsert-add: counters and histogram slots are added to the stored row (slot by slot; unnest of two
    // arrays pads the shorter with NULLs), so concurrent flushes from many workers merge.
    addHourlyStats: `INSERT INTO ${s}.queue_stats AS q (queue, hour, completed, failed, dead, durations, last_completed_at)
      SELECT u.queue, u.hour, u.completed, u.failed, u.dead,
             ARRAY(SELECT jsonb_array_elements_text(u.durations::jsonb)::bigint), u.last_completed_at
      FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[])
        AS u(queue, hour, completed, failed, dead, durations, last_completed_at)
      ON CONFLICT (hour, queue) DO UPDATE SET
        last_completed_at = GREATEST(q.last_completed_at, EXCLUDED.last_completed_at),
        completed = q.completed + EXCLUDED.completed,
        failed = q.failed + EXCLUDED.failed,
        dead = q.dead + EXCLUDED.dead,
        durations = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
                          FROM unnest(q.durations, EXCLUDED.durations) AS t(a, b))`,
    // ── fleet events (readEvents / lastEventId / prune, postgres-store.ts) ──
    eventMark: `SELECT last_id, next_xid, snapshot_xmin FROM ${s}.event_mark()`,
    snapshotXmin: "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin",
    // One statement, so the pruned id and the events come from one snapshot (a prune committing between
    // two statements could otherwise delete events after `after` without the reader being told).
    // $1 after (null: from the oldest), $2 the sequence's last value, $3 the settled horizon, $4 queue,
    // $5 job id, $6 limit. Reset: $1 older than the newest pruned id, or newer than any id handed out.
    readEvents: `SELECT * FROM ${s}.read_events($1::bigint, $2::bigint, $3::bigint, $4::text, $5::text, $6::int)`,
    // Event pruning (PostgresStore.pruneEvents), in id windows from the newest id pruned so far: the events
    // table has no b-tree (migration 10), so "the oldest N events" or "all but the newest N" read and sorted
    // the whole table, every call (1.4 s per call of 5,000 with 3M events, `npm run bench:event-prune`: the
    // maintenance pass pruned back to back after a burst). A window is a BRIN range scan instead.
    eventWindow: `SELECT st.pruned_id::bigint AS lo,
        (SELECT CASE WHEN q.is_called THEN q.last_value ELSE 0 END FROM ${s}.events_id_seq q)::bigint AS last_id
      FROM ${s}.event_state st`,
    // The first event with an id in ($1, $2] (pruneEvents crossing a gap of ids).
    nextEvent: `SELECT min(id) AS id FROM ${s}.events WHERE id > $1::bigint AND id <= $2::bigint`,
    // Deletes the due events with ids up to $1 (the window's end; also any left below its start, events of a
    // transaction that committed after a prune passed their ids): ids <= $2 (beyond the newest N; NULL: no
    // cap) or older than $3 (ms; NULL: no age). The newest id deleted is recorded in the same statement
    // (event_state), so readers learn about the loss exactly when it commits. window_rows: whether any
    // event has an id in ($4, $1], the window (none: a gap of ids that never became events); a count, not
    // EXISTS, which the planner answers with a sequential scan (it expects an early row), the whole table
    // when the window is a gap.
    pruneEvents: `WITH gone AS (
        DELETE FROM ${s}.events e
        WHERE e.id <= $1::bigint AND (e.id <= $2::bigint OR ($3::bigint IS NOT NULL AND e.at < $3::bigint))
        RETURNING e.id),
      noted AS (
        UPDATE ${s}.event_state SET pruned_id = greatest(pruned_id, (SELECT max(id) FROM gone))
        WHERE EXISTS (SELECT 1 FROM gone))
      SELECT (SELECT count(*)::int FROM gone) AS n,
        (SELECT count(*) FROM ${s}.events x WHERE x.id > $4::bigint AND x.id <= $1::bigint) > 0 AS window_rows`,
    pruneWorkers: `WITH gone AS (DELETE FROM ${s}.workers WHERE last_heartbeat_at < $1 RETURNING 1)
      SELECT count(*)::int AS n FROM gone`,
    tryLead: `INSERT INTO ${s}.leaders (name, owner, expires_at) VALUES ($1, $2, ${NOW_MS} + $3::bigint)
      ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
        WHERE ${s}.leaders.owner = EXCLUDED.owner OR ${s}.leaders.expires_at < ${NOW_MS}
      RETURNING owner`,
    // Counts per queue x state, the oldest waiting run time per queue (from the partial jobs_claim index) and
    // queue pause states, in one round trip. Queues known only from a pause (no jobs yet) are listed too.
    // The counts read every job but the active ones (a scan of the table or of jobs_queue_state, whichever
    // the planner prefers): 1,000,000 waiting or retained jobs cost 200–300 ms a call (docs/benchmarks.md).
    stats: `SELECT queue, state, n, oldest, NULL::boolean AS paused, NULL::bigint AS paused_until,
        NULL::jsonb AS limits, NULL::int AS held_keys
      FROM (SELECT queue, state, count(*)::int AS n, NULL::bigint AS oldest FROM ${s}.jobs WHERE state <> 'active'
            GROUP BY queue, state
            UNION ALL
            -- A held job (claimed ahead, not started) counts as waiting, and as active for the limits: 'held'.
            -- Its run time counts for the oldest waiting one (the 'active' group has none: FILTER).
            SELECT queue, CASE WHEN started_at IS NULL THEN 'held' ELSE 'active' END, count(*)::int,
              min(run_at) FILTER (WHERE started_at IS NULL)
            FROM ${s}.jobs WHERE state = 'active' GROUP BY 1, 2) c
      UNION ALL
      -- The oldest waiting run time per queue and priority (queueStats keeps each queue's least): one probe of
      -- jobs_claim (queue, priority, run_at) per pair, the pairs found by stepping from one to the next (a
      -- loose index scan), instead of reading every waiting job: with 1,000,000 waiting the grouped read took
      -- 239 ms (three parallel scans) of each call, this about 1 ms.
      (WITH RECURSIVE pairs AS (
          (SELECT queue, priority FROM ${s}.jobs WHERE state = 'waiting' ORDER BY queue, priority LIMIT 1)
          UNION ALL
          SELECT nx.queue, nx.priority FROM pairs p, LATERAL (
            SELECT j.queue, j.priority FROM ${s}.jobs j
            WHERE j.state = 'waiting' AND (j.queue, j.priority) > (p.queue, p.priority)
            ORDER BY j.queue, j.priority LIMIT 1) nx)
        SELECT p.queue, NULL, NULL, f.run_at, NULL, NULL, NULL, NULL FROM pairs p, LATERAL (
          SELECT j.run_at FROM ${s}.jobs j
          WHERE j.state = 'waiting' AND j.queue = p.queue AND j.priority = p.priority
          ORDER BY j.run_at LIMIT 1) f)
      UNION ALL
      -- Due scheduled jobs (from jobs_due): backlog that a claim would promote; state 'due' marks the row.
      SELECT queue, 'due', count(*)::int, min(run_at), NULL, NULL, NULL, NULL FROM ${s}.jobs
      WHERE state = 'scheduled' AND run_at <= ${NOW_MS} GROUP BY queue
      UNION ALL
      -- Queues known from a pause, limits or key holds are listed even without jobs.
      SELECT name, NULL, NULL, NULL, paused, CASE WHEN paused_until > ${NOW_MS} THEN paused_until END, limits,
        (SELECT count(*)::int FROM ${s}.key_holds h WHERE h.queue = q.name AND h.until > ${NOW_MS})
      FROM ${s}.queues q`,
  };
}
