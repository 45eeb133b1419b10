/**
 * On a networked store (PostgreSQL, Redis) a worker holds a small batch of completions back so that jobs
 * ending a few ms apart share one write: for a tenth of its jobs' mean run time, 5 to 20 ms
 * (worker.ts `completionLingerMs`). Long jobs ending 10 ms apart share a write; short jobs ending 12 ms
 * apart do not (the 5 ms floor has passed). The orders come from timers created in sequence: the second
 * job's end is a timer set when the first job returns, shorter (long jobs) or longer (short jobs) than the
 * first job's wait, which starts at the same moment; a long pause of the event loop can only merge writes,
 * so the short-job case looks for one pair written apart among five.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { completionLingerMs } from "../../src/runtime/worker.js";
import type { Store } from "../../src/store/contract.js";
import { isolatedSluices } from "../support/engines/isolated-sluices.js";
import { deferred, until } from "../support/wait.js";

const sluiceOn = isolatedSluices();

/** Records the job ids of every completion write (alone or riding on a start write). */
function recordCompletionWrites(store: Store): string[][] {
  const writes: string[][] = [];
  const complete = store.complete.bind(store);
  store.complete = (requests) => {
    writes.push(requests.map((r) => r.id));
    return complete(requests);
  };
  const completeAndStart = store.completeAndStart?.bind(store);
  if (completeAndStart) {
    store.completeAndStart = (completions, starts) => {
      if (completions.length > 0) writes.push(completions.map((r) => r.id));
      return completeAndStart(completions, starts);
    };
  }
  return writes;
}

/**
 * A worker at concurrency 2 first runs two warm-up jobs of `runMs` each (so it knows its jobs' mean run
 * time), then `pairs` pairs one after the other: in each, the first job runs `runMs` and the second returns
 * `gapMs` after the first returned. Returns, per pair, its ids and the completion writes holding either.
 */
async function pairWrites(engine: "postgres" | "redis", runMs: number, gapMs: number, pairs = 1) {
  const queue = `linger_${runMs}`;
  const sluice = sluiceOn(engine, queue);
  // Resolved, per pair, once the pair's first job has returned.
  const firstReturned = Array.from({ length: pairs }, () => deferred());
  const done = new Set<string>();
  const task = sluice.task<{ role: "warm" | "first" | "second"; pair: number }>("pair", {
    queue,
    async run({ role, pair }, ctx) {
      if (role === "second") {
        await firstReturned[pair]?.promise;
        await sleep(gapMs);
      } else {
        await sleep(runMs);
        if (role === "first") setImmediate(() => firstReturned[pair]?.resolve());
      }
      done.add(ctx.id);
    },
  });
  const store = await sluice.store();
  const writes = recordCompletionWrites(store);
  const worker = sluice.worker({ queues: [queue], concurrency: 2 });
  await worker.start();
  const stored = (ids: string[]) => async () => {
    const jobs = await Promise.all(ids.map((id) => sluice.admin.getJob(id)));
    return jobs.every((j) => j?.state === "completed");
  };
  const warm = await task.enqueueMany([
    { payload: { role: "warm", pair: -1 } },
    { payload: { role: "warm", pair: -1 } },
  ]);
  await until("the warm-up jobs are stored completed", stored(warm.map((j) => j.id)));
  const results: { ids: string[]; writes: string[][] }[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    const jobs = await task.enqueueMany([
      { payload: { role: "first", pair } },
      { payload: { role: "second", pair } },
    ]);
    const ids = jobs.map((j) => j.id);
    await until("the pair is stored completed", stored(ids));
    expect(ids.every((id) => done.has(id))).toBe(true);
    results.push({ ids, writes: writes.filter((w) => w.some((id) => ids.includes(id))) });
  }
  await worker.stop();
  return results;
}

describe("completionLingerMs", () => {
  it("is a tenth of the mean run time, at least 5 and at most 20 ms", () => {
    expect(completionLingerMs(0)).toBe(5);
    expect(completionLingerMs(49)).toBe(5);
    expect(completionLingerMs(100)).toBe(10);
    expect(completionLingerMs(150)).toBe(15);
    expect(completionLingerMs(200)).toBe(20);
    expect(completionLingerMs(60_000)).toBe(20);
  });
});

describe.each(["postgres", "redis"] as const)("completions held back on %s", (engine) => {
  it("long jobs ending 10 ms apart share one completion write", async () => {
    const [pair] = await pairWrites(engine, 200, 10);
    if (!pair) throw new Error("the pair did not run");
    expect(pair.writes).toEqual([expect.arrayContaining(pair.ids)]);
  });

  it("short jobs ending 12 ms apart are written apart (the 5 ms floor)", async () => {
    // Five pairs, of which one written apart is enough: a pause of the event loop of 7 ms or more (a GC
    // on a loaded CI host) at the wrong moment puts one pair in one write however short the wait; with a
    // 20 ms wait every pair is (the second ends 12 ms after the first).
    const pairs = await pairWrites(engine, 1, 12, 5);
    expect(pairs.some((p) => p.writes.length === 2 && p.writes[0]?.[0] === p.ids[0])).toBe(true);
    for (const p of pairs) expect(p.writes.flat().sort()).toEqual([...p.ids].sort());
  });
});
