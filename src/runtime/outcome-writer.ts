/**
 * The outcome writer: turns finished attempts into batched store writes (complete, fail, release, progress,
 * logs), and announces each outcome (event, stats roll-up) only once the store has it. A write the store
 * fences off (this worker lost the lease) is logged, never retried. Writes still in flight are remembered
 * with their lease, so heartbeats keep those leases alive: a write retried through a store outage must
 * not see its job recovered and run again because the lease ran out while the outcome waited.
 */

import type { Dependency } from "../core/flows.js";
import type { AttemptError, JobRecord } from "../core/job.js";
import type { Logger } from "../core/logger.js";
import { StatsAccumulator } from "../core/stats.js";
import type {
  BlockRequest,
  CompleteRequest,
  FailNext,
  FailRequest,
  LeaseRef,
  LogRequest,
  ProgressRequest,
  ReleaseRequest,
  Store,
} from "../store/contract.js";
import { Batcher, type Linger, settleTaken } from "./batcher.js";
import type { SluiceEventEmitter } from "./events.js";
import { settlesWithin } from "./timing.js";

/** How often outcome counts are added to the store's hourly roll-up. */
const STATS_FLUSH_MS = 5_000;
/** Most items in one batched write. */
const MAX_BATCH = 500;

type CompleteAndStart = NonNullable<Store["completeAndStart"]>;

export interface OutcomeWriterOptions {
  /**
   * Batches of distinct jobs' outcomes written side by side: a networked store works on the next batch
   * during one batch's round trip. Progress and log lines always keep one lane, so they stay in order.
   */
  lanes: number;
  /**
   * Completions held back so that scattered ones share a write (null: none). When long jobs finish one
   * at a time each completion is a round trip of its own, and on a networked store a round trip costs the
   * worker's process 150–250 µs of CPU on the machine measured (`npm run bench:round-trips`).
   */
  completionLinger?: Linger | null;
  /** Called whenever a tracked write settles (the fetch loop may be waiting for one). */
  onWriteSettled: () => void;
  /** Called when the store refused an outcome: this worker no longer holds the job's lease. */
  onFenced?: (job: JobRecord) => void;
}

