/** Row building for the PostgreSQL enqueue paths (plain: postgres-store.ts; flows: flow-enqueue.ts). */
import type { JobState } from "../../core/job.js";
import type { NewJob } from "../contract.js";
import { retentionColumns } from "../sql-common.js";
import { INSERT_ARRAYS } from "./sql.js";

/** Anything that runs a parameterised query: pg.Client, pg.PoolClient, or an ORM's connection. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

export function isQueryable(value: unknown): value is Queryable {
  return typeof value === "object" && value !== null && typeof (value as Queryable).query === "function";
}

/** Rows of a query result from `pg` (`{ rows }`) or from an ORM that returns the rows array itself. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  const rows = (result as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as T[]) : [];
}

/** A job deduplicates by key when it has one and names states to dedupe against. */
export function dedupesByKey(job: NewJob): boolean {
  return job.uniqueKey !== null && job.uniqueStates.length > 0;
}

/**
 * `jobs` as parallel arrays for INSERT_ARRAYS. Whether a job starts `scheduled` is decided with the
 * producer's clock, the same clock its `runAt` was computed with: a job meant to run now is `waiting`
 * even when the producer's clock runs ahead of the database's, or inside a long application transaction
 * (whose `now()` is its start). Promotion of scheduled jobs uses the database clock. `states` overrides
 * that decision per job (a flow writes `blocked` or `dead`).
 */
export function insertArrays(jobs: readonly NewJob[], states?: readonly JobState[]): unknown[][] {
  const arrays: unknown[][] = INSERT_ARRAYS.map(() => new Array(jobs.length));
  const now = Date.now();
  jobs.forEach((job, i) => {
    const keep = retentionColumns(job.retention);
    const values = [
      job.id,
      job.task,
      job.queue,
      states?.[i] ?? (job.runAt > now ? "scheduled" : "waiting"),
      job.payload,
      job.priority,
      job.runAt,
      job.maxAttempts,
      job.backoff ? JSON.stringify(job.backoff) : null,
      job.timeoutMs,
      job.uniqueKey,
      job.uniqueUntil,
      JSON.stringify(job.tags),
      keep.mode,
      keep.value,
      job.parentId,
      job.limitKey ?? null,
    ];
    values.forEach((value, column) => {
      (arrays[column] as unknown[])[i] = value;
    });
  });
  return arrays;
}
