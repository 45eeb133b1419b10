/**
 * The fetch loop against a scripted store: jobs held ahead on prefetch "auto" (sized by the observed
 * rate) never widen the allowance of finished-but-unwritten outcomes past which the loop stops claiming,
 * which stays the concurrency (at least UNWRITTEN_SLACK): how many jobs a worker holds while its store lags.
 */
import { setImmediate as turn } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JobRecord } from "../../src/core/job.js";
import { silentLogger } from "../../src/index.js";
import { START_BATCH_CAP, START_BATCH_MS } from "../../src/runtime/claim-ahead.js";
import { SluiceEventEmitter } from "../../src/runtime/events.js";
import { DRY_CLAIM_MS, FetchLoop, HELD_STALE_MS, UNWRITTEN_SLACK } from "../../src/runtime/fetch-loop.js";
import { QueueSelector } from "../../src/runtime/queue-selector.js";
import type { ClaimRequest, Store } from "../../src/store/contract.js";
import { until } from "../support/wait.js";

let seq = 0;
const job = (): JobRecord => ({ id: `j${++seq}`, queue: "q", leaseToken: seq, startedAt: null }) as JobRecord;

/**
 * A fetch loop on prefetch "auto" over a store that hands out as many jobs as each claim asks for (after
 * `claimMs`), whose jobs all start and end at once: the observed rate is as high as it gets (unless `manual`).
 */
function instantJobs(options: {
  concurrency: number;
  claimMs?: number;
  unwritten?: () => number;
  /** The test starts claimed jobs itself (`loop.next()`, then `loop.ended()`: each ends at once). */
  manual?: boolean;
  /** Default "auto". */
  prefetch?: number | "auto";
}) {
  const claims: ClaimRequest[] = [];
  /** Jobs in line (held) as each claim was sent. */
  const lines: number[] = [];
  const store = {
    traits: { inProcess: false, claimAhead: true },
    async claim(request: ClaimRequest) {
      claims.push(request);
      lines.push(loop.heldCount);
      if (options.claimMs) await new Promise((resolve) => setTimeout(resolve, options.claimMs));
      return Array.from({ length: request.limit }, job);
    },
    async nextRunAt() {
      return null;
    },
  } as unknown as Store;
  const counts = { started: 0 };
  /** Held jobs given back because their line stood still (HELD_STALE_MS). */
  const stale: JobRecord[][] = [];
  const loop: FetchLoop = new FetchLoop(
    store,
    new QueueSelector(["q"]),
    {
      running: () => 0,
      unwritten: options.unwritten ?? (() => 0),
      claimed: () => {
        if (options.manual) return;
        // Each job ends as it starts: its slot turns over (the rate "auto" holds ahead by).
        while (loop.next()) {
          counts.started++;
          loop.ended(0);
        }
        loop.wake();
      },
      giveBack: async () => {},
      giveBackStale: async (jobs) => {
        stale.push(jobs);
      },
    },
    new SluiceEventEmitter(),
    silentLogger(),
    {
      workerId: "w",
      concurrency: options.concurrency,
      prefetch: options.prefetch ?? "auto",
      leaseMs: 30_000,
      pollMs: 1_000,
    },
  );
  return { claims, lines, counts, loop, stale };
}

/**
 * Starts and ends jobs as fast as the loop (manual, concurrency 1) hands them out for a second, then waits
 * until it holds more than 20 ahead: after it, the line stands still unless the test starts jobs.
 */
async function holdMany(loop: FetchLoop): Promise<void> {
  const end = Date.now() + 1_000;
  while (Date.now() < end) {
    if (loop.next()) {
      loop.ended(0);
      continue;
    }
    loop.wake();
    await turn();
    await turn();
  }
  await until("jobs held ahead", () => {
    loop.wake();
    return loop.heldCount > 20;
  });
}

