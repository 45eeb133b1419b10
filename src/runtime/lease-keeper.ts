/**
 * The lease keeper: keeps the leases of everything a worker holds alive and tells it which ones it lost
 * and which jobs an operator asked to cancel.
 *
 * - Heartbeat (every `heartbeatMs`): `store.extendLeases` on every held lease (running jobs, jobs claimed
 *   ahead, jobs whose outcome is still being written), then the worker's registry heartbeat; an entry
 *   pruned during an outage is registered again.
 * - Cancel checks: a store `cancel` signal (a cancel request, or an operator's pause) extends the leases at
 *   once (the same call reports pending cancels and paused queues), at most once per CANCEL_CHECK_MS; a signal inside that window leaves one trailing check, so a
 *   cancel that lands just after a check still reaches its handler within milliseconds.
 */
import type { Logger } from "../core/logger.js";
import type {
  ExtendResult,
  LeaseRef,
  Store,
  WorkerBeat,
  WorkerInfo,
  WorkerStalls,
} from "../store/contract.js";

/** Fewest milliseconds between two cancel checks caused by store signals (a burst of cancels costs one). */
const CANCEL_CHECK_MS = 100;

/** What the keeper asks of its worker. */
export interface LeaseHolder {
  readonly id: string;
  /** Every lease the worker holds now. */
  heldLeases(): LeaseRef[];
  /** Jobs running now (the registry's `busy`). */
  busy(): number;
  /** The worker's registry entry, to register again. */
  info(): WorkerInfo;
  /**
   * The worker no longer owns this lease: stop the job it leased, and never write its outcome. A report
   * names the token too; the worker acts only on the claim with that token (it may hold a newer one).
   */
  leaseLost(lease: LeaseRef): void;
  /** An operator asked to cancel the job of this lease (matched by id and token, like `leaseLost`). */
  cancelRequested(lease: LeaseRef): void;
  /** The queue of this lease's job is paused: give the job back if it was claimed ahead and not started. */
  queuePaused(lease: LeaseRef): void;
  /** Event-loop stalls to write with the heartbeat (undefined: none, the stored entry stays). */
  stalls?(): WorkerStalls | undefined;
  /** Health checks and clock to write with the heartbeat (the store measures the clock's skew). */
  beat?(): WorkerBeat;
}

export class LeaseKeeper {
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private cancelCheckTimer: NodeJS.Timeout | null = null;
  private lastCancelCheck = 0;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly holder: LeaseHolder,
    private readonly logger: Logger,
    private readonly leaseMs: number,
    private readonly heartbeatMs: number,
  ) {}

  start(): void {
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.cancelCheckTimer) clearTimeout(this.cancelCheckTimer);
    this.heartbeatTimer = null;
    this.cancelCheckTimer = null;
  }

  /** One heartbeat: extend every held lease, then the registry entry. Failures are logged, never thrown. */
  async heartbeat(): Promise<void> {
    if (this.stopped) return;
    try {
      const leases = this.holder.heldLeases();
      if (leases.length > 0) this.apply(await this.store.extendLeases(leases, this.leaseMs));
      const beat = this.holder.beat?.();
      if (
        !(await this.store.heartbeatWorker(this.holder.id, this.holder.busy(), this.holder.stalls?.(), beat))
      ) {
        // Pruned as silent (a long outage or a partition): register again so operators see this worker.
        await this.store.registerWorker(this.holder.info());
        this.logger.warn(
          "worker entry was missing from the registry (pruned while unreachable); registered again",
        );
      }
    } catch (error) {
      this.logger.warn({ err: error }, "heartbeat failed; leases may expire if the store stays unreachable");
    }
  }

  /** Extends `leases` now (a handler's `ctx.heartbeat()`); rejects when the store cannot be reached. */
  async extend(leases: LeaseRef[]): Promise<void> {
    this.apply(await this.store.extendLeases(leases, this.leaseMs));
  }

  /** A store signal said a cancel was requested: look for it now, or right after the throttle window. */
  checkCancels(): void {
    if (this.stopped || this.cancelCheckTimer) return; // a trailing check is due and will see this one too
    const wait = this.lastCancelCheck + CANCEL_CHECK_MS - Date.now();
    if (wait > 0) {
      this.cancelCheckTimer = setTimeout(() => {
        this.cancelCheckTimer = null;
        this.checkCancels();
      }, wait);
      return;
    }
    this.lastCancelCheck = Date.now();
    const leases = this.holder.heldLeases();
    if (leases.length === 0) return;
    this.store.extendLeases(leases, this.leaseMs).then(
      (result) => this.apply(result),
      () => {
        // The next heartbeat tries again.
      },
    );
  }

  private apply(result: ExtendResult): void {
    for (const lease of result.lost) this.holder.leaseLost(lease);
    for (const lease of result.cancelRequested) this.holder.cancelRequested(lease);
    for (const lease of result.paused) this.holder.queuePaused(lease);
  }
}