export class OutcomeWriter {
  private readonly completions: Batcher<CompleteRequest, boolean>;
  private readonly failures: Batcher<FailRequest, boolean>;
  private readonly releases: Batcher<ReleaseRequest, boolean>;
  private readonly blocks: Batcher<BlockRequest, boolean>;
  private readonly progressWrites: Batcher<ProgressRequest, boolean>;
  private readonly starts: Batcher<LeaseRef, boolean>;
  private readonly logWrites: Batcher<LogRequest, undefined>;
  /**
   * Outcome writes queued but not yet stored: their requests, which carry the job's lease (id, token). A
   * request leaves once its write settled and its outcome was announced.
   */
  private readonly pending = new Set<LeaseRef>();
  /** Outcomes since the last flush to the hourly roll-up. */
  private readonly stats = new StatsAccumulator();
  private statsTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly events: SluiceEventEmitter,
    private readonly logger: Logger,
    private readonly options: OutcomeWriterOptions,
  ) {
    const batcher = <I, R>(
      name: string,
      write: (items: I[]) => Promise<R[]>,
      lanes = 1,
      linger: Linger | null = null,
    ) => new Batcher<I, R>(name, write, logger, MAX_BATCH, lanes, linger);
    this.completions = batcher(
      "complete",
      (items) => this.writeCompletions(items),
      options.lanes,
      options.completionLinger ?? null,
    );
    this.failures = batcher("fail", (items) => store.fail(items), options.lanes);
    this.releases = batcher("release", (items) => store.release(items), options.lanes);
    this.blocks = batcher("block", (items) => store.block(items), options.lanes);
    this.progressWrites = batcher("progress", (items) => store.saveProgress(items));
    this.starts = batcher("start", (items) => this.writeStarts(items), options.lanes);
    this.logWrites = batcher("log", async (items) => {
      await store.appendLogs(items);
      return items.map(() => undefined);
    });
  }

  /** Starts the periodic stats flush. */
  start(): void {
    this.statsTimer = setInterval(() => void this.flushStats(), STATS_FLUSH_MS);
  }

  /** Outcome writes not yet stored. */
  get unwritten(): number {
    return this.pending.size;
  }

  /** The leases of jobs whose outcome is still being written (heartbeats keep them alive). */
  pendingLeases(): LeaseRef[] {
    return [...this.pending].map((request) => ({ id: request.id, token: request.token }));
  }

  /**
   * Queues a completion (`result`: JSON text or null) and returns at once, so the slot frees and the next
   * claim overlaps the write. Stats and the `completed` event follow the write.
   */
  complete(job: JobRecord, startedAt: number, result: string | null): void {
    const finishedAt = Date.now();
    const request: CompleteRequest = { id: job.id, token: job.leaseToken, result };
    this.pending.add(request);
    this.completions.add(request, (failed, value) => {
      if (this.applied(failed, value)) {
        this.stats.completed(job.queue, finishedAt, finishedAt - startedAt);
        if (this.events.wants("completed")) {
          this.events.emit("completed", {
            jobId: job.id,
            queue: job.queue,
            task: job.task,
            at: finishedAt,
            attempt: job.attempt,
            durationMs: finishedAt - startedAt,
            result: result === null ? null : JSON.parse(result),
          });
        }
      } else this.fenced(job, "completion");
      this.settled(request);
    });
  }

  /** Queues a failed attempt moving the job to `next`; events and stats follow the write. */
  fail(job: JobRecord, error: AttemptError, next: FailNext): void {
    const request: FailRequest = { id: job.id, token: job.leaseToken, error, next };
    this.pending.add(request);
    this.failures.add(request, (failed, value) => {
      if (this.applied(failed, value)) {
        if (next.state !== "cancelled") this.stats.failed(job.queue, error.at);
        if (next.state === "dead") this.stats.dead(job.queue, error.at);
        this.announceFailure(job, error, next);
      } else this.fenced(job, next.state === "cancelled" ? "cancel" : "failure");
      this.settled(request);
    });
  }

  /** Gives a job back without charging its attempt (at `runAt`, or at once); resolves once stored or given up. */
  release(job: JobRecord, reason: string, runAt?: number): Promise<void> {
    const request: ReleaseRequest = {
      id: job.id,
      token: job.leaseToken,
      reason,
      ...(runAt !== undefined ? { runAt } : {}),
    };
    this.pending.add(request);
    return new Promise<void>((resolve) => {
      this.releases.add(request, (failed, value) => {
        const applied = this.applied(failed, value);
        this.settled(request);
        if (applied && this.events.wants("released")) {
          this.events.emit("released", {
            jobId: job.id,
            queue: job.queue,
            task: job.task,
            at: Date.now(),
            reason,
            runAt: runAt ?? null,
          });
        }
        resolve();
      });
    });
  }

  /** Ends an attempt by waiting for children (store.block; fenced, batched); resolves once stored or given up. */
  block(job: JobRecord, dependsOn: readonly Dependency[]): Promise<void> {
    const request: BlockRequest = { id: job.id, token: job.leaseToken, dependsOn };
    this.pending.add(request);
    return new Promise<void>((resolve) => {
      this.blocks.add(request, (failed, value) => {
        this.applied(failed, value);
        this.settled(request);
        resolve();
      });
    });
  }

  /**
   * Marks a job claimed ahead as started (batched, fenced); false when the store refused (the job was
   * deleted, moved, cancelled or recovered, or its queue is paused) or could not be reached.
   */
  markStarted(job: JobRecord): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.starts.add({ id: job.id, token: job.leaseToken }, (failed, value) =>
        resolve(this.applied(failed, value)),
      );
    });
  }

  /**
   * Writes starts, with the completions queued and not yet written riding along where the store can take
   * both in one call (`Store.completeAndStart`). A job that starts usually takes the slot of one that just
   * completed, and that completion is held a few ms for others to join it (the completion linger): on
   * I/O-bound jobs, which end and start one at a time, this saves a third of the worker's round trips.
   */
  private writeStarts(items: LeaseRef[]): Promise<boolean[]> {
    return this.withRiders(
      items,
      this.completions,
      (starts) => this.store.start(starts),
      (both, starts, completions) => both(completions, starts).then((r) => [r.started, r.completed]),
    );
  }

  /** Writes completions, with the starts queued at that moment riding along: whichever goes first. */
  private writeCompletions(items: CompleteRequest[]): Promise<boolean[]> {
    return this.withRiders(
      items,
      this.starts,
      (completions) => this.store.complete(completions),
      (both, completions, starts) => both(completions, starts).then((r) => [r.completed, r.started]),
    );
  }

  /**
   * Writes `items` with what `other` has queued riding along in one `completeAndStart` call (`together`
   * returns the results of both), or alone (`alone`) when the store has no such call or nothing is queued
   * there. If the call fails, the riders go back to `other`, which retries or isolates them as always, and
   * `items` are written alone: what the store refuses of one batcher never holds the other's back.
   */
  private async withRiders<I, J>(
    items: I[],
    other: Batcher<J, boolean>,
    alone: (items: I[]) => Promise<boolean[]>,
    together: (
      both: CompleteAndStart,
      items: I[],
      riders: J[],
    ) => Promise<[own: boolean[], riders: boolean[]]>,
  ): Promise<boolean[]> {
    const both = this.store.completeAndStart?.bind(this.store);
    const riders = both ? other.takeQueued(MAX_BATCH) : [];
    if (!both || riders.length === 0) return alone(items);
    let result: [own: boolean[], riders: boolean[]];
    try {
      result = await together(
        both,
        items,
        riders.map((rider) => rider.item),
      );
    } catch {
      other.requeue(riders);
      return alone(items);
    }
    riders.forEach((rider, i) => {
      settleTaken(rider, false, result[1][i] ?? false);
    });
    return result[0];
  }

  /** Stores a handler's progress (fenced by the lease); `event: false` writes no fleet-wide event. */
  async saveProgress(job: JobRecord, text: string, event = true): Promise<void> {
    await this.progressWrites.push(
      event
        ? { id: job.id, token: job.leaseToken, progress: text }
        : { id: job.id, token: job.leaseToken, progress: text, event: false },
    );
  }

  /** Appends a handler's log line. */
  async log(job: JobRecord, message: string, at: number): Promise<void> {
    await this.logWrites.push({ id: job.id, at, attempt: job.attempt, message });
  }

  /**
   * Resolves when everything queued so far (outcomes with their events, progress, log lines) is written
   * or given up. The writer stays open: the inline runner calls it after each job, so the next claim and
   * the caller of enqueue see the outcome.
   */
  async flush(): Promise<void> {
    const batchers = [
      this.starts,
      this.completions,
      this.failures,
      this.releases,
      this.blocks,
      this.progressWrites,
      this.logWrites,
    ];
    // A write's outcome is announced when its batch settles, inside the drain.
    await drainAll(batchers);
  }

  /**
   * Waits for queued writes and the last stats flush for at most `boundMs`, then gives up on what is left
   * (the store went away), so a worker's stop returns: a batcher retries an unreachable store forever.
   */
  async close(boundMs: number): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    const batchers = [
      this.starts,
      this.completions,
      this.failures,
      this.releases,
      this.blocks,
      this.progressWrites,
      this.logWrites,
    ];
    const written = (async () => {
      await drainAll(batchers);
      await this.flushStats();
    })();
    if (await settlesWithin(written, boundMs)) return;
    this.logger.error(
      { waitedMs: boundMs },
      "store unreachable at shutdown: unwritten outcomes are given up; those jobs are recovered when their leases expire",
    );
    for (const batcher of batchers) batcher.close();
  }

  /** Adds accumulated outcome counts to the hourly roll-up; keeps them for next time on failure. */
  async flushStats(): Promise<void> {
    if (this.stats.size === 0) return;
    const rows = this.stats.drain();
    try {
      await this.store.addHourlyStats(rows);
    } catch (error) {
      this.stats.restore(rows);
      this.logger.warn({ err: error }, "could not write stats roll-up; will retry");
    }
  }

  private announceFailure(job: JobRecord, error: AttemptError, next: FailNext): void {
    const base = { jobId: job.id, queue: job.queue, task: job.task, at: Date.now() };
    if (next.state === "cancelled") {
      this.events.emit("cancelled", { ...base, reason: next.reason });
      return;
    }
    this.events.emit("failed", { ...base, attempt: job.attempt, error });
    if (next.state === "scheduled") {
      this.events.emit("retrying", { ...base, attempt: job.attempt, runAt: next.runAt, error });
    } else if (next.state === "waiting") {
      this.events.emit("retrying", { ...base, attempt: job.attempt, runAt: Date.now(), error });
    } else {
      this.events.emit("dead", { ...base, attempt: job.attempt, reason: next.reason });
      this.logger.warn({ jobId: job.id, queue: job.queue, task: job.task, reason: next.reason }, "job dead");
    }
  }

  /**
   * Whether a write was applied: `(false, applied)` from the store, or `(true, error)` when it never
   * succeeded (logged; counts as not applied: the lease will expire and recovery runs the job again).
   */
  private applied(failed: boolean, value: unknown): boolean {
    if (!failed) return Boolean(value);
    this.logger.error({ err: value }, "outcome not stored; the job will be recovered when its lease expires");
    return false;
  }

  /** A tracked write settled (its outcome announced): its lease no longer needs keeping alive. */
  private settled(request: LeaseRef): void {
    this.pending.delete(request);
    this.options.onWriteSettled();
  }

  private fenced(job: JobRecord, what: string): void {
    this.options.onFenced?.(job);
    this.logger.warn(
      { jobId: job.id, queue: job.queue, token: job.leaseToken },
      `${what} refused: this worker no longer holds the job's lease (it expired and the job was recovered, cancelled or deleted)`,
    );
  }
}

/**
 * Drains every batcher until none has anything left: completions taken by a start write that then failed
 * go back to their own batcher after its drain may have returned (OutcomeWriter.writeStarts).
 */
async function drainAll(
  batchers: readonly Pick<Batcher<unknown, unknown>, "drain" | "busy">[],
): Promise<void> {
  do await Promise.allSettled(batchers.map((b) => b.drain()));
  while (batchers.some((b) => b.busy));
}
