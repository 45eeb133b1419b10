/** Row mapping shared by the SQL engines (SQLite and PostgreSQL store jobs in the same column layout). */
import type { Retention } from "../core/job.js";

/** Retention as the two columns `keep_mode` / `keep_value`. */
export function retentionColumns(retention: Retention): { mode: string; value: number | null } {
  if (retention === true) return { mode: "all", value: null };
  if (retention === false) return { mode: "none", value: null };
  if ("ageMs" in retention) return { mode: "age", value: retention.ageMs };
  return { mode: "count", value: retention.count };
}

/** The inverse of {@link retentionColumns}. */
export function retentionOf(mode: string, value: number | null): Retention {
  switch (mode) {
    case "none":
      return false;
    case "age":
      return { ageMs: value ?? 0 };
    case "count":
      return { count: value ?? 0 };
    default:
      return true;
  }
}

/**
 * Parses JSON text columns of one row, collecting problems instead of throwing, so one corrupt row never
 * stops a claim batch: the engine reports them in `JobRecord.dataError` and the worker fails that job.
 */
export class JsonFields {
  private readonly problems: string[] = [];

  parse<T>(text: string | null, field: string, fallback: T): T {
    if (text === null) return fallback;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      this.problems.push(`${field}: ${(error as Error).message}`);
      return fallback;
    }
  }

  /** The `dataError` text when any field failed, else undefined. */
  get error(): string | undefined {
    return this.problems.length > 0
      ? `stored job data is unreadable (${this.problems.join("; ")})`
      : undefined;
  }
}
