/**
 * `sluice doctor`'s failing-health-check, rate-held and clock-skew checks on fabricated snapshots (pure
 * functions: each severity and the evidence operators read).
 */
import { describe, expect, it } from "vitest";
import {
  checkClockSkew,
  checkFailingHealthChecks,
  checkRateHeldKeys,
  checkStagnation,
} from "../../src/doctor/checks.js";
import type { QueueOverview, WorkerOverview } from "../../src/index.js";
import type { KeyHold, QueueHealth } from "../../src/store/contract.js";
import { NOW, snapshot } from "./snapshot.js";

const input = snapshot;

function worker(id: string, overrides: Partial<WorkerOverview> = {}): WorkerOverview {
  return {
    id,
    host: `host-${id}`,
    pid: 42,
    queues: ["rag"],
    concurrency: 4,
    busy: 0,
    startedAt: NOW - 3_600_000,
    lastHeartbeatAt: NOW - 1_000,
    version: "0.0.0-test",
    stalls: { count: 0, longestMs: 0, last: null },
    health: [],
    clock: NOW - 1_000,
    clockSkewMs: 0,
    alive: true,
    ...overrides,
  };
}

function failing(queue: string, since = NOW - 120_000): QueueHealth {
  return { queue, ok: false, since, lastError: "connect ECONNREFUSED 10.0.0.7:6333", checkedAt: NOW - 5_000 };
}

function passing(queue: string): QueueHealth {
  return { queue, ok: true, since: NOW - 3_600_000, lastError: null, checkedAt: NOW - 5_000 };
}

function queue(name: string, waiting: number): QueueOverview {
  return {
    queue: name,
    counts: { waiting, active: 0, scheduled: 0, completed: 0, dead: 0, cancelled: 0, blocked: 0 },
    due: 0,
    oldestWaitingAt: NOW - 3_600_000,
    paused: false,
    pausedUntil: null,
    limits: null,
    limitedActive: 0,
    heldKeys: 0,
    latencyMs: 3_600_000,
  };
}

describe("failing-health-check (pure check)", () => {
  it("is ok with no check, and with passing checks", () => {
    expect(checkFailingHealthChecks(input({ workers: [worker("a")] }))).toEqual([
      expect.objectContaining({ severity: "ok", message: "no live worker declares a health check" }),
    ]);
    expect(
      checkFailingHealthChecks(input({ workers: [worker("a", { health: [passing("rag")] })] }))[0],
    ).toMatchObject({
      severity: "ok",
      evidence: { checks: 1 },
    });
  });

  it("is critical when no live worker of the queue passes, with the last error and since when", () => {
    const findings = checkFailingHealthChecks(
      input({
        queues: [queue("rag", 7)],
        workers: [
          worker("a", { health: [failing("rag")] }),
          worker("b", { health: [failing("rag", NOW - 60_000)] }),
          // A silent worker's state is stale: neither counted nor reported.
          worker("c", { alive: false, health: [passing("rag")] }),
        ],
      }),
    );
    expect(findings).toHaveLength(2);
    expect(findings[0]).toMatchObject({
      check: "failing-health-check",
      severity: "critical",
      subject: "rag@a",
      evidence: {
        queue: "rag",
        workerId: "a",
        host: "host-a",
        lastError: "connect ECONNREFUSED 10.0.0.7:6333",
        since: new Date(NOW - 120_000).toISOString(),
        failingForMs: 120_000,
        passingWorkers: 0,
        backlog: 7,
      },
    });
    expect(findings[0]?.message).toContain("nothing runs its 7 ready job(s)");
    expect(findings[0]?.message).toContain("ECONNREFUSED");
  });

  it("warns when another live worker of the queue passes (or has no check)", () => {
    const findings = checkFailingHealthChecks(
      input({ workers: [worker("a", { health: [failing("rag")] }), worker("b")] }),
    );
    expect(findings).toEqual([expect.objectContaining({ severity: "warn", subject: "rag@a" })]);
    expect(findings[0]?.evidence.passingWorkers).toBe(1);
  });

  it("leaves a queue whose check fails on every worker out of stagnation (its own check says why)", () => {
    const snapshot = input({
      queues: [queue("rag", 3)],
      workers: [worker("a", { health: [failing("rag")] })],
    });
    expect(checkStagnation(snapshot)).toEqual([expect.objectContaining({ severity: "ok" })]);
    const healthy = input({ queues: [queue("rag", 3)], workers: [worker("a")] });
    expect(checkStagnation(healthy)[0]?.severity).toBe("critical");
  });
});

