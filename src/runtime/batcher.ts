/**
 * Coalesces store writes made in the same turn of the event loop into one batch call (one transaction /
 * round trip), e.g. fifty completions of fifty no-op jobs become one `store.complete([...50])`.
 *
 * A flush that fails because the store is unreachable is retried with backoff until it succeeds or the
 * batcher is closed. A flush the store refuses (a rejected statement or script: retrying the same request
 * fails again) is split in halves until the item it refuses is alone, and only that item rejects, so one
 * poisoned item never blocks the others. Items are never dropped silently: a rejected or closed item
 * rejects its promise, so the caller knows the outcome was not stored (the job's lease then expires and
 * recovery runs it again: at-least-once).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { StoreUnavailableError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

/**
 * Receives one item's outcome, once: `(false, result)` when its batch was written, `(true, error)` when it
 * was not (refused alone, or the batcher closed first). Must not throw (a throw is surfaced as an unhandled
 * rejection, as a throwing promise reaction would be, and never affects the other items).
 */
export type BatchDone<R> = (...outcome: [failed: false, result: R] | [failed: true, error: unknown]) => void;

/**
 * Holding a small batch back a few ms so that items of the next turns join it: fewer round trips when
 * items come one at a time (long jobs finishing at scattered moments). A batch of `below` items or more
 * is written at once, so a busy writer never waits.
 */
export interface Linger {
  /** How long, or a function asked each time a batch starts to linger (the worker's scales with its jobs). */
  ms: number | (() => number);
  below: number;
}

interface Pending<I, R> {
  item: I;
  done: BatchDone<R>;
}

/** An item taken out of the queue by {@link Batcher.takeQueued}. */
export type Taken<I, R> = Readonly<Pending<I, R>>;

/** Settles an item taken by {@link Batcher.takeQueued} that its taker wrote (or failed to). */
export function settleTaken<I, R>(
  taken: Taken<I, R>,
  ...outcome: [failed: false, result: R] | [failed: true, error: unknown]
): void {
  settle(taken as Pending<I, R>, ...outcome);
}

export class Batcher<I, R> {
  private queue: Pending<I, R>[] = [];
  private scheduled = false;
  /** The timer of a small batch held back ({@link Linger}); null when none is. */
  private lingering: NodeJS.Timeout | null = null;
  /** Writes in flight, each a lane that goes on writing batches while items are queued. */
  private readonly lanes = new Set<Promise<void>>();
  private closed = false;

  /**
   * @param maxLanes writes in flight at once. 1 keeps writes in order (logs, progress); more lets a
   *   networked store work on a second batch during the first one's round trip (outcomes of distinct jobs).
   * @param linger hold a batch of fewer than `linger.below` items back `linger.ms` (null: write on the next
   *   turn of the event loop, always).
   */
  constructor(
    private readonly name: string,
    private readonly write: (items: I[]) => Promise<R[]>,
    private readonly logger: Logger,
    private readonly maxBatch = 500,
    private readonly maxLanes = 1,
    private readonly linger: Linger | null = null,
  ) {}

