/**
 * Bad `sandbox` options: refused at task definition with INVALID_OPTION and the field; what only loading
 * the module can tell (its export is not a function) fails the first run with INVALID_OPTION, and the
 * worker lives on. SQLite only (runtime behaviour).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Sluice, silentLogger, ValidationError } from "../../src/index.js";
import { until } from "../support/wait.js";

const HANDLERS = new URL("./fixtures/handlers.ts", import.meta.url);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function open(): Sluice {
  const dir = mkdtempSync(join(tmpdir(), "sluice-sandbox-options-"));
  const sluice = new Sluice({ url: `sqlite:${join(dir, "sluice.db")}`, logger: silentLogger() });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => sluice.close());
  return sluice;
}

function refusal(sandbox: unknown, extra: object = {}): ValidationError {
  const sluice = new Sluice({ url: "inline:", logger: silentLogger() });
  try {
    sluice.task("t", { sandbox, ...extra } as never);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error("not refused");
}

describe("sandbox options", () => {
  it.each([
    [null, "task.sandbox"],
    ["thread", "task.sandbox"],
    [{ kind: "fiber", module: HANDLERS }, "task.sandbox.kind"],
    [{ module: HANDLERS }, "task.sandbox.kind"],
    [{ kind: "thread", module: HANDLERS, memoryMb: 0 }, "task.sandbox.memoryMb"],
    [{ kind: "thread", module: HANDLERS, memoryMb: -512 }, "task.sandbox.memoryMb"],
    [{ kind: "thread", module: HANDLERS, memoryMb: 1.5 }, "task.sandbox.memoryMb"],
    [{ kind: "thread", module: HANDLERS, memoryMb: Number.NaN }, "task.sandbox.memoryMb"],
    [{ kind: "thread", module: HANDLERS, memoryMb: "512" }, "task.sandbox.memoryMb"],
    [{ kind: "process", module: HANDLERS, recycleAfter: 0 }, "task.sandbox.recycleAfter"],
    [{ kind: "process" }, "task.sandbox.module"],
    [{ kind: "process", module: "./handlers.js" }, "task.sandbox.module"],
    [{ kind: "process", module: new URL("https://example.com/h.js") }, "task.sandbox.module"],
    [{ kind: "process", module: new URL("./fixtures/missing.js", import.meta.url) }, "task.sandbox.module"],
    [{ kind: "process", module: HANDLERS, export: "" }, "task.sandbox.export"],
    [{ kind: "process", module: HANDLERS, memory: 512 }, "task.sandbox.memory"],
  ])("refuses %o at definition (field %s)", (sandbox, field) => {
    const error = refusal(sandbox);
    expect(error.code).toBe("INVALID_OPTION");
    expect(error.field).toBe(field);
  });

  it("says which file does not exist", () => {
    const missing = new URL("./fixtures/missing.js", import.meta.url);
    expect(refusal({ kind: "thread", module: missing }).message).toContain("missing.js does not exist");
  });

  it("refuses run and sandbox together", () => {
    const error = refusal({ kind: "thread", module: HANDLERS }, { run: () => 1 });
    expect(error.field).toBe("task.run");
    expect(error.message).toContain("give run or sandbox, not both");
  });

  it.each(["thread", "process"] as const)(
    "%s: an export that is not a function fails the first run with INVALID_OPTION; the worker goes on",
    async (kind) => {
      const sluice = open();
      const bad = sluice.task("sb-bad", {
        queue: "sb",
        attempts: 1,
        sandbox: { kind, module: HANDLERS, export: "notAFunction" },
      });
      const good = sluice.task("sb-good", { queue: "sb", sandbox: { kind, module: HANDLERS } });
      const worker = sluice.worker({ queues: ["sb"], pollMs: 50 });
      await worker.start();
      cleanups.push(async () => void (await worker.stop({ graceMs: 0 })));
      const { id } = await bad.enqueue({});
      const job = await until("the bad job to go dead", async () => {
        const j = await sluice.admin.getJob(id);
        return j.state === "dead" ? j : null;
      });
      expect(job.errors[0]).toMatchObject({ name: "ValidationError", code: "INVALID_OPTION" });
      expect(job.errors[0]?.message).toContain(
        'has no export "notAFunction" that is a function (found number)',
      );
      const ok = await good.enqueue({});
      await until(
        "the good job to complete",
        async () => (await sluice.admin.getJob(ok.id)).state === "completed",
      );
    },
  );

  it("inline mode and runNow() call the module in process", async () => {
    const sluice = new Sluice({ url: "inline:", logger: silentLogger() });
    cleanups.push(() => sluice.close());
    const task = sluice.task("sb-count", { sandbox: { kind: "process", module: HANDLERS, export: "count" } });
    const result = (await task.runNow({})) as { pid: number };
    expect(result.pid).toBe(process.pid);
  });
});
