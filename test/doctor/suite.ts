/**
 * `sluice doctor` through the real binary, one engine per test file (sqlite.test.ts, postgres.test.ts,
 * redis.test.ts): each check is shown the bad situation built for real — jobs with no worker (waiting, and
 * scheduled jobs that fell due), a worker whose handlers hang, a paused queue with a backlog, a handler
 * answering 429, a worker killed with SIGKILL, a worker frozen (SIGSTOP) past a job's timeout, jobs going
 * dead — and `sluice doctor --json` must report it with evidence and a fix that runs.
 *
 * The store URL is passed in SLUICE_URL, as an operator's cron job would, so the suggested commands are
 * exactly what to type (no `--url`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DoctorReport, Finding } from "../../src/doctor/index.js";
import type { Sluice } from "../../src/index.js";
import {
  collect,
  type Engine,
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

/** Every check `sluice doctor` runs, in report order: written out, not imported, so a dropped or reordered check fails. */
export const CHECK_IDS = [
  "store-reachable",
  "store-hazard",
  "no-worker",
  "stagnation",
  "dead-letter-growth",
  "past-timeout",
  "late-heartbeat",
  "event-loop-stalls",
  "paused-backlog",
  "rate-limited",
  "rate-held",
  "stuck-blocked",
  "failing-health-check",
  "clock-skew",
] as const;

/** Runs `sluice doctor --json <args>` against `url` (in SLUICE_URL); returns the exit code and report. */
export async function doctorJson(
  url: string,
  args: string[] = [],
): Promise<{ code: number | null; report: DoctorReport; stderr: string }> {
  const result = await runCli(["doctor", "--json", ...args], { env: { SLUICE_URL: url } });
  let report: DoctorReport;
  try {
    report = JSON.parse(result.stdout) as DoctorReport;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, report, stderr: result.stderr };
}

export const about = (report: DoctorReport, check: string, subject?: string): Finding[] =>
  report.findings.filter((f) => f.check === check && (subject === undefined || f.subject === subject));

/** Runs a suggested fix (a `sluice …` command) through the binary, with extra arguments. */
function runFix(fix: string, url: string, extra: string[] = []) {
  expect(fix).toMatch(/^sluice /);
  expect(fix).not.toMatch(/[<>]|\*\*\*/); // runnable as typed: no placeholders, no redacted password
  return runCli([...fix.split(" ").slice(1), ...extra], { env: { SLUICE_URL: url } });
}

