/**
 * Bulk commands through the real binary on every engine: retry (DLQ requeue), cancel, delete, purge,
 * move, reprioritize; --dry-run, confirmation, --yes, batches and safe interruption.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BulkReport } from "../../src/cli/bulk.js";
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
} from "./helpers.js";
import { drain, enqueue, jobsOf, open } from "./seed.js";

describe.each(ENGINES)("sluice bulk commands on %s", (engine) => {
  let store: TestStore;
  let sluice: Sluice;
  let cli: (args: string[], env?: Record<string, string>, input?: string) => ReturnType<typeof runCli>;
  beforeAll(async () => {
    store = testStore(engine);
    sluice = open(store.url);
    cli = (args, env, input) =>
      runCli([...args, "--url", store.url], {
        ...(env ? { env } : {}),
        ...(input !== undefined ? { input } : {}),
      });
  });
  afterAll(async () => {
    await sluice?.close();
    await store?.dispose();
  });

  it("retry --state dead requeues the DLQ: dry run first, refusal without --yes, then for real", async () => {
    await enqueue(sluice, "dlq", [{ mode: "fail" }, { mode: "fail" }, { mode: "ok" }]);
    await drain(store.url, "dlq");
    const [dry, refused, declined] = await Promise.all([
      cli(["retry", "--state", "dead", "--queue", "dlq", "--dry-run", "--json"]),
      cli(["retry", "--state", "dead", "--queue", "dlq"]),
      cli(["retry", "--state", "dead", "--queue", "dlq"], { SLUICE_INTERACTIVE: "1" }, "n\n"),
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    const preview = JSON.parse(dry.stdout) as BulkReport;
    expect(preview).toMatchObject({ action: "retry", dryRun: true, count: 2 });
    expect(preview.jobs?.map((j) => j.state)).toEqual(["dead", "dead"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("Pass --yes");
    expect(declined.code).toBe(1);
    expect(declined.stderr).toContain("Retry 2 jobs? [y/N]");
    expect(declined.stderr).toContain("aborted: nothing was changed");
    expect((await jobsOf(sluice, "dlq")).filter((j) => j.state === "dead")).toHaveLength(2);

    const done = await cli(
      ["retry", "--state", "dead", "--queue", "dlq"],
      { SLUICE_INTERACTIVE: "1" },
      "y\n",
    );
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain("retried 2 jobs");
    const states = (await jobsOf(sluice, "dlq")).map((j) => j.state).sort();
    expect(states).toEqual(["completed", "waiting", "waiting"]);
  });

  it("cancel by id, delete by --where, purge finished jobs by state", async () => {
    const [a, b, c] = await enqueue(sluice, "cx", [{ n: 1 }, { n: 2, tmp: true }, { n: 3, tmp: true }]);
    const cancel = await cli(["cancel", a as string, "--yes", "--json"]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(JSON.parse(cancel.stdout)).toMatchObject({ action: "cancel", count: 1, ids: [a] });
    const del = await cli(["delete", "--queue", "cx", "--where", "tmp = true and n > 2", "--yes"]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toContain("deleted 1 job\n");
    expect((await jobsOf(sluice, "cx")).map((j) => [j.id, j.state])).toEqual([
      [a, "cancelled"],
      [b, "waiting"],
    ]);
    // The second tmp job (n = 3) is the one deleted.
    await expect(sluice.admin.getJob(c as string)).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
    const purge = await cli(["purge", "--queue", "cx", "--yes", "--json"]);
    expect(JSON.parse(purge.stdout)).toMatchObject({ action: "purge", count: 1, ids: [a] });
    expect((await jobsOf(sluice, "cx")).map((j) => j.id)).toEqual([b]);
  });

  it("refuses bulk actions without a filter and rejects bad filters with exit 2", async () => {
    const [nofilter, badWhere, badState, wrongState] = await Promise.all([
      cli(["delete", "--yes"]),
      cli(["delete", "--where", "size >>= 3", "--yes"]),
      cli(["retry", "--state", "lost", "--yes"]),
      cli(["retry", "--state", "waiting", "--yes"]),
    ]);
    expect(nofilter.code).toBe(2);
    expect(nofilter.stderr).toContain("--all");
    expect(badWhere.code).toBe(2);
    expect(badWhere.stderr).toMatch(/--where: at column 7: expected a value/);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain('unknown state "lost"');
    expect(wrongState.code).toBe(2);
    expect(wrongState.stderr).toContain("retry acts on dead, cancelled, completed, scheduled");
  });

  it("move files over 10 MB to rag_large_docs and put the oldest first, one command each", async () => {
    const ids = await enqueue(
      sluice,
      "rag_processing",
      [3, 25, 10, 1, 40, 2].map((fileSizeMb, i) => ({ fileSizeMb, doc: `d${i}` })),
      "ingest",
    );
    const move = await cli([
      "move",
      "--queue",
      "rag_processing",
      "--where",
      "fileSizeMb >= 10",
      "--to",
      "rag_large_docs",
      "--yes",
      "--json",
    ]);
    expect(move.code, move.stderr).toBe(0);
    expect((JSON.parse(move.stdout) as BulkReport).count).toBe(3);
    expect((await jobsOf(sluice, "rag_large_docs")).map((j) => j.id).sort()).toEqual(
      [ids[1], ids[2], ids[4]].sort(),
    );
    const reprio = await cli([
      "reprioritize",
      "--queue",
      "rag_processing",
      "--oldest-first",
      "--limit",
      "2",
      "--priority",
      "-10",
      "--yes",
    ]);
    expect(reprio.code, reprio.stderr).toBe(0);
    expect(reprio.stdout).toContain("reprioritized 2 jobs to priority -10");
    const left = await jobsOf(sluice, "rag_processing");
    expect(left.map((j) => [j.id, j.priority])).toEqual([
      [ids[0], -10],
      [ids[3], -10],
      [ids[5], 0],
    ]);
  });

  it("retry --state dead walks the dead jobs once, while a live worker sends them back to dead", async () => {
    // The worker fails every job of cli_fail (attempts 1): each retried job dies again at once, so a CLI
    // that asked the store for "dead jobs" again each batch would retry some of them twice or more.
    const worker = spawnCli([
      "worker",
      "--queues",
      "cli_fail",
      "--tasks",
      fixture("tasks.mjs"),
      "--url",
      store.url,
    ]);
    const output = collect(worker, { timeoutMs: 120_000 });
    try {
      await waitForOutput(worker, /sluice worker running/);
      const ids = await enqueue(
        sluice,
        "cli_fail",
        Array.from({ length: 40 }, (_, i) => ({ i })),
      );
      await until("40 dead jobs", async () =>
        (await jobsOf(sluice, "cli_fail")).every((j) => j.state === "dead"),
      );
      const r = await cli([
        "retry",
        "--state",
        "dead",
        "--queue",
        "cli_fail",
        "--batch-size",
        "2",
        "--yes",
        "--json",
      ]);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as BulkReport;
      expect(report.count).toBe(40);
      expect(new Set(report.ids).size).toBe(40);
      expect([...report.ids].sort()).toEqual([...ids].sort());
    } finally {
      worker.kill("SIGTERM");
      await exited(worker);
      await output;
    }
  });

  it("retry, cancel and delete of an id that names no job exit 1 and change nothing", async () => {
    const [known] = await enqueue(sluice, "ids", [{}]);
    const results = await Promise.all(
      ["retry", "cancel", "delete"].map((verb) => cli([verb, "no-such-job", known as string, "--yes"])),
    );
    for (const r of results) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('JOB_NOT_FOUND: no job with id "no-such-job"');
      expect(r.stderr).toContain("nothing was changed");
    }
    expect((await sluice.admin.getJob(known as string)).state).toBe("waiting");
    const single = await cli(["delete", "nope", "--yes", "--json"]);
    expect(single.code).toBe(1);
    expect(single.stdout).toBe("");
  });

  it("move --to an invalid queue name is a usage error before anything is counted or asked", async () => {
    // The URL names no server: a command that got as far as counting would fail with exit 1, not 2.
    const r = await runCli(["move", "--queue", "a", "--to", "bad queue!", "--url", "redis://127.0.0.1:1/0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("INVALID_OPTION");
    expect(r.stderr).toContain('"bad queue!"');
  });

  it("stops between batches on SIGINT, reports what it did, and leaves no half batch", async () => {
    const total = 6_000;
    await sluice.enqueueMany(
      "bulk",
      Array.from({ length: total }, (_, i) => ({ payload: { i }, options: { queue: "bulk" } })),
    );
    const child = spawnCli(
      ["delete", "--queue", "bulk", "--batch-size", "10", "--yes", "--json", "--url", store.url],
      {
        env: { SLUICE_PROGRESS: "plain" },
      },
    );
    const result = collect(child, { timeoutMs: 60_000 });
    await waitForOutput(child, /deleted: \d+/);
    child.kill("SIGINT");
    const { code, stdout, stderr } = await result;
    expect(code, stderr).toBe(1);
    expect(stderr).toContain("interrupted");
    const report = JSON.parse(stdout) as BulkReport;
    expect(report.interrupted).toBe(true);
    expect(report.count % 10).toBe(0);
    expect(report.count).toBeGreaterThan(0);
    expect(report.count).toBeLessThan(total);
    const left = (await sluice.admin.queues()).find((q) => q.queue === "bulk")?.counts.waiting;
    expect(left).toBe(total - report.count);
    await until(
      "the rest to be deleted",
      async () => (await cli(["delete", "--queue", "bulk", "--yes"])).code === 0,
    );
  });
});
