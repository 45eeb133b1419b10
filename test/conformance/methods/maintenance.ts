/** Method cases: leader election (`tryLead` / `resign`) and the worker registry, straight on the store. */
import { describe, expect, it } from "vitest";
import type { QueueHealth, Store, WorkerInfo, WorkerStalls } from "../../../src/store/contract.js";
import type { ConformanceContext } from "../context.js";
import { until } from "../context.js";

/** Long enough that it never runs out during a case, however slow the runner. */
const LONG_TTL = 10 * 60_000;

export function leadershipMethodTests(ctx: ConformanceContext): void {
  describe("tryLead / resign", () => {
    it("lets the first owner lead, refuses a second while the ttl runs, and lets the holder renew", async () => {
      const store = await ctx.sluice().store();
      const name = `lead-${ctx.queue()}`;
      expect(await store.tryLead(name, "a", LONG_TTL)).toBe(true);
      expect(await store.tryLead(name, "b", LONG_TTL)).toBe(false);
      expect(await store.tryLead(name, "a", LONG_TTL)).toBe(true); // renewal
      expect(await store.tryLead(name, "b", LONG_TTL)).toBe(false);
      // Leases are per name.
      const other = `lead-${ctx.queue()}`;
      expect(await store.tryLead(other, "b", LONG_TTL)).toBe(true);
      expect(await store.tryLead(other, "a", LONG_TTL)).toBe(false);
      // Another store object (another process) sees the same holder.
      const second = await ctx.sluice().store();
      expect(await second.tryLead(name, "c", LONG_TTL)).toBe(false);
      expect(await second.tryLead(name, "a", LONG_TTL)).toBe(true);
    });

    it("ignores a resign by a non-holder, and lets another lead at once after the holder resigns", async () => {
      const store = await ctx.sluice().store();
      const name = `resign-${ctx.queue()}`;
      expect(await store.tryLead(name, "a", LONG_TTL)).toBe(true);
      await store.resign(name, "b");
      expect(await store.tryLead(name, "b", LONG_TTL)).toBe(false);
      expect(await store.tryLead(name, "a", LONG_TTL)).toBe(true);
      await store.resign(name, "a");
      expect(await store.tryLead(name, "b", LONG_TTL)).toBe(true);
      expect(await store.tryLead(name, "a", LONG_TTL)).toBe(false);
      // Resigning a name nobody holds, or holds no longer, is harmless.
      await store.resign(`never-${name}`, "a");
      await store.resign(name, "a");
      expect(await store.tryLead(name, "b", LONG_TTL)).toBe(true);
    });

    it("lets another owner take the lease once the holder's ttl has run out", async () => {
      const store = await ctx.sluice().store();
      const name = `expire-${ctx.queue()}`;
      expect(await store.tryLead(name, "a", 1)).toBe(true);
      // Polled: the expiry is the engine's clock, and b is refused until it has passed.
      await until("b to take the expired lease", () => store.tryLead(name, "b", LONG_TTL));
      expect(await store.tryLead(name, "a", LONG_TTL)).toBe(false);
      expect(await store.tryLead(name, "b", LONG_TTL)).toBe(true);
    });
  });
}

function workerInfo(id: string, overrides: Partial<WorkerInfo> = {}): WorkerInfo {
  return {
    id,
    host: "host-1",
    pid: 4242,
    queues: ["q1", "q2"],
    concurrency: 4,
    busy: 0,
    startedAt: Date.now() - 5_000,
    lastHeartbeatAt: 0, // the store sets it (its own clock) on register and heartbeat
    stalls: { count: 0, longestMs: 0, last: null },
    health: [],
    clock: Date.now(),
    // The store computes it (the worker's clock minus its own); a worker's value is ignored.
    clockSkewMs: expect.any(Number),
    ...overrides,
    version: overrides.version ?? "9.9.9-test",
  };
}

async function registered(store: Store, id: string): Promise<WorkerInfo | undefined> {
  return (await store.listWorkers()).find((w) => w.id === id);
}

