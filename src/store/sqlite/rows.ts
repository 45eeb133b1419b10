/** Mapping between SQLite rows and the job model. */
import type { AttemptError, BackoffSpec, JobRecord, JobState, Json } from "../../core/job.js";
import { JsonFields, retentionOf } from "../sql-common.js";

/** A `jobs` row as better-sqlite3 returns it. */
export interface JobRow {
  seq: number;
  id: string;
  task: string;
  queue: string;
  state: string;
  payload: string;
  result: string | null;
  priority: number;
  run_at: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempt: number;
  max_attempts: number;
  backoff: string | null;
  timeout_ms: number | null;
  unique_key: string | null;
  tags: string;
  progress: string | null;
  lease_token: number;
  lease_expires_at: number | null;
  worker_id: string | null;
  cancel_requested: number;
  keep_mode: string;
  keep_value: number | null;
  errors: string;
  reason: string | null;
  parent_id: string | null;
  batch_id: string | null;
  pending_deps: number;
  limit_key: string | null;
}

/**
 * Converts a row; a field that does not parse is reported in `dataError` (the worker then fails the job
 * with that reason) instead of throwing, so one corrupt row can never stop a claim batch.
 */

export function rowToJob(row: JobRow): JobRecord {
  const fields = new JsonFields();
  const parse = <T>(text: string | null, field: string, fallback: T): T =>
    fields.parse(text, field, fallback);
  const job: JobRecord = {
    id: row.id,
    seq: row.seq,
    task: row.task,
    queue: row.queue,
    state: row.state as JobState,
    payload: parse<Json>(row.payload, "payload", null),
    result: parse<Json | null>(row.result, "result", null),
    priority: row.priority,
    runAt: row.run_at,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    backoff: parse<BackoffSpec | null>(row.backoff, "backoff", null),
    timeoutMs: row.timeout_ms,
    uniqueKey: row.unique_key,
    tags: parse<string[]>(row.tags, "tags", []),
    progress: parse<Json | null>(row.progress, "progress", null),
    leaseToken: row.lease_token,
    leaseExpiresAt: row.lease_expires_at,
    workerId: row.worker_id,
    cancelRequested: row.cancel_requested === 1,
    retention: retentionOf(row.keep_mode, row.keep_value),
    errors: parse<AttemptError[]>(row.errors, "errors", []),
    reason: row.reason,
    parentId: row.parent_id,
    batchId: row.batch_id,
    pendingDependencies: row.pending_deps,
    limitKey: row.limit_key ?? null,
  };
  const dataError = fields.error;
  if (dataError) job.dataError = dataError;
  return job;
}

/** Orders claimed rows the way the claim query selected them (RETURNING order is unspecified). */
export function byClaimOrder(a: JobRow, b: JobRow): number {
  return a.priority - b.priority || a.run_at - b.run_at || a.seq - b.seq;
}