/** Wakes the loop five times (two turns each), stops it, and returns how many claims it sent meanwhile. */
async function claimsAfterWakes(loop: FetchLoop, claims: readonly ClaimRequest[]): Promise<number> {
  const before = claims.length;
  for (let i = 0; i < 5; i++) {
    loop.wake();
    await turn();
    await turn();
  }
  await loop.stop(1_000);
  return claims.length - before;
}

describe("fetch loop", () => {
  it("on prefetch auto, holding ahead does not widen the unwritten-outcome allowance", async () => {
    let unwritten = 0;
    const { claims, counts, loop } = instantJobs({ concurrency: 1, unwritten: () => unwritten });
    loop.start();
    // Past a few rate windows the loop claims ahead: a claim asks for more than the one free slot.
    await until("claims ahead", () => (claims.at(-1)?.limit ?? 0) > 50, 5_000);
    // Now outcomes stop being stored: 50 unwritten, far past one slot's worth (concurrency 1).
    unwritten = 50;
    // The claim in flight when outcomes stopped may land; no claim starts after it.
    expect(await claimsAfterWakes(loop, claims)).toBeLessThanOrEqual(1);
    expect(counts.started).toBeGreaterThan(50);
  });

  it("claims while unwritten outcomes are within UNWRITTEN_SLACK at low concurrency, and none past it", async () => {
    let unwritten = UNWRITTEN_SLACK;
    const { claims, loop } = instantJobs({ concurrency: 1, unwritten: () => unwritten });
    loop.start();
    // Exactly at the allowance: nothing past it, so claims go on.
    await until("claims at the allowance", () => claims.length >= 5, 5_000);
    unwritten++;
    // The claim in flight when the outcome was added may land; no claim starts after it.
    expect(await claimsAfterWakes(loop, claims)).toBeLessThanOrEqual(1);
  });

  it("on prefetch auto, holds only jobs its claims start while each claim already fills many slots", async () => {
    // Concurrency 50, claims that take 10 ms, instant jobs: ~50 slots free during every claim, so the
    // claims are big without holding ahead; a held job started by a write of its own would cost that write.
    const { claims, counts, loop } = instantJobs({ concurrency: 50, claimMs: 10 });
    loop.start();
    // Past several rate windows (200 ms each): the rate is known. Claims then take the free slots and
    // the start window (START_BATCH_MS, at most START_BATCH_CAP) ahead, and start every job they take.
    await until("a second of claims", () => claims.length >= 60, 10_000);
    await loop.stop(1_000);
    expect(counts.started).toBeGreaterThan(2_000);
    const later = claims.slice(30);
    expect(Math.max(...later.map((c) => c.limit))).toBeGreaterThan(50);
    expect(Math.max(...later.map((c) => c.limit))).toBeLessThanOrEqual(50 + START_BATCH_CAP);
    for (const claim of later) expect(claim.start).toBe(claim.limit);
  });

  it("starts in the claim the jobs that fall within the start window, and holds the rest", async () => {
    // The test starts the claimed jobs itself (each ends at once), moving a fake clock on by `gapMs` per
    // job: that sets the rate the loop observes.
    vi.useFakeTimers({ toFake: ["Date"] });
    let gapMs = 0.01;
    const { claims, lines, loop } = instantJobs({ concurrency: 1, manual: true });
    let clock = Date.now();
    const startOne = () => {
      clock += gapMs;
      vi.setSystemTime(Math.floor(clock));
      const started = loop.next();
      if (started) loop.ended(0);
      return started;
    };
    const run = async (ms: number) => {
      const end = clock + ms;
      for (let n = 0; clock < end; n++) {
        if (startOne() && n % 10 !== 0) continue;
        loop.wake();
        await turn();
        await turn();
      }
    };
    loop.start();
    // 100,000 starts a second: the start window covers the whole line, so a claim starts every job it takes
    // (each one row update fewer than a held job started by a write of its own).
    await run(1_000);
    const fast = claims.at(-1) as ClaimRequest;
    expect(fast.limit).toBeGreaterThan(50);
    expect(fast.start).toBe(Math.min(fast.limit, START_BATCH_CAP - (lines.at(-1) as number)));
    expect(fast.start).toBeGreaterThanOrEqual(fast.limit - 1);
    // 2,000 a second: the loop holds 100 ahead (AHEAD_MS), of which the window (START_BATCH_MS) is 40. (The
    // rate comes down from 100,000 a second by half per 200 ms window.)
    gapMs = 0.5;
    await run(3_000);
    const window = loop.startBatch();
    // (The smoothed rate is within a few percent of it.)
    expect(Math.abs(window - (2_000 * START_BATCH_MS) / 1_000)).toBeLessThanOrEqual(2);
    const refill = async (inLine: number) => {
      while (loop.heldCount > inLine) startOne();
      const before = claims.length;
      loop.wake();
      await until("a refill", () => claims.length > before, 5_000);
      return claims.at(-1) as ClaimRequest;
    };
    // A refill with the line longer than the window: the claim starts none of its jobs.
    expect((await refill(window + 5)).start).toBe(0);
    // With a line shorter than the window, the claim starts the jobs that reach the window, no more.
    while (loop.heldCount > 0) startOne();
    await refill(0);
    const short = await refill(window - 10);
    expect(short.limit).toBeGreaterThan(10);
    expect(short.start).toBe(10);
    await loop.stop(1_000);
    vi.useRealTimers();
  });

  it("on auto, gives the held jobs back once their line stood still for HELD_STALE_MS, and holds none after", async () => {
    const { claims, loop, stale } = instantJobs({ concurrency: 1, manual: true });
    loop.start();
    // Jobs start fast (the test starts them) until the loop holds many ahead; then the line stands still,
    // as behind a job that runs long.
    await holdMany(loop);
    const held = loop.heldCount;
    const stoodFrom = Date.now();
    const given = await until("the held jobs given back", () => stale[0], 5_000);
    expect(Date.now() - stoodFrom).toBeGreaterThanOrEqual(HELD_STALE_MS - 50);
    expect(given.length).toBeGreaterThanOrEqual(held);
    expect(loop.heldCount).toBe(0);
    // The rate they were held by is forgotten: the next claim asks for the free slot only.
    const before = claims.length;
    loop.wake();
    await until("a claim", () => claims.length > before, 5_000);
    expect(claims.at(-1)?.limit).toBe(1);
    await loop.stop(1_000);
  });

  it("keeps the held jobs while their line stands still for a store that lags, and gives them back after", async () => {
    let unwritten = 0;
    const { loop, stale } = instantJobs({ concurrency: 1, manual: true, unwritten: () => unwritten });
    loop.start();
    await holdMany(loop);
    // Outcomes pile up past the start allowance (2 × concurrency + UNWRITTEN_SLACK): the worker starts no
    // held job (worker.ts startHeld), so the line stands still for the store.
    unwritten = 2 + UNWRITTEN_SLACK + 1;
    const held = loop.heldCount;
    const from = Date.now();
    await until(
      "twice HELD_STALE_MS",
      () => Date.now() - from > 2 * HELD_STALE_MS || stale.length > 0,
      10_000,
    );
    expect(stale).toEqual([]);
    expect(loop.heldCount).toBe(held);
    // The store catches up; the line still does not move (a long job now): they go back.
    unwritten = 0;
    const given = await until("the held jobs given back", () => stale[0], 5_000);
    expect(given.length).toBe(held);
    await loop.stop(1_000);
  });

  it("on a fixed prefetch, keeps the held jobs however long their line stands still", async () => {
    const { claims, loop, stale } = instantJobs({ concurrency: 1, manual: true, prefetch: 20 });
    loop.start();
    await until("the line filled", () => claims.length > 0 && loop.heldCount === 21);
    // A negative claim needs a window: twice HELD_STALE_MS with nothing started.
    const from = Date.now();
    await until("a quiet window", () => Date.now() - from > 2 * HELD_STALE_MS || stale.length > 0, 10_000);
    expect(stale).toEqual([]);
    expect(loop.heldCount).toBe(21);
    await loop.stop(1_000);
  });

  describe("the next due time after an empty claim", () => {
    afterEach(() => vi.useRealTimers());

    it("is looked up after news, not after a claim that only follows completed jobs", async () => {
      // Date frozen: every claim below is within the refresh interval of the first lookup.
      vi.useFakeTimers({ toFake: ["Date"] });
      let claims = 0;
      let lookups = 0;
      const store = {
        traits: { inProcess: false },
        async claim() {
          claims++;
          return [];
        },
        async nextRunAt() {
          lookups++;
          return null;
        },
      } as unknown as Store;
      const loop = new FetchLoop(
        store,
        new QueueSelector(["q"]),
        { running: () => 0, unwritten: () => 0, claimed: () => {}, giveBack: async () => {} },
        new SluiceEventEmitter(),
        silentLogger(),
        { workerId: "w", concurrency: 2, prefetch: 0, leaseMs: 30_000, pollMs: 60_000 },
      );
      /** Wakes the loop one way and waits for the claim (and any lookup) that follows. */
      const claimAfter = async (poke: () => void) => {
        const before = claims;
        poke();
        await until("a claim", () => claims > before, 5_000);
        await turn();
        await turn();
      };
      try {
        loop.start();
        await until("the first claim looks up", () => lookups === 1, 5_000);
        // Completed jobs free slots: each brings a claim, none a lookup.
        for (let i = 0; i < 3; i++) await claimAfter(() => loop.slotFreed());
        expect([claims, lookups]).toEqual([4, 1]);
        // A signal (or the poll, a timer, a failed job) is news: the empty claim after it looks.
        await claimAfter(() => loop.wake());
        expect([claims, lookups]).toEqual([5, 2]);
        await claimAfter(() => loop.slotFreed());
        expect([claims, lookups]).toEqual([6, 2]);
      } finally {
        await loop.stop(1_000);
      }
    });
  });

  describe("claims for slots freed by completed jobs", () => {
    afterEach(() => vi.useRealTimers());

    it("after a claim that came back short, are sent at most once per DRY_CLAIM_MS; after a full one, at once", async () => {
      vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
      let claims = 0;
      let full = false;
      const store = {
        traits: { inProcess: false },
        async claim(request: ClaimRequest) {
          claims++;
          return full ? Array.from({ length: request.limit }, job) : [];
        },
        async nextRunAt() {
          return null;
        },
      } as unknown as Store;
      const loop: FetchLoop = new FetchLoop(
        store,
        new QueueSelector(["q"]),
        {
          running: () => 0,
          unwritten: () => 0,
          claimed: () => {
            while (loop.next()); // every job claimed starts (and ends) at once
          },
          giveBack: async () => {},
        },
        new SluiceEventEmitter(),
        silentLogger(),
        { workerId: "w", concurrency: 2, prefetch: 0, leaseMs: 30_000, pollMs: 60_000 },
      );
      const turns = async () => {
        for (let i = 0; i < 5; i++) await turn();
      };
      try {
        loop.start();
        await turns();
        expect(claims).toBe(1); // short: the queue had nothing
        for (let i = 0; i < 5; i++) loop.slotFreed();
        await turns();
        expect(claims).toBe(1);
        await vi.advanceTimersByTimeAsync(DRY_CLAIM_MS);
        await turns();
        expect(claims).toBe(2); // one claim for the five freed slots
        // A claim sent meanwhile (here for a signal) is the one a put-off freed slot waited for.
        loop.slotFreed();
        loop.wake();
        await turns();
        expect(claims).toBe(3);
        await vi.advanceTimersByTimeAsync(DRY_CLAIM_MS);
        await turns();
        expect(claims).toBe(3);
        // A signal claims at once, whatever the last claim found; this one comes back full.
        full = true;
        loop.wake();
        await turns();
        expect(claims).toBe(4);
        loop.slotFreed();
        await turns();
        expect(claims).toBe(5);
      } finally {
        await loop.stop(1_000);
      }
    });
  });
});
