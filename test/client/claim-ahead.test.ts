/**
 * A worker on its default `prefetch: "auto"`, on every engine: on PostgreSQL (a claim waits for the WAL
 * flush, a start does not) short jobs are claimed in bulk and started one by one, so far fewer claims than
 * jobs; on SQLite and Redis nothing is held ahead (no start writes). Every job runs once either way.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Sluice, silentLogger } from "../../src/index.js";
import type { Store } from "../../src/store/contract.js";
import { ENGINE_NAMES, type IsolatedStore, isolatedStore } from "../support/engines/index.js";
import { until } from "../support/wait.js";

const JOBS = 2_000;
let stores: IsolatedStore[] = [];
let instances: Sluice[] = [];
afterEach(async () => {
  for (const sluice of instances) await sluice.close();
  for (const store of stores) await store.dispose();
  stores = [];
  instances = [];
});

/** Counts the store's claim and start calls and the jobs they cover. */
function countCalls(store: Store): { claims: number; starts: number; claimed: number } {
  const counts = { claims: 0, starts: 0, claimed: 0 };
  const claim = store.claim.bind(store);
  const start = store.start.bind(store);
  store.claim = async (request) => {
    const jobs = await claim(request);
    counts.claims++;
    counts.claimed += jobs.length;
    return jobs;
  };
  store.start = async (leases) => {
    counts.starts++;
    return start(leases);
  };
  return counts;
}

describe.each(ENGINE_NAMES)("prefetch auto on %s", (engine) => {
  it("claims ahead only where a claim costs more than a start, and runs every job once", async () => {
    const isolated = isolatedStore(engine, "ahead");
    stores.push(isolated);
    const sluice = new Sluice({ url: isolated.url, logger: silentLogger() });
    instances.push(sluice);
    const runs = new Map<number, number>();
    const task = sluice.task<{ i: number }>("noop", {
      queue: "ahead",
      run: ({ i }) => void runs.set(i, (runs.get(i) ?? 0) + 1),
    });
    const store = await sluice.store();
    for (let i = 0; i < JOBS; i += 500) {
      await task.enqueueMany(Array.from({ length: 500 }, (_, k) => ({ payload: { i: i + k } })));
    }
    const counts = countCalls(store);
    const worker = sluice.worker({ queues: ["ahead"], concurrency: 1 });
    await worker.start();
    await until("every job ran", () => runs.size === JOBS, 60_000);
    await worker.stop();
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    // The engine decides (its claim waits for the WAL flush), not a flag this test would merely echo.
    if (engine === "postgres") {
      // Bulk claims: at concurrency 1 without holding ahead, every job is a claim of its own.
      expect(counts.claims).toBeLessThan(JOBS / 5);
      expect(counts.starts).toBeGreaterThan(JOBS / 2);
    } else {
      expect(counts.starts).toBe(0);
      expect(counts.claimed).toBe(JOBS);
    }
  });
});
