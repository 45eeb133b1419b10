/**
 * Recurring schedules: when a schedule ticks, and which ticks fire after a time when nothing ran. Pure, no
 * I/O: the scheduler (runtime/scheduler.ts) turns due ticks into jobs, the store fires them atomically.
 *
 * A schedule ticks either by a cron expression (5 fields, or 6 with seconds first; evaluated in an IANA
 * time zone, default UTC) parsed by `croner`, or at a fixed interval aligned to the Unix epoch (`every:
 * "15m"` ticks at :00, :15, :30, :45), so every process computes the same ticks without coordination.
 */
import { createRequire } from "node:module";
import type { Cron as CronClass } from "croner";
import { describeValue, parseDuration } from "./duration.js";
import { ValidationError } from "./errors.js";

let cronClass: typeof CronClass | null = null;

/**
 * croner's `Cron`, loaded on first use (its CommonJS build, so the functions here stay synchronous): a
 * process that never evaluates a cron expression (a worker of a store without cron schedules) never loads it.
 */
function cronLib(): typeof CronClass {
  cronClass ??= (createRequire(import.meta.url)("croner") as typeof import("croner")).Cron;
  return cronClass;
}

/** What to do with ticks that passed while no scheduler ran (a deploy, an outage). */
export type MissedTicks =
  /** Fire once for the latest missed tick, drop the older ones (default: no storm, no lost day). */
  | "once"
  /** Fire every missed tick, oldest first (at most {@link MAX_TICKS_PER_FIRE} per pass; later passes go on). */
  | "all"
  /** Drop missed ticks: a tick fires only within {@link SKIP_GRACE_MS} of its time. */
  | "skip";

export const MISSED_TICKS: readonly MissedTicks[] = ["once", "all", "skip"];

/** Most jobs one firing of a schedule enqueues (policy `all` after a long outage); the next pass goes on. */
export const MAX_TICKS_PER_FIRE = 1_000;

/** How late a tick may fire and still count as on time under `missed: "skip"`. */
export const SKIP_GRACE_MS = 60_000;

/** Shortest interval schedule: below this a queue, not a schedule, is the tool. */
export const MIN_INTERVAL_MS = 100;

/** When a schedule ticks, validated. */
export type Timing = { cron: string; timezone: string } | { everyMs: number };

/**
 * Validates a cron expression and time zone, or an interval.
 *
 * @throws ValidationError `INVALID_CRON` for a bad expression, a time zone that is not IANA, or an
 *   expression that never matches (`0 0 30 2 *`); `INVALID_OPTION` for a bad interval or both given.
 */
