/** How many jobs a worker holds ahead: fixed, or sized by its observed start rate (runtime/claim-ahead.ts). */
import { describe, expect, it } from "vitest";
import {
  AHEAD_MS,
  AUTO_CAP,
  CLAIMS_BIG,
  CLAIMS_SMALL,
  ClaimAhead,
  START_BATCH_CAP,
  START_BATCH_MS,
} from "../../src/runtime/claim-ahead.js";

/** Starts `perSecond` jobs a second, evenly, for `ms` from `from`; returns the time it ended. */
function startAt(ahead: ClaimAhead, perSecond: number, from: number, ms: number): number {
  const gap = 1_000 / perSecond;
  let t = from;
  for (; t < from + ms; t += gap) ahead.started(t);
  return from + ms;
}

describe("claim ahead", () => {
  it("holds a fixed prefetch whatever the rate", () => {
    const ahead = new ClaimAhead(7, 0);
    expect(ahead.target(0)).toBe(7);
    const end = startAt(ahead, 5_000, 0, 2_000);
    expect(ahead.target(end)).toBe(7);
    expect(new ClaimAhead(0, 0).target(10_000)).toBe(0);
  });

  it("on auto, holds nothing before it has seen jobs start", () => {
    const ahead = new ClaimAhead(null, 0);
    expect(ahead.target(0)).toBe(0);
    expect(ahead.target(5_000)).toBe(0);
  });

  it("holds what starts within the look-ahead at a steady rate", () => {
    const ahead = new ClaimAhead(null, 0);
    const end = startAt(ahead, 500, 0, 3_000);
    // 500 starts/s for 100 ms: 50 (the smoothed rate approaches 500 from below, so 49 or 50).
    const expected = (500 * AHEAD_MS) / 1_000;
    expect(ahead.target(end)).toBeGreaterThanOrEqual(expected - 1);
    expect(ahead.target(end)).toBeLessThanOrEqual(expected);
  });

  it("caps what it holds however fast jobs start", () => {
    const ahead = new ClaimAhead(null, 0);
    const end = startAt(ahead, 50_000, 0, 2_000);
    expect(ahead.target(end)).toBe(AUTO_CAP);
  });

  it("holds nothing for long jobs (an idle worker elsewhere takes the next one at once)", () => {
    const ahead = new ClaimAhead(null, 0);
    // Ten slots of one-second jobs: 10 starts a second, one per 100 ms, under one job per look-ahead.
    const end = startAt(ahead, 9, 0, 10_000);
    expect(ahead.target(end)).toBe(0);
  });

  it("on auto, holds only the start window while claims are big anyway: many slots free during one claim's round trip", () => {
    // 2,000 starts/s and 12.5 ms claims: 25 slots free per claim, at concurrency 50 (claims of ~25 already).
    // It holds the jobs its claims start (due within START_BATCH_MS: ~40), not the look-ahead's 100.
    const window = (2_000 * START_BATCH_MS) / 1_000;
    const busy = new ClaimAhead(null, 0, 50);
    busy.claimed(12.5);
    const held = busy.target(startAt(busy, 2_000, 0, 3_000));
    expect(held).toBeGreaterThanOrEqual(window - 1);
    expect(held).toBeLessThanOrEqual(window);
    expect(held).toBe(busy.startBatch(3_000));
    // The same rate at concurrency 10: at most 10 slots free per claim, so it holds the look-ahead (capped).
    const narrow = new ClaimAhead(null, 0, 10);
    narrow.claimed(12.5);
    expect(narrow.target(startAt(narrow, 2_000, 0, 3_000))).toBe(AUTO_CAP);
    // Concurrency 50 with 1 ms claims: 2 slots per claim, so it holds the look-ahead.
    const quick = new ClaimAhead(null, 0, 50);
    quick.claimed(1);
    expect(quick.target(startAt(quick, 2_000, 0, 3_000))).toBe(AUTO_CAP);
    // A fixed prefetch is the user's: held whatever the claims.
    const fixed = new ClaimAhead(30, 0, 50);
    fixed.claimed(12.5);
    expect(fixed.target(startAt(fixed, 2_000, 0, 3_000))).toBe(30);
  });

  it("switches between holding and not with a gap, so a worker near the line does not flip at every claim", () => {
    const ahead = new ClaimAhead(null, 0, 100);
    let t = startAt(ahead, 1_000, 0, 3_000); // ~1,000 starts/s: slots per claim = claim ms
    const perClaim = (ms: number) => {
      ahead.claimed(ms);
      for (let i = 0; i < 20; i++) ahead.claimed(ms); // settle the smoothing
      t = startAt(ahead, 1_000, t, 400);
      return ahead.target(t);
    };
    // Small claims: the look-ahead (100 at 1,000/s); big ones: the start window (20 at 1,000/s).
    const window = (1_000 * START_BATCH_MS) / 1_000;
    expect(perClaim(CLAIMS_BIG - 4)).toBeGreaterThan(2 * window);
    expect(perClaim(CLAIMS_BIG + 2)).toBeLessThanOrEqual(window);
    // Back under CLAIMS_BIG but above CLAIMS_SMALL: still big.
    expect(perClaim((CLAIMS_BIG + CLAIMS_SMALL) / 2)).toBeLessThanOrEqual(window);
    expect(perClaim(CLAIMS_SMALL - 4)).toBeGreaterThan(2 * window);
  });

  it("lets go when starts stop: the rate halves per empty window", () => {
    const ahead = new ClaimAhead(null, 0);
    const end = startAt(ahead, 2_000, 0, 2_000);
    expect(ahead.target(end)).toBe(AUTO_CAP);
    expect(ahead.target(end + 400)).toBeLessThan(AUTO_CAP);
    expect(ahead.target(end + 2_000)).toBe(0);
  });

  it("writes ahead the starts due within the start batch window, capped, on auto and on a fixed prefetch", () => {
    for (const fixed of [null, 20]) {
      const ahead = new ClaimAhead(fixed, 0);
      expect(ahead.startBatch(0)).toBe(0);
      const end = startAt(ahead, 1_000, 0, 3_000);
      // 1,000 starts/s for 10 ms: 10 (the smoothed rate approaches 1,000 from below, so 9 or 10).
      const expected = (1_000 * START_BATCH_MS) / 1_000;
      expect(ahead.startBatch(end)).toBeGreaterThanOrEqual(expected - 1);
      expect(ahead.startBatch(end)).toBeLessThanOrEqual(expected);
      expect(ahead.startBatch(startAt(ahead, 50_000, end, 2_000))).toBe(START_BATCH_CAP);
    }
  });

  it("writes no start ahead for jobs slower than the window: each waits for its own", () => {
    const ahead = new ClaimAhead(null, 0);
    // Just under one start per window.
    const end = startAt(ahead, (0.9 * 1_000) / START_BATCH_MS, 0, 5_000);
    expect(ahead.startBatch(end)).toBe(0);
  });
});
