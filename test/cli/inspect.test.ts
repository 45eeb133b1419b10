/** `sluice info`, `jobs list`, `jobs show`, `stats`, `migrate`, `pause`/`resume` against every engine. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InfoReport } from "../../src/cli/commands/info.js";
import type { StatsRowReport } from "../../src/cli/commands/stats.js";
import type { JobDetail, Sluice } from "../../src/index.js";
import { ENGINES, runCli, spawnCli, type TestStore, testStore, until } from "./helpers.js";
import { drain, enqueue, open } from "./seed.js";

describe.each(ENGINES)("sluice inspection commands on %s", (engine) => {
  let store: TestStore;
  let sluice: Sluice;
  let waitingIds: string[];
  beforeAll(async () => {
    store = testStore(engine);
    sluice = open(store.url);
    await enqueue(sluice, "cli_a", [{ mode: "ok" }, { mode: "ok" }, { mode: "fail", why: "dead one" }]);
    await drain(store.url, "cli_a");
    waitingIds = await enqueue(sluice, "cli_a", [
      { fileSizeMb: 12, name: "big" },
      { fileSizeMb: 1, name: "small" },
    ]);
  });
  afterAll(async () => {
    await sluice?.close();
    await store?.dispose();
  });

  it("info shows queues and workers as a table and as JSON", async () => {
    const [human, json] = await Promise.all([
      runCli(["info", "--url", store.url]),
      runCli(["info", "--json", "--url", store.url]),
    ]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/QUEUE\s+WAITING\s+ACTIVE\s+SCHEDULED\s+DUE\s+DEAD\s+COMPLETED\s+LATENCY/);
    expect(human.stdout).toMatch(/cli_a\s+2\s+0\s+0\s+0\s+1\s+2\s/);
    expect(human.stdout).not.toContain("\u001b["); // piped: no colour
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as InfoReport;
    expect(report.store.engine).toBe(engine);
    const q = report.queues.find((x) => x.queue === "cli_a");
    expect(q).toMatchObject({ waiting: 2, active: 0, due: 0, dead: 1, completed: 2, paused: false });
    expect(q?.latencyMs).toBeGreaterThanOrEqual(0);
    expect(q?.throughputPerMin).toBeGreaterThan(0);
    expect(Array.isArray(report.workers)).toBe(true);
  });

  it("jobs list filters by state and payload; jobs show tells the whole story", async () => {
    const list = await runCli([
      "jobs",
      "list",
      "--queue",
      "cli_a",
      "--state",
      "dead",
      "--json",
      "--url",
      store.url,
    ]);
    expect(list.code, list.stderr).toBe(0);
    const dead = (JSON.parse(list.stdout) as { jobs: JobDetail[]; nextCursor: string | null }).jobs;
    expect(dead.map((j) => j.state)).toEqual(["dead"]);
    const deadId = dead[0]?.id as string;

    const [where, show, showJson, missing] = await Promise.all([
      runCli(["jobs", "list", "--where", "fileSizeMb >= 10", "--url", store.url]),
      runCli(["jobs", "show", deadId, "--url", store.url]),
      runCli(["jobs", "show", deadId, "--json", "--url", store.url]),
      runCli(["jobs", "show", "no-such-job", "--url", store.url]),
    ]);
    expect(where.code, where.stderr).toBe(0);
    expect(where.stdout).toContain(waitingIds[0]);
    expect(where.stdout).not.toContain(waitingIds[1]);
    expect(where.stdout.trim().split("\n")).toHaveLength(2); // header + one job

    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain("dead one"); // payload
    expect(show.stdout).toMatch(/#1 error/);
    expect(show.stdout).toContain("Error: boom: asked to fail");
    const attempts = show.stdout.slice(show.stdout.indexOf("attempts with errors"));
    expect(attempts.split("boom: asked to fail")).toHaveLength(2); // once: not again atop the stack
    expect(show.stdout).toMatch(/\n\s+at /); // the stack
    const detail = JSON.parse(showJson.stdout) as JobDetail;
    expect(detail).toMatchObject({ id: deadId, state: "dead", payload: { mode: "fail", why: "dead one" } });
    expect(detail.errors[0]).toMatchObject({ attempt: 1, outcome: "error", message: "boom: asked to fail" });
    expect(Array.isArray(detail.logs)).toBe(true);

    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("JOB_NOT_FOUND");
  });

  it("info shows a worker's event-loop stalls; jobs show prints the stall noted on an attempt under its error", async () => {
    const raw = await sluice.store();
    const workerId = `stall-host/4242/${engine}`;
    const at = Date.now() - 60_000;
    await raw.registerWorker({
      id: workerId,
      host: "stall-host",
      pid: 4242,
      queues: ["cli_stall"],
      concurrency: 1,
      busy: 0,
      startedAt: Date.now() - 120_000,
      lastHeartbeatAt: Date.now(),
      version: "0.0.0-test",
      health: [],
      clock: Date.now(),
      clockSkewMs: 0,
      stalls: {
        count: 3,
        longestMs: 42_000,
        last: { at, ms: 2_500, leaseMs: 600, tasks: ["pdf-parse"], jobIds: ["j1"] },
      },
    });
    const [job] = await enqueue(sluice, "cli_stall", [{ mode: "fail", why: "stalled one" }]);
    await drain(store.url, "cli_stall");
    const note =
      "event loop blocked for 2.5s on stall-host/4242 while running task pdf-parse: move it to a sandbox or raise leaseMs (lease 600ms)";
    expect(await raw.annotateAttempt(job as string, 1, note)).toBe(true);
    try {
      const [info, infoJson, show] = await Promise.all([
        runCli(["info", "--url", store.url]),
        runCli(["info", "--json", "--url", store.url]),
        runCli(["jobs", "show", job as string, "--url", store.url]),
      ]);
      expect(info.code, info.stderr).toBe(0);
      expect(info.stdout).toMatch(/LOOP STALLS/);
      const row = info.stdout.split("\n").find((l) => l.startsWith(workerId));
      expect(row).toMatch(/3 \(longest 42s; last 2\.5s 1m( \d+s)? ago during pdf-parse\)/);
      const entry = (JSON.parse(infoJson.stdout) as InfoReport).workers.find((w) => w.id === workerId);
      expect(entry?.stalls).toEqual({
        count: 3,
        longestMs: 42_000,
        last: { at, ms: 2_500, leaseMs: 600, tasks: ["pdf-parse"], jobIds: ["j1"] },
      });
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout).toContain(`Error: boom: asked to fail\n  note: ${note}\n`);
    } finally {
      await raw.unregisterWorker(workerId);
      await sluice.admin.delete({ queue: "cli_stall" });
    }
  });

  it("info shows each worker's failing health checks and its clock skew", async () => {
    const raw = await sluice.store();
    const workerId = `health-host/4343/${engine}`;
    const since = Date.now() - 90_000;
    await raw.registerWorker({
      id: workerId,
      host: "health-host",
      pid: 4343,
      queues: ["cli_vec", "cli_ok"],
      concurrency: 1,
      busy: 0,
      startedAt: Date.now() - 120_000,
      lastHeartbeatAt: Date.now(),
      version: "0.0.0-test",
      stalls: { count: 0, longestMs: 0, last: null },
      health: [
        {
          queue: "cli_vec",
          ok: false,
          since,
          lastError: "connect ECONNREFUSED 10.0.0.7:6333",
          checkedAt: Date.now(),
        },
        { queue: "cli_ok", ok: true, since, lastError: null, checkedAt: Date.now() },
      ],
      clock: Date.now() + 30_000,
      clockSkewMs: 0,
    });
    try {
      const [info, infoJson] = await Promise.all([
        runCli(["info", "--url", store.url]),
        runCli(["info", "--json", "--url", store.url]),
      ]);
      expect(info.code, info.stderr).toBe(0);
      expect(info.stdout).toMatch(/HEALTH/);
      const row = info.stdout.split("\n").find((l) => l.startsWith(workerId));
      expect(row).toMatch(/cli_vec failing 1m 3\d(\.\d)?s: connect ECONNREFUSED 10\.0\.0\.7:6333/);
      expect(row).toMatch(/\+(29|30|31)(\.\d+)?s/);
      const entry = (JSON.parse(infoJson.stdout) as InfoReport).workers.find((w) => w.id === workerId);
      expect(entry?.health.map((h) => [h.queue, h.ok])).toEqual([
        ["cli_vec", false],
        ["cli_ok", true],
      ]);
      expect(Math.abs((entry?.clockSkewMs ?? 0) - 30_000)).toBeLessThan(2_000);
    } finally {
      await raw.unregisterWorker(workerId);
    }
  });

  it("info counts scheduled jobs that fell due as backlog, with their latency", async () => {
    await sluice.enqueueMany("job_due", [
      { payload: {}, options: { queue: "cli_due", delayMs: 200 } },
      { payload: {}, options: { queue: "cli_due", delayMs: 200 } },
    ]);
    const q = await until("the jobs to be due", async () => {
      const r = await runCli(["info", "--json", "--url", store.url]);
      const x = (JSON.parse(r.stdout) as InfoReport).queues.find((y) => y.queue === "cli_due");
      // Latency is whole ms: the first read can land in the very ms the jobs fell due.
      return x && x.due === 2 && x.latencyMs > 0 ? x : null;
    });
    expect(q).toMatchObject({ waiting: 0, scheduled: 2, due: 2 });
    const human = await runCli(["info", "--url", store.url]);
    // The latency column is a duration, however long a slow runner took: 850ms, 1.4s, 2m 3s.
    expect(human.stdout).toMatch(/cli_due\s+0\s+0\s+2\s+2\s+0\s+0\s+\d+(\.\d)?(ms|s|m|h)\b/);
    await sluice.admin.delete({ queue: "cli_due" });
  });

  it("stats per queue and hour as table, CSV (header once with --no-header) and JSON", async () => {
    const [table, csv, json, appended] = await Promise.all([
      runCli(["stats", "--since", "2h", "--url", store.url]),
      runCli(["stats", "--since", "2h", "--csv", "--url", store.url]),
      runCli(["stats", "--since", "2h", "--json", "--url", store.url]),
      runCli(["stats", "--since", "2h", "--csv", "--no-header", "--url", store.url]),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/HOUR \(UTC\)\s+QUEUE\s+COMPLETED\s+FAILED\s+DEAD\s+P50\s+P95/);
    expect(csv.stdout.split("\n")[0]).toBe("hour,queue,completed,failed,dead,p50_ms,p95_ms");
    const rows = (JSON.parse(json.stdout) as StatsRowReport[]).filter((r) => r.queue === "cli_a");
    const sum = (k: "completed" | "failed" | "dead") => rows.reduce((a, r) => a + r[k], 0);
    expect([sum("completed"), sum("failed"), sum("dead")]).toEqual([2, 1, 1]);
    expect(rows.some((r) => typeof r.p50Ms === "number" && typeof r.p95Ms === "number")).toBe(true);
    expect(csv.stdout).toMatch(/Z,cli_a,2,1,1,\d+,\d+/);
    expect(appended.code, appended.stderr).toBe(0);
    expect(appended.stdout).not.toContain("hour,queue");
    expect(appended.stdout).toBe(csv.stdout.split("\n").slice(1).join("\n"));
  });

  it("migrate reports what it applied on a fresh store, and nothing the second time", async () => {
    const fresh = testStore(engine);
    const other = testStore(engine);
    try {
      const first = await runCli(["migrate", "--json", "--url", fresh.url]);
      expect(first.code, first.stderr).toBe(0);
      const a = JSON.parse(first.stdout) as {
        engine: string;
        schema: { current: number; latest: number; applied: number[] };
      };
      expect(a.engine).toBe(engine);
      expect(a.schema.current).toBe(a.schema.latest);
      if (engine === "redis")
        expect(a.schema.applied).toEqual([]); // no schema: nothing to apply
      else expect(a.schema.applied).toEqual(Array.from({ length: a.schema.latest }, (_, i) => i + 1));
      const second = await runCli(["migrate", "--url", fresh.url]);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toContain(`schema already at version ${a.schema.latest}`);
      if (engine !== "redis") {
        const human = await runCli(["migrate", "--url", other.url]);
        expect(human.stdout).toMatch(/applied 1, .*; schema at version \d+/);
      }
    } finally {
      await fresh.dispose();
      await other.dispose();
    }
  });

  it("output piped into a reader that stops early (head) ends quietly", async () => {
    await sluice.enqueueMany(
      "job_epipe",
      Array.from({ length: 1_500 }, (_, i) => ({
        payload: { i, text: "x".repeat(200) },
        options: { queue: "cli_epipe" },
      })),
    );
    const child = spawnCli([
      "jobs",
      "list",
      "--queue",
      "cli_epipe",
      "--limit",
      "1500",
      "--json",
      "--url",
      store.url,
    ]);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin?.end();
    await new Promise<void>((resolve) => child.stdout?.once("data", () => resolve()));
    child.stdout?.destroy(); // like `| head -1` exiting: the next write gets EPIPE
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(stderr).toBe("");
    expect(code).toBe(0);
    await sluice.admin.delete({ queue: "cli_epipe" });
  });

  it("pause rejects an invalid queue name and warns about a queue nothing knows (a typo)", async () => {
    const [bad, typo, resumeBad] = await Promise.all([
      runCli(["pause", "bad queue", "--url", store.url]),
      runCli(["pause", "cli_aa", "--url", store.url]),
      runCli(["resume", "", "--url", store.url]),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("INVALID_OPTION");
    expect(bad.stderr).toContain('"bad queue"');
    expect(resumeBad.code).toBe(2);
    expect((await sluice.admin.queues()).some((q) => q.queue === "bad queue")).toBe(false);
    expect(typo.code, typo.stderr).toBe(0);
    expect(typo.stderr).toMatch(/warning: queue cli_aa has no jobs and no worker serves it/);
    expect(typo.stderr).toContain("cli_a");
    expect(typo.stdout).toBe("paused queue cli_aa (0 waiting)\n");
    const back = await runCli(["resume", "cli_aa", "--url", store.url]);
    expect(back.code).toBe(0);
  });

  it("pause and resume a queue", async () => {
    const paused = await runCli(["pause", "cli_a", "--url", store.url]);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stderr).toBe(""); // a known queue: no typo warning
    expect(paused.stdout).toBe("paused queue cli_a (2 waiting)\n");
    expect((await sluice.admin.queues()).find((q) => q.queue === "cli_a")?.paused).toBe(true);
    const resumed = await runCli(["resume", "cli_a", "--json", "--url", store.url]);
    expect(JSON.parse(resumed.stdout)).toEqual({ queue: "cli_a", paused: false, waiting: 2 });
    expect((await sluice.admin.queues()).find((q) => q.queue === "cli_a")?.paused).toBe(false);
  });
});
