/**
 * The fetch loop against a scripted store: jobs held ahead on prefetch "auto" (sized by the observed start
 * rate) never widen the allowance of finished-but-unwritten outcomes, which stays the concurrency: those
 * jobs run again if the worker dies, and the chaos suite's duplicates-per-kill bound assumes it.
 */
import { setImmediate as turn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/core/job.js";
import { silentLogger } from "../../src/index.js";
import { SluiceEventEmitter } from "../../src/runtime/events.js";
import { FetchLoop } from "../../src/runtime/fetch-loop.js";
import { QueueSelector } from "../../src/runtime/queue-selector.js";
import type { ClaimRequest, Store } from "../../src/store/contract.js";
import { until } from "../support/wait.js";

let seq = 0;
const job = (): JobRecord => ({ id: `j${++seq}`, queue: "q", leaseToken: seq, startedAt: null }) as JobRecord;

describe("fetch loop", () => {
  it("on prefetch auto, holding ahead does not widen the unwritten-outcome allowance", async () => {
    const claims: ClaimRequest[] = [];
    const store = {
      traits: { inProcess: false, claimAhead: true },
      async claim(request: ClaimRequest) {
        claims.push(request);
        return Array.from({ length: request.limit }, job);
      },
      async nextRunAt() {
        return null;
      },
    } as unknown as Store;
    let unwritten = 0;
    let started = 0;
    const loop: FetchLoop = new FetchLoop(
      store,
      new QueueSelector(["q"]),
      {
        running: () => 0,
        unwritten: () => unwritten,
        // Every held job starts at once (instant jobs): the observed start rate is as high as it gets.
        claimed: () => {
          while (loop.next()) started++;
          loop.wake();
        },
        giveBack: async () => {},
      },
      new SluiceEventEmitter(),
      silentLogger(),
      { workerId: "w", concurrency: 1, prefetch: "auto", leaseMs: 30_000, pollMs: 1_000 },
    );
    loop.start();
    // Past a few rate windows the loop claims ahead: a claim asks for more than the one free slot.
    await until("claims ahead", () => (claims.at(-1)?.limit ?? 0) > 50, 5_000);
    // Now outcomes stop being stored: 50 unwritten, far past one slot's worth (concurrency 1).
    unwritten = 50;
    const before = claims.length;
    for (let i = 0; i < 5; i++) {
      loop.wake();
      await turn();
      await turn();
    }
    await loop.stop(1_000);
    // The claim in flight when outcomes stopped may land; no claim starts after it.
    expect(claims.length - before).toBeLessThanOrEqual(1);
    expect(started).toBeGreaterThan(50);
  });
});
