/**
 * Coalesces store writes made in the same turn of the event loop into one batch call (one transaction /
 * round trip), e.g. fifty completions of fifty no-op jobs become one `store.complete([...50])`.
 *
 * A failed flush (store unreachable) is retried with backoff until it succeeds or the batcher is closed;
 * items are never dropped silently: on close they reject so the caller knows the outcome was not stored
 * (the job's lease then expires and recovery runs it again: at-least-once).
 */
import { setTimeout as sleep } from "node:timers/promises";
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
}