export function doctorSuite(engine: Engine): void {
  describe(`sluice doctor on ${engine}`, () => {
    let store: TestStore;
    let sluice: Sluice;
    const workers: ReturnType<typeof spawnCli>[] = [];
    const startWorker = async (queue: string, extra: string[] = []) => {
      const child = spawnCli(
        ["worker", "--queues", queue, "--tasks", fixture("tasks.mjs"), "--url", store.url, ...extra],
        {},
      );
      workers.push(child);
      const output = collect(child, { timeoutMs: 120_000 });
      await waitForOutput(child, /sluice worker running/);
      return { child, output };
    };
    beforeAll(() => {
      store = testStore(engine);
      sluice = open(store.url);
    });
    afterAll(async () => {
      for (const child of workers) {
        child.kill("SIGKILL");
        await exited(child);
      }
      await sluice?.close();
      await store?.dispose();
    });

    it("on a healthy store: every check has its ok line, exit 0", async () => {
      const { code, report } = await doctorJson(store.url);
      expect(code).toBe(0);
      expect(report.ok).toBe(true);
      expect(report.store.engine).toBe(engine);
      expect(typeof report.store.pingMs).toBe("number");
      for (const check of CHECK_IDS) {
        expect(
          about(report, check).some((f) => f.severity === "ok"),
          `${check} has an ok line`,
        ).toBe(true);
      }
      const [reach] = about(report, "store-reachable");
      expect(typeof reach?.evidence.pingMs).toBe("number");
      expect(report.summary.critical).toBe(0);
    });

    it("backlog with no live worker — waiting jobs and scheduled jobs that fell due — is critical, then stagnant", async () => {
      await enqueue(sluice, "nobody", [{}, {}, {}]);
      // Retries / delays that are over: they stay `scheduled` (due) when no worker promotes them.
      await sluice.enqueueMany("job_nobody_due", [
        { payload: {}, options: { queue: "nobody_due", delayMs: 200 } },
        { payload: {}, options: { queue: "nobody_due", delayMs: 200 } },
      ]);
      const { code, report } = await until("the backlog to be older than the window", async () => {
        const r = await doctorJson(store.url, ["--window", "1s"]);
        return about(r.report, "stagnation", "nobody").length &&
          about(r.report, "stagnation", "nobody_due").length
          ? r
          : null;
      });
      expect(code).toBe(1);
      expect(report.ok).toBe(false);
      const [waiting] = about(report, "no-worker", "nobody");
      expect(waiting).toMatchObject({
        severity: "critical",
        evidence: { backlog: 3, waiting: 3, due: 0, liveWorkers: 0 },
        fix: "sluice worker --queues nobody --tasks ./dist/tasks.js",
      });
      const [due] = about(report, "no-worker", "nobody_due");
      expect(due).toMatchObject({
        severity: "critical",
        evidence: { backlog: 2, waiting: 0, due: 2, liveWorkers: 0 },
      });
      expect(due?.message).toContain("2 due");
      const [stagnant] = about(report, "stagnation", "nobody_due");
      expect(stagnant).toMatchObject({
        severity: "critical",
        evidence: { backlog: 2, due: 2, liveWorkers: 0 },
      });
      expect(stagnant?.evidence.lastCompletedAt).toBeNull();
      expect(stagnant?.fix).toBe("sluice worker --queues nobody_due --tasks ./dist/tasks.js");
      // sluice info shows the due jobs and their latency too.
      const info = await runCli(["info", "--json"], { env: { SLUICE_URL: store.url } });
      const q = (
        JSON.parse(info.stdout) as { queues: { queue: string; due: number; latencyMs: number }[] }
      ).queues.find((x) => x.queue === "nobody_due");
      expect(q?.due).toBe(2);
      expect(q?.latencyMs).toBeGreaterThan(0);
      await sluice.admin.delete({ queue: "nobody" });
      await sluice.admin.delete({ queue: "nobody_due" });
    });

    it("a paused queue with a backlog (waiting or due) is a warning with the resume command, which works", async () => {
      await enqueue(sluice, "held", [{}, {}]);
      await sluice.enqueueMany("job_held_due", [
        { payload: {}, options: { queue: "held_due", delayMs: 200 } },
      ]);
      await sluice.admin.pause("held");
      await sluice.admin.pause("held_due");
      const { report } = await until("the due job to be due", async () => {
        const r = await doctorJson(store.url);
        return about(r.report, "paused-backlog", "held_due").length ? r : null;
      });
      const [paused] = about(report, "paused-backlog", "held");
      expect(paused).toMatchObject({
        severity: "warn",
        evidence: { backlog: 2, waiting: 2 },
        fix: "sluice resume held",
      });
      const [pausedDue] = about(report, "paused-backlog", "held_due");
      expect(pausedDue).toMatchObject({ severity: "warn", evidence: { backlog: 1, due: 1 } });
      // Paused queues are the paused-backlog check's business, not stagnation's.
      expect(about(report, "stagnation", "held")).toEqual([]);
      const human = await runCli(["doctor"], { env: { SLUICE_URL: store.url } });
      expect(human.stdout).toMatch(/WARN\s+paused-backlog\s+queue held is paused with 2 in backlog/);
      expect(human.stdout).toContain("fix: sluice resume held");
      const fixed = await runFix(paused?.fix as string, store.url);
      expect(fixed.code, fixed.stderr).toBe(0);
      expect(about((await doctorJson(store.url)).report, "paused-backlog", "held")).toEqual([]);
      await sluice.admin.delete({ queue: "held" });
      await sluice.admin.delete({ queue: "held_due" });
      await sluice.admin.resume("held_due");
    });

    it("a live worker whose handlers hang: no completion for longer than the window is stagnation", async () => {
      const { child } = await startWorker("cli_stuck", [
        "--concurrency",
        "1",
        "--lease",
        "60s",
        "--shutdown-grace",
        "100ms",
      ]);
      try {
        await enqueue(sluice, "cli_stuck", [{ mode: "ok" }], "job_cli_stuck");
        // The completion reaches the roll-up with the worker's next stats flush (every few seconds).
        const completedAt = await until(
          "the completion to reach the roll-up",
          async () => (await sluice.admin.lastCompletions({ sinceMs: 3_600_000 })).get("cli_stuck"),
          30_000,
        );
        await enqueue(
          sluice,
          "cli_stuck",
          [{ mode: "hang" }, { mode: "hang" }, { mode: "hang" }],
          "job_cli_stuck",
        );
        const window = 2_000;
        // A completion within the window: not stagnant (the hourly roll-up alone could not tell).
        const early = await doctorJson(store.url, ["--window", "60s"]);
        expect(about(early.report, "stagnation", "cli_stuck")).toEqual([]);
        const { code, report } = await until(
          "the queue to be stuck for longer than the window",
          async () => {
            const r = await doctorJson(store.url, ["--window", "2s"]);
            return about(r.report, "stagnation", "cli_stuck").length ? r : null;
          },
          30_000,
        );
        expect(Date.now() - completedAt).toBeGreaterThan(window);
        expect(code).toBe(1);
        const [stuck] = about(report, "stagnation", "cli_stuck");
        expect(stuck).toMatchObject({
          severity: "critical",
          evidence: { liveWorkers: 1, windowMs: window, lastCompletedAt: completedAt, due: 0 },
        });
        // One handler hangs; the worker may hold one more claimed ahead (prefetch): the rest is backlog.
        const { backlog, active } = (stuck?.evidence ?? {}) as { backlog?: number; active?: number };
        expect(backlog).toBeGreaterThanOrEqual(1);
        expect(active).toBeGreaterThanOrEqual(1);
        expect((backlog ?? 0) + (active ?? 0)).toBe(3);
        expect(stuck?.evidence.sinceLastCompletionMs).toBeGreaterThan(window);
        expect(typeof stuck?.evidence.minutesSinceLastCompletion).toBe("number");
        expect(stuck?.message).toMatch(/last completion .* ago/);
        expect(stuck?.fix).toBe("sluice recover --older-than 2s --dry-run");
        const dry = await runFix(stuck?.fix as string, store.url);
        expect(dry.code, dry.stderr).toBe(0);
        expect(dry.stdout).toMatch(/would recover \d+ jobs? running longer than 2s/);
        expect(dry.stdout).toContain("cli_stuck");
      } finally {
        // Leave nothing active behind for the other checks: a graceful stop releases the hung jobs.
        child.kill("SIGTERM");
        await exited(child);
        await sluice.admin.delete({ queue: "cli_stuck" });
      }
    });

    it("jobs that went dead are reported with what the numbers cover, and the fix lists them", async () => {
      await enqueue(sluice, "dlq_growth", [{ mode: "fail" }, { mode: "fail" }, { mode: "ok" }]);
      await drain(store.url, "dlq_growth");
      const { report } = await doctorJson(store.url);
      const [growth] = about(report, "dead-letter-growth", "dlq_growth");
      expect(growth).toMatchObject({ severity: "warn", evidence: { dead: 2, deadTotal: 2, completed: 1 } });
      // The roll-up is hourly: the message names the hour it counts from, not a window it cannot see.
      const since = growth?.evidence.since as string;
      expect(since).toMatch(/^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);
      // The hour that contains the start of the (default, 10 minute) window.
      const windowStart = Date.now() - 600_000;
      expect(Date.parse(since)).toBeLessThanOrEqual(windowStart);
      expect(Date.parse(since)).toBeGreaterThan(windowStart - 3_600_000 - 60_000);
      expect(growth?.message).toContain(`since ${since.slice(11, 16)} UTC`);
      expect(growth?.message).toContain("the stats roll-up counts whole hours");
      expect(growth?.message).not.toContain("in the last 10m");
      const listFix = String(growth?.fix).split("   #")[0] as string;
      const list = await runFix(listFix, store.url, ["--json"]);
      expect(list.code, list.stderr).toBe(0);
      expect((JSON.parse(list.stdout) as { jobs: unknown[] }).jobs).toHaveLength(2);
    });

    it("a queue held by a rate limit (a handler answered 429) with a backlog is reported", async () => {
      expect((await doctorJson(store.url)).report.findings).toContainEqual(
        expect.objectContaining({ check: "rate-limited", severity: "ok" }),
      );
      await startWorker("cli_429", ["--concurrency", "1"]);
      await enqueue(sluice, "cli_429", [{ mode: "429" }, { mode: "429" }, { mode: "429" }], "job_cli_429");
      const { report } = await until("the queue to be rate-limited", async () => {
        const r = await doctorJson(store.url);
        return about(r.report, "rate-limited", "cli_429").find((f) => f.severity === "warn") ? r : null;
      });
      const [held] = about(report, "rate-limited", "cli_429");
      // The job that met the 429 (and any the worker had claimed ahead) wait out the hold as scheduled.
      const { backlog, scheduled } = (held?.evidence ?? {}) as { backlog?: number; scheduled?: number };
      expect(backlog).toBeGreaterThanOrEqual(1);
      expect(scheduled).toBeGreaterThanOrEqual(1);
      expect((backlog ?? 0) + (scheduled ?? 0)).toBe(3);
      expect(held?.evidence.pausedForMs).toBeGreaterThan(30_000);
      expect(held?.message).toMatch(/held by a rate limit/);
      expect(held?.fix).toBe("sluice resume cli_429");
      expect(about(report, "stagnation", "cli_429")).toEqual([]);
      expect(about(report, "paused-backlog", "cli_429")).toEqual([]);
      await sluice.admin.delete({ queue: "cli_429" });
    });

    it("a worker killed with SIGKILL has a late heartbeat", async () => {
      const { child, output } = await startWorker("cli_b", ["--lease", "900ms"]);
      const pid = child.pid as number;
      const before = await doctorJson(store.url, ["--stale-after", "1s"]);
      expect(about(before.report, "late-heartbeat").filter((f) => f.evidence.pid === pid)).toEqual([]);
      child.kill("SIGKILL");
      await exited(child);
      await output;
      const late = await until("the heartbeat to be late", async () => {
        const r = await doctorJson(store.url, ["--stale-after", "1s"]);
        return about(r.report, "late-heartbeat").find((f) => f.evidence.pid === pid) ?? null;
      });
      expect(late.severity).toBe("warn");
      expect(late.evidence.silentMs).toBeGreaterThan(1_000);
      expect(late.fix).toBe("sluice recover --dry-run");
      const fix = await runFix(late.fix as string, store.url);
      expect(fix.code, fix.stderr).toBe(0);
    });

    it("a job active past its timeout while its worker is frozen is critical, and the fix recovers it", async () => {
      const { child } = await startWorker("cli_hang", ["--lease", "60s"]);
      const [id] = (
        await sluice.enqueueMany("job_cli_hang", [
          { payload: { mode: "hang" }, options: { queue: "cli_hang", timeoutMs: 400 } },
        ])
      ).map((j) => j.id);
      await until(
        "the job to start",
        async () => (await sluice.admin.getJob(id as string)).state === "active",
      );
      child.kill("SIGSTOP"); // frozen: its timeout timer cannot fire, its lease holds for 60 s
      const finding = await until("the job to be past its timeout", async () => {
        const r = await doctorJson(store.url);
        return about(r.report, "past-timeout", id).at(0) ?? null;
      });
      expect(finding.severity).toBe("critical");
      expect(finding.evidence.timeoutMs).toBe(400);
      expect(finding.evidence.runningMs).toBeGreaterThan(1_400);
      expect(finding.fix).toMatch(/^sluice recover --older-than \d+s$/);
      const fix = await runFix(finding.fix as string, store.url, ["--yes"]);
      expect(fix.code, fix.stderr).toBe(0);
      expect(fix.stdout).toContain("recovered 1 job");
      expect((await sluice.admin.getJob(id as string)).state).not.toBe("active");
    });

    it("a worker whose health check fails, the only one of its queue, is critical with the last error and since when", async () => {
      const app = open(store.url);
      try {
        app.task("job_dep_down", { queue: "dep_down", async run() {} });
        const worker = app.worker({
          queues: ["dep_down"],
          health: {
            dep_down: {
              everyMs: 100,
              check: () => {
                throw new Error("connect ECONNREFUSED 127.0.0.1:6333");
              },
            },
          },
        });
        await worker.start();
        await enqueue(sluice, "dep_down", [{}, {}]);
        const { code, report } = await doctorJson(store.url);
        expect(code).toBe(1);
        const [finding] = about(report, "failing-health-check", `dep_down@${worker.id}`);
        expect(finding).toMatchObject({
          severity: "critical",
          evidence: {
            queue: "dep_down",
            workerId: worker.id,
            lastError: "connect ECONNREFUSED 127.0.0.1:6333",
            passingWorkers: 0,
            backlog: 2,
          },
        });
        expect(Date.parse(String(finding?.evidence.since))).toBeLessThanOrEqual(Date.now());
        // Not also reported as stagnation or a queue without a worker: the check says why nothing runs.
        expect(about(report, "no-worker", "dep_down")).toEqual([]);
        await worker.stop({ graceMs: 0 });
        const after = await doctorJson(store.url);
        expect(about(after.report, "failing-health-check").map((f) => f.severity)).toEqual(["ok"]);
      } finally {
        await app.close();
      }
    });

    it("a worker whose clock is 10 s ahead of the store's is a clock-skew warning naming worker and host", async () => {
      const raw = await sluice.store();
      const id = "skewed-host/777/clock";
      await raw.registerWorker({
        id,
        host: "skewed-host",
        pid: 777,
        queues: ["cli_skew"],
        concurrency: 1,
        busy: 0,
        startedAt: Date.now(),
        lastHeartbeatAt: Date.now(),
        version: "0.0.0-test",
        stalls: { count: 0, longestMs: 0, last: null },
        health: [],
        clock: Date.now() + 10_000, // as a worker whose clock runs 10 s ahead sends it
        clockSkewMs: 0,
      });
      try {
        const { report } = await doctorJson(store.url);
        const [finding] = about(report, "clock-skew", id);
        expect(finding).toMatchObject({ severity: "warn", evidence: { host: "skewed-host", pid: 777 } });
        expect(Math.abs(Number(finding?.evidence.skewMs) - 10_000)).toBeLessThan(2_000);
        expect(finding?.message).toContain("ahead of the store's");
      } finally {
        await raw.unregisterWorker(id);
      }
    });

    it("limit keys held by a rate limit with a backlog are reported per queue, top offenders first", async () => {
      const raw = await sluice.store();
      await sluice.enqueueMany("job_cli_held", [
        ...[1, 2, 3].map(() => ({ payload: {}, options: { queue: "cli_held", limitKey: "tenant-big" } })),
        { payload: {}, options: { queue: "cli_held", limitKey: "tenant-small" } },
      ]);
      await raw.holdKey("cli_held", "tenant-big", Date.now() + 60_000);
      await raw.holdKey("cli_held", "tenant-small", Date.now() + 60_000);
      const { report } = await doctorJson(store.url);
      const [finding] = about(report, "rate-held", "cli_held");
      expect(finding).toMatchObject({
        severity: "warn",
        evidence: { heldKeys: 2, backlog: 4, top: "tenant-big:3,tenant-small:1" },
      });
      const fix = await runFix(finding?.fix?.split("   #")[0] as string, store.url);
      expect(fix.code, fix.stderr).toBe(0);
      const after = await doctorJson(store.url);
      expect(about(after.report, "rate-held", "cli_held")).toEqual([]);
    });
  });
}
