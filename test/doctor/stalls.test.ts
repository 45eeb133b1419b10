/**
 * `sluice doctor`'s event-loop-stalls check: the pure check on snapshots (recent or not, over the lease or
 * not, several tasks or none), and through the real binary on every engine, from a worker entry that
 * carries a stall as a worker's heartbeat writes it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkEventLoopStalls } from "../../src/doctor/checks.js";
import type { DoctorInput } from "../../src/doctor/types.js";
import type { Sluice, WorkerOverview } from "../../src/index.js";
import type { StallRecord, WorkerStalls } from "../../src/store/contract.js";
import { ENGINES, type TestStore, testStore } from "../cli/helpers.js";
import { open } from "../cli/seed.js";
import { NOW, snapshot } from "./snapshot.js";
import { about, doctorJson } from "./suite.js";

const WINDOW = 10 * 60_000;

function worker(id: string, stalls: WorkerStalls): WorkerOverview {
  return {
    id,
    host: "host-a",
    pid: 4242,
    queues: ["pdf"],
    concurrency: 2,
    busy: 1,
    startedAt: NOW - 3_600_000,
    lastHeartbeatAt: NOW - 1_000,
    version: "0.0.0-test",
    stalls,
    health: [],
    clock: NOW - 1_000,
    clockSkewMs: 0,
    alive: true,
  };
}

function stall(overrides: Partial<StallRecord> = {}): StallRecord {
  return {
    at: NOW - 60_000,
    ms: 42_000,
    leaseMs: 30_000,
    tasks: ["pdf-parse"],
    jobIds: ["j1", "j2"],
    ...overrides,
  };
}

function input(workers: WorkerOverview[]): DoctorInput {
  return snapshot({ windowMs: WINDOW, completionsLookbackMs: WINDOW, workers, commandSuffix: "" });
}

describe("event-loop-stalls (pure check)", () => {
  it("a recent stall longer than the lease is critical, naming host/pid, task and what to do", () => {
    const findings = checkEventLoopStalls(
      input([worker("host-a/4242/w1", { count: 3, longestMs: 42_000, last: stall() })]),
    );
    expect(findings).toHaveLength(1);
    const [f] = findings;
    expect(f).toMatchObject({ check: "event-loop-stalls", severity: "critical", subject: "host-a/4242/w1" });
    expect(f?.message).toMatch(
      /^event loop blocked for 42s on host-a\/4242 while running task pdf-parse: move it to a sandbox or raise leaseMs \(lease 30s; 1m ago; 3 stall\(s\)/,
    );
    expect(f?.evidence).toMatchObject({
      stallMs: 42_000,
      leaseMs: 30_000,
      tasks: "pdf-parse",
      jobIds: "j1,j2",
      stalls: 3,
    });
    expect(f?.fix).toBe(
      "run pdf-parse off the event loop (a worker thread or child process), or give its worker a lease well above 42s: set lease: 126s in its config file, or add --lease 126s to its sluice worker command, and restart it",
    );
  });

  it("a recent stall within the lease (over a third of it) is a warning; several tasks are all named", () => {
    const [f] = checkEventLoopStalls(
      input([
        worker("host-a/4242/w2", {
          count: 1,
          longestMs: 12_000,
          last: stall({ ms: 12_000, tasks: ["pdf-parse", "ocr"] }),
        }),
      ]),
    );
    expect(f?.severity).toBe("warn");
    expect(f?.message).toContain(
      "event loop blocked for 12s on host-a/4242 while running tasks pdf-parse, ocr:",
    );
  });

  it("a stall older than the window, or none, is not reported: one ok line", () => {
    const findings = checkEventLoopStalls(
      input([
        worker("host-a/4242/old", { count: 5, longestMs: 90_000, last: stall({ at: NOW - WINDOW - 1 }) }),
        worker("host-a/4242/none", { count: 0, longestMs: 0, last: null }),
      ]),
    );
    expect(findings).toEqual([
      expect.objectContaining({ check: "event-loop-stalls", severity: "ok", subject: null }),
    ]);
  });
});

describe.each(ENGINES)("sluice doctor reports event-loop stalls on %s", (engine) => {
  let store: TestStore;
  let sluice: Sluice;
  beforeAll(() => {
    store = testStore(engine);
    sluice = open(store.url);
  });
  afterAll(async () => {
    await sluice?.close();
    await store?.dispose();
  });

  it("a worker whose last stall outlasted its lease is critical (exit 1); one within the lease is a warning", async () => {
    const raw = await sluice.store();
    const base = {
      host: "stall-host",
      queues: ["pdf"],
      concurrency: 1,
      busy: 0,
      startedAt: Date.now() - 120_000,
      lastHeartbeatAt: Date.now(),
      version: "0.0.0-test",
      health: [],
      clock: Date.now(),
      clockSkewMs: 0,
    };
    const over = "stall-host/101/over";
    const under = "stall-host/102/under";
    await raw.registerWorker({ ...base, id: over, pid: 101, stalls: { count: 0, longestMs: 0, last: null } });
    await raw.registerWorker({
      ...base,
      id: under,
      pid: 102,
      stalls: { count: 0, longestMs: 0, last: null },
    });
    // As the workers' heartbeats write them.
    const at = Date.now() - 5_000;
    await raw.heartbeatWorker(over, 0, {
      count: 2,
      longestMs: 2_400,
      last: { at, ms: 2_400, leaseMs: 600, tasks: ["pdf-parse"], jobIds: ["j1"] },
    });
    await raw.heartbeatWorker(under, 0, {
      count: 1,
      longestMs: 400,
      last: { at, ms: 400, leaseMs: 600, tasks: ["thumbnail"], jobIds: ["j2"] },
    });
    const { code, report } = await doctorJson(store.url);
    expect(code).toBe(1);
    const [critical] = about(report, "event-loop-stalls", over);
    expect(critical).toMatchObject({
      severity: "critical",
      evidence: { stallMs: 2_400, leaseMs: 600, pid: 101 },
    });
    expect(critical?.message).toMatch(
      /^event loop blocked for 2\.4s on stall-host\/101 while running task pdf-parse: move it to a sandbox or raise leaseMs/,
    );
    const [warning] = about(report, "event-loop-stalls", under);
    expect(warning).toMatchObject({ severity: "warn", evidence: { stallMs: 400, tasks: "thumbnail" } });
    await raw.unregisterWorker(over);
    await raw.unregisterWorker(under);
    const after = await doctorJson(store.url);
    expect(about(after.report, "event-loop-stalls").map((f) => f.severity)).toEqual(["ok"]);
  });
});
