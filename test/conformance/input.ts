/** Bad input: every kind gets its typed error with a stable code, and nothing is written. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  Sluice,
  StoreUnavailableError,
  silentLogger,
  UnknownTaskError,
  ValidationError,
} from "../../src/index.js";
import type { ConformanceContext } from "./context.js";

export function inputTests(ctx: ConformanceContext): void {
  describe("bad input", () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const cases: [string, unknown, string][] = [
      ["a function", { f: () => 1 }, "INVALID_PAYLOAD"],
      ["a bigint", { n: 10n }, "INVALID_PAYLOAD"],
      ["a circular object", circular, "INVALID_PAYLOAD"],
      ["a Date", { at: new Date() }, "INVALID_PAYLOAD"],
      ["NaN", { x: Number.NaN }, "INVALID_PAYLOAD"],
      ["undefined", undefined, "INVALID_PAYLOAD"],
      ["a class instance", { m: new Map() }, "INVALID_PAYLOAD"],
      ["over the size limit", { blob: "x".repeat(1024 * 1024 + 1) }, "PAYLOAD_TOO_LARGE"],
    ];
    for (const [what, payload, code] of cases) {
      it(`rejects a payload with ${what} (${code}) and writes nothing`, async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue();
        const task = sluice.task("typed", { queue });
        const error = await task.enqueue(payload).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect(error).toMatchObject({ code });
        expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
      });
    }

    const badOptions: [string, Record<string, unknown>][] = [
      ["a non-integer priority", { priority: 1.5 }],
      ["a string priority", { priority: "high" }],
      ["zero attempts", { attempts: 0 }],
      ["a negative delay", { delayMs: -1 }],
      ["delayMs with runAt", { delayMs: 10, runAt: Date.now() + 10 }],
      ["an invalid runAt", { runAt: new Date("nope") }],
      ["an unknown option", { delay: 100 }],
      ["a bad backoff", { backoff: { type: "quadratic", delayMs: 1 } }],
      ["an empty jobId", { jobId: "" }],
      ["a bad queue name", { queue: "has spaces" }],
      ["non-string tags", { tags: [1] }],
      ["a zero timeout", { timeoutMs: 0 }],
      ["a bad retention", { retention: { count: -1 } }],
      ["a backoff function (not storable with a job)", { backoff: () => 1_000 }],
      ["a NUL in a jobId", { jobId: "a\u0000b" }],
      ["a NUL in a uniqueKey", { uniqueKey: "doc:\u0000" }],
      ["a NUL in a tag", { tags: ["ok", "x\u0000"] }],
    ];
    for (const [what, options] of badOptions) {
      it(`rejects ${what} with INVALID_OPTION naming the field, and writes nothing`, async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue();
        const task = sluice.task("opts", { queue });
        const error = await task.enqueue({}, options as never).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect(error).toMatchObject({ code: "INVALID_OPTION" });
        expect((error as ValidationError).field).toMatch(/^options\./);
        expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
      });
    }

    it("rejects a schema violation at enqueue with SCHEMA_VALIDATION and the issue path", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("schema", { queue, schema: z.object({ docId: z.string().min(1) }) });
      const error = await task.enqueue({ docId: 7 } as never).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "SCHEMA_VALIDATION" });
      expect((error as ValidationError).issues[0]?.path).toEqual(["docId"]);
      expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
      await expect(task.enqueue({ docId: "ok" })).resolves.toMatchObject({ created: true });
    });

    it("rejects per-job options in a task definition, naming the field", () => {
      const sluice = ctx.sluice();
      for (const key of ["jobId", "uniqueKey", "delayMs", "runAt"]) {
        const define = () =>
          sluice.task(`per-job-${key}`, { queue: "q", [key]: key === "runAt" ? Date.now() : "x" } as never);
        expect(define).toThrow(expect.objectContaining({ code: "INVALID_OPTION", field: `task.${key}` }));
      }
    });

    it("rejects an unknown task name without an explicit queue", async () => {
      const sluice = ctx.sluice();
      const error = await sluice.enqueue("never-defined", {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownTaskError);
      expect(error).toMatchObject({ code: "UNKNOWN_TASK" });
    });

    it("writes nothing from a batch when one item is invalid", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const task = sluice.task("batch", { queue });
      const error = await task
        .enqueueMany([{ payload: { ok: 1 } }, { payload: { ok: 2 } }, { payload: { bad: () => 0 } }])
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "INVALID_PAYLOAD", field: "items[2].payload.bad" });
      expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
    });

    it("rejects bad worker options", () => {
      const sluice = ctx.sluice();
      expect(() => sluice.worker({ concurrency: 0 })).toThrow(ValidationError);
      expect(() => sluice.worker({ queues: [] })).toThrow(ValidationError);
      expect(() => sluice.worker({ queues: [["a", 0]] })).toThrow(ValidationError);
      expect(() => sluice.worker({ leaseMs: 100, heartbeatMs: 200 })).toThrow(ValidationError);
      // prefetch: "auto" or a whole number >= 0; anything else names the field and the two forms.
      for (const prefetch of [-1, 1.5, "fast"]) {
        expect(() => sluice.worker({ prefetch: prefetch as number })).toThrow(
          expect.objectContaining({
            code: "INVALID_OPTION",
            field: "worker.prefetch",
            message: expect.stringMatching(/must be "auto" or an integer >= 0/),
          }),
        );
      }
      expect(() => sluice.worker({ prefetch: "auto" })).not.toThrow();
      expect(() => sluice.worker({ prefetch: 0 })).not.toThrow();
    });

    it("rejects a store URL naming no engine with INVALID_CONFIG", () => {
      expect(() => new Sluice({ url: "mysql://localhost/db", logger: silentLogger() })).toThrow(
        expect.objectContaining({ code: "INVALID_CONFIG" }),
      );
    });

    it("gives a producer StoreUnavailableError quickly when the store is unreachable", async () => {
      const sluice = new Sluice({ url: ctx.harness.unreachableUrl, logger: silentLogger() });
      sluice.task("x", { queue: "q" });
      const started = Date.now();
      const error = await sluice.enqueue("x", {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ code: "STORE_UNAVAILABLE" });
      expect(Date.now() - started).toBeLessThan(15_000);
      await sluice.close();
    });
  });
}
