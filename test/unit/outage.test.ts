/** The recovery gate after outages (src/store/outage.ts): the server's uptime and this process's connection. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { ConnectionWatch, RecoveryGate } from "../../src/store/outage.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("ConnectionWatch", () => {
  it("is back for ever until it breaks, then for the time since the first call that reached the store", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const watch = new ConnectionWatch();
    expect(watch.backForMs()).toBe(Number.POSITIVE_INFINITY);
    watch.reached();
    expect(watch.backForMs()).toBe(Number.POSITIVE_INFINITY);
    watch.lost();
    vi.advanceTimersByTime(5_000);
    watch.lost(); // still the same outage
    expect(watch.backForMs()).toBe(0);
    watch.reached();
    vi.advanceTimersByTime(1_200);
    expect(watch.backForMs()).toBe(1_200);
    watch.reached(); // a later success does not move the moment it came back
    expect(watch.backForMs()).toBe(1_200);
  });
});

describe("RecoveryGate", () => {
  it("defers until both the server and the connection have been up the wait, and logs once per outage", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const logger = silentLogger();
    const info = vi.spyOn(logger, "info");
    const gate = new RecoveryGate(logger, { engine: "test" });
    expect(gate.defer(undefined, 0)).toBe(false); // no wait asked (an operator's recover)
    expect(gate.defer(3_000, 10_000)).toBe(false); // old server, connection never broken
    expect(gate.defer(3_000, 1_000)).toBe(true); // the server restarted a second ago
    expect(gate.defer(3_000, 2_000)).toBe(true);
    expect(info).toHaveBeenCalledTimes(1);
    expect(gate.defer(3_000, 3_000)).toBe(false);
    gate.connection.lost(); // a partition: the server stays up, this process's connection breaks
    expect(gate.defer(3_000, 60_000)).toBe(true);
    gate.connection.reached();
    vi.advanceTimersByTime(2_999);
    expect(gate.defer(3_000, 60_000)).toBe(true);
    expect(info).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(1);
    expect(gate.defer(3_000, 60_000)).toBe(false);
  });
});
