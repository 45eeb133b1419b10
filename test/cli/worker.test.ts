/** `sluice worker`: config file, tasks module, JSON logs, SIGTERM → graceful stop and exit 0; bad config → 2. */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadWorkerConfig } from "../../src/cli/config.js";
import type { Sluice } from "../../src/index.js";
import {
  collect,
  ENGINES,
  fixture,
  spawnCli,
  type TestStore,
  testStore,
  until,
  waitForOutput,
} from "./helpers.js";
import { enqueue, jobsOf, open } from "./seed.js";

describe.each(ENGINES)("sluice worker on %s", (engine) => {
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

  it("runs the tasks of a config file with weighted queues and stops gracefully on SIGTERM", async () => {
    const config = join(store.dir, "host1.yaml");
    writeFileSync(
      config,
      `# like seed 003's sidekiq1.yml\nurl: ${store.url}\nconcurrency: 3\nqueues:\n  - [cli_a, 5]\n  - [cli_b, 1]\nshutdownGrace: 5s\nlease: 20s\ntasks: ${fixture("tasks.mjs")}\n`,
    );
    const ids = [
      ...(await enqueue(sluice, "cli_a", [{ mode: "ok" }, { mode: "ok" }])),
      ...(await enqueue(sluice, "cli_b", [{ mode: "ok" }])),
    ];
    const child = spawnCli(["worker", "--config", config]);
    const done = collect(child);
    await waitForOutput(child, /sluice worker running/);
    await until("all jobs to complete", async () => {
      const all = [...(await jobsOf(sluice, "cli_a")), ...(await jobsOf(sluice, "cli_b"))];
      return ids.every((id) => all.find((j) => j.id === id)?.state === "completed");
    });
    const workers = await sluice.admin.workers();
    expect(workers.find((w) => w.pid === child.pid)).toMatchObject({
      concurrency: 3,
      queues: ["cli_a", "cli_b"],
    });
    child.kill("SIGTERM");
    const { code, stdout, stderr } = await done;
    expect(code, stderr).toBe(0);
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        "worker started",
        "signal received: stopping gracefully",
        "worker stopped",
        "sluice worker stopped",
      ]),
    );
    expect((await sluice.admin.workers()).find((w) => w.pid === child.pid)).toBeUndefined();
  });

  it("exits once its jobs are released, while a handler that ignores its abort signal still runs", async () => {
    // The handler would sleep two minutes: the test's own timeout fails it if the process waits for it.
    const [id] = await enqueue(sluice, "cli_deaf", [{ mode: "deaf", ms: 120_000 }]);
    const child = spawnCli([
      "worker",
      "--queues",
      "cli_deaf",
      "--shutdown-grace",
      "200ms",
      "--tasks",
      fixture("tasks.mjs"),
      "--url",
      store.url,
    ]);
    const done = collect(child);
    await waitForOutput(child, /sluice worker running/);
    await until(
      "the deaf job to run",
      async () => (await sluice.admin.getJob(id as string)).state === "active",
    );
    child.kill("SIGTERM");
    const { code, signal, stdout, stderr } = await done;
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string; unsettled?: unknown });
    expect(lines.find((l) => l.msg === "sluice worker stopped")).toMatchObject({ unsettled: 1 });
    // Released without charging the attempt; another worker may run it.
    expect(await sluice.admin.getJob(id as string)).toMatchObject({ state: "waiting", attempt: 0 });
    await sluice.admin.delete({ ids: [id as string] });
  });

  it("exits with a code, never by the signal, when a second signal follows the first", async () => {
    const child = spawnCli([
      "worker",
      "--queues",
      "cli_b",
      "--tasks",
      fixture("tasks.mjs"),
      "--url",
      store.url,
    ]);
    const done = collect(child);
    await waitForOutput(child, /sluice worker running/);
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGTERM"), 50);
    const { code, signal } = await done;
    expect(signal).toBeNull();
    expect([0, 1]).toContain(code); // 0: the first stop finished first; 1: the second signal cut it short
    // Cut short, it left its registry entry to expire: remove it so later tests see no worker.
    const registry = await sluice.store();
    for (const w of await registry.listWorkers())
      if (w.pid === child.pid) await registry.unregisterWorker(w.id);
  });

  it("--queues and --concurrency override the file; a bad config exits 2 before starting", async () => {
    const bad = join(store.dir, "bad.yaml");
    writeFileSync(bad, "concurrency: 0\nqueues: seo\n");
    const result = await collect(spawnCli(["worker", "--config", bad, "--url", store.url]));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `${bad}:1:14: concurrency: must be a whole number from 1 to 10000, got 0`,
    );
    expect(result.stderr).toContain(`${bad}:2:9: queues: must be a non-empty list`);

    const child = spawnCli([
      "worker",
      "--queues",
      "cli_b",
      "--concurrency",
      "2",
      "--tasks",
      fixture("tasks.mjs"),
      "--url",
      store.url,
    ]);
    const done = collect(child);
    await waitForOutput(child, /sluice worker running/);
    const w = await until("the worker to register", async () =>
      (await sluice.admin.workers()).find((x) => x.pid === child.pid),
    );
    expect(w).toMatchObject({ queues: ["cli_b"], concurrency: 2 });
    child.kill("SIGINT");
    expect((await done).code).toBe(0);
  });

  it("refuses to start without task handlers (exit 2) instead of sending every job to dead", async () => {
    const [id] = await enqueue(sluice, "cli_notasks", [{ mode: "ok" }]);
    const noTasks = join(store.dir, "notasks.yaml");
    writeFileSync(noTasks, "queues: [cli_notasks]\n");
    const empty = join(store.dir, "empty-tasks.mjs");
    writeFileSync(empty, "export default () => {};\n");
    const [bare, fromFile, emptyModule] = await Promise.all([
      collect(spawnCli(["worker", "--queues", "cli_notasks", "--url", store.url])),
      collect(spawnCli(["worker", "--config", noTasks, "--url", store.url])),
      collect(spawnCli(["worker", "--queues", "cli_notasks", "--tasks", empty, "--url", store.url])),
    ]);
    for (const r of [bare, fromFile]) {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("no task handlers");
      expect(r.stderr).toContain("--tasks");
      expect(r.stderr).toContain("tasks:");
    }
    expect(emptyModule.code).toBe(2);
    expect(emptyModule.stderr).toContain(`tasks module ${empty} defined no task`);
    expect((await sluice.admin.getJob(id as string)).state).toBe("waiting");
    expect((await sluice.admin.workers()).length).toBe(0);
  });

  it("--check validates the config and the tasks module, then exits 0 without starting", async () => {
    const config = join(store.dir, "check.yaml");
    writeFileSync(config, `queues: [cli_a, cli_b]\nconcurrency: 2\ntasks: ${fixture("tasks.mjs")}\n`);
    const [id] = await enqueue(sluice, "cli_a", [{ mode: "ok" }]);
    const ok = await collect(spawnCli(["worker", "--check", "--config", config, "--url", store.url]));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("config ok");
    expect(ok.stdout).toContain("job_cli_a");
    expect(ok.stdout).toMatch(/queues\s+cli_a, cli_b/);
    expect((await sluice.admin.getJob(id as string)).state).toBe("waiting");
    expect((await sluice.admin.workers()).length).toBe(0);
    const bad = join(store.dir, "check-bad.yaml");
    writeFileSync(bad, "queues: [cli_a]\nconcurency: 2\n");
    const refused = await collect(spawnCli(["worker", "--check", "--config", bad]));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("concurency: unknown field");
    await sluice.admin.delete({ ids: [id as string] });
  });
  it("keeps fleet-wide events by the config file's events: section (maintenance prunes to maxEvents)", async () => {
    const config = join(store.dir, "events.yaml");
    writeFileSync(
      config,
      `queues: [cli_a]\nlease: 2s\ntasks: ${fixture("tasks.mjs")}\nevents:\n  maxEvents: 5\n  retention: 1d\n`,
    );
    const check = await collect(spawnCli(["worker", "--check", "--config", config]));
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/events\s+at most 5 events, at most 1d/);
    const ids = await enqueue(
      sluice,
      "cli_a",
      Array.from({ length: 10 }, () => ({ mode: "ok" })),
    );
    const raw = await sluice.store();
    const kept = async () => (await raw.readEvents({ after: null, limit: 1_000 })).events;
    // Ten enqueues alone wrote more events than the file keeps.
    expect((await kept()).length).toBeGreaterThan(5);
    const child = spawnCli(["worker", "--config", config, "--url", store.url]);
    const done = collect(child);
    await waitForOutput(child, /sluice worker running/);
    await until("all jobs to complete", async () => {
      const jobs = await jobsOf(sluice, "cli_a");
      return ids.every((id) => jobs.find((j) => j.id === id)?.state === "completed");
    });
    // The worker's maintenance (every lease/2 = 1 s) prunes to the newest 5: the last completions.
    const events = await until("events pruned to 5", async () => {
      const now = await kept();
      return now.length === 5 ? now : null;
    });
    expect(events.at(-1)?.type).toBe("completed");
    child.kill("SIGTERM");
    expect((await done).code).toBe(0);
  });

  it("declares the config file's schedules at start; a restart with the same file keeps an operator's pause", async () => {
    const config = join(store.dir, "scheduled.yaml");
    writeFileSync(
      config,
      `queues: [cli_b]\nconcurrency: 2\ntasks: ${fixture("tasks.mjs")}\n` +
        "schedules:\n  cli-tick:\n    task: job_cli_b\n    every: 200\n    payload: { mode: ok }\n",
    );
    const tickJobs = async () =>
      (await sluice.admin.listJobs({ queue: "cli_b", tag: "schedule:cli-tick" }, { limit: 1_000 })).jobs;
    const first = spawnCli(["worker", "--config", config, "--url", store.url]);
    const firstDone = collect(first);
    await waitForOutput(first, /sluice worker running/);
    // The worker's maintenance fires the declared schedule: its tick jobs run.
    await until("a tick job to complete", async () =>
      (await tickJobs()).some((j) => j.state === "completed"),
    );
    first.kill("SIGTERM");
    expect((await firstDone).code).toBe(0);
    const paused = await sluice.admin.pauseSchedule("cli-tick");
    expect(paused).toMatchObject({ task: "job_cli_b", queue: "cli_b", everyMs: 200, paused: true });
    const ticksWhenPaused = (await tickJobs()).length;
    // A redeploy declares the same schedule again: the pause wins.
    const second = spawnCli(["worker", "--config", config, "--url", store.url]);
    const secondDone = collect(second);
    await waitForOutput(second, /sluice worker running/);
    expect(await sluice.admin.getSchedule("cli-tick")).toMatchObject({
      paused: true,
      version: paused.version,
    });
    second.kill("SIGTERM");
    expect((await secondDone).code).toBe(0);
    expect((await tickJobs()).length).toBe(ticksWhenPaused);
    await sluice.unschedule("cli-tick");
  });

  it("--check declares the schedules on a private store; a schedule of an undefined task exits 2 at its line", async () => {
    const config = join(store.dir, "check-schedules.yaml");
    writeFileSync(
      config,
      `queues: [cli_a]\ntasks: ${fixture("tasks.mjs")}\nschedules:\n  cli-nightly:\n    task: job_cli_a\n` +
        '    cron: "0 3 * * *"\n    timezone: Asia/Seoul\n',
    );
    const ok = await collect(spawnCli(["worker", "--check", "--config", config]));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/schedules\s+cli-nightly \(job_cli_a, cron 0 3 \* \* \* \(Asia\/Seoul\)\)/);
    expect((await sluice.admin.schedules()).some((s) => s.name === "cli-nightly")).toBe(false);
    const unknown = join(store.dir, "check-unknown-task.yaml");
    writeFileSync(
      unknown,
      `queues: [cli_a]\ntasks: ${fixture("tasks.mjs")}\nschedules:\n  cli-orphan:\n    task: no_such_task\n    every: 1h\n`,
    );
    for (const args of [["--check"], ["--url", store.url]]) {
      const refused = await collect(spawnCli(["worker", ...args, "--config", unknown]));
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(
        `${unknown}:4:3: schedules.cli-orphan: UNKNOWN_TASK: task "no_such_task"`,
      );
    }
    expect((await sluice.admin.schedules()).some((s) => s.name === "cli-orphan")).toBe(false);
    expect((await sluice.admin.workers()).length).toBe(0);
  });
});

