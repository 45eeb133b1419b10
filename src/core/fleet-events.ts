/**
 * Fleet-wide job events: every lifecycle transition, written by the store in the transition's own
 * transaction (or Lua script), with a store-assigned id that increases in commit order. Any process reads
 * them (`sluice.events()`, the HTTP API's `/events` stream); in-process events (`sluice.on`) only see what
 * one process did.
 */
import { ValidationError } from "./errors.js";
import type { Json } from "./job.js";

/** Every event type, in lifecycle order. */
export const FLEET_EVENT_TYPES = [
  /**
   * A job was stored (`data.state`: `waiting`, `scheduled`, `blocked`, or `dead` when a dependency had
   * already failed). Not emitted when an existing job was returned.
   */
  "enqueued",
  /** A worker started an attempt (`data.workerId`). Jobs claimed ahead emit it when they start, not when claimed. */
  "active",
  /** A handler reported progress (`data.progress`). Tasks can turn these off (`progressEvents: false`). */
  "progress",
  /** An attempt succeeded. */
  "completed",
  /** A failed attempt will run again at `data.runAt` (`data.error`: its message). */
  "retrying",
  /** The job went to the dead letters (`data.error` or `data.reason`). */
  "dead",
  /** The job was cancelled (`data.reason`). */
  "cancelled",
  /** A running job went back to the queue without charging its attempt (`data.reason`, `data.runAt`). */
  "released",
  /** Lease recovery took the job back from a silent worker (`data.to`, `data.reason`). */
  "recovered",
  /** An operator retried a finished or scheduled job: it is waiting again with fresh attempts. */
  "retried",
  /** An operator deleted the job. */
  "deleted",
  /** An operator moved the job to another queue (`queue` is the new queue, `data.from` the old one). */
  "moved",
  /** A queue was paused (`jobId` null; `data.until`: null for an operator's pause, a time for a rate limit). */
  "paused",
  /** A queue was resumed (`jobId` null). */
  "resumed",
  /** A running job ended its attempt waiting for its children (`data.pending`: how many are not final). */
  "blocked",
  /** A blocked job's last dependency resolved: it is `waiting` (or `scheduled`, `data.state`) now. */
  "unblocked",
] as const;

export type FleetEventType = (typeof FLEET_EVENT_TYPES)[number];

/** One fleet-wide event. */
export interface FleetEvent {
  /**
   * Store-assigned, increasing in commit order. Opaque: pass it back as `after` (or as SSE `Last-Event-ID`);
   * do not compare ids as strings or numbers yourself.
   */
  id: string;
  type: FleetEventType;
  /** Epoch ms by the store's clock (the database's or the Redis server's; the process's for SQLite). */
  at: number;
  queue: string;
  /** Null for queue events (`paused`, `resumed`). */
  jobId: string | null;
  task: string | null;
  /** The attempt the event is about (1-based), when it is about one. */
  attempt: number | null;
  /** Small details of the transition (see {@link FLEET_EVENT_TYPES}); never the payload or the result. */
  data: Record<string, Json> | null;
}

/** How long the store keeps events. Maintenance prunes what is older or beyond the count. */
export interface EventRetention {
  /** False: no events are written at all (saves the writes on a store nobody follows). Default true. */
  enabled: boolean;
  /** Keep at most this many events (Redis trims approximately, per write). Default 100,000. */
  maxEvents: number;
  /** Keep events at most this long. Default 24 h. */
  retentionMs: number;
}

export const DEFAULT_EVENT_RETENTION: EventRetention = Object.freeze({
  enabled: true,
  maxEvents: 100_000,
  retentionMs: 24 * 60 * 60 * 1000,
});

/** True when `value` is a known event type. */
export function isFleetEventType(value: string): value is FleetEventType {
  return (FLEET_EVENT_TYPES as readonly string[]).includes(value);
}

/** How a caller configures events (`SluiceOptions.events`): `false` turns them off. */
export type EventRetentionOption = Partial<Omit<EventRetention, "enabled">> | false;

/**
 * Resolves `SluiceOptions.events` against the defaults.
 * @throws ValidationError `INVALID_CONFIG` for a count or duration that is not a positive integer
 */
export function resolveEventRetention(option: EventRetentionOption | undefined): EventRetention {
  if (option === false) return { ...DEFAULT_EVENT_RETENTION, enabled: false };
  if (option === undefined) return DEFAULT_EVENT_RETENTION;
  if (option === null || typeof option !== "object") {
    throw new ValidationError("INVALID_CONFIG", "events must be false or { maxEvents?, retentionMs? }", {
      field: "events",
    });
  }
  const resolved = { ...DEFAULT_EVENT_RETENTION, ...option, enabled: true };
  for (const key of ["maxEvents", "retentionMs"] as const) {
    const value = resolved[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `events.${key} must be a positive integer, got ${String(option[key])}; use events: false to write no events`,
        { field: `events.${key}` },
      );
    }
  }
  return resolved;
}
