/**
 * Maintenance that keeps the store healthy without a cron or a separate "beat" process: lease recovery
 * (orphaned jobs of crashed workers), recurring schedules, retention pruning, and worker-registry cleanup.
 * Every worker runs
 * it, but only the holder of the `maintenance` leader lease does the work in a given period, so a fleet
 * does not repeat it; every step is also safe to run concurrently (conditional updates), so a leader
 * change never double-recovers a job.
 *
 * After a store outage, recovery waits until the store and this process's connection have been back for one
 * lease period (`leaseMs`, passed to the store as `waitAfterRestartMs`): leases that ran out during the
 * outage mostly belong to live workers holding finished outcomes, which meanwhile write them or extend
 * their leases. Recovering them at once would run those jobs a second time (src/store/outage.ts).
 */
import { DEFAULT_EVENT_RETENTION, type EventRetention } from "../core/fleet-events.js";
import type { Logger } from "../core/logger.js";
import { recoveryStats } from "../core/stats.js";
import type { Store } from "../store/contract.js";
import type { SluiceEventEmitter } from "./events.js";
import { Scheduler } from "./scheduler.js";

export interface MaintenanceOptions {
  owner: string;
  intervalMs: number;
  /**
   * The worker's lease: after a store restart or reconnect, expired leases are recovered only once the
   * store has been back this long. Absent: at once (no wait).
   */
  leaseMs?: number;
  /** Prune every N passes. Default 1: pruning a little often keeps up with high completion rates. */
  pruneEvery?: number;
  /** Fleet-wide event retention to prune by. Absent: the defaults. */
  events?: EventRetention;
}

const BATCH = 500;
/** Completed jobs one prune call deletes at most (one transaction / one script: keep it short). */
const PRUNE_BATCH = 5_000;
/**
 * Longest one pass keeps pruning. Pruning repeats until a call deletes less than a batch, so retention
 * keeps up with any completion rate the store can carry (hundreds of thousands of jobs per pass), while
 * a huge backlog of expired history is worked off over several passes instead of in one long stall.
 */
const PRUNE_BUDGET_MS = 2_000;

export class Maintenance {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private passes = 0;
  private stopped = false;
  private readonly scheduler: Scheduler;
  /** Fires the next schedule tick on time between passes (armed by the leader only). */
  private tickTimer: NodeJS.Timeout | null = null;
  private firing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly events: SluiceEventEmitter,
    private readonly logger: Logger,
    private readonly options: MaintenanceOptions,
  ) {
    this.scheduler = new Scheduler(store, events, logger);
  }

  start(): void {
    this.schedule(Math.random() * this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.tickTimer) clearTimeout(this.tickTimer);
    await this.running;
    await this.firing;
    try {
      await this.store.resign("maintenance", this.options.owner);
    } catch {
      // The lease expires by itself.
    }
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass().finally(() => {
        this.running = null;
        this.schedule(this.options.intervalMs * (0.8 + Math.random() * 0.4));
      });
    }, delay);
  }

  /** One pass; public so tests and `sluice recover` can drive it. */
  async pass(): Promise<void> {
    try {
      const leader = await this.store.tryLead("maintenance", this.options.owner, this.options.intervalMs * 3);
      if (!leader) return;
      await this.recoverExpired();
      await this.fireSchedules();
      if (this.passes++ % (this.options.pruneEvery ?? 1) === 0) await this.prune();
    } catch (error) {
      this.logger.warn({ err: error }, "maintenance pass failed; will retry");
    }
  }

  /** Fires due schedules, then arms a timer for the next tick when it comes before the next pass. */
  private async fireSchedules(): Promise<void> {
    const next = await this.scheduler.fireDue();
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    if (next === null || this.stopped) return;
    const wait = Math.max(next - Date.now(), 0);
    if (wait > this.options.intervalMs * 2) return; // a later pass arms it
    this.tickTimer = setTimeout(() => {
      this.tickTimer = null;
      if (this.stopped) return;
      this.firing = this.fireSchedules()
        .catch((error: unknown) => this.logger.warn({ err: error }, "firing schedules failed; will retry"))
        .finally(() => {
          this.firing = null;
        });
    }, wait);
  }

  /** Deletes completed jobs past their retention (in batches, within PRUNE_BUDGET_MS) and silent workers. */
  private async prune(): Promise<void> {
    const workersSilentSince = Date.now() - Math.max(this.options.intervalMs * 20, 5 * 60_000);
    const deadline = Date.now() + PRUNE_BUDGET_MS;
    const events = this.options.events ?? DEFAULT_EVENT_RETENTION;
    const total = { jobs: 0, workers: 0, events: 0 };
    for (;;) {
      const pruned = await this.store.prune({
        limit: PRUNE_BATCH,
        workersSilentSince,
        eventsBefore: Date.now() - events.retentionMs,
        maxEvents: events.maxEvents,
      });
      total.jobs += pruned.jobs;
      total.workers += pruned.workers;
      total.events += pruned.events;
      const more = pruned.jobs >= PRUNE_BATCH || pruned.events >= PRUNE_BATCH;
      if (!more || Date.now() >= deadline || this.stopped) break;
    }
    if (total.jobs + total.workers + total.events > 0) this.logger.debug(total, "pruned");
  }

  private async recoverExpired(): Promise<void> {
    for (;;) {
      const recovered = await this.store.recover({
        mode: {
          kind: "expired",
          ...(this.options.leaseMs !== undefined ? { waitAfterRestartMs: this.options.leaseMs } : {}),
        },
        dryRun: false,
        limit: BATCH,
      });
      for (const job of recovered) {
        this.logger.warn(
          {
            jobId: job.id,
            queue: job.queue,
            task: job.task,
            attempt: job.attempt,
            to: job.to,
            reason: job.reason,
          },
          "recovered job with expired lease",
        );
        this.events.emit("recovered", {
          jobId: job.id,
          queue: job.queue,
          task: job.task,
          at: Date.now(),
          attempt: job.attempt,
          to: job.to,
          reason: job.reason,
        });
      }
      if (recovered.length > 0) {
        // Recovered attempts count as failures (and dead jobs as dead) in the roll-up, as a worker's would.
        await this.store.addHourlyStats(recoveryStats(recovered, Date.now())).catch((error: unknown) => {
          this.logger.warn({ err: error }, "could not add recovered jobs to the stats roll-up");
        });
      }
      for (const job of recovered) {
        if (job.to !== "dead") continue;
        this.events.emit("dead", {
          jobId: job.id,
          queue: job.queue,
          task: job.task,
          at: Date.now(),
          attempt: job.attempt,
          reason: job.reason,
        });
      }
      if (recovered.length < BATCH) return;
    }
  }
}
