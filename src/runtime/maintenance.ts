/**
 * Maintenance that keeps the store healthy without a cron or a separate "beat" process: lease recovery
 * (orphaned jobs of crashed workers), retention pruning, and worker-registry cleanup. Every worker runs
 * it, but only the holder of the `maintenance` leader lease does the work in a given period, so a fleet
 * does not repeat it; every step is also safe to run concurrently (conditional updates), so a leader
 * change never double-recovers a job.
 */
import type { Logger } from "../core/logger.js";
import type { Store } from "../store/contract.js";
import type { SluiceEventEmitter } from "./events.js";

export interface MaintenanceOptions {
  owner: string;
  intervalMs: number;
  /** Prune every N passes (retention is not urgent). Default 12. */
  pruneEvery?: number;
}

const BATCH = 500;

export class Maintenance {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private passes = 0;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly events: SluiceEventEmitter,
    private readonly logger: Logger,
    private readonly options: MaintenanceOptions,
  ) {}

  start(): void {
    this.schedule(Math.random() * this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
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
      if (this.passes++ % (this.options.pruneEvery ?? 12) === 0) {
        const workersSilentSince = Date.now() - Math.max(this.options.intervalMs * 20, 5 * 60_000);
        const pruned = await this.store.prune({ limit: 10_000, workersSilentSince });
        if (pruned.jobs + pruned.workers > 0) this.logger.debug(pruned, "pruned");
      }
    } catch (error) {
      this.logger.warn({ err: error }, "maintenance pass failed; will retry");
    }
  }

  private async recoverExpired(): Promise<void> {
    for (;;) {
      const recovered = await this.store.recover({ mode: { kind: "expired" }, dryRun: false, limit: BATCH });
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
      if (recovered.length < BATCH) return;
    }
  }
}
