/**
 * The shared event feed against a scripted store: ids with gaps and cursors that are not event ids (as
 * PostgreSQL's horizon), a ring far smaller than the traffic, slow subscribers, resets, filters, abort.
 */
import { describe, expect, it } from "vitest";
import { EventFeed, type FleetStreamItem } from "../../src/client/event-feed.js";
import type { FleetEvent } from "../../src/core/fleet-events.js";
import { silentLogger } from "../../src/index.js";
import type { EventsPage, ReadEventsRequest, Store } from "../../src/store/contract.js";
import { until } from "../support/wait.js";

/** An event log with every second id skipped (aborted transactions) and a pruning point. */
class FakeLog {
  events: FleetEvent[] = [];
  allocated = 0;
  prunedThrough = 0;
  reads = 0;
  append(queue: string, jobId: string): FleetEvent {
    this.allocated += 2;
    const event: FleetEvent = {
      id: String(this.allocated),
      type: "enqueued",
      at: Date.now(),
      queue,
      jobId,
      task: "t",
      attempt: null,
      data: null,
    };
    this.events.push(event);
    return event;
  }
  prune(keep: number): void {
    const gone = this.events.splice(0, Math.max(0, this.events.length - keep));
    if (gone.length) this.prunedThrough = Number(gone.at(-1)?.id);
  }
  store(): Store {
    const log = this;
    const partial = {
      async readEvents(request: ReadEventsRequest): Promise<EventsPage> {
        log.reads++;
        const after = request.after === null ? 0 : Number(request.after);
        const reset = after < log.prunedThrough || after > log.allocated;
        const from = reset ? 0 : after;
        const out: FleetEvent[] = [];
        let cursor: string | null = request.after;
        for (const e of log.events) {
          if (Number(e.id) <= from) continue;
          if (out.length === request.limit) break;
          out.push(e);
          cursor = e.id;
        }
        // Not full: everything up to the allocation horizon has been read (not an event id: gaps).
        if (out.length < request.limit && log.allocated > 0) cursor = String(log.allocated + 1);
        if (out.length < request.limit && log.allocated === 0) cursor = request.after;
        return { events: out, cursor: cursor === request.after && !reset ? request.after : cursor, reset };
      },
      async lastEventId() {
        return log.allocated === 0 ? null : String(log.allocated + 1);
      },
      subscribe() {
        return () => {};
      },
    };
    return partial as unknown as Store;
  }
}

function feedOf(log: FakeLog, ringSize = 8) {
  const store = log.store();
  return new EventFeed(async () => store, silentLogger(), { pollMs: 5, ringSize, pageSize: 3 });
}

/** Collects items from `iterator` until `count` are seen. */
async function take(iterator: AsyncGenerator<FleetStreamItem>, count: number): Promise<FleetStreamItem[]> {
  const out: FleetStreamItem[] = [];
  for await (const item of iterator) {
    out.push(item);
    if (out.length >= count) break;
  }
  return out;
}

const ids = (items: readonly FleetStreamItem[]) => items.map((i) => (i.type === "reset" ? "reset" : i.id));

describe("event feed", () => {
  it("delivers events from now on, in order, to many subscribers through one reader", async () => {
    const log = new FakeLog();
    log.append("q", "old");
    const feed = feedOf(log, 1_000);
    const subs = Array.from({ length: 20 }, () => feed.subscribe());
    const firsts = subs.map((s) => s.next()); // subscribes (async generators start on next())
    await until("the feed started", () => log.reads > 0);
    const expected = Array.from({ length: 30 }, (_, i) => log.append("q", `j${i}`).id);
    const all = await Promise.all(
      subs.map(async (s, i) => {
        const first = (await firsts[i]) as IteratorResult<FleetStreamItem>;
        return [first.value as FleetStreamItem, ...(await take(s, 29))];
      }),
    );
    for (const items of all) expect(ids(items)).toEqual(expected);
    // One reader for twenty subscribers: far fewer reads than subscribers × pages.
    expect(log.reads).toBeLessThan(20 * 10);
    feed.close();
  });

  it("resumes after an id, from the ring or from the store, without gap or duplicate", async () => {
    const log = new FakeLog();
    const all = Array.from({ length: 40 }, (_, i) => log.append("q", `j${i}`).id);
    const feed = feedOf(log, 4);
    // From id #5: far older than a ring of 4 holds.
    expect(ids(await take(feed.subscribe({ after: all[5] as string }), 34))).toEqual(all.slice(6));
    // From the start.
    expect(ids(await take(feed.subscribe({ after: null }), 40))).toEqual(all);
    feed.close();
  });

  it("keeps a slow subscriber lossless while the ring turns over many times", async () => {
    const log = new FakeLog();
    const feed = feedOf(log, 4);
    const sub = feed.subscribe();
    const first = sub.next();
    await until("the feed started", () => log.reads > 0);
    const expected = Array.from({ length: 60 }, (_, i) => log.append("q", `j${i}`).id);
    const firstItem = (await first).value as FleetStreamItem;
    await until("the feed read everything", () => log.reads > 25); // the subscriber waits meanwhile
    const rest = await take(sub, 59);
    expect(ids([firstItem, ...rest])).toEqual(expected);
    feed.close();
  });

  it("filters by queue and job, and says reset when its id was pruned", async () => {
    const log = new FakeLog();
    const a = log.append("a", "1").id;
    log.append("b", "2");
    const c = log.append("a", "3").id;
    const feed = feedOf(log, 100);
    expect(ids(await take(feed.subscribe({ after: null, queue: "a" }), 2))).toEqual([a, c]);
    expect(ids(await take(feed.subscribe({ after: null, jobId: "3" }), 1))).toEqual([c]);
    log.append("a", "4");
    const newest = log.append("a", "5").id;
    feed.close();
    log.prune(1);
    const fresh = feedOf(log, 100);
    expect(ids(await take(fresh.subscribe({ after: a, queue: "a" }), 2))).toEqual(["reset", newest]);
    fresh.close();
  });

  it("ends a subscription when its signal aborts or the feed closes", async () => {
    const log = new FakeLog();
    const feed = feedOf(log);
    const abort = new AbortController();
    const aborted = take(feed.subscribe({ signal: abort.signal }), 1);
    const closed = take(feed.subscribe(), 1);
    await until("the feed started", () => log.reads > 0);
    abort.abort();
    expect(await aborted).toEqual([]);
    feed.close();
    expect(await closed).toEqual([]);
  });
});
