/** What `sluice doctor` looks at and what it reports. */
import type {
  HourlyStats,
  JobRecord,
  KeyHold,
  QueueOverview,
  StoreInfo,
  StuckBlockedJob,
  WorkerOverview,
} from "../index.js";
import type { StoreTarget } from "../store/engine.js";

/** Where the store is, as doctor fixes name it (never with the password). */
/** One queue's outcomes in one hour, as `Admin.stats` returns them. */
export type { HourlyStats, StoreTarget };

/**
 * Severity of a finding; any `critical` makes `sluice doctor` exit 1. `skipped`: the check could not run
 * (the store is unreachable), so it says nothing either way — never read it as `ok`.
 */
export type Severity = "ok" | "warn" | "critical" | "skipped";

/** Check ids, in report order. */
export const CHECK_IDS = [
  "store-reachable",
  "store-hazard",
  "no-worker",
  "stagnation",
  "dead-letter-growth",
  "past-timeout",
  "late-heartbeat",
  "event-loop-stalls",
  "paused-backlog",
  "rate-limited",
  "rate-held",
  "stuck-blocked",
  "failing-health-check",
  "clock-skew",
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

/** One finding: what is wrong (or fine), the numbers behind it, and the command that fixes it. */
export interface Finding {
  check: CheckId;
  severity: Severity;
  /** What it is about: a queue, a job id, a worker id, a hazard code; null for the whole store. */
  subject: string | null;
  message: string;
  /** The numbers behind the finding. */
  evidence: Record<string, number | string | boolean | null>;
  /** The exact command (or setting) that fixes it; null when nothing needs doing. */
  fix: string | null;
}

/** Everything the checks need, gathered once from the admin API (so checks are pure functions). */
export interface DoctorInput {
  now: number;
  /** Window for stagnation. */
  windowMs: number;
  /** A worker whose last heartbeat is older than this is late. */
  staleAfterMs: number;
  store:
    | { reachable: true; pingMs: number; info: StoreInfo }
    | { reachable: false; error: string; location: string; engine: string };
  target: StoreTarget;
  queues: QueueOverview[];
  /** Workers with `alive` judged against `staleAfterMs`. */
  workers: WorkerOverview[];
  /** Roll-up rows since `rollupSince` (the start of the current hour). */
  stats: HourlyStats[];
  /** Start of the hour the roll-up rows in `stats` count from (epoch ms). */
  rollupSince: number;
  /**
   * Latest completion per queue (epoch ms) within `completionsLookbackMs` — from the roll-up, as of the
   * workers' last stats flush (every few seconds); queues with none are absent.
   */
  lastCompletions: Map<string, number>;
  /** How far back `lastCompletions` looked (at least the window). */
  completionsLookbackMs: number;
  /** Active jobs (up to 10 000). */
  active: JobRecord[];
  /** Blocked jobs nothing will release (up to 100): `Admin.stuckBlocked`. */
  stuckBlocked: StuckBlockedJob[];
  /**
   * Limit keys held by a rate limit (up to 1,000, largest backlog first): `Admin.keyHolds`; or the reason
   * they could not be read (then `rate-held` is skipped, the other checks still run).
   */
  keyHolds: KeyHold[] | { error: string };
  /** Appended to every suggested `sluice` command (` --url '…'` when the URL came from --url). */
  commandSuffix: string;
}

/** `sluice doctor --json`. */
export interface DoctorReport {
  /** False when any finding is critical (then the exit code is 1). */
  ok: boolean;
  summary: Record<Severity, number>;
  store: { engine: string; location: string; version: string | null; pingMs: number | null };
  windowMs: number;
  findings: Finding[];
}
