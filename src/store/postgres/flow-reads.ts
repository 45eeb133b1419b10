/** Flow reads on PostgreSQL (admin paths): the flow view of a job, batches, and stuck blocked jobs. */
import { ValidationError } from "../../core/errors.js";
import type {
  BatchCallbackRecord,
  BatchEvent,
  BatchRecord,
  DependencyPolicy,
  FlowEdge,
  FlowJob,
  FlowView,
} from "../../core/flows.js";
import type { JobState, Json } from "../../core/job.js";
import type { StuckBlockedJob } from "../contract.js";
import { type Queryable, rowsOf } from "./insert.js";
import { num, numOrNull } from "./rows.js";

/** A job as users see it (a held job is waiting: core/states.ts asSeen), for a table aliased `j`. */
const SEEN_STATE = "CASE WHEN j.state = 'active' AND j.started_at IS NULL THEN 'waiting' ELSE j.state END";

/** FlowJob columns of `j` (LEFT JOINed: NULL when the job is gone). */
const FLOW_JOB = `coalesce(j.task, '') AS task, coalesce(j.queue, '') AS queue, ${SEEN_STATE} AS state,
  CASE WHEN j.state = 'completed' THEN j.result END AS result,
  coalesce(j.errors -> -1 ->> 'message', CASE WHEN j.state IN ('dead', 'cancelled') THEN j.reason END) AS error`;

interface FlowJobRow {
  id: string;
  task: string;
  queue: string;
  state: JobState | null;
  result: string | null;
  error: string | null;
}

interface EdgeRow extends FlowJobRow {
  on_failure: DependencyPolicy;
  resolved: boolean;
}

function parseResult(text: string | null): Json | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return null;
  }
}

function toFlowJob(row: FlowJobRow): FlowJob {
  return {
    id: row.id,
    task: row.task,
    queue: row.queue,
    state: row.state,
    result: parseResult(row.result),
    error: row.error,
  };
}

function toEdge(row: EdgeRow): FlowEdge {
  return { ...toFlowJob(row), onFailure: row.on_failure, resolved: row.resolved };
}

/** Everything `id` is connected to, or null when no such job. One snapshot (REPEATABLE READ). */
export async function readFlow(db: Queryable, s: string, id: string): Promise<FlowView | null> {
  await db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    const self = rowsOf<{ parent_id: string | null; batch_id: string | null }>(
      await db.query(`SELECT parent_id, batch_id FROM ${s}.jobs WHERE id = $1`, [id]),
    )[0];
    if (!self) return null;
    const dependencies = rowsOf<EdgeRow>(
      await db.query(
        `SELECT e.dep_id AS id, e.on_failure, e.resolved, ${FLOW_JOB}
         FROM ${s}.job_deps e LEFT JOIN ${s}.jobs j ON j.id = e.dep_id WHERE e.job_id = $1 ORDER BY e.ord`,
        [id],
      ),
    );
    const dependents = rowsOf<EdgeRow>(
      await db.query(
        `SELECT e.job_id AS id, e.on_failure, e.resolved, ${FLOW_JOB}
         FROM ${s}.job_deps e LEFT JOIN ${s}.jobs j ON j.id = e.job_id WHERE e.dep_id = $1 ORDER BY j.seq, e.ord`,
        [id],
      ),
    );
    const children = rowsOf<FlowJobRow>(
      await db.query(
        `SELECT j.id, ${FLOW_JOB} FROM ${s}.jobs j WHERE j.parent_id = $1 ORDER BY j.seq LIMIT 10000`,
        [id],
      ),
    );
    let parent: FlowJob | null = null;
    if (self.parent_id !== null) {
      const row = rowsOf<FlowJobRow>(
        await db.query(
          `SELECT p.id, ${FLOW_JOB} FROM (SELECT $1::text AS id) p LEFT JOIN ${s}.jobs j ON j.id = p.id`,
          [self.parent_id],
        ),
      )[0];
      parent = row ? toFlowJob(row) : null;
    }
    const batch = self.batch_id === null ? null : ((await readBatches(db, s, [self.batch_id]))[0] ?? null);
    return {
      dependencies: dependencies.map(toEdge),
      dependents: dependents.map(toEdge),
      children: children.map(toFlowJob),
      parent,
      batch,
    };
  } finally {
    await db.query("COMMIT");
  }
}

interface BatchRow {
  id: string;
  description: string | null;
  created_at: number | string;
  finished_at: number | string | null;
  total: number;
  completed: number;
  dead: number;
  cancelled: number;
  callbacks: { event: BatchEvent; task: string; queue: string; fired_at: number | string | null }[] | null;
}

const BATCH_COLUMNS = (
  s: string,
) => `b.id, b.description, b.created_at, b.finished_at, b.total, b.completed, b.dead,
  b.cancelled,
  (SELECT jsonb_agg(jsonb_build_object('event', c.event, 'task', c.task, 'queue', c.queue, 'fired_at', c.fired_at)
                    ORDER BY c.ord)
   FROM ${s}.batch_callbacks c WHERE c.batch_id = b.id) AS callbacks`;