describe("rate-held (pure check)", () => {
  const hold = (queueName: string, key: string, backlog: number, forMs = 30_000): KeyHold => ({
    queue: queueName,
    key,
    backlog,
    until: NOW + forMs,
  });

  it("is ok with no hold, and says how many are held without a backlog", () => {
    expect(checkRateHeldKeys(input())[0]).toMatchObject({
      severity: "ok",
      message: "no limit key is held by a rate limit",
    });
    const idle = checkRateHeldKeys(
      input({ keyHolds: [hold("emb", "t1", 0), hold("emb", "old", 5, -1_000)] }),
    );
    expect(idle[0]).toMatchObject({ severity: "ok", evidence: { held: 1 } });
  });

  it("warns per queue with its top offenders, largest backlog first", () => {
    const findings = checkRateHeldKeys(
      input({
        keyHolds: [
          hold("emb", "tenant-a", 3),
          hold("emb", "tenant-b", 40, 90_000),
          ...["c", "d", "e", "f", "g"].map((k, i) => hold("emb", `tenant-${k}`, i + 1)),
          hold("ocr", "key-1", 2),
        ],
      }),
    );
    expect(findings.map((f) => [f.subject, f.severity])).toEqual([
      ["emb", "warn"],
      ["ocr", "warn"],
    ]);
    expect(findings[0]?.evidence).toMatchObject({
      heldKeys: 7,
      backlog: 40 + 3 + 1 + 2 + 3 + 4 + 5,
      top: "tenant-b:40,tenant-g:5,tenant-f:4,tenant-a:3,tenant-e:3",
      longestHoldMs: 90_000,
    });
    expect(findings[0]?.message).toContain("and 2 more");
    expect(findings[0]?.fix).toBe(
      "sluice resume emb --url 'x'   # lifts every hold of the queue: only once the upstream accepts requests again",
    );
  });

  it("is skipped (never ok) when the store could not list held keys", () => {
    expect(checkRateHeldKeys(input({ keyHolds: { error: "limits: not implemented" } }))[0]).toMatchObject({
      severity: "skipped",
    });
  });
});

describe("clock-skew (pure check)", () => {
  it("is ok within 2 s either way, and names the largest", () => {
    const findings = checkClockSkew(
      input({ workers: [worker("a", { clockSkewMs: 1_999 }), worker("b", { clockSkewMs: -2_000 })] }),
    );
    expect(findings).toEqual([expect.objectContaining({ severity: "ok", evidence: { workers: 2 } })]);
  });

  it("warns past 2 s with the worker, host and skew; a silent worker is not judged", () => {
    const findings = checkClockSkew(
      input({
        workers: [
          worker("a", { clockSkewMs: 2_001 }),
          worker("b", { clockSkewMs: -45_000 }),
          worker("c", { clockSkewMs: 99_000, alive: false }),
        ],
      }),
    );
    expect(findings.map((f) => [f.subject, f.severity, f.evidence.skewMs, f.evidence.host])).toEqual([
      ["a", "warn", 2_001, "host-a"],
      ["b", "warn", -45_000, "host-b"],
    ]);
    expect(findings[0]?.message).toContain("ahead of");
    expect(findings[1]?.message).toContain("behind");
  });
});
