/**
 * The fleet-wide event feed of one Sluice instance (`sluice.events()`, the HTTP API's `/events`).
 *
 * One poller per instance reads the store's events in order and keeps the latest ones in a bounded ring;
 * every subscriber walks the ring at its own pace, so 200 browsers following progress cost one store read
 * per poll, not 200. A subscriber that falls behind the ring (slow, or resuming from an older id) reads the
 * store itself until it meets the ring again: it never loses an event the store still keeps, and memory
 * stays bounded whatever the subscribers do.
 *
 * Joining the ring from a store read rests on one fact of `readEvents`: a read returns every event up to
 * its cursor, so once a subscriber's store cursor is an id the ring holds (or the feed's own cursor),
 * the ring continues it without gap or duplicate.
 */
import type { FleetEvent } from "../core/fleet-events.js";
import type { Logger } from "../core/logger.js";
import type { Store } from "../store/contract.js";

/** Told to a subscriber when events it should have seen are gone (pruned, or the store was replaced). */
export interface FleetReset {
  type: "reset";
  /** Epoch ms when the reader found out. */
  at: number;
}

/** What `sluice.events()` yields: events, and a reset marker when some were lost to this reader. */
export type FleetStreamItem = FleetEvent | FleetReset;

/** Options of `sluice.events()`. */
export interface EventStreamOptions {
  /** Only events of this queue. */
  queue?: string;
  /** Only events of this job. */
  jobId?: string;
  /**
   * Resume after this event id (the last one seen, e.g. an SSE `Last-Event-ID`); `null` starts at the oldest
   * event retained. Absent: from now.
   */
  after?: string | null;
  /** Ends the iteration (it returns) when aborted. */
  signal?: AbortSignal;
}

export interface EventFeedOptions {
  /** Longest wait between two reads when nothing wakes the feed. Default 100 ms. */
  pollMs?: number;
  /** Events kept in memory for subscribers. Default 10,000. */
  ringSize?: number;
  /** Events one store read takes at most. Default 1,000. */
  pageSize?: number;
}

/** Shortest time between two reads of the poller. */
const MIN_GAP_MS = 15;

/** Where a subscriber reads next: the ring after sequence `seq`, or the store after `cursor`. */
type Position = { kind: "ring"; seq: number } | { kind: "store"; cursor: string | null };

export class EventFeed {
  private readonly pollMs: number;
  private readonly ringSize: number;
  private readonly pageSize: number;
  /** Items in sequence order; `ring[i]` has sequence `base + i`. */
  private ring: FleetStreamItem[] = [];
  private base = 0;
  /** Event id → sequence, for the events in the ring. */
  private readonly index = new Map<string, number>();
  /** The feed's store cursor: every event up to it is in the ring (or was evicted from it). */
  private cursor: string | null = null;
  private started: Promise<void> | null = null;
  private subscribers = 0;
  private closed = false;
  /** Resolved (and replaced) whenever the ring grows or the feed closes. */
  private changed = signal();
  /** Cuts the poller's wait short (a store wake-up, a new subscriber). */
  private nudge: (() => void) | null = null;

  constructor(
    private readonly store: () => Promise<Store>,
    private readonly logger: Logger,
    options: EventFeedOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 100;
    this.ringSize = options.ringSize ?? 10_000;
    this.pageSize = options.pageSize ?? 1_000;
  }

  /** Subscribes; see {@link EventStreamOptions}. */
  async *subscribe(options: EventStreamOptions = {}): AsyncGenerator<FleetStreamItem, void, undefined> {
    if (this.closed) return;
    this.subscribers++;
    try {
      await this.ensureStarted();
      const store = await this.store();
      const matches = (item: FleetStreamItem) =>
        item.type === "reset" ||
        ((options.queue === undefined || item.queue === options.queue) &&
          (options.jobId === undefined || item.jobId === options.jobId));
      let position: Position =
        options.after === undefined
          ? { kind: "ring", seq: this.lastSeq() }
          : (this.join(options.after) ?? { kind: "store", cursor: options.after });
      /** The last event id passed by this subscriber (for a fall back from the ring to the store). */
      let lastId: string | null = options.after === undefined ? this.cursor : options.after;

      while (!this.closed && !options.signal?.aborted) {
        if (position.kind === "ring") {
          const wait = this.changed.promise;
          if (position.seq + 1 < this.base) {
            position = { kind: "store", cursor: lastId }; // evicted under a slow subscriber: read the store
            continue;
          }
          const next = this.ring[position.seq + 1 - this.base];
          if (next === undefined) {
            await waitFor(wait, options.signal);
            continue;
          }
          position = { kind: "ring", seq: position.seq + 1 };
          if (next.type !== "reset") lastId = next.id;
          if (matches(next)) yield next;
          continue;
        }
        const wait = this.changed.promise;
        const page = await store.readEvents({ after: position.cursor, limit: this.pageSize });
        if (page.reset) yield { type: "reset", at: Date.now() };
        for (const event of page.events) {
          lastId = event.id;
          if (matches(event)) yield event;
        }
        const lastEvent = page.events.at(-1)?.id;
        // Back to the ring once it holds the last event read, or the feed has read exactly this far.
        const joined =
          (lastEvent !== undefined ? this.join(lastEvent) : null) ??
          (page.cursor === this.cursor ? { kind: "ring" as const, seq: this.lastSeq() } : null);
        if (page.cursor !== null) lastId = page.cursor;
        if (joined) {
          position = joined;
          continue;
        }
        const caughtUp = page.events.length === 0 && page.cursor === position.cursor;
        position = { kind: "store", cursor: page.cursor };
        if (caughtUp) await waitFor(wait, options.signal); // the feed has not read this far yet
      }
    } finally {
      this.subscribers--;
    }
  }

