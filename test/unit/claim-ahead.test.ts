/** How many jobs a worker holds ahead: fixed, or sized by the observed rate of jobs ending (runtime/claim-ahead.ts). */
import { describe, expect, it } from "vitest";
import {
  AHEAD_MS,
  AUTO_CAP,
  CLAIMS_BIG,
  CLAIMS_SMALL,
  ClaimAhead,
  PROBE_ENDS,
  PROBE_MS,
  START_BATCH_CAP,
  START_BATCH_MS,
} from "../../src/runtime/claim-ahead.js";

/** Ends `perSecond` jobs a second, evenly, for `ms` from `from`; returns the time it ended. */
function endAt(ahead: ClaimAhead, perSecond: number, from: number, ms: number): number {
  const gap = 1_000 / perSecond;
  let t = from;
  for (; t < from + ms; t += gap) ahead.ended(t);
  return from + ms;
}

describe("claim ahead", () => {
  it("holds a fixed prefetch whatever the rate", () => {
    const ahead = new ClaimAhead(7, 0);
    expect(ahead.target(0)).toBe(7);
    const end = endAt(ahead, 5_000, 0, 2_000);
    expect(ahead.target(end)).toBe(7);
    expect(new ClaimAhead(0, 0).target(10_000)).toBe(0);
  });

  it("on auto, holds nothing before it has seen jobs end", () => {
    const ahead = new ClaimAhead(null, 0);
    expect(ahead.target(0)).toBe(0);
    expect(ahead.target(5_000)).toBe(0);
  });

  it("holds what starts within the look-ahead at a steady rate", () => {
    const ahead = new ClaimAhead(null, 0);
    const end = endAt(ahead, 500, 0, 3_000);
    // 500 starts/s for 100 ms: 50 (the smoothed rate approaches 500 from below, so 49 or 50).
    const expected = (500 * AHEAD_MS) / 1_000;
    expect(ahead.target(end)).toBeGreaterThanOrEqual(expected - 1);
    expect(ahead.target(end)).toBeLessThanOrEqual(expected);
  });

  it("caps what it holds however fast jobs start", () => {
    const ahead = new ClaimAhead(null, 0);
    const end = endAt(ahead, 50_000, 0, 2_000);
    expect(ahead.target(end)).toBe(AUTO_CAP);
  });

  it("holds nothing for long jobs (an idle worker elsewhere takes the next one at once)", () => {
    const ahead = new ClaimAhead(null, 0);
    // Ten slots of one-second jobs: 10 starts a second, one per 100 ms, under one job per look-ahead.
    const end = endAt(ahead, 9, 0, 10_000);
    expect(ahead.target(end)).toBe(0);
  });

  it("on auto, holds only the start window while claims are big anyway: many slots free during one claim's round trip", () => {
    // 2,000 starts/s and 12.5 ms claims: 25 slots free per claim, at concurrency 50 (claims of ~25 already).
    // It holds the jobs its claims start (due within START_BATCH_MS: ~40), not the look-ahead's 100.
    const window = (2_000 * START_BATCH_MS) / 1_000;
    const busy = new ClaimAhead(null, 0, 50);
    busy.claimed(12.5);
    const held = busy.target(endAt(busy, 2_000, 0, 3_000));
    expect(held).toBeGreaterThanOrEqual(window - 1);
    expect(held).toBeLessThanOrEqual(window);
    expect(held).toBe(busy.startBatch(3_000));
    // The same rate at concurrency 10: at most 10 slots free per claim, so it holds the look-ahead (capped).
    const narrow = new ClaimAhead(null, 0, 10);
    narrow.claimed(12.5);
    expect(narrow.target(endAt(narrow, 2_000, 0, 3_000))).toBe(AUTO_CAP);
    // Concurrency 50 with 1 ms claims: 2 slots per claim, so it holds the look-ahead.
    const quick = new ClaimAhead(null, 0, 50);
    quick.claimed(1);
    expect(quick.target(endAt(quick, 2_000, 0, 3_000))).toBe(AUTO_CAP);
    // A fixed prefetch is the user's: held whatever the claims.
    const fixed = new ClaimAhead(30, 0, 50);
    fixed.claimed(12.5);
    expect(fixed.target(endAt(fixed, 2_000, 0, 3_000))).toBe(30);
  });

  it("switches between holding and not with a gap, so a worker near the line does not flip at every claim", () => {
    const ahead = new ClaimAhead(null, 0, 100);
    let t = endAt(ahead, 1_000, 0, 3_000); // ~1,000 starts/s: slots per claim = claim ms
    const perClaim = (ms: number) => {
      ahead.claimed(ms);
      for (let i = 0; i < 20; i++) ahead.claimed(ms); // settle the smoothing
      t = endAt(ahead, 1_000, t, 400);
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

  it("holds for a burst that reaches an idle worker within milliseconds, once PROBE_ENDS jobs ended", () => {
    const ahead = new ClaimAhead(null, 0, 1);
    // Idle for a while, then jobs end 2,000 a second (a no-op burst at concurrency 1).
    expect(ahead.target(5_000)).toBe(0);
    // Fewer than PROBE_ENDS ends: no rate yet, however fast.
    let t = endAt(ahead, 2_000, 5_000, ((PROBE_ENDS - 2) * 1_000) / 2_000);
    expect(ahead.target(t + PROBE_MS)).toBe(0);
    // A few ms of ends later: 2,000 a second holds the look-ahead's 200, capped; the start window is 40.
    t = endAt(ahead, 2_000, t + PROBE_MS, 2 * PROBE_MS);
    expect(ahead.target(t)).toBe(AUTO_CAP);
    expect(ahead.startBatch(t)).toBeGreaterThanOrEqual(((2_000 * START_BATCH_MS) / 1_000) * 0.75);
  });

  it("goes up within a few ms when jobs end at least twice as fast, and down only over windows", () => {
    const ahead = new ClaimAhead(null, 0, 1);
    let t = endAt(ahead, 200, 0, 2_000);
    const slow = ahead.target(t); // 200 a second: 20
    expect(slow).toBeGreaterThanOrEqual(19);
    expect(slow).toBeLessThanOrEqual(20);
    // Five times as fast for a few probes' time (PROBE_ENDS over PROBE_MS each): taken as it
    // stands, ~100 held, where the 200 ms windows would still be near the slow rate.
    t = endAt(ahead, 1_000, t, 3 * PROBE_MS);
    expect(ahead.target(t)).toBeGreaterThanOrEqual(90);
    // Back to 200 a second: smoothed, half the way per window.
    t = endAt(ahead, 200, t, 200);
    const falling = ahead.target(t);
    expect(falling).toBeGreaterThan(slow);
    expect(falling).toBeLessThan(90);
  });

  it("after a pause in the ends, measures a new burst from its start, not spread over the pause", () => {
    const ahead = new ClaimAhead(null, 0, 1);
    let t = endAt(ahead, 500, 0, 2_000);
    // A pause of two windows: the rate decays but is still known.
    t += 450;
    expect(ahead.target(t)).toBeGreaterThan(0);
    // A burst at 2,000 a second: held for after one probe (PROBE_ENDS over PROBE_MS).
    t = endAt(ahead, 2_000, t, PROBE_MS + 2);
    expect(ahead.target(t)).toBe(AUTO_CAP);
  });

  it("is bounded by what the slots can do at the mean job duration: long jobs ending together are no rate", () => {
    // Concurrency 50, one-second jobs that started together end together: fifty ends in a millisecond.
    const ahead = new ClaimAhead(null, 0, 50);
    for (let i = 0; i < 50; i++) ahead.ended(1_000 + i / 50, 1_000);
    // At most 50 a second (5 held for the 100 ms look-ahead), not 50 in 10 ms (5,000 a second, 100 held).
    expect(ahead.target(1_000 + PROBE_MS)).toBeLessThanOrEqual((50 * AHEAD_MS) / 1_000);
    expect(ahead.startBatch(1_000 + PROBE_MS)).toBe(1);
    // The same ends with no durations known (no bound): the burst would be taken for a rate.
    const unbounded = new ClaimAhead(null, 0, 50);
    for (let i = 0; i < 50; i++) unbounded.ended(1_000 + i / 50);
    expect(unbounded.target(1_000 + PROBE_MS)).toBe(AUTO_CAP);
  });

  it("lets go when starts stop: the rate halves per empty window", () => {
    const ahead = new ClaimAhead(null, 0);
    const end = endAt(ahead, 2_000, 0, 2_000);
    expect(ahead.target(end)).toBe(AUTO_CAP);
    expect(ahead.target(end + 400)).toBeLessThan(AUTO_CAP);
    expect(ahead.target(end + 2_000)).toBe(0);
  });

  it("writes ahead the starts due within the start batch window, capped, on auto and on a fixed prefetch", () => {
    for (const fixed of [null, 20]) {
      const ahead = new ClaimAhead(fixed, 0);
      expect(ahead.startBatch(0)).toBe(0);
      const end = endAt(ahead, 1_000, 0, 3_000);
      // 1,000 starts/s for 10 ms: 10 (the smoothed rate approaches 1,000 from below, so 9 or 10).
      const expected = (1_000 * START_BATCH_MS) / 1_000;
      expect(ahead.startBatch(end)).toBeGreaterThanOrEqual(expected - 1);
      expect(ahead.startBatch(end)).toBeLessThanOrEqual(expected);
      expect(ahead.startBatch(endAt(ahead, 50_000, end, 2_000))).toBe(START_BATCH_CAP);
    }
  });

  it("writes no start ahead for jobs slower than the window: each waits for its own", () => {
    const ahead = new ClaimAhead(null, 0);
    // Just under one start per window.
    const end = endAt(ahead, (0.9 * 1_000) / START_BATCH_MS, 0, 5_000);
    expect(ahead.startBatch(end)).toBe(0);
  });
});
