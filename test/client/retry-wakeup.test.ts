/**
 * A retry due soon on an otherwise idle worker starts at its backoff, not at the safety poll, on every
 * engine. Not every engine signals a failed attempt that goes back to `scheduled` (SQLite does not): the
 * claim that follows the failed job's end is what looks up the next due time, so a worker must treat a
 * job that did not complete as news (fetch-loop.ts, `news`), unlike a completed one.
 */
import { setTimeout } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { ENGINE_NAMES } from "../support/engines/index.js";
import { isolatedSluices } from "../support/engines/isolated-sluices.js";
import { until } from "../support/wait.js";

const sluiceOn = isolatedSluices();

describe.each(ENGINE_NAMES)("a retry on an idle worker (%s)", (engine) => {
  it("starts at its backoff, not at the safety poll", async () => {
    const sluice = sluiceOn(engine, "retry_wake");
    const runs: number[] = [];
    const task = sluice.task<{ n: number }>("flaky", {
      queue: "retry_wake",
      attempts: 2,
      backoff: { type: "fixed", delayMs: 300 },
      run: async () => {
        runs.push(Date.now());
        if (runs.length > 1) return;
        // A job that works for 100 ms before it fails: long enough for every signal of its enqueue to have
        // arrived (SQLite's cross-process file watch fires a second time, a few ms late), short of the
        // loop's 250 ms refresh of the next due time, so only the failure itself can make the loop look.
        await setTimeout(100);
        throw new Error("the first attempt fails");
      },
    });
    // The safety poll far beyond the wait below: only the due timer can start the retry in time.
    const worker = sluice.worker({ queues: ["retry_wake"], pollMs: 60_000 });
    await worker.start();
    await task.enqueue({ n: 1 });
    await until("the retry ran", () => runs.length === 2, 15_000);
    await worker.stop();
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(250);
  });
});
