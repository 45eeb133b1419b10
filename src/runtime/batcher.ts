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

interface Pending<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class Batcher<I, R> {
  private queue: Pending<I, R>[] = [];
  private scheduled = false;
  private flushing: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly name: string,
    private readonly write: (items: I[]) => Promise<R[]>,
    private readonly logger: Logger,
    private readonly maxBatch = 500,
  ) {}

  /** Queues `item`; resolves with its result once the batch holding it is written. */
  push(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when everything queued so far is written (or rejected). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.flushing) {
      if (this.flushing) await this.flushing;
      else await this.flush();
    }
  }

  /** Stops retrying; pending items reject. */
  close(): void {
    this.closed = true;
    const pending = this.queue;
    this.queue = [];
    for (const p of pending) p.reject(new Error(`${this.name} batcher closed before the write succeeded`));
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      try {
        while (this.queue.length > 0) {
          const batch = this.queue.splice(0, this.maxBatch);
          await this.writeWithRetry(batch);
        }
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  private async writeWithRetry(batch: Pending<I, R>[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const results = await this.write(batch.map((p) => p.item));
        for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
        return;
      } catch (error) {
        if (this.closed) {
          for (const p of batch) p.reject(error);
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
      batch[0]?.reject(error);
      return;
    }
    const middle = Math.ceil(batch.length / 2);
    await this.writeWithRetry(batch.slice(0, middle));
    await this.writeWithRetry(batch.slice(middle));
  }
}

/** Worth retrying as is: the store could not be reached (as opposed to refusing the request). */
function isTransient(error: unknown): boolean {
  return error instanceof StoreUnavailableError && !error.rejected;
}
