/**
 * The PostgreSQL store's vacuum pacing (store/postgres/vacuum.ts): prune passes check for due tables; the
 * interval separates vacuums, not checks, so a check that found nothing due never holds off the next
 * pass's vacuum; `?vacuum=off` never checks.
 */
import { describe, expect, it } from "vitest";
import { VACUUM_MIN_INTERVAL_MS, VacuumPacer } from "../../src/store/postgres/vacuum.js";

describe("vacuum pacer", () => {
  it("lets the pass right after a check that found nothing due vacuum", () => {
    const pacer = new VacuumPacer(true);
    expect(pacer.mayCheck(1_000)).toBe(true);
    expect(pacer.found(0, 1_000)).toBe(false);
    // A moment later the table is due: nothing holds the check or the vacuum back.
    expect(pacer.mayCheck(1_001)).toBe(true);
    expect(pacer.found(1, 1_001)).toBe(true);
  });

  it("keeps vacuums at least the interval apart, counted from the end of the last", () => {
    const pacer = new VacuumPacer(true);
    expect(pacer.found(2, 10_000)).toBe(true);
    pacer.finished(12_000); // the vacuums took 2 s
    expect(pacer.mayCheck(12_000 + VACUUM_MIN_INTERVAL_MS - 1)).toBe(false);
    expect(pacer.mayCheck(12_000 + VACUUM_MIN_INTERVAL_MS)).toBe(true);
  });

  it("counts the interval from a vacuum that failed part-way (found, never finished)", () => {
    const pacer = new VacuumPacer(true);
    expect(pacer.found(1, 50_000)).toBe(true);
    expect(pacer.mayCheck(50_000 + VACUUM_MIN_INTERVAL_MS - 1)).toBe(false);
    expect(pacer.mayCheck(50_000 + VACUUM_MIN_INTERVAL_MS)).toBe(true);
  });

  it("never checks with ?vacuum=off", () => {
    const pacer = new VacuumPacer(false);
    expect(pacer.mayCheck(0)).toBe(false);
    expect(pacer.mayCheck(10 * VACUUM_MIN_INTERVAL_MS)).toBe(false);
  });
});
