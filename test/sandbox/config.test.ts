/**
 * `sandbox:` in the worker config file: per task and per queue, validated with line, column and field;
 * applied to the tasks module's tasks, whose own run() then runs in the sandbox. SQLite (runtime only).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { loadTasks } from "../../src/cli/commands/worker.js";
import { applyFileSandboxes, ConfigFileError, loadWorkerConfig } from "../../src/cli/config.js";
import { UsageError } from "../../src/cli/errors.js";
import { Sluice, silentLogger } from "../../src/index.js";
import { until } from "../support/wait.js";

const TASKS = fileURLToPath(new URL("./fixtures/tasks.ts", import.meta.url));
const HANDLERS = fileURLToPath(new URL("./fixtures/handlers.ts", import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-sandbox-config-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "worker.yaml");
  writeFileSync(path, text);
  return path;
}

describe("worker config sandbox:", () => {
  it("reports every bad entry with its line and field", () => {
    const path = configFile(
      [
        "sandbox:",
        "  tasks:",
        "    a: { kind: fiber }",
        "    b: { kind: process, memoryMb: 0 }",
        "    c: { kind: thread, module: ./nope.js }",
        "  queues:",
        "    q: thread",
        "  groups: {}",
      ].join("\n"),
    );
    let error: unknown;
    try {
      loadWorkerConfig(path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigFileError);
    const issues = (error as ConfigFileError).issues.map((i) => [i.line, i.field]);
    expect(issues).toEqual([
      [3, "sandbox.tasks.a.kind"],
      [4, "sandbox.tasks.b.memoryMb"],
      [5, "sandbox.tasks.c.module"],
      [7, "sandbox.queues.q"],
      [8, "sandbox.groups"],
    ]);
    expect((error as ConfigFileError).message).toContain("nope.js does not exist");
  });

  it("runs a task's own run() in a process sandbox, by task and by queue; others stay in process", async () => {
    const path = configFile(
      [
        "sandbox:",
        "  tasks:",
        "    cfg-pid: { kind: process, memoryMb: 128, recycleAfter: 10 }",
        "  queues:",
        `    heavy: { kind: process, module: ${JSON.stringify(HANDLERS)}, export: count }`,
      ].join("\n"),
    );
    const file = loadWorkerConfig(path);
    const dir = mkdtempSync(join(tmpdir(), "sluice-sandbox-config-db-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const sluice = new Sluice({ url: `sqlite:${join(dir, "s.db")}`, logger: silentLogger() });
    cleanups.push(() => sluice.close());
    await loadTasks(TASKS, sluice);
    applyFileSandboxes(sluice.tasks, file.sandbox ?? { tasks: {}, queues: {} }, TASKS, path);
    expect(sluice.tasks.get("cfg-pid")?.sandbox).toMatchObject({
      kind: "process",
      memoryMb: 128,
      recycleAfter: 10,
    });
    expect(sluice.tasks.get("cfg-plain")?.sandbox ?? null).toBeNull();
    const worker = sluice.worker({ queues: ["cfg", "heavy"], pollMs: 50 });
    await worker.start();
    cleanups.push(async () => void (await worker.stop({ graceMs: 0 })));
    const ids = await Promise.all(
      ["cfg-pid", "cfg-queue", "cfg-plain"].map(async (t) => (await sluice.enqueue(t, {})).id),
    );
    const results = await until("the three jobs", async () => {
      const jobs = await Promise.all(ids.map((id) => sluice.admin.getJob(id)));
      return jobs.every((j) => j.state === "completed")
        ? jobs.map((j) => j.result as { pid: number; count?: number })
        : null;
    });
    expect(results[0]?.pid).not.toBe(process.pid); // its own run(), in a child process
    expect(results[1]).toMatchObject({ count: 1 }); // the queue's entry names another module
    expect(results[1]?.pid).not.toBe(process.pid);
    expect(results[2]?.pid).toBe(process.pid);
  });

  it("refuses an entry for a task the tasks module does not define", async () => {
    const path = configFile("sandbox:\n  tasks:\n    nope: { kind: thread }\n");
    const file = loadWorkerConfig(path);
    const sluice = new Sluice({ url: "inline:", logger: silentLogger() });
    cleanups.push(() => sluice.close());
    await loadTasks(TASKS, sluice);
    expect(() =>
      applyFileSandboxes(sluice.tasks, file.sandbox ?? { tasks: {}, queues: {} }, TASKS, path),
    ).toThrow(UsageError);
  });
});