function toBatch(row: BatchRow): BatchRecord {
  const callbacks: BatchCallbackRecord[] = (row.callbacks ?? []).map((c) => ({
    event: c.event,
    task: c.task,
    queue: c.queue,
    jobId: `${row.id}:${c.event}`,
    firedAt: numOrNull(c.fired_at),
  }));
  return {
    id: row.id,
    description: row.description,
    createdAt: num(row.created_at),
    finishedAt: numOrNull(row.finished_at),
    total: row.total,
    completed: row.completed,
    dead: row.dead,
    cancelled: row.cancelled,
    callbacks,
  };
}

/** The batches of `ids` that exist, in no particular order. */
export async function readBatches(db: Queryable, s: string, ids: readonly string[]): Promise<BatchRecord[]> {
  const rows = rowsOf<BatchRow>(
    await db.query(`SELECT ${BATCH_COLUMNS(s)} FROM ${s}.batches b WHERE b.id = ANY ($1::text[])`, [ids]),
  );
  return rows.map(toBatch);
}

/** The cursor of listBatches: the last batch's (createdAt, id), as base64url JSON. */
function decodeCursor(cursor: string): [number, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(value) && Number.isSafeInteger(value[0]) && typeof value[1] === "string") {
      return [value[0] as number, value[1] as string];
    }
  } catch {
    // reported below
  }
  throw new ValidationError(
    "INVALID_OPTION",
    `cursor "${cursor}" is not one this store returned: pass the nextCursor of the previous page, or none for the first`,
    { field: "cursor" },
  );
}

export async function listBatches(
  db: Queryable,
  s: string,
  request: { limit: number; cursor?: string | null; finished?: boolean },
): Promise<{ batches: BatchRecord[]; nextCursor: string | null }> {
  const params: unknown[] = [];
  const where: string[] = [];
  if (request.finished !== undefined) where.push(`b.finished_at IS ${request.finished ? "NOT " : ""}NULL`);
  if (request.cursor) {
    const [createdAt, id] = decodeCursor(request.cursor);
    params.push(createdAt, id);
    where.push("(b.created_at, b.id) < ($1::bigint, $2::text)");
  }
  params.push(Math.max(0, request.limit) + 1);
  const rows = rowsOf<BatchRow>(
    await db.query(
      `SELECT ${BATCH_COLUMNS(s)} FROM ${s}.batches b ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY b.created_at DESC, b.id DESC LIMIT $${params.length}`,
      params,
    ),
  );
  const more = rows.length > request.limit;
  const batches = (more ? rows.slice(0, request.limit) : rows).map(toBatch);
  const last = batches.at(-1);
  const nextCursor =
    more && last
      ? Buffer.from(JSON.stringify([last.createdAt, last.id]), "utf8").toString("base64url")
      : null;
  return { batches, nextCursor };
}

/**
 * Blocked jobs nothing will release: no unresolved edge left, or one whose dependency is final or gone
 * (a settle should have resolved it). Through jobs_state (blocked jobs, seq order).
 */
export async function stuckBlocked(db: Queryable, s: string, limit: number): Promise<StuckBlockedJob[]> {
  const rows = rowsOf<{
    id: string;
    queue: string;
    task: string;
    created_at: number | string;
    pending_deps: number;
    waiting_for: { id: string; state: JobState | null }[];
  }>(
    await db.query(
      `SELECT b.id, b.queue, b.task, b.created_at, b.pending_deps,
         coalesce((SELECT jsonb_agg(jsonb_build_object('id', e.dep_id, 'state', ${SEEN_STATE}) ORDER BY e.ord)
                   FROM ${s}.job_deps e LEFT JOIN ${s}.jobs j ON j.id = e.dep_id
                   WHERE e.job_id = b.id AND NOT e.resolved), '[]') AS waiting_for
       FROM ${s}.jobs b
       WHERE b.state = 'blocked'
         AND (b.pending_deps <= 0
              OR NOT EXISTS (SELECT 1 FROM ${s}.job_deps e WHERE e.job_id = b.id AND NOT e.resolved)
              OR EXISTS (SELECT 1 FROM ${s}.job_deps e LEFT JOIN ${s}.jobs j ON j.id = e.dep_id
                         WHERE e.job_id = b.id AND NOT e.resolved
                           AND (j.id IS NULL OR j.state IN ('completed', 'dead', 'cancelled'))))
       ORDER BY b.seq LIMIT $1`,
      [Math.max(0, limit)],
    ),
  );
  return rows.map((row) => ({
    id: row.id,
    queue: row.queue,
    task: row.task,
    createdAt: num(row.created_at),
    pendingDependencies: row.pending_deps,
    waitingFor: row.waiting_for,
  }));
}
