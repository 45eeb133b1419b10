/** `sluice doctor`'s stuck-blocked check on snapshots: each stuck job named with what it waits for and a fix. */
import { describe, expect, it } from "vitest";
import { checkStuckBlocked } from "../../src/doctor/checks.js";
import type { StuckBlockedJob } from "../../src/store/contract.js";
import { NOW, snapshot } from "./snapshot.js";

const input = (stuckBlocked: StuckBlockedJob[]) => snapshot({ stuckBlocked });

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