  /** Queues `item`; resolves with its result once the batch holding it is written. */
  push(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.add(item, (failed, value) => (failed ? reject(value) : resolve(value)));
    });
  }

  /**
   * Queues `item`; `done` receives its outcome. The callback form of {@link push}: no promise per item,
   * which matters on the completion path (one item per job).
   */
  add(item: I, done: BatchDone<R>): void {
    this.queue.push({ item, done });
    if (this.linger && this.queue.length < this.linger.below) this.scheduleAfterLinger(this.linger);
    else this.schedule();
  }

  /** Items are queued or being written. */
  get busy(): boolean {
    return this.queue.length > 0 || this.lanes.size > 0;
  }

  /** Resolves when everything queued so far is written (or rejected). */
  async drain(): Promise<void> {
    while (this.busy) {
      if (this.lanes.size > 0) await Promise.all([...this.lanes]);
      else {
        this.stopLingering();
        await this.startLane();
      }
    }
  }

  /**
   * Takes up to `most` queued items that no write has taken yet (a held batch among them), for a caller
   * that writes them in a call of its own. Each must then be settled once through `settleTaken`, or handed
   * back with `requeue`.
   */
  takeQueued(most: number): Taken<I, R>[] {
    const taken = this.queue.splice(0, most);
    if (this.queue.length === 0) this.stopLingering();
    return taken;
  }

  /** Queues taken items again, ahead of the others, to be written by this batcher. */
  requeue(taken: readonly Taken<I, R>[]): void {
    if (taken.length === 0) return;
    this.queue.unshift(...(taken as Pending<I, R>[]));
    if (this.closed) this.rejectQueued();
    else this.schedule();
  }

  /** Stops retrying; pending items reject. */
  close(): void {
    this.closed = true;
    this.stopLingering();
    this.rejectQueued();
  }

  /** Rejects every queued item: the batcher is closed and will write none of them. */
  private rejectQueued(): void {
    const pending = this.queue;
    this.queue = [];
    for (const p of pending) {
      settle(p, true, new Error(`${this.name} batcher closed before the write succeeded`));
    }
  }

  /** Starts a lane on the next turn of the event loop, so the items of this turn go in one batch. */
  private schedule(): void {
    if (this.scheduled || this.lanes.size >= this.maxLanes) return;
    this.stopLingering();
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.queue.length > 0 && this.lanes.size < this.maxLanes) void this.startLane();
    });
  }

  /**
   * Starts a lane after `ms` unless something starts one sooner: a full enough batch, `drain`, or a lane
   * in flight (its loop takes what is queued when its write returns).
   */
  private scheduleAfterLinger(linger: Linger): void {
    if (this.lingering || this.scheduled || this.lanes.size >= this.maxLanes) return;
    this.lingering = setTimeout(
      () => {
        this.lingering = null;
        this.schedule();
      },
      typeof linger.ms === "number" ? linger.ms : linger.ms(),
    );
  }

  private stopLingering(): void {
    if (!this.lingering) return;
    clearTimeout(this.lingering);
    this.lingering = null;
  }

  private startLane(): Promise<void> {
    const lane: Promise<void> = (async () => {
      while (this.queue.length > 0) await this.writeWithRetry(this.queue.splice(0, this.maxBatch));
    })().finally(() => {
      this.lanes.delete(lane);
      if (this.queue.length > 0) this.schedule();
    });
    this.lanes.add(lane);
    return lane;
  }

  private async writeWithRetry(batch: Pending<I, R>[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const results = await this.write(batch.map((p) => p.item));
        for (let i = 0; i < batch.length; i++) settle(batch[i] as Pending<I, R>, false, results[i] as R);
        return;
      } catch (error) {
        if (this.closed) {
          for (const p of batch) settle(p, true, error);
          return;
        }
        if (!isTransient(error)) return this.isolate(batch, error);
        const delay = Math.min(100 * 2 ** attempt, 5_000) * (0.5 + Math.random() / 2);
        this.logger.warn(
          {
            batch: this.name,
            size: batch.length,
            attempt: attempt + 1,
            retryInMs: Math.round(delay),
            err: error,
          },
          `could not write ${this.name} batch to the store; retrying`,
        );
        await sleep(delay);
      }
    }
  }

  /** The store refused `batch`: write its halves separately so only the refused items fail. */
  private async isolate(batch: Pending<I, R>[], error: unknown): Promise<void> {
    if (batch.length === 1) {
      this.logger.error(
        { batch: this.name, err: error },
        `the store refused a ${this.name} write; that outcome is not stored (the job is recovered when its lease expires)`,
      );
      if (batch[0]) settle(batch[0], true, error);
      return;
    }
    const middle = Math.ceil(batch.length / 2);
    await this.writeWithRetry(batch.slice(0, middle));
    await this.writeWithRetry(batch.slice(middle));
  }
}

/** Hands `pending` its outcome; a receiver that throws cannot stop the others of its batch. */
function settle<I, R>(
  pending: Pending<I, R>,
  ...outcome: [failed: false, result: R] | [failed: true, error: unknown]
): void {
  try {
    pending.done(...outcome);
  } catch (error) {
    void Promise.reject(error);
  }
}

/** Worth retrying as is: the store could not be reached (as opposed to refusing the request). */
function isTransient(error: unknown): boolean {
  return error instanceof StoreUnavailableError && !error.rejected;
}