  /** Stops the poller and ends every subscription. */
  close(): void {
    this.closed = true;
    this.nudge?.();
    this.changed.resolve();
  }

  private lastSeq(): number {
    return this.base + this.ring.length - 1;
  }

  /** The ring position right after event `id`, when the ring holds it. */
  private join(id: string | null): Position | null {
    if (id === null) return null;
    const seq = this.index.get(id);
    return seq === undefined ? null : { kind: "ring", seq };
  }

  private ensureStarted(): Promise<void> {
    if (this.started) return this.started;
    const started = (async () => {
      const store = await this.store();
      const cursor = await store.lastEventId();
      // A fresh start reads from now. The ring starts over one sequence further than before, so a
      // subscriber still placed in the old ring falls back to the store (from its last id) instead of
      // skipping what happened while nothing polled.
      this.base += this.ring.length + 1;
      this.ring = [];
      this.index.clear();
      this.cursor = cursor;
      void this.poll(store);
    })();
    this.started = started.catch((error: unknown) => {
      this.started = null; // the next subscriber tries again (the store may come back)
      throw error;
    });
    return this.started;
  }

  /** Reads the store while anyone subscribes; then forgets its state, so a later start begins at "now". */
  private async poll(store: Store): Promise<void> {
    const unsubscribe = store.subscribe(() => this.nudge?.());
    let failures = 0;
    try {
      while (!this.closed && this.subscribers > 0) {
        let full = false;
        try {
          const page = await store.readEvents({ after: this.cursor, limit: this.pageSize });
          failures = 0;
          if (page.reset) this.push({ type: "reset", at: Date.now() });
          for (const event of page.events) this.push(event);
          this.cursor = page.cursor;
          if (page.events.length > 0 || page.reset) this.publish();
          full = page.events.length >= this.pageSize;
        } catch (error) {
          if (failures++ === 0) this.logger.warn({ err: error }, "reading fleet events failed; retrying");
        }
        if (full) continue;
        // A short pause that no wake-up cuts: under load, wake-ups arrive constantly, and one read per
        // pause carries all of them.
        await new Promise<void>((resolve) => setTimeout(resolve, MIN_GAP_MS));
        await this.sleep(failures > 0 ? Math.min(5_000, this.pollMs * 2 ** failures) : this.pollMs);
      }
    } finally {
      unsubscribe();
      this.started = null;
      // A subscriber that arrived while the poller was leaving needs a poller again.
      if (this.subscribers > 0 && !this.closed) this.ensureStarted().catch(() => {});
      this.publish();
    }
  }

  private push(item: FleetStreamItem): void {
    const seq = this.base + this.ring.length;
    this.ring.push(item);
    if (item.type !== "reset") this.index.set(item.id, seq);
    if (this.ring.length > this.ringSize * 1.25) {
      // Evict in chunks so a push stays O(1) amortised.
      const drop = this.ring.length - this.ringSize;
      for (const old of this.ring.slice(0, drop)) if (old.type !== "reset") this.index.delete(old.id);
      this.ring = this.ring.slice(drop);
      this.base += drop;
    }
  }

  private publish(): void {
    const done = this.changed;
    this.changed = signal();
    done.resolve();
  }

  /** Waits `ms`, or less when nudged. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.nudge = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.nudge = finish;
    });
  }
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Waits for `promise` or the abort of `abort`, whichever comes first. */
function waitFor(promise: Promise<void>, abort: AbortSignal | undefined): Promise<void> {
  if (!abort) return promise;
  if (abort.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const onAbort = () => resolve();
    abort.addEventListener("abort", onAbort, { once: true });
    void promise.then(() => {
      abort.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
