/** `sluice schedules list | show | pause | resume | remove | run-now` against every engine. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ScheduleJson } from "../../src/cli/commands/schedules.js";
import type { ScheduleRun, Sluice } from "../../src/index.js";
import { ENGINES, runCli, type TestStore, testStore } from "./helpers.js";
import { jobsOf, open } from "./seed.js";

describe.each(ENGINES)("sluice schedules on %s", (engine) => {
  let store: TestStore;
  let sluice: Sluice;
  const queue = "cli_sched";
  beforeAll(async () => {
    store = testStore(engine);
    sluice = open(store.url);
    sluice.task("report", { queue });
    await sluice.schedule("nightly", {
      task: "report",
      cron: "0 3 * * *",
      timezone: "Asia/Seoul",
      payload: { scope: "all" },
      options: { priority: 5 },
    });
    await sluice.schedule("hourly", { task: "report", every: "1h", missed: "skip" });
  });
  afterAll(async () => {
    await sluice?.close();
    await store?.dispose();
  });

  const cli = (...args: string[]) => runCli(["schedules", ...args, "--url", store.url]);

  it("list prints name, task, queue, cron or interval with its zone, next run, last tick and paused", async () => {
    const [human, json] = await Promise.all([cli("list"), cli("list", "--json")]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^NAME\s+TASK\s+QUEUE\s+WHEN\s+NEXT RUN\s+LAST TICK\s+PAUSED\n/);
    expect(human.stdout).toMatch(/hourly\s+report\s+cli_sched\s+every 1h\s+\S+Z \(in [^)]+\)\s+-\s+no\n/);
    expect(human.stdout).toMatch(/nightly\s+report\s+cli_sched\s+cron 0 3 \* \* \* \(Asia\/Seoul\)\s+\S+Z/);
    expect(json.code, json.stderr).toBe(0);
    const { schedules } = JSON.parse(json.stdout) as { schedules: ScheduleJson[] };
    expect(schedules.map((s) => s.name)).toEqual(["hourly", "nightly"]);
    expect(schedules[1]).toMatchObject({
      task: "report",
      queue,
      cron: "0 3 * * *",
      timezone: "Asia/Seoul",
      everyMs: null,
      paused: false,
      lastTickAt: null,
      template: { payload: { scope: "all" }, priority: 5 },
    });
  });

  it("show prints everything including the job template and its payload", async () => {
    const [human, json] = await Promise.all([cli("show", "nightly"), cli("show", "nightly", "--json")]);
    expect(human.code, human.stderr).toBe(0);
    for (const line of [
      /^schedule\s+nightly$/m,
      /^when\s+cron 0 3 \* \* \* \(Asia\/Seoul\)$/m,
      /^missed\s+once$/m,
      /^paused\s+no$/m,
      /^priority\s+5$/m,
      /^attempts\s+3$/m,
      /^tags\s+schedule:nightly$/m,
      /"scope": "all"/,
    ]) {
      expect(human.stdout).toMatch(line);
    }
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      name: "nightly",
      missed: "once",
      template: { task: "report", queue, payload: { scope: "all" }, tags: ["schedule:nightly"] },
    });
  });

  it("pause stops a schedule, resume restarts it from its next tick; both with --json", async () => {
    const paused = await cli("pause", "hourly");
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toBe(
      "paused schedule hourly: no tick fires until: sluice schedules resume hourly\n",
    );
    expect((await sluice.admin.getSchedule("hourly")).paused).toBe(true);
    const list = await cli("list");
    expect(list.stdout).toMatch(/hourly\s+report\s+cli_sched\s+every 1h\s+- \(paused\)\s+-\s+yes\n/);
    const again = await cli("pause", "hourly", "--json");
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ name: "hourly", paused: true });

    const before = Date.now();
    const resumed = await cli("resume", "hourly", "--json");
    expect(resumed.code, resumed.stderr).toBe(0);
    const record = JSON.parse(resumed.stdout) as ScheduleJson;
    expect(record.paused).toBe(false);
    expect(record.nextAt).toBeGreaterThan(before);
    expect(record.nextAt).toBeLessThanOrEqual(before + 3_600_000 + 60_000);
    const human = await cli("resume", "hourly");
    expect(human.stdout).toMatch(/^resumed schedule hourly; next run \S+Z \(in [^)]+\)\n$/);
  });

  it("run-now enqueues one job from the template and prints its id, without moving the clock", async () => {
    const before = await sluice.admin.getSchedule("nightly");
    const json = await cli("run-now", "nightly", "--json");
    expect(json.code, json.stderr).toBe(0);
    const run = JSON.parse(json.stdout) as ScheduleRun;
    expect(run).toMatchObject({ schedule: "nightly", state: "waiting", created: true });
    expect(run.id).toMatch(/^schedule:nightly:manual:\d+$/);
    const human = await cli("run-now", "nightly");
    expect(human.code, human.stderr).toBe(0);
    const id = /^enqueued job (schedule:nightly:manual:\d+) \(waiting\) from schedule nightly\n$/.exec(
      human.stdout,
    )?.[1];
    expect(id).toBeDefined();
    const jobs = await jobsOf(sluice, queue);
    const ours = jobs.filter((j) => j.id === run.id || j.id === id);
    expect(ours).toHaveLength(run.id === id ? 1 : 2);
    expect(ours[0]).toMatchObject({ task: "report", priority: 5, payload: { scope: "all" } });
    const after = await sluice.admin.getSchedule("nightly");
    expect({ nextAt: after.nextAt, lastTickAt: after.lastTickAt }).toEqual({
      nextAt: before.nextAt,
      lastTickAt: before.lastTickAt,
    });
  });

  it("unknown names exit 1 with SCHEDULE_NOT_FOUND; malformed names exit 2 before connecting", async () => {
    for (const verb of ["show", "pause", "resume", "run-now", "remove"]) {
      const result = await cli(verb, "nope", ...(verb === "remove" ? ["--yes"] : []));
      expect(result.code, `${verb}: ${result.stderr}`).toBe(1);
      expect(result.stderr).toContain('SCHEDULE_NOT_FOUND: schedule "nope" does not exist');
      expect(result.stdout).toBe("");
    }
    const bad = await runCli(["schedules", "pause", "no such!", "--url", "postgres://127.0.0.1:1/none"]);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain("INVALID_OPTION");
  });

  it("remove --dry-run says what it would do; without --yes off a terminal it refuses; --yes removes", async () => {
    await sluice.schedule("doomed", { task: "report", every: "1h" });
    const dry = await cli("remove", "doomed", "--dry-run");
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toBe(
      "dry run: would remove schedule doomed (report on cli_sched, every 1h); jobs it already enqueued stay; nothing was changed\n",
    );
    const dryJson = await cli("remove", "doomed", "--dry-run", "--json");
    expect(JSON.parse(dryJson.stdout)).toMatchObject({
      dryRun: true,
      removed: false,
      schedule: { name: "doomed" },
    });
    const refused = await cli("remove", "doomed");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--yes");
    expect((await sluice.admin.schedules()).some((s) => s.name === "doomed")).toBe(true);
    const removed = await cli("remove", "doomed", "--yes", "--json");
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({
      dryRun: false,
      removed: true,
      schedule: { name: "doomed" },
    });
    expect((await sluice.admin.schedules()).some((s) => s.name === "doomed")).toBe(false);
  });
});
