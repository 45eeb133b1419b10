/** Row mapping shared by the SQL engines (SQLite and PostgreSQL store jobs in the same column layout). */
import type { MissedTicks } from "../core/cron.js";
import type { JobState, Retention } from "../core/job.js";
import type { JobTemplate, ScheduleRecord, ScheduleUpsert } from "./contract.js";

/** A SQL string literal of a constant (quotes doubled), for text built into a statement; never for input. */
export function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * A state list for `state IN (…)`, e.g. `'dead', 'cancelled'`, from a constant of core/states.ts. Built into
 * the statement text, so the statement reads and plans exactly as the literal list would.
 */
export function sqlStateList(states: readonly JobState[]): string {
  return states.map(sqlString).join(", ");
}

/** A held job (claimed ahead, not started: core/states.ts `isHeld`), for a table aliased `alias`. */
export function heldSql(alias = ""): string {
  return `(${alias}state = 'active' AND ${alias}started_at IS NULL)`;
}

/**
 * "The job is, as users see it, in one of `states`" (core/states.ts `asSeen`): a held job counts as
 * `waiting` and not as `active`. `states` must not be empty. Built into the statement text from constants
 * (and escaped), so it plans like the literal predicate.
 */
export function seenStateSql(states: readonly JobState[], alias = ""): string {
  const parts: string[] = [];
  const plain = states.filter((s) => s !== "waiting" && s !== "active");
  if (plain.length > 0) parts.push(`${alias}state IN (${sqlStateList(plain)})`);
  if (states.includes("waiting")) parts.push(`${alias}state = 'waiting'`, heldSql(alias));
  if (states.includes("active")) parts.push(`(${alias}state = 'active' AND ${alias}started_at IS NOT NULL)`);
  return `(${parts.join(" OR ")})`;
}

/**
 * {@link seenStateSql} split into disjoint conditions that each name one stored state, for listings: a
 * page is the UNION ALL of one index range scan per condition (`(queue, state, seq)`), each ordered by
 * `seq` and limited, instead of an OR that no index can serve in `seq` order (a whole-table sort over a
 * million rows).
 */
export function seenStateBranches(states: readonly JobState[], alias = ""): string[] {
  const branches: string[] = [];
  for (const state of new Set(states)) {
    if (state === "waiting") branches.push(`${alias}state = 'waiting'`, heldSql(alias));
    else if (state === "active")
      branches.push(`(${alias}state = 'active' AND ${alias}started_at IS NOT NULL)`);
    else branches.push(`${alias}state = ${sqlString(state)}`);
  }
  return branches;
}

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

/** A `schedules` row (the same columns on SQLite and PostgreSQL; bigints arrive as numbers). */
export interface ScheduleRow {
  name: string;
  version: string;
  task: string;
  queue: string;
  cron: string | null;
  timezone: string | null;
  every_ms: number | null;
  missed: string;
  template: string;
  next_at: number | null;
  last_tick_at: number | null;
  /** 0 / 1 on SQLite, a boolean on PostgreSQL. */
  paused: number | boolean;
  updated_at: number;
}

export function rowToSchedule(row: ScheduleRow): ScheduleRecord {
  return {
    name: row.name,
    task: row.task,
    queue: row.queue,
    cron: row.cron,
    timezone: row.timezone,
    everyMs: row.every_ms === null ? null : Number(row.every_ms),
    missed: row.missed as MissedTicks,
    template: JSON.parse(row.template) as JobTemplate,
    version: row.version,
    nextAt: row.next_at === null ? null : Number(row.next_at),
    lastTickAt: row.last_tick_at === null ? null : Number(row.last_tick_at),
    paused: row.paused === true || row.paused === 1,
    updatedAt: Number(row.updated_at),
  };
}

/**
 * The `ON CONFLICT (name) DO UPDATE SET` clause of a schedule upsert (`table` = how the stored row is
 * named): the same definition version keeps its clock (next tick, updated time); a new one takes the new.
 * `paused` is never set here: an operator's pause outlives any redeploy, changed definition or not.
 */
export function scheduleUpsertSet(table: string): string {
  const keep = (column: string) =>
    `${column} = CASE WHEN ${table}.version = excluded.version THEN ${table}.${column} ELSE excluded.${column} END`;
  return `${keep("next_at")}, ${keep("updated_at")},
    version = excluded.version, task = excluded.task, queue = excluded.queue, cron = excluded.cron,
    timezone = excluded.timezone, every_ms = excluded.every_ms, missed = excluded.missed,
    template = excluded.template`;
}

/** A schedule's columns in the order of the upsert: name, version, … next_at (updated_at is the store's). */
export function scheduleValues(schedule: ScheduleUpsert): unknown[] {
  return [
    schedule.name,
    schedule.version,
    schedule.task,
    schedule.queue,
    schedule.cron,
    schedule.timezone,
    schedule.everyMs,
    schedule.missed,
    JSON.stringify(schedule.template),
    schedule.nextAt,
  ];
}
