/**
 * Fleet-wide event retention as configured (`new Sluice({ events })`): `resolveEventRetention` refuses
 * what is not a positive whole count or duration, and on every engine a running worker's maintenance prunes
 * the store's events down to `maxEvents` (the newest kept) and past `retentionMs` (all of them, once old).
 */
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_EVENT_RETENTION, resolveEventRetention } from "../../src/core/fleet-events.js";
import { Sluice, silentLogger, ValidationError } from "../../src/index.js";
import type { Store } from "../../src/store/contract.js";
import { ENGINE_NAMES, isolatedStore } from "../support/engines/index.js";
import { until } from "../support/wait.js";

describe("resolveEventRetention", () => {
  it("takes the defaults, false, and a partial override", () => {
    expect(resolveEventRetention(undefined)).toEqual(DEFAULT_EVENT_RETENTION);
    expect(resolveEventRetention(false)).toEqual({ ...DEFAULT_EVENT_RETENTION, enabled: false });
    expect(resolveEventRetention({ maxEvents: 10 })).toEqual({
      enabled: true,
      maxEvents: 10,
      retentionMs: DEFAULT_EVENT_RETENTION.retentionMs,
    });
    expect(resolveEventRetention({ retentionMs: 1 })).toMatchObject({ retentionMs: 1, maxEvents: 100_000 });
  });

  const refused: [string, unknown, string][] = [
    ["maxEvents 0", { maxEvents: 0 }, "events.maxEvents"],
    ["maxEvents negative", { maxEvents: -1 }, "events.maxEvents"],
    ["maxEvents a fraction", { maxEvents: 2.5 }, "events.maxEvents"],
    ["maxEvents NaN", { maxEvents: Number.NaN }, "events.maxEvents"],
    ["maxEvents Infinity", { maxEvents: Number.POSITIVE_INFINITY }, "events.maxEvents"],
    ["maxEvents a string", { maxEvents: "10" }, "events.maxEvents"],
    ["maxEvents null", { maxEvents: null }, "events.maxEvents"],
    ["retentionMs 0", { retentionMs: 0 }, "events.retentionMs"],
    ["retentionMs negative", { retentionMs: -60_000 }, "events.retentionMs"],
    ["retentionMs beyond a safe integer", { retentionMs: 2 ** 60 }, "events.retentionMs"],
    ["retentionMs a duration string", { retentionMs: "24h" }, "events.retentionMs"],
    ["true", true, "events"],
    ["null", null, "events"],
    ["a number", 100, "events"],
  ];

  it.each(refused)("refuses %s with a typed error naming the field", (_name, option, field) => {
    let error: unknown;
    try {
      resolveEventRetention(option as Parameters<typeof resolveEventRetention>[0]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    // A constructor option: the configuration code, as every other `new Sluice()` option refuses with.
    expect((error as ValidationError).code).toBe("INVALID_CONFIG");
    expect((error as ValidationError).field).toBe(field);
  });

  it("is what new Sluice() applies: a bad retention fails at construction, before any I/O", () => {
    expect(() => new Sluice({ url: "sqlite::memory:", events: { maxEvents: 0 } })).toThrow(
      /events\.maxEvents/,
    );
  });
});

describe.each(ENGINE_NAMES)("event retention applied by a worker's maintenance on %s", (engine) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(events: { maxEvents?: number; retentionMs?: number }) {
    const location = isolatedStore(engine, "event_retention");
    cleanups.push(location.dispose);
    const sluice = new Sluice({ url: location.url, logger: silentLogger(), events });
    cleanups.push(() => sluice.close());
    const store = await sluice.store();
    const queue = `retain_${engine}`;
    const task = sluice.task("retain", { queue, run: async () => ({ ok: true }) });
    return { sluice, store, queue, task };
  }

  /** Every event the store keeps, oldest first. */
  async function kept(store: Store) {
    const page = await store.readEvents({ after: null, limit: 1_000 });
    expect(page.events.length).toBeLessThan(1_000);
    return page.events;
  }

  it("prunes to the newest maxEvents", async () => {
    const { sluice, store, queue, task } = await setup({ maxEvents: 7 });
    await sluice.enqueueMany(
      "retain",
      Array.from({ length: 20 }, (_, i) => ({ payload: { i }, options: { queue } })),
    );
    // Twenty enqueued events, and no maintenance has run yet.
    expect((await kept(store)).length).toBeGreaterThanOrEqual(20);
    const worker = sluice.worker({ queues: [queue], maintenanceMs: 100, pollMs: 50 });
    await worker.start();
    cleanups.push(() => worker.stop().then(() => {}));
    await until("every job to complete", async () => {
      const stats = (await sluice.admin.queues()).find((s) => s.queue === queue);
      return stats?.counts.completed === 20;
    });
    const events = await until("maintenance to prune the events to 7", async () => {
      const now = await kept(store);
      return now.length === 7 ? now : null;
    });
    // The newest ones: the last event of all is the last completion.
    const last = await store.lastEventId();
    expect(events.at(-1)?.id).toBe(last);
    expect(events.at(-1)?.type).toBe("completed");
    expect(task.name).toBe("retain");
  });

  it("prunes every event older than retentionMs", async () => {
    const { sluice, store, queue } = await setup({ retentionMs: 300 });
    const started = Date.now();
    await sluice.enqueueMany(
      "retain",
      Array.from({ length: 5 }, (_, i) => ({ payload: { i }, options: { queue } })),
    );
    const worker = sluice.worker({ queues: [queue], maintenanceMs: 100, pollMs: 50 });
    await worker.start();
    cleanups.push(() => worker.stop().then(() => {}));
    await until("every job to complete", async () => {
      const stats = (await sluice.admin.queues()).find((s) => s.queue === queue);
      return stats?.counts.completed === 5;
    });
    // Nothing new happens, so once the last event is 300 ms old every event is gone — but the newest on
    // SQLite, which prune always keeps so that ids stay unique (docs/sqlite.md, "Fleet-wide events").
    const last = await store.lastEventId();
    const left = await until("maintenance to prune every old event", async () => {
      const now = await kept(store);
      return now.length <= 1 ? now : null;
    });
    if (engine === "sqlite") expect(left.map((e) => e.id)).toEqual([last]);
    else expect(left).toEqual([]);
    // By age, not by count: the default count (100,000) is far away.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });
});
