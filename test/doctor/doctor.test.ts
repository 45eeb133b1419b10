/**
 * `sluice doctor`: each check is shown the bad situation built for real on every engine — jobs with no
 * worker, a paused queue with a backlog, a worker killed with SIGKILL, a worker frozen (SIGSTOP) while its
 * job runs past its timeout, jobs going dead — and must report it with evidence and the fix.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DoctorReport, Finding } from "../../src/doctor/index.js";
import { buildReport, gatherDoctorInput, runChecks } from "../../src/doctor/index.js";
import type { Sluice } from "../../src/index.js";
import {
  collect,
  ENGINES,
  exited,
  fixture,
  runCli,
  spawnCli,
  type TestStore,
  testStore,
  until,
  waitForOutput,
} from "../cli/helpers.js";
import { drain, enqueue, open } from "../cli/seed.js";
import { PrivateRedis } from "../redis/helpers.js";

async function doctor(sluice: Sluice, windowMs = 60_000, staleAfterMs = 60_000): Promise<Finding[]> {
  const input = await gatherDoctorInput(sluice, { windowMs, staleAfterMs, connectTimeoutMs: 5_000 });
  return runChecks(input);
}

const about = (findings: Finding[], check: string, subject?: string) =>
  findings.filter((f) => f.check === check && (subject === undefined || f.subject === subject));

describe.each(ENGINES)("sluice doctor on %s", (engine) => {
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

  it("reports the store reachable with its round trip, and its hazards", async () => {
    const findings = await doctor(sluice);
    const [reach] = about(findings, "store-reachable");
    expect(reach?.severity).toBe("ok");
    expect(typeof reach?.evidence.pingMs).toBe("number");
    expect(about(findings, "store-hazard").length).toBeGreaterThan(0);
  });

  it("finds waiting jobs with no live worker, and stagnation once they waited past the window", async () => {
    await enqueue(sluice, "nobody", [{}, {}, {}]);
    const findings = await until("the backlog to be older than the window", async () => {
      const f = await doctor(sluice, 300);
      return about(f, "stagnation", "nobody").length > 0 ? f : null;
    });
    const [noWorker] = about(findings, "no-worker", "nobody");
    expect(noWorker).toMatchObject({ severity: "critical", evidence: { waiting: 3, liveWorkers: 0 } });
    expect(noWorker?.fix).toBe("sluice worker --queues nobody --tasks <your tasks module>");
    const [stagnant] = about(findings, "stagnation", "nobody");
    expect(stagnant).toMatchObject({ severity: "critical", evidence: { waiting: 3, completedInWindow: 0 } });
    // Through the real binary: exit 1 on critical, the stable JSON shape.
    const cli = await runCli(["doctor", "--json", "--window", "300ms", "--url", store.url]);
    expect(cli.code, cli.stderr).toBe(1);
    const report = JSON.parse(cli.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    expect(report.store.engine).toBe(engine);
    expect(report.summary.critical).toBeGreaterThanOrEqual(2);
    expect(report.findings.find((f) => f.check === "no-worker" && f.subject === "nobody")?.fix).toContain(
      "sluice worker --queues nobody",
    );
    await sluice.admin.delete({ queue: "nobody" });
  });

  it("finds a paused queue with a backlog and gives the resume command", async () => {
    await enqueue(sluice, "held", [{}, {}]);
    await sluice.admin.pause("held");
    const [paused] = about(await doctor(sluice, 300), "paused-backlog", "held");
    expect(paused).toMatchObject({ severity: "warn", evidence: { waiting: 2 }, fix: "sluice resume held" });
    const human = await runCli(["doctor", "--url", store.url]);
    expect(human.stdout).toMatch(/WARN\s+paused-backlog\s+queue held is paused with 2 waiting/);
    expect(human.stdout).toContain("fix: sluice resume held");
    await sluice.admin.resume("held");
    expect(about(await doctor(sluice), "paused-backlog", "held")).toEqual([]);
    await sluice.admin.delete({ queue: "held" });
  });

  it("finds a worker whose heartbeat is late after it was killed with SIGKILL", async () => {
    const child = spawnCli([
      "worker",
      "--queues",
      "cli_b",
      "--lease",
      "900ms",
      "--tasks",
      fixture("tasks.ts"),
      "--url",
      store.url,
    ]);
    const output = collect(child);
    await waitForOutput(child, /sluice worker running/);
    const pid = child.pid as number;
    expect(about(await doctor(sluice, 60_000, 1_000), "late-heartbeat")).toEqual([
      expect.objectContaining({ severity: "ok" }),
    ]);
    child.kill("SIGKILL");
    await exited(child);
    const late = await until("the heartbeat to be late", async () => {
      const f = about(await doctor(sluice, 60_000, 1_000), "late-heartbeat").find(
        (x) => x.evidence.pid === pid,
      );
      return f ?? null;
    });
    expect(late.severity).toBe("warn");
    expect(late.evidence.silentMs).toBeGreaterThan(1_000);
    expect(late.fix).toBe("sluice recover --dry-run");
    await output;
  });

  it("finds a job active past its timeout while its worker is frozen, and the fix recovers it", async () => {
    const child = spawnCli([
      "worker",
      "--queues",
      "cli_hang",
      "--lease",
      "60s",
      "--tasks",
      fixture("tasks.ts"),
      "--url",
      store.url,
    ]);
    const output = collect(child);
    try {
      await waitForOutput(child, /sluice worker running/);
      const [id] = (
        await sluice.enqueueMany("job_cli_hang", [
          { payload: { mode: "hang" }, options: { queue: "cli_hang", timeoutMs: 400 } },
        ])
      ).map((j) => j.id);
      await until(
        "the job to start",
        async () => (await sluice.admin.getJob(id as string)).state === "active",
      );
      child.kill("SIGSTOP"); // frozen: its timeout timer cannot fire, its heartbeat keeps the lease for 60 s
      const finding = await until(
        "the job to be past its timeout",
        async () => about(await doctor(sluice), "past-timeout", id).at(0) ?? null,
      );
      expect(finding.severity).toBe("critical");
      expect(finding.evidence.timeoutMs).toBe(400);
      expect(finding.evidence.runningMs).toBeGreaterThan(1_400);
      expect(finding.fix).toMatch(/^sluice recover --older-than \d+s$/);
      const fix = await runCli([...(finding.fix as string).split(" ").slice(1), "--yes", "--url", store.url]);
      expect(fix.code, fix.stderr).toBe(0);
      expect(fix.stdout).toContain("recovered 1 job");
      expect((await sluice.admin.getJob(id as string)).state).not.toBe("active");
    } finally {
      child.kill("SIGKILL");
      await exited(child);
      await output;
    }
  });

  it("finds dead-letter growth within the window", async () => {
    await enqueue(sluice, "dlq_growth", [{ mode: "fail" }, { mode: "fail" }, { mode: "ok" }]);
    await drain(store.url, "dlq_growth");
    const [growth] = about(await doctor(sluice), "dead-letter-growth", "dlq_growth");
    expect(growth).toMatchObject({
      severity: "warn",
      evidence: { deadInWindow: 2, deadTotal: 2, completedInWindow: 1 },
    });
    expect(growth?.fix).toContain("sluice retry --state dead --queue dlq_growth --yes");
  });
});

describe("sluice doctor when the store itself is the problem", () => {
  it("reports an unreachable store as critical with the command to check it", async () => {
    const sluice = open("redis://127.0.0.1:1/0?prefix=nothing");
    try {
      const input = await gatherDoctorInput(sluice, {
        windowMs: 60_000,
        staleAfterMs: 60_000,
        connectTimeoutMs: 3_000,
      });
      const report = buildReport(input, runChecks(input));
      expect(report.ok).toBe(false);
      expect(report.findings[0]).toMatchObject({ check: "store-reachable", severity: "critical" });
      expect(report.findings[0]?.fix).toContain("redis-cli -u");
    } finally {
      await sluice.close().catch(() => {});
    }
  });

  it("reports a Redis that may evict keys as critical", async () => {
    const server = await PrivateRedis.start(["--maxmemory-policy", "allkeys-lru"]);
    const sluice = open(`${server.url}?prefix=doc`);
    try {
      const hazard = about(await doctor(sluice), "store-hazard", "REDIS_EVICTION_POLICY")[0];
      expect(hazard?.severity).toBe("critical");
      expect(hazard?.fix).toContain("maxmemory-policy noeviction");
    } finally {
      await sluice.close();
      await server.destroy();
    }
  });

  it("warns about an in-memory SQLite database", async () => {
    const sluice = open("sqlite::memory:");
    try {
      const hazard = about(await doctor(sluice), "store-hazard", "SQLITE_MEMORY")[0];
      expect(hazard).toMatchObject({ severity: "warn", fix: "use a file: sqlite:./sluice.db" });
    } finally {
      await sluice.close();
    }
  });
});
