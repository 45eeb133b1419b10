/** A doctor snapshot of a healthy, empty SQLite store at `NOW`, for the pure checks' tests; override what a test is about. */
import type { DoctorInput } from "../../src/doctor/types.js";

export const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

export function snapshot(overrides: Partial<DoctorInput> = {}): DoctorInput {
  return {
    now: NOW,
    windowMs: 600_000,
    staleAfterMs: 60_000,
    store: {
      reachable: true,
      pingMs: 1,
      info: { engine: "sqlite", version: "3", location: "/tmp/x.db", hazards: [] },
    },
    target: { engine: "sqlite", path: "/tmp/x.db", memory: false },
    queues: [],
    workers: [],
    stats: [],
    rollupSince: NOW - 3_600_000,
    lastCompletions: new Map(),
    completionsLookbackMs: 600_000,
    active: [],
    stuckBlocked: [],
    keyHolds: [],
    commandSuffix: " --url 'x'",
    ...overrides,
  };
}
