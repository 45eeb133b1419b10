/**
 * A worker's health checks as every engine stores them in its registry entry: one JSON text (a SQL column,
 * a Redis hash field), null when the worker has no check. Clock skew is computed by each engine against
 * its own clock (see WorkerInfo.clockSkewMs).
 */
import type { QueueHealth } from "./contract.js";

/** The stored text, or null when the worker has no health check. */
export function healthText(health: readonly QueueHealth[] | undefined): string | null {
  if (!health || health.length === 0) return null;
  return JSON.stringify(health);
}

/** The stored value (JSON text, or already parsed by the driver) back to QueueHealth[]; none when unreadable. */
export function parseHealth(stored: unknown): QueueHealth[] {
  let value = stored;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return [];
    }
  }
  if (!Array.isArray(value)) return [];
  return value
    .filter((h): h is Partial<QueueHealth> => typeof h === "object" && h !== null)
    .map((h) => ({
      queue: String(h.queue ?? ""),
      ok: h.ok !== false,
      since: Number(h.since ?? 0),
      lastError: typeof h.lastError === "string" ? h.lastError : null,
      checkedAt: typeof h.checkedAt === "number" ? h.checkedAt : null,
    }));
}
