/**
 * The executor (one job: schema, handler, timeout, abort) and Task.runNow, which runs through it: an inline
 * run applies exactly the checks a worker applies, and touches no store.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { JobRecord } from "../../src/core/job.js";
import type { RegisteredTask, TaskDefinition } from "../../src/core/task.js";
import {
  CancelledError,
  InvalidPayloadError,
  NoHandlerError,
  Sluice,
  silentLogger,
  TimeoutError,
  ValidationError,
} from "../../src/index.js";
import { SluiceEventEmitter } from "../../src/runtime/events.js";
import { createContext, execute, executeThen, RunningJob } from "../../src/runtime/executor.js";

function job(overrides: Partial<JobRecord> = {}): JobRecord {
  const now = Date.now();
  return {
    id: "j1",
    seq: 1,
    task: "t",
    queue: "q",
    state: "active",
    payload: { n: 1 },
    result: null,
    priority: 0,
    runAt: now,
    createdAt: now,
    startedAt: now,
    finishedAt: null,
    attempt: 1,
    maxAttempts: 3,
    backoff: null,
    timeoutMs: null,
    uniqueKey: null,
    tags: [],
    progress: null,
    leaseToken: 1,
    leaseExpiresAt: null,
    workerId: null,
    cancelRequested: false,
    retention: true,
    errors: [],
    reason: null,
    parentId: null,
    batchId: null,
    pendingDependencies: 0,
    limitKey: null,
    ...overrides,
  };
}

function task(definition: TaskDefinition): RegisteredTask {
  return { name: "t", definition, defaults: {}, backoff: null, limitKey: null };
}

async function run(definition: TaskDefinition | undefined, record = job()) {
  const running = new RunningJob(record, Date.now());
  const saved: string[] = [];
  const ctx = createContext(running, {
    events: new SluiceEventEmitter(),
    maxPayloadBytes: 64,
    saveProgress: async (_j, text) => void saved.push(text),
    log: async () => {},
    heartbeat: async () => {},
    enqueue: async () => [{ id: "x", state: "waiting" as const, created: true }],
    flow: async () => null,
    canWait: true,
  });
  const result = await execute(running, definition && task(definition), ctx, "w");
  return { result, running, saved };
}

describe("executor", () => {
  it("returns the handler's value, sync or async", async () => {
    expect((await run({ run: (p) => (p as { n: number }).n + 1 })).result).toEqual({ ok: true, value: 2 });
    expect((await run({ run: async () => "later" })).result).toEqual({ ok: true, value: "later" });
  });

  it("returns what a sync or async handler threw", async () => {
    const boom = new Error("boom");
    expect(
      (
        await run({
          run: () => {
            throw boom;
          },
        })
      ).result,
    ).toEqual({ ok: false, error: boom });
    expect((await run({ run: async () => Promise.reject(boom) })).result).toEqual({ ok: false, error: boom });
  });

  it("ends the wait at the timeout even when the handler ignores its signal", async () => {
    const { result, running } = await run(
      { run: () => new Promise(() => {}) }, // never settles, never reads ctx.signal
      job({ timeoutMs: 30 }),
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toBeInstanceOf(TimeoutError);
    expect(running.signal.aborted).toBe(true);
    expect(running.signal.reason).toBeInstanceOf(TimeoutError);
  });

  it("ends the wait when the worker aborts the job (a cancel), and the signal says why", async () => {
    const record = job();
    const running = new RunningJob(record, Date.now());
    const ctx = createContext(running, {
      events: new SluiceEventEmitter(),
      maxPayloadBytes: 64,
      saveProgress: async () => {},
      log: async () => {},
      heartbeat: async () => {},
      enqueue: async () => [{ id: "x", state: "waiting" as const, created: true }],
      flow: async () => null,
      canWait: true,
    });
    let seen: unknown;
    const pending = execute(
      running,
      task({
        run: (_p, c) =>
          new Promise((resolve) =>
            c.signal.addEventListener("abort", () => {
              seen = c.signal.reason;
              resolve(seen);
            }),
          ),
      }),
      ctx,
      "w",
    );
    running.abort(new CancelledError("j1"));
    const result = await pending;
    expect(!result.ok && result.error).toBeInstanceOf(CancelledError);
    expect(seen).toBeInstanceOf(CancelledError);
  });

  it("fails a stored payload that cannot be parsed or fails the schema with InvalidPayloadError", async () => {
    const unparsed = await run({ run: () => "never" }, job({ dataError: "payload is not JSON" }));
    expect(!unparsed.result.ok && unparsed.result.error).toBeInstanceOf(InvalidPayloadError);
    const schema = await run({ schema: z.object({ n: z.string() }), run: () => "never" });
    expect(!schema.result.ok && schema.result.error).toBeInstanceOf(InvalidPayloadError);
    expect(!schema.result.ok && (schema.result.error as Error).message).toMatch(
      /stored payload fails the task schema/,
    );
  });

  it("fails a job whose task has no handler here with NoHandlerError", async () => {
    for (const definition of [undefined, {}]) {
      const { result } = await run(definition);
      expect(!result.ok && result.error).toBeInstanceOf(NoHandlerError);
    }
  });

  it("ctx methods work taken apart from ctx (made once per job, bound to it)", async () => {
    const { result, saved } = await run({
      run: async (_p, ctx) => {
        const { progress, log, heartbeat, id, signal } = ctx;
        expect(ctx.progress).toBe(progress); // the same function at every read
        await progress(0.25);
        await log("line");
        await heartbeat();
        return [id, signal.aborted];
      },
    });
    expect(result).toEqual({ ok: true, value: ["j1", false] });
    expect(saved).toEqual(["0.25"]);
  });

  it("a handler returning a plain value or throwing is settled before execute's caller resumes", async () => {
    // The worker relies on this: no promise per job on the synchronous path.
    const running = new RunningJob(job(), Date.now());
    const sinks = {
      events: new SluiceEventEmitter(),
      maxPayloadBytes: 64,
      saveProgress: async () => {},
      log: async () => {},
      heartbeat: async () => {},
      enqueue: async () => [],
      flow: async () => null,
      canWait: true,
    };
    const seen: unknown[] = [];
    executeThen(running, task({ run: () => 7 }), createContext(running, sinks), "w", (r) => seen.push(r));
    executeThen(
      running,
      task({
        run: () => {
          throw new Error("sync");
        },
      }),
      createContext(running, sinks),
      "w",
      (r) => seen.push(r.ok),
    );
    expect(seen).toEqual([{ ok: true, value: 7 }, false]);
    expect(running.inHandler).toBe(false);
  });

  it("checks progress size before storing it", async () => {
    const { result, saved } = await run({
      run: async (_p, ctx) => {
        await ctx.progress(0.5);
        await ctx.progress("x".repeat(100));
      },
    });
    expect(saved).toEqual(["0.5"]);
    expect(!result.ok && (result.error as ValidationError).code).toBe("PAYLOAD_TOO_LARGE");
  });
});

describe("Task.runNow", () => {
  const sluice = () => new Sluice({ url: "sqlite::memory:", logger: silentLogger(), maxPayloadBytes: 64 });

  it("applies the progress size check a worker applies", async () => {
    const big = sluice().task("inline-progress", {
      run: async (_p, ctx) => {
        await ctx.progress("x".repeat(100));
      },
    });
    await expect(big.runNow({})).rejects.toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
  });

  it("times out like a worker, and validates the payload like an enqueue", async () => {
    const s = sluice();
    const slow = s.task("inline-slow", { timeoutMs: 20, run: () => new Promise(() => {}) });
    await expect(slow.runNow({})).rejects.toBeInstanceOf(TimeoutError);
    const typed = s.task("inline-typed", { schema: z.object({ n: z.number() }), run: (p) => p.n * 2 });
    await expect(typed.runNow({ n: 21 })).resolves.toBe(42);
    await expect(typed.runNow({ n: "x" } as never)).rejects.toBeInstanceOf(ValidationError);
  });

  it("refuses a task without a handler in this process", async () => {
    const declared = sluice().task("inline-declared", { queue: "q" });
    await expect(declared.runNow({})).rejects.toMatchObject({ code: "NO_HANDLER" });
  });
});