describe("examples/two-hosts", () => {
  const example = (name: string) => fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));
  it("the host files name the tasks module by an absolute path that matches the README and the unit", async () => {
    const readme = readFileSync(example("two-hosts/README.md"), "utf8");
    const unit = readFileSync(example("systemd/sluice-worker@.service"), "utf8");
    const appDir = /^WorkingDirectory=(.+)$/m.exec(unit)?.[1];
    expect(appDir).toBe("/srv/app");
    for (const host of ["host1", "host2"]) {
      // The README copies the files to /etc/sluice/: a path relative to the file would then point there.
      const copy = join(mkdtempSync(join(tmpdir(), "sluice-etc-")), `${host}.yaml`);
      copyFileSync(example(`two-hosts/${host}.yaml`), copy);
      const config = loadWorkerConfig(copy);
      expect(config.tasks).toBe(`${appDir}/dist/tasks.js`);
      expect(readme).toContain(`tasks: ${config.tasks}`);
      const check = await collect(spawnCli(["worker", "--check", "--config", copy]));
      expect(check.code).toBe(2); // /srv/app is not deployed here: the check says so, by that path
      expect(check.stderr).toContain(`cannot load tasks module ${appDir}/dist/tasks.js`);
    }
    expect(unit).toContain("ExecStart=/srv/app/node_modules/.bin/sluice worker --config /etc/sluice/%i.yaml");
    expect(readme).toContain("sluice worker --check --config /etc/sluice/host1.yaml");
  });
});
