/**
 * A worker's event-loop stalls as every engine stores them in its registry entry: one JSON text (a SQL
 * column, a Redis hash field), absent until the worker observed a stall.
 */
import { NO_STALLS, type StallRecord, type WorkerStalls } from "./contract.js";

/** The stored text, or null when there is nothing to store (no stall yet). */
export function stallsText(stalls: WorkerStalls | undefined): string | null {
  if (!stalls || stalls.count === 0) return null;
  return JSON.stringify(stalls);
}

/** The stored value (JSON text, or already parsed by the driver) back to WorkerStalls; none when unreadable. */
export function parseStalls(stored: unknown): WorkerStalls {
  let value = stored;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return { ...NO_STALLS };
    }
  }
  if (typeof value !== "object" || value === null) return { ...NO_STALLS };
  const v = value as Partial<WorkerStalls>;
  const last = v.last as Partial<StallRecord> | null | undefined;
  return {
    count: Number(v.count ?? 0),
    longestMs: Number(v.longestMs ?? 0),
    last:
      last && typeof last === "object"
        ? {
            at: Number(last.at ?? 0),
            ms: Number(last.ms ?? 0),
            leaseMs: Number(last.leaseMs ?? 0),
            tasks: Array.isArray(last.tasks) ? last.tasks.map(String) : [],
            jobIds: Array.isArray(last.jobIds) ? last.jobIds.map(String) : [],
          }
        : null,
  };
}
