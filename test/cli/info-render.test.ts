/** `sluice info`'s table cells for limits and key holds (pure rendering of a fabricated report). */
import { describe, expect, it } from "vitest";
import { type InfoReport, type QueueInfo, renderInfo } from "../../src/cli/commands/info.js";

function queue(overrides: Partial<QueueInfo>): QueueInfo {
  return {
    queue: "q",
    waiting: 0,
    active: 0,
    scheduled: 0,
    due: 0,
    blocked: 0,
    dead: 0,
    completed: 0,
    cancelled: 0,
    latencyMs: 0,
    paused: false,
    pausedUntil: null,
    throughputPerMin: 0,
    limits: null,
    limitedActive: 0,
    heldKeys: 0,
    ...overrides,
  };
}

describe("sluice info: limits and holds", () => {
  it("shows each queue's limits (with its active count against the concurrency) and its held keys", () => {
    const report: InfoReport = {
      store: { engine: "sqlite", version: "3", location: "/tmp/x.db" },
      queues: [
        queue({
          queue: "embeddings",
          limits: {
            concurrency: 10,
            rate: { max: 500, windowMs: 60_000 },
            keyConcurrency: 1,
            keyRate: { max: 10, windowMs: 1_000 },
          },
          limitedActive: 7,
          heldKeys: 3,
        }),
        queue({
          queue: "per-tenant",
          limits: { concurrency: null, rate: null, keyConcurrency: 2, keyRate: null },
        }),
        queue({ queue: "plain" }),
      ],
      workers: [],
    };
    const lines = renderInfo(report, false).split("\n");
    expect(lines.find((l) => l.startsWith("embeddings"))).toMatch(
      /7\/10 active, 500\/1m; per key 1 active, 10\/1s +running \(3 keys held\)/,
    );
    expect(lines.find((l) => l.startsWith("per-tenant"))).toMatch(/ per key 2 active +running$/);
    expect(lines.find((l) => l.startsWith("plain"))).toMatch(/ - +running$/);
  });
});
