/** What `sluice doctor` looks at and what it reports. */
import type { HourlyStats, JobRecord, QueueOverview, StoreInfo, WorkerOverview } from "../index.js";

/** One queue's outcomes in one hour, as `Admin.stats` returns them. */
export type { HourlyStats };

/** Severity of a finding; any `critical` makes `sluice doctor` exit 1. */
export type Severity = "ok" | "warn" | "critical";

/** One finding: what is wrong (or fine), the numbers behind it, and the command that fixes it. */
export interface Finding {
  /** Check id: `store-reachable`, `store-hazard`, `no-worker`, `stagnation`, `dead-letter-growth`, `past-timeout`, `late-heartbeat`, `paused-backlog`, `rate-limited`. */
  check: string;
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
  /** Window for stagnation and dead-letter growth. */
  windowMs: number;
  /** A worker whose last heartbeat is older than this is late. */
  staleAfterMs: number;
  store:
    | { reachable: true; pingMs: number; info: StoreInfo }
    | { reachable: false; error: string; location: string; engine: string };
  queues: QueueOverview[];
  /** Workers with `alive` judged against `staleAfterMs`. */
  workers: WorkerOverview[];
  /** Roll-up rows since the start of the hour containing `now - windowMs`. */
  stats: HourlyStats[];
  /** Active jobs (up to 10 000). */
  active: JobRecord[];
  /** Appended to every suggested `sluice` command (e.g. ` --url redis://…` when the URL came from --url). */
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