/** Heartbeats `id` until its stored heartbeat is later than `after` (the store's clock has moved on). */
async function heartbeatPast(store: Store, id: string, busy: number, after: number): Promise<WorkerInfo> {
  return until(`a heartbeat of ${id} later than ${after}`, async () => {
    expect(await store.heartbeatWorker(id, busy)).toBe(true);
    const entry = await registered(store, id);
    return entry && entry.lastHeartbeatAt > after ? entry : null;
  });
}

export function registryMethodTests(ctx: ConformanceContext): void {
  describe("worker registry", () => {
    it("registers a worker as given (heartbeat time from the store), and registering again replaces the entry", async () => {
      const store = await ctx.sluice().store();
      const id = `reg/${ctx.queue()}/a`;
      const info = workerInfo(id);
      await store.registerWorker(info);
      const entry = await registered(store, id);
      expect(entry).toEqual({ ...info, lastHeartbeatAt: expect.any(Number) });
      expect(entry?.lastHeartbeatAt).toBeGreaterThan(0);
      const replaced = workerInfo(id, { queues: ["q3"], concurrency: 9, busy: 2, version: "9.9.10-test" });
      await store.registerWorker(replaced);
      expect((await store.listWorkers()).filter((w) => w.id === id)).toEqual([
        { ...replaced, lastHeartbeatAt: expect.any(Number) },
      ]);
      await store.unregisterWorker(id);
    });

    it("heartbeats: false for an unknown id, true for a registered one, updating busy and lastHeartbeatAt", async () => {
      const store = await ctx.sluice().store();
      const id = `hb/${ctx.queue()}/a`;
      expect(await store.heartbeatWorker(id, 1)).toBe(false);
      expect(await registered(store, id)).toBeUndefined(); // a heartbeat never creates an entry
      const info = workerInfo(id);
      await store.registerWorker(info);
      const atRegister = (await registered(store, id))?.lastHeartbeatAt ?? Number.POSITIVE_INFINITY;
      expect(await store.heartbeatWorker(id, 3)).toBe(true);
      expect(await registered(store, id)).toMatchObject({
        ...info,
        busy: 3,
        lastHeartbeatAt: expect.any(Number),
      });
      // Polled until the store's clock has moved on: a heartbeat that never moved the time would time out.
      const later = await heartbeatPast(store, id, 2, atRegister);
      expect(later).toEqual({ ...info, busy: 2, lastHeartbeatAt: later.lastHeartbeatAt });
      await store.unregisterWorker(id);
      expect(await store.heartbeatWorker(id, 0)).toBe(false);
    });

    it("keeps a worker's event-loop stalls: written by register and by a heartbeat that carries them, kept by one that does not", async () => {
      const store = await ctx.sluice().store();
      const id = `stall/${ctx.queue()}/a`;
      const first: WorkerStalls = {
        count: 1,
        longestMs: 900,
        last: { at: Date.now() - 1_000, ms: 900, leaseMs: 600, tasks: ["pdf-parse"], jobIds: ["j1"] },
      };
      const info = workerInfo(id, { stalls: first });
      await store.registerWorker(info);
      expect((await registered(store, id))?.stalls).toEqual(first);
      // A heartbeat without stalls leaves them as stored.
      expect(await store.heartbeatWorker(id, 1)).toBe(true);
      expect((await registered(store, id))?.stalls).toEqual(first);
      const second: WorkerStalls = {
        count: 2,
        longestMs: 2_500,
        last: { at: Date.now(), ms: 2_500, leaseMs: 600, tasks: ["pdf-parse", "ocr"], jobIds: ["j2", "j3"] },
      };
      expect(await store.heartbeatWorker(id, 2, second)).toBe(true);
      expect(await registered(store, id)).toEqual({
        ...info,
        busy: 2,
        stalls: second,
        lastHeartbeatAt: expect.any(Number),
      });
      // Registering again replaces the entry, stalls included.
      await store.registerWorker(workerInfo(id));
      expect((await registered(store, id))?.stalls).toEqual({ count: 0, longestMs: 0, last: null });
      await store.unregisterWorker(id);
      expect(await registered(store, id)).toBeUndefined();
    });

    it("keeps a worker's health checks and clock, and measures its clock skew against the store's clock", async () => {
      const store = await ctx.sluice().store();
      const id = `health/${ctx.queue()}/a`;
      const failing: QueueHealth = {
        queue: "q1",
        ok: false,
        since: Date.now() - 3_000,
        lastError: "ECONNREFUSED 127.0.0.1:6333",
        checkedAt: Date.now() - 1_000,
      };
      // A worker whose clock is an hour ahead: the skew is about +1 h whatever the store's own clock.
      const ahead = Date.now() + 3_600_000;
      await store.registerWorker(workerInfo(id, { health: [failing], clock: ahead }));
      const entry = await registered(store, id);
      expect(entry?.health).toEqual([failing]);
      expect(entry?.clock).toBe(ahead);
      expect(Math.abs((entry?.clockSkewMs ?? 0) - 3_600_000)).toBeLessThan(60_000);
      // A plain heartbeat keeps them; one that carries them replaces them (an empty list clears the checks).
      expect(await store.heartbeatWorker(id, 1)).toBe(true);
      expect((await registered(store, id))?.health).toEqual([failing]);
      const passing: QueueHealth = { ...failing, ok: true, since: Date.now() };
      const behind = Date.now() - 5_000;
      expect(await store.heartbeatWorker(id, 1, undefined, { health: [passing], clock: behind })).toBe(true);
      const beat = await registered(store, id);
      expect(beat?.health).toEqual([passing]);
      expect(beat?.clock).toBe(behind);
      expect(Math.abs((beat?.clockSkewMs ?? 0) + 5_000)).toBeLessThan(2_000);
      expect(await store.heartbeatWorker(id, 1, undefined, { health: [] })).toBe(true);
      expect((await registered(store, id))?.health).toEqual([]);
      expect((await registered(store, id))?.clock).toBe(behind);
      await store.unregisterWorker(id);
      expect(await store.heartbeatWorker(id, 0, undefined, { health: [passing], clock: Date.now() })).toBe(
        false,
      );
    });

    it("unregisters only the given worker (an unknown id is a no-op)", async () => {
      const store = await ctx.sluice().store();
      const a = `unreg/${ctx.queue()}/a`;
      const b = `unreg/${ctx.queue()}/b`;
      const infoB = workerInfo(b);
      await store.registerWorker(workerInfo(a));
      await store.registerWorker(infoB);
      await store.unregisterWorker(a);
      await store.unregisterWorker(`unknown/${a}`);
      expect(await registered(store, a)).toBeUndefined();
      expect(await registered(store, b)).toEqual({ ...infoB, lastHeartbeatAt: expect.any(Number) });
      await store.unregisterWorker(b);
      expect(await registered(store, b)).toBeUndefined();
    });

    it("prunes workers silent since the cutoff, and only those", async () => {
      const store = await ctx.sluice().store();
      const silent = workerInfo(`silent/${ctx.queue()}/a`);
      const live = workerInfo(`live/${ctx.queue()}/b`);
      await store.registerWorker(silent);
      const silentSince = (await registered(store, silent.id))?.lastHeartbeatAt ?? Number.POSITIVE_INFINITY;
      await store.registerWorker(live);
      // The live worker's heartbeat is later than the silent one's (store clock), then the cutoff lies between.
      const beat = await heartbeatPast(store, live.id, 1, silentSince);
      const pruned = await store.prune({ limit: 1_000, workersSilentSince: silentSince + 1 });
      expect(pruned.workers).toBeGreaterThanOrEqual(1); // other silent entries of the store may go too
      expect(await registered(store, silent.id)).toBeUndefined();
      expect(await registered(store, live.id)).toEqual(beat);
      // A heartbeat after the prune reports the missing entry (the worker then registers again).
      expect(await store.heartbeatWorker(silent.id, 0)).toBe(false);
      await store.unregisterWorker(live.id);
    });
  });
}
