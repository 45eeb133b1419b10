/** `sluice worker`: config file, tasks module, JSON logs, SIGTERM → graceful stop and exit 0; bad config → 2. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
      `# like seed 003's sidekiq1.yml\nurl: ${store.url}\nconcurrency: 3\nqueues:\n  - [cli_a, 5]\n  - [cli_b, 1]\nshutdownGrace: 5s\nlease: 20s\ntasks: ${fixture("tasks.ts")}\n`,
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
      fixture("tasks.ts"),
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
});
