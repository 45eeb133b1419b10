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

/** Where each column is in a raw row (`statement.raw(true)`: an array per row, in the statement's column order). */
export type ColumnIndex = Readonly<Record<keyof JobRow, number>>;

const indexes = new WeakMap<object, ColumnIndex>();

/** The column positions of a statement returning `jobs` rows (computed once per prepared statement). */
export function columnIndex(statement: { columns(): { name: string }[] }): ColumnIndex {
  let index = indexes.get(statement);
  if (!index) {
    const positions: Record<string, number> = {};
    statement.columns().forEach((column, i) => {
      positions[column.name] = i;
    });
    index = positions as ColumnIndex;
    indexes.set(statement, index);
  }
  return index;
}

/**
 * A raw row as a {@link JobRow}. better-sqlite3 builds a row object property by property: for the 36 columns
 * of a job that is a dictionary-mode object of ~3 KiB and ~17 µs (measured); the array of a raw row and this
 * one-shape object cost a quarter of that. The hot reads (claims) take raw rows.
 */
export function jobRowFromRaw(v: readonly unknown[], c: ColumnIndex): JobRow {
  return {
    seq: v[c.seq] as number,
    id: v[c.id] as string,
    task: v[c.task] as string,
    queue: v[c.queue] as string,
    state: v[c.state] as string,
    payload: v[c.payload] as string,
    result: v[c.result] as string | null,
    priority: v[c.priority] as number,
    run_at: v[c.run_at] as number,
    created_at: v[c.created_at] as number,
    started_at: v[c.started_at] as number | null,
    finished_at: v[c.finished_at] as number | null,
    attempt: v[c.attempt] as number,
    max_attempts: v[c.max_attempts] as number,
    backoff: v[c.backoff] as string | null,
    timeout_ms: v[c.timeout_ms] as number | null,
    unique_key: v[c.unique_key] as string | null,
    tags: v[c.tags] as string,
    progress: v[c.progress] as string | null,
    lease_token: v[c.lease_token] as number,
    lease_expires_at: v[c.lease_expires_at] as number | null,
    worker_id: v[c.worker_id] as string | null,
    cancel_requested: v[c.cancel_requested] as number,
    keep_mode: v[c.keep_mode] as string,
    keep_value: v[c.keep_value] as number | null,
    errors: v[c.errors] as string,
    reason: v[c.reason] as string | null,
    parent_id: v[c.parent_id] as string | null,
    batch_id: v[c.batch_id] as string | null,
    pending_deps: v[c.pending_deps] as number,
    limit_key: (v[c.limit_key] ?? null) as string | null,
  };
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
