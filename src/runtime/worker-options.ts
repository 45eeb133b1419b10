/**
 * The worker's interfaces: the options of `sluice.worker()` and their validation (a bad option throws
 * before anything starts), what it needs from its Sluice instance, and what `stop()` reports.
 */
import { ValidationError } from "../core/errors.js";
import type { EventRetention } from "../core/fleet-events.js";
import type { EnqueuedStep } from "../core/flows.js";
import type { JobRecord } from "../core/job.js";
import type { Logger } from "../core/logger.js";
import type { FlowStep, RegisteredTask } from "../core/task.js";
import type { Store } from "../store/contract.js";
import type { SluiceEventEmitter } from "./events.js";
import { type HealthChecks, resolveHealthChecks } from "./health.js";
import { QueueSelector, type QueueSpec } from "./queue-selector.js";

/** Options of `sluice.worker()`. */
export interface WorkerOptions {
  /** Queue names in strict order, or `[name, weight]` pairs for weighted random order. Default `["default"]`. */
  queues?: QueueSpec;
  /** Jobs run at once by this worker. Default 10. */
  concurrency?: number;
  /** Lease length; a job whose worker stops heartbeating for this long is recovered. Default 30 s. */
  leaseMs?: number;
  /** Heartbeat period. Default leaseMs / 3. */
  heartbeatMs?: number;
  /** Safety poll period when idle (jittered ±25%). Default 1 s; wake-ups normally arrive sooner. */
  pollMs?: number;
  /**
   * Jobs claimed ahead of free slots and held under lease, so a finishing job is replaced without waiting
   * for a claim. A held job costs one more write when it starts (users see it as waiting until then) and
   * can delay a newly enqueued higher-priority job by as many jobs as are held. Those due to start within
   * about 20 ms at the observed rate are started ahead, by their claim when they fall that early in line,
   * and are `active` from then on.
   *
   * Default "auto": on a networked store (PostgreSQL, whose claim also waits for the WAL flush; Redis),
   * hold what this worker will start in the next 100 ms at the rate its jobs have been ending, at most
   * 100 — many for short jobs, none for jobs of a second or more, so a busy worker never keeps jobs from an
   * idle one (runtime/claim-ahead.ts); jobs held behind one that runs long go back to the queue after 1 s
   * (runtime/fetch-loop.ts HELD_STALE_MS). On SQLite (in process, a claim costs nothing to repeat) "auto"
   * holds none. A number holds that many, always.
   */
  prefetch?: number | "auto";
  /** Default grace for `stop()` before running handlers are aborted. Default 25 s. */
  shutdownGraceMs?: number;
  /**
   * Longest `stop()` waits on the store: for a claim in flight, and for the last outcome writes once
   * handlers are done. Past it (the store is unreachable) they are given up: those jobs' leases expire and
   * recovery runs them again (at-least-once). Default 10 s.
   */
  storeGraceMs?: number;
  /** Run maintenance (lease recovery, retention, registry cleanup) in this worker under a leader lock. Default true. */
  maintenance?: boolean;
  /** Period of the maintenance pass. Default min(leaseMs / 2, 5 s). */
  maintenanceMs?: number;
  /**
   * Dependency health checks by queue (runtime/health.ts), e.g.
   * `{ rag: { check: (signal) => qdrant.healthz({ signal }), everyMs: 10_000, timeoutMs: 5_000 } }`. While a
   * queue's check fails, this worker stops claiming from that queue (no attempt is charged; running jobs
   * finish; jobs claimed ahead go back) and resumes by itself when it passes. Per worker: other workers
   * judge their own reach of the dependency. Each queue must be one of `queues`.
   */
  health?: HealthChecks;
}

/** Worker options with defaults applied and every value checked. */
export interface ResolvedWorkerOptions {
  queues: QueueSelector;
  concurrency: number;
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  shutdownGraceMs: number;
  storeGraceMs: number;
  health: ReturnType<typeof resolveHealthChecks>;
}

/** Applies defaults and validates; throws INVALID_OPTION (field `worker.<name>`) on a bad value. */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  const queues = new QueueSelector(options.queues ?? ["default"]);
  const concurrency = positiveInt(options.concurrency ?? 10, "concurrency");
  const leaseMs = positiveInt(options.leaseMs ?? 30_000, "leaseMs");
  const heartbeatMs = positiveInt(options.heartbeatMs ?? Math.max(Math.floor(leaseMs / 3), 1), "heartbeatMs");
  if (heartbeatMs >= leaseMs) {
    throw new ValidationError(
      "INVALID_OPTION",
      `heartbeatMs (${heartbeatMs}) must be shorter than leaseMs (${leaseMs}) or leases expire between heartbeats`,
      { field: "worker.heartbeatMs" },
    );
  }
  const { prefetch } = options;
  if (prefetch !== undefined && prefetch !== "auto" && !(Number.isInteger(prefetch) && prefetch >= 0)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `worker.prefetch must be "auto" or an integer >= 0, got ${JSON.stringify(prefetch)}`,
      { field: "worker.prefetch" },
    );
  }
  return {
    queues,
    concurrency,
    leaseMs,
    heartbeatMs,
    pollMs: positiveInt(options.pollMs ?? 1_000, "pollMs"),
    shutdownGraceMs: nonNegativeInt(options.shutdownGraceMs ?? 25_000, "shutdownGraceMs"),
    storeGraceMs: nonNegativeInt(options.storeGraceMs ?? 10_000, "storeGraceMs"),
    health: resolveHealthChecks(options.health, queues.names),
  };
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ValidationError("INVALID_OPTION", `worker.${field} must be a positive integer, got ${value}`, {
      field: `worker.${field}`,
    });
  }
  return value;
}

function nonNegativeInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new ValidationError("INVALID_OPTION", `worker.${field} must be an integer >= 0, got ${value}`, {
      field: `worker.${field}`,
    });
  }
  return value;
}

/** What the worker needs from its Sluice instance. */
export interface WorkerHost {
  store(): Promise<Store>;
  readonly tasks: ReadonlyMap<string, RegisteredTask>;
  readonly events: SluiceEventEmitter;
  readonly logger: Logger;
  readonly maxPayloadBytes: number;
  /** Fleet-wide event retention, which maintenance applies. */
  readonly eventRetention: EventRetention;
  /** Enqueues children of a running job in one transaction (`ctx.enqueue`). */
  enqueueChildren(steps: readonly FlowStep[], parent: JobRecord): Promise<EnqueuedStep[]>;
}

/** What `worker.stop()` did (see its guarantees). */
export interface StopReport {
  /** Jobs given back without charging an attempt: claimed ahead, or still running when the grace ended. */
  released: string[];
  /**
   * Handlers still running when `stop()` returned because they ignore `ctx.signal`. Their jobs were
   * released (another worker may run them) and their outcomes will be refused.
   */
  unsettled: { jobId: string; task: string; queue: string; runningMs: number }[];
}
