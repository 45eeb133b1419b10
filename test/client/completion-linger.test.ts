/**
 * On a networked store (PostgreSQL, Redis) a worker holds a small batch of completions back so that jobs
 * ending a few ms apart share one write: for a tenth of its jobs' mean run time, 5 to 20 ms
 * (worker.ts `completionLingerMs`). Long jobs ending 10 ms apart share a write; short jobs ending 12 ms
 * apart do not (the 5 ms floor has passed). Both orders are fixed by timers created in sequence, not by how
 * fast the host is: the second job's end is a timer set when the first job returns, shorter (long jobs) or
 * longer (short jobs) than the first job's linger, which starts at the same moment.
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
 * time), then a pair: the first runs `runMs`, the second returns `gapMs` after the first returned. Returns
 * the completion writes holding either job of the pair.
 */
async function pairWrites(engine: "postgres" | "redis", runMs: number, gapMs: number) {
  const queue = `linger_${runMs}`;
  const sluice = sluiceOn(engine, queue);
  const firstReturned = deferred();
  const done = new Set<string>();
  const task = sluice.task<{ role: "warm" | "first" | "second" }>("pair", {
    queue,
    async run({ role }, ctx) {
      if (role === "second") {
        await firstReturned.promise;
        await sleep(gapMs);
      } else {
        await sleep(runMs);
        if (role === "first") setImmediate(() => firstReturned.resolve());
      }
      done.add(ctx.id);
    },
  });
  const store = await sluice.store();
  const writes = recordCompletionWrites(store);
  const worker = sluice.worker({ queues: [queue], concurrency: 2 });
  await worker.start();
  const warm = await task.enqueueMany([{ payload: { role: "warm" } }, { payload: { role: "warm" } }]);
  await until("the warm-up jobs are stored completed", async () => {
    const jobs = await Promise.all(warm.map((j) => sluice.admin.getJob(j.id)));
    return jobs.every((j) => j?.state === "completed");
  });
  const [first, second] = await task.enqueueMany([
    { payload: { role: "first" } },
    { payload: { role: "second" } },
  ]);
  const ids = [first?.id as string, second?.id as string];
  await until("the pair is stored completed", async () => {
    const jobs = await Promise.all(ids.map((id) => sluice.admin.getJob(id)));
    return jobs.every((j) => j?.state === "completed");
  });
  await worker.stop();
  expect(ids.every((id) => done.has(id))).toBe(true);
  return { ids, writes: writes.filter((w) => w.some((id) => ids.includes(id))) };
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
    const { ids, writes } = await pairWrites(engine, 200, 10);
    expect(writes).toEqual([expect.arrayContaining(ids)]);
  });

  it("short jobs ending 12 ms apart are written apart (the 5 ms floor)", async () => {
    const { ids, writes } = await pairWrites(engine, 1, 12);
    expect(writes).toEqual([[ids[0]], [ids[1]]]);
  });
});
