/** `sluice doctor`'s stuck-blocked check on snapshots: each stuck job named with what it waits for and a fix. */
import { describe, expect, it } from "vitest";
import { checkStuckBlocked } from "../../src/doctor/checks.js";
import type { DoctorInput } from "../../src/doctor/types.js";
import type { StuckBlockedJob } from "../../src/store/contract.js";

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

function input(stuckBlocked: StuckBlockedJob[]): DoctorInput {
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
    stuckBlocked,
    keyHolds: [],
    commandSuffix: " --url 'x'",
  };
}

describe("stuck-blocked (pure check)", () => {
  it("is ok when no blocked job is stuck", () => {
    expect(checkStuckBlocked(input([]))).toEqual([
      expect.objectContaining({ check: "stuck-blocked", severity: "ok", subject: null }),
    ]);
  });

  it("warns per stuck job, naming its dependencies and their states, with a cancel fix", () => {
    const findings = checkStuckBlocked(
      input([
        {
          id: "idx-1",
          queue: "rag",
          task: "index",
          createdAt: NOW - 3_600_000,
          pendingDependencies: 2,
          waitingFor: [
            { id: "emb-1", state: "completed" },
            { id: "emb-2", state: null },
          ],
        },
        {
          id: "idx-2",
          queue: "rag",
          task: "index",
          createdAt: NOW - 60_000,
          pendingDependencies: 0,
          waitingFor: [],
        },
      ]),
    );
    expect(findings).toHaveLength(2);
    expect(findings[0]).toMatchObject({
      check: "stuck-blocked",
      severity: "warn",
      subject: "idx-1",
      evidence: { pendingDependencies: 2, waitingFor: 2, blockedForMs: 3_600_000 },
      fix: "sluice cancel idx-1 --url 'x'",
    });
    expect(findings[0]?.message).toContain("emb-1 (completed), emb-2 (gone)");
    expect(findings[1]?.message).toContain("waits for no unfinished dependency");
  });
});
