import { describe, expect, it } from "vitest";
import {
  MAX_TICKS_PER_FIRE,
  nextTick,
  planFiring,
  previousTick,
  scheduleJobId,
  validateTiming,
} from "../../src/core/cron.js";

const at = (iso: string) => new Date(iso).getTime();

describe("validateTiming", () => {
  it("accepts 5- and 6-field cron expressions with a time zone (default UTC), and intervals", () => {
    expect(validateTiming({ cron: " 0 3 * * * " }, "s")).toEqual({ cron: "0 3 * * *", timezone: "UTC" });
    expect(validateTiming({ cron: "*/10 * * * * *", timezone: "Asia/Seoul" }, "s")).toEqual({
      cron: "*/10 * * * * *",
      timezone: "Asia/Seoul",
    });
    expect(validateTiming({ every: "15m" }, "s")).toEqual({ everyMs: 900_000 });
    expect(validateTiming({ every: 250 }, "s")).toEqual({ everyMs: 250 });
  });

  it.each([
    [{ cron: "61 * * * *" }, "INVALID_CRON", "s.cron", /minute/],
    [{ cron: "* * *" }, "INVALID_CRON", "s.cron", /5 fields/],
    [{ cron: "0 0 30 2 *" }, "INVALID_CRON", "s.cron", /never matches/],
    [{ cron: "0 3 * * *", timezone: "Mars/Olympus" }, "INVALID_CRON", "s.timezone", /IANA/],
    [{ cron: 5 }, "INVALID_CRON", "s.cron", /cron expression/],
    [{}, "INVALID_CRON", "s.cron", /every/],
    [{ cron: "* * * * *", every: "1m" }, "INVALID_OPTION", "s.every", /not both/],
    [{ every: "1m", timezone: "UTC" }, "INVALID_OPTION", "s.timezone", /cron expressions only/],
    [{ every: 99 }, "INVALID_OPTION", "s.every", /at least 100/],
    [{ every: "soon" }, "INVALID_OPTION", "s.every", /duration/],
  ])("rejects %j with %s on %s", (input, code, field, message) => {
    let error: unknown;
    try {
      validateTiming(input, "s");
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code, field });
    expect((error as Error).message).toMatch(message);
  });
});

describe("ticks", () => {
  it("evaluates cron in its time zone: 03:00 in Seoul is 18:00 UTC the day before", () => {
    const timing = { cron: "0 3 * * *", timezone: "Asia/Seoul" };
    expect(nextTick(timing, at("2026-12-01T00:00:00Z"))).toBe(at("2026-12-01T18:00:00Z"));
    // Strictly after: a tick is never its own successor.
    expect(nextTick(timing, at("2026-12-01T18:00:00Z"))).toBe(at("2026-12-02T18:00:00Z"));
    expect(previousTick(timing, at("2026-12-02T18:00:00Z"))).toBe(at("2026-12-01T18:00:00Z"));
  });

  it("follows daylight saving time in the schedule's zone", () => {
    // 09:00 in Berlin is 08:00 UTC in winter, 07:00 UTC in summer (clocks changed on 2026-03-29).
    const timing = { cron: "0 9 * * *", timezone: "Europe/Berlin" };
    expect(nextTick(timing, at("2026-03-28T12:00:00Z"))).toBe(at("2026-03-29T07:00:00Z"));
    expect(nextTick(timing, at("2026-03-27T12:00:00Z"))).toBe(at("2026-03-28T08:00:00Z"));
  });

  it("aligns intervals to the epoch, so every process computes the same ticks", () => {
    const timing = { everyMs: 900_000 };
    expect(nextTick(timing, at("2026-12-01T10:07:00Z"))).toBe(at("2026-12-01T10:15:00Z"));
    expect(nextTick(timing, at("2026-12-01T10:15:00Z"))).toBe(at("2026-12-01T10:30:00Z"));
    expect(previousTick(timing, at("2026-12-01T10:15:00Z"))).toBe(at("2026-12-01T10:00:00Z"));
    expect(previousTick(timing, at("2026-12-01T10:15:00.001Z"))).toBe(at("2026-12-01T10:15:00Z"));
  });

  it("names a tick's job after the schedule and the tick", () => {
    expect(scheduleJobId("nightly", 1_700_000_000_000)).toBe("schedule:nightly:1700000000000");
  });
});

describe("planFiring", () => {
  const hourly = { everyMs: 3_600_000 };
  const due = at("2026-12-01T00:00:00Z");
  const hour = 3_600_000;

  it("fires the one due tick when on time, whatever the policy", () => {
    for (const missed of ["once", "all", "skip"] as const) {
      expect(planFiring(hourly, missed, due, due + 5)).toEqual({
        ticks: [due],
        nextAt: due + hour,
        lastTick: due,
      });
    }
  });

  it("after an outage: once fires the latest tick, all every tick, skip none once past the grace", () => {
    const now = due + 3 * hour + 120_000;
    expect(planFiring(hourly, "once", due, now)).toEqual({
      ticks: [due + 3 * hour],
      nextAt: due + 4 * hour,
      lastTick: due + 3 * hour,
    });
    expect(planFiring(hourly, "all", due, now)).toEqual({
      ticks: [due, due + hour, due + 2 * hour, due + 3 * hour],
      nextAt: due + 4 * hour,
      lastTick: due + 3 * hour,
    });
    expect(planFiring(hourly, "skip", due, now)).toEqual({
      ticks: [],
      nextAt: due + 4 * hour,
      lastTick: due + 3 * hour,
    });
  });

  it("bounds one firing under 'all' and resumes from the first tick it did not take", () => {
    const every = { everyMs: 1_000 };
    const plan = planFiring(every, "all", due, due + 5_000_000);
    expect(plan.ticks).toHaveLength(MAX_TICKS_PER_FIRE);
    expect(plan.nextAt).toBe(due + MAX_TICKS_PER_FIRE * 1_000);
  });

  it("finds the latest tick of a years-long gap at once under 'once'", () => {
    const everySecond = { cron: "* * * * * *", timezone: "UTC" };
    // Found by previousTick, not by walking 94 million ticks (which would outlast the test's timeout).
    const plan = planFiring(everySecond, "once", due, due + 3 * 365 * 86_400_000);
    expect(plan.ticks).toEqual([due + 3 * 365 * 86_400_000]);
    expect(plan.nextAt).toBe(due + 3 * 365 * 86_400_000 + 1_000);
  });
});
