/** Mapping between PostgreSQL rows and the job model. */
import type { AttemptError, BackoffSpec, JobRecord, JobState, Json } from "../../core/job.js";
import type { WorkerInfo } from "../contract.js";
import { JsonFields, retentionOf } from "../sql-common.js";
import { parseStalls } from "../stalls.js";
import { parseHealth } from "../worker-health.js";

/**
 * A `jobs` row as `pg` returns it. `bigint` columns arrive as numbers through the store's pool (see
 * `BIGINT_AS_NUMBER`), but as strings through a caller's own client, so every reader goes through `num`.
 * jsonb columns (`tags`, `errors`) arrive parsed.
 */
export interface JobRow {
  seq: number | string;
  id: string;
  task: string;
  queue: string;
  state: string;
  payload: string;
  result: string | null;
  priority: number;
  run_at: number | string;
  created_at: number | string;
  started_at: number | string | null;
  finished_at: number | string | null;
  attempt: number;
  max_attempts: number;
  backoff: string | null;
  timeout_ms: number | string | null;
  unique_key: string | null;
  tags: unknown;
  progress: string | null;
  lease_token: number | string;
  lease_expires_at: number | string | null;
  worker_id: string | null;
  cancel_requested: boolean;
  keep_mode: string;
  keep_value: number | string | null;
  errors: unknown;
  reason: string | null;
  parent_id: string | null;
  batch_id: string | null;
  pending_deps: number;
  /** Absent from rows read before migration 13 ran (a caller's own SELECT list). */
  limit_key?: string | null;
}

export function num(value: number | string): number {
  return typeof value === "number" ? value : Number(value);
}

export function numOrNull(value: number | string | null): number | null {
  return value === null ? null : num(value);
}

/**
 * Converts a row; a JSON text field that does not parse is reported in `dataError` (the worker then fails
 * the job with outcome `invalid-payload`) instead of throwing, so one bad row cannot stop a claim batch.
 */

export function rowToJob(row: JobRow): JobRecord {
  const fields = new JsonFields();
  const parse = <T>(text: string | null, field: string, fallback: T): T =>
    fields.parse(text, field, fallback);
  const job: JobRecord = {
    id: row.id,
    seq: num(row.seq),
    task: row.task,
    queue: row.queue,
    state: row.state as JobState,
    payload: parse<Json>(row.payload, "payload", null),
    result: parse<Json | null>(row.result, "result", null),
    priority: row.priority,
    runAt: num(row.run_at),
    createdAt: num(row.created_at),
    startedAt: numOrNull(row.started_at),
    finishedAt: numOrNull(row.finished_at),
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    backoff: parse<BackoffSpec | null>(row.backoff, "backoff", null),
    timeoutMs: numOrNull(row.timeout_ms),
    uniqueKey: row.unique_key,
    tags: Array.isArray(row.tags) ? (row.tags as string[]) : [],
    progress: parse<Json | null>(row.progress, "progress", null),
    leaseToken: num(row.lease_token),
    leaseExpiresAt: numOrNull(row.lease_expires_at),
    workerId: row.worker_id,
    cancelRequested: row.cancel_requested,
    retention: retentionOf(row.keep_mode, numOrNull(row.keep_value)),
    errors: Array.isArray(row.errors) ? (row.errors as AttemptError[]) : [],
    reason: row.reason,
    parentId: row.parent_id,
    batchId: row.batch_id ?? null,
    pendingDependencies: row.pending_deps ?? 0,
    limitKey: row.limit_key ?? null,
  };
  const dataError = fields.error;
  if (dataError) job.dataError = dataError;
  return job;
}

/** A `workers` row. */
export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  queues: unknown;
  concurrency: number;
  busy: number;
  started_at: number | string;
  last_heartbeat_at: number | string;
  version: string;
  stalls?: unknown;
  health?: unknown;
  clock?: number | string | null;
  clock_skew_ms?: number | string | null;
}

export function rowToWorker(row: WorkerRow): WorkerInfo {
  return {
    id: row.id,
    host: row.host,
    pid: row.pid,
    queues: Array.isArray(row.queues) ? (row.queues as string[]) : [],
    concurrency: row.concurrency,
    busy: row.busy,
    startedAt: num(row.started_at),
    lastHeartbeatAt: num(row.last_heartbeat_at),
    version: row.version,
    stalls: parseStalls(row.stalls ?? null),
    health: parseHealth(row.health ?? null),
    clock: row.clock === null || row.clock === undefined ? num(row.last_heartbeat_at) : num(row.clock),
    clockSkewMs: row.clock_skew_ms === null || row.clock_skew_ms === undefined ? 0 : num(row.clock_skew_ms),
  };
}