export function validateTiming(
  input: { cron?: unknown; timezone?: unknown; every?: unknown },
  field: string,
): Timing {
  if (input.cron !== undefined && input.every !== undefined) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}: give cron (a cron expression) or every (an interval), not both`,
      { field: `${field}.every` },
    );
  }
  if (input.every !== undefined) {
    if (input.timezone !== undefined) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}.timezone applies to cron expressions only; an interval ticks every N ms whatever the zone`,
        { field: `${field}.timezone` },
      );
    }
    const everyMs = parseDuration(input.every as string | number, `${field}.every`);
    if (everyMs < MIN_INTERVAL_MS || !Number.isInteger(everyMs)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}.every must be a whole number of milliseconds of at least ${MIN_INTERVAL_MS}; got ${describeValue(input.every)}`,
        { field: `${field}.every` },
      );
    }
    return { everyMs };
  }
  if (typeof input.cron !== "string" || input.cron.trim() === "") {
    throw new ValidationError(
      "INVALID_CRON",
      `${field}.cron must be a cron expression such as "0 3 * * *" (minute hour day month weekday), or give ` +
        `every: "15m" for an interval; got ${describeValue(input.cron)}`,
      { field: `${field}.cron` },
    );
  }
  const timezone = input.timezone ?? "UTC";
  if (typeof timezone !== "string" || timezone === "") {
    throw new ValidationError(
      "INVALID_CRON",
      `${field}.timezone must be an IANA time zone such as "Asia/Seoul" or "UTC"; got ${describeValue(timezone)}`,
      { field: `${field}.timezone` },
    );
  }
  const cron = input.cron.trim();
  let next: Date | null;
  try {
    next = new (cronLib())(cron, { timezone, paused: true }).nextRun(new Date());
  } catch (error) {
    const message = (error as Error).message;
    const zone = /time ?zone/i.test(message);
    throw new ValidationError(
      "INVALID_CRON",
      zone
        ? `${field}.timezone "${timezone}" is not an IANA time zone; use a name such as "Europe/Berlin" or "UTC"`
        : `${field}.cron "${cron}" is not a valid cron expression (${message}); write 5 fields (minute hour ` +
            'day month weekday, e.g. "*/15 * * * *") or 6 with seconds first',
      { field: zone ? `${field}.timezone` : `${field}.cron`, cause: error },
    );
  }
  if (next === null) {
    throw new ValidationError(
      "INVALID_CRON",
      `${field}.cron "${cron}" never matches a date (e.g. February 30th); check the day and month fields`,
      { field: `${field}.cron` },
    );
  }
  return { cron, timezone };
}

/** The first tick strictly after `after` (epoch ms), or null when the expression matches no later date. */
export function nextTick(timing: Timing, after: number): number | null {
  if ("everyMs" in timing) return (Math.floor(after / timing.everyMs) + 1) * timing.everyMs;
  const next = new (cronLib())(timing.cron, { timezone: timing.timezone, paused: true }).nextRun(
    new Date(after),
  );
  return next === null ? null : next.getTime();
}

/** The latest tick strictly before `before` (epoch ms), or null when there is none. */
export function previousTick(timing: Timing, before: number): number | null {
  if ("everyMs" in timing) return (Math.ceil(before / timing.everyMs) - 1) * timing.everyMs;
  const [previous] = new (cronLib())(timing.cron, { timezone: timing.timezone, paused: true }).previousRuns(
    1,
    new Date(before),
  );
  return previous === undefined ? null : previous.getTime();
}

/** What one firing of a due schedule does: the ticks to enqueue jobs for, and the tick to wait for next. */
export interface Firing {
  /** Ticks that get a job (oldest first); empty when every due tick is skipped. */
  ticks: number[];
  /** The next tick to fire (after `now`, or after the last tick taken when a long backlog is capped). */
  nextAt: number | null;
  /** The latest tick this firing covers (fired or skipped). */
  lastTick: number;
}

/**
 * Decides a firing of a schedule whose next tick `dueAt` is at or before `now`. The ticks due are `dueAt`
 * and every later tick up to `now`; the policy says which of them get a job.
 */
export function planFiring(timing: Timing, missed: MissedTicks, dueAt: number, now: number): Firing {
  if (missed === "all") {
    const ticks: number[] = [dueAt];
    let next = nextTick(timing, dueAt);
    while (next !== null && next <= now) {
      // A long outage: take a bounded batch; the schedule stays due and the next pass goes on from there.
      if (ticks.length >= MAX_TICKS_PER_FIRE)
        return { ticks, nextAt: next, lastTick: ticks.at(-1) as number };
      ticks.push(next);
      next = nextTick(timing, next);
    }
    return { ticks, nextAt: next, lastTick: ticks.at(-1) as number };
  }
  // Only the latest due tick matters: found directly, however long nothing ran.
  const latest = Math.max(dueAt, previousTick(timing, now + 1) ?? dueAt);
  const nextAt = nextTick(timing, Math.max(now, latest));
  if (missed === "skip" && now - latest > SKIP_GRACE_MS) return { ticks: [], nextAt, lastTick: latest };
  return { ticks: [latest], nextAt, lastTick: latest };
}

/** The job id of a schedule's tick: the same in every process, so a tick can never make two jobs. */
export function scheduleJobId(name: string, tick: number): string {
  return `schedule:${name}:${tick}`;
}

/** Validates the missed-ticks policy. */
export function validateMissed(value: unknown, field: string): MissedTicks {
  if (value === undefined) return "once";
  if (typeof value === "string" && (MISSED_TICKS as readonly string[]).includes(value))
    return value as MissedTicks;
  throw new ValidationError(
    "INVALID_OPTION",
    `${field} must be one of ${MISSED_TICKS.map((m) => `"${m}"`).join(", ")} (what to do with ticks missed ` +
      `while no scheduler ran); got ${describeValue(value)}`,
    { field },
  );
}
