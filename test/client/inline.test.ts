/**
 * Inline mode (`inline:`): each enqueue runs its jobs in this process, through the worker's executor and
 * failure policy, before it resolves; the outcome is stored and announced as a worker's would be.
 */
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { resolveUrl } from "../../src/cli/config.js";
import { UsageError } from "../../src/cli/errors.js";
import type { Logger } from "../../src/core/logger.js";
import {
  DiscardError,
  type FleetEvent,
  InlineRunawayError,
  RateLimitedError,
  Sluice,
  type SluiceError,
  type SluiceEvents,
  silentLogger,
  ValidationError,
} from "../../src/index.js";

const open: Sluice[] = [];

function inline(url = "inline:", logger: Logger = silentLogger()): Sluice {
  const sluice = new Sluice({ url, logger });
  open.push(sluice);
  return sluice;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** Every in-process event of `sluice`, in order, as `type:jobId`. */
function record(sluice: Sluice): string[] {
  const seen: string[] = [];
  for (const type of ["enqueued", "active", "progress", "completed", "failed", "retrying", "dead"] as const) {
    sluice.on(type, ((event: SluiceEvents[typeof type][0]) => seen.push(`${type}:${event.jobId}`)) as never);
  }
  return seen;
}

async function fleetEvents(sluice: Sluice, jobId: string): Promise<FleetEvent[]> {
  const store = await sluice.store();
  return (await store.readEvents({ after: null, limit: 1000, jobId })).events;
}

describe("inline mode", () => {
  it("runs the job before enqueue resolves and stores its result", async () => {
    const sluice = inline();
    const ran: string[] = [];
    const greet = sluice.task("greet", {
      run: async ({ name }: { name: string }, ctx) => {
        await ctx.progress(0.5);
        await ctx.log(`greeting ${name}`);
        ran.push(name);
        return { greeting: `hello ${name}` };
      },
    });
    const job = await greet.enqueue({ name: "ada" });
    expect(ran).toEqual(["ada"]);
    expect(job).toMatchObject({ created: true, state: "completed" });
    const stored = await sluice.admin.getJob(job.id);
    expect(stored).toMatchObject({
      state: "completed",
      result: { greeting: "hello ada" },
      attempt: 1,
      progress: 0.5,
      errors: [],
    });
    expect(stored.logs.map((l) => l.message)).toEqual(["greeting ada"]);
  });

  it("refuses a payload that fails the schema with a typed error, and writes nothing", async () => {
    const sluice = inline();
    let runs = 0;
    const embed = sluice.task("embed", {
      schema: z.object({ docId: z.string() }),
      run: () => {
        runs++;
      },
    });
    const error = await embed.enqueue({ docId: 7 } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe("SCHEMA_VALIDATION");
    expect(runs).toBe(0);
    expect((await sluice.admin.listJobs({})).jobs).toEqual([]);
  });

  it("retries as a worker does: attempts 3, two failures then success → completed with 2 errors", async () => {
    const sluice = inline();
    const events = record(sluice);
    let calls = 0;
    const flaky = sluice.task("flaky", {
      attempts: 3,
      backoff: { type: "fixed", delayMs: 3_600_000 }, // an hour: collapsed, the test does not wait
      run: (_p: null, ctx) => {
        calls++;
        if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`);
        return "ok";
      },
    });
    const startedAt = Date.now();
    const job = await flaky.enqueue(null);
    expect(Date.now() - startedAt).toBeLessThan(30_000);
    expect(calls).toBe(3);
    expect(job.state).toBe("completed");
    const stored = await sluice.admin.getJob(job.id);
    expect(stored.state).toBe("completed");
    expect(stored.result).toBe("ok");
    expect(stored.attempt).toBe(3);
    expect(stored.errors.map((e) => [e.attempt, e.message])).toEqual([
      [1, "boom 1"],
      [2, "boom 2"],
    ]);
    const id = job.id;
    expect(events).toEqual([
      `enqueued:${id}`,
      `active:${id}`,
      `failed:${id}`,
      `retrying:${id}`,
      `active:${id}`,
      `failed:${id}`,
      `retrying:${id}`,
      `active:${id}`,
      `completed:${id}`,
    ]);
    // The hourly roll-up is flushed at the end of each drive (a worker flushes it every few seconds).
    const [stats] = await sluice.admin.stats({ sinceMs: 3_600_000 });
    expect(stats).toMatchObject({ queue: "default", completed: 1, failed: 2, dead: 0 });
  });

  it("a job that always throws ends dead; enqueue resolves, the dead event and admin show it", async () => {
    const sluice = inline();
    const dead: SluiceEvents["dead"][0][] = [];
    sluice.on("dead", (e) => dead.push(e));
    const broken = sluice.task("broken", {
      attempts: 3,
      run: () => {
        throw new Error("always");
      },
    });
    const job = await broken.enqueue({});
    expect(job.state).toBe("dead");
    const stored = await sluice.admin.getJob(job.id);
    expect(stored.state).toBe("dead");
    expect(stored.errors).toHaveLength(3);
    expect(stored.reason).toMatch(/attempts exhausted \(3\/3\).*always/);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ jobId: job.id, attempt: 3 });
  });

  it("applies discardOn / DiscardError and retryOn like the worker's failure policy", async () => {
    const sluice = inline();
    class Fatal extends Error {}
    let discards = 0;
    const discarded = sluice.task("discarded", {
      attempts: 5,
      discardOn: [Fatal],
      run: () => {
        discards++;
        throw new Fatal("no point");
      },
    });
    const thrown = sluice.task("thrown", {
      attempts: 5,
      run: () => {
        throw new DiscardError("give up");
      },
    });
    const a = await discarded.enqueue({});
    const b = await thrown.enqueue({});
    expect(discards).toBe(1);
    expect([a.state, b.state]).toEqual(["dead", "dead"]);
    expect((await sluice.admin.getJob(a.id)).reason).toMatch(/^discarded: /);
    expect((await sluice.admin.getJob(b.id)).errors).toHaveLength(1);
  });

  it("enforces timeoutMs (real time, not collapsed) and records the timeout", async () => {
    const sluice = inline();
    const job = await sluice
      .task("stuck", {
        attempts: 1,
        timeoutMs: 20,
        run: (_p, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener("abort", reject)),
      })
      .enqueue({});
    expect(job.state).toBe("dead");
    const [error] = (await sluice.admin.getJob(job.id)).errors;
    expect(error).toMatchObject({ outcome: "timeout", code: "JOB_TIMEOUT" });
  });

  it("a task with no run() in this process ends dead with NO_HANDLER, as on a worker without it", async () => {
    const sluice = inline();
    sluice.task("elsewhere", { attempts: 2 });
    const job = await sluice.enqueue("elsewhere", {});
    expect(job.state).toBe("dead");
    const stored = await sluice.admin.getJob(job.id);
    expect(stored.errors.map((e) => e.outcome)).toEqual(["no-handler", "no-handler"]);
  });

  it("writes the fleet-wide events of each transition", async () => {
    const sluice = inline();
    const task = sluice.task("t", {
      attempts: 2,
      run: (_p, ctx) => (ctx.attempt === 1 ? Promise.reject(new Error("x")) : 1),
    });
    const job = await task.enqueue({});
    const types = (await fleetEvents(sluice, job.id)).map((e) => e.type);
    expect(types[0]).toBe("enqueued");
    expect(types).toContain("retrying");
    expect(types.at(-1)).toBe("completed");
  });

  it("runs the jobs a handler enqueues (ctx.enqueue or sluice.enqueue) before the first enqueue resolves", async () => {
    const sluice = inline();
    const order: string[] = [];
    sluice.task("child", {
      queue: "children",
      run: ({ n }: { n: number }) => {
        order.push(`child ${n}`);
        return n * 10;
      },
    });
    const parent = sluice.task("parent", {
      run: async (_p: null, ctx) => {
        order.push("parent start");
        // From inside a handler an enqueue returns at once (no deadlock on the drive it is part of).
        const a = await ctx.enqueue("child", { n: 1 });
        const b = await sluice.enqueue("child", { n: 2 });
        order.push("parent end");
        return [a.id, b.id];
      },
    });
    const job = await parent.enqueue(null);
    expect(order).toEqual(["parent start", "parent end", "child 1", "child 2"]);
    const childIds = (await sluice.admin.getJob(job.id)).result as string[];
    for (const id of childIds) expect((await sluice.admin.getJob(id)).state).toBe("completed");
  });

  it("runs flows: a chain passes results, a batch fires its callbacks, a waiting parent runs again", async () => {
    const sluice = inline();
    const order: string[] = [];
    sluice.task("parse", { run: ({ doc }: { doc: string }) => `${doc}:parsed` });
    sluice.task("index", {
      run: async (_p, ctx) => {
        const [previous] = await ctx.dependencies();
        order.push(`index after ${String(previous?.result)}`);
        return "indexed";
      },
    });
    const [parsed, indexed] = await sluice.chain([
      { task: "parse", payload: { doc: "d1" } },
      { task: "index", payload: null },
    ]);
    expect([parsed?.state, indexed?.state]).toEqual(["completed", "completed"]);
    expect(order).toEqual(["index after d1:parsed"]);

    const callbacks: unknown[] = [];
    sluice.task("embed", {
      attempts: 1,
      run: (n: number) => {
        if (n === 3) throw new Error("bad chunk");
        return n;
      },
    });
    sluice.task("report", { run: (payload) => void callbacks.push(payload) });
    const { batchId, jobs } = await sluice.batch(
      [1, 2, 3].map((n) => ({ task: "embed", payload: n })),
      { onComplete: "report", data: { doc: "d1" } },
    );
    expect(jobs.map((j) => j.state)).toEqual(["completed", "completed", "dead"]);
    expect(callbacks).toEqual([
      expect.objectContaining({ batchId, event: "complete", completed: 2, dead: 1, data: { doc: "d1" } }),
    ]);

    const runs: string[] = [];
    sluice.task("chunk", { run: (n: number) => n * 2 });
    const ingest = sluice.task("ingest", {
      run: async (_p: null, ctx) => {
        const children = await ctx.children();
        if (children.length === 0) {
          runs.push("fan out");
          await ctx.enqueue(
            [1, 2].map((n) => ({ task: "chunk", payload: n })),
            { wait: true },
          );
          return "not kept";
        }
        runs.push("fan in");
        return children.map((c) => c.result);
      },
    });
    const job = await ingest.enqueue(null);
    expect(runs).toEqual(["fan out", "fan in"]);
    expect(job.state).toBe("completed");
    expect((await sluice.admin.getJob(job.id)).result).toEqual([2, 4]);
  });

  it("collapses delays: a job due in an hour runs at once", async () => {
    const sluice = inline();
    const ran: number[] = [];
    const later = sluice.task("later", { run: (p: number) => void ran.push(p) });
    const a = await later.enqueue(1, { delayMs: 3_600_000 });
    const b = await later.enqueue(2, { runAt: new Date(Date.now() + 86_400_000) });
    expect(ran).toEqual([1, 2]);
    expect([a.state, b.state]).toEqual(["completed", "completed"]);
  });

  it("enqueueMany runs every job of the batch before it resolves", async () => {
    const sluice = inline();
    const seen: number[] = [];
    const t = sluice.task("many", { run: (n: number) => void seen.push(n) });
    const jobs = await t.enqueueMany([1, 2, 3].map((payload) => ({ payload })));
    expect(seen).toEqual([1, 2, 3]);
    expect(jobs.map((j) => j.state)).toEqual(["completed", "completed", "completed"]);
  });

  it("an enqueue that arrives while a drive runs waits until its own job has run", async () => {
    const sluice = inline();
    const done: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = sluice.task("slow", {
      run: async () => {
        await gate;
        done.push("slow");
      },
    });
    const quick = sluice.task("quick", { run: () => void done.push("quick") });
    const first = slow.enqueue({});
    // Let the first drive claim and start the slow job, then enqueue from outside it.
    await new Promise((resolve) => setImmediate(resolve));
    const second = quick.enqueue({});
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(done).toEqual(["slow", "quick"]);
    expect([a.state, b.state]).toEqual(["completed", "completed"]);
  });

  it("a rate-limited attempt goes back uncharged and runs again at once", async () => {
    const sluice = inline();
    let calls = 0;
    const limited = sluice.task("limited", {
      attempts: 1,
      run: () => {
        calls++;
        if (calls === 1) throw new RateLimitedError(60_000);
        return "through";
      },
    });
    const job = await limited.enqueue({});
    expect(calls).toBe(2);
    expect(job.state).toBe("completed");
    expect(await sluice.admin.queues()).toEqual(
      expect.arrayContaining([expect.objectContaining({ queue: "default", paused: false })]),
    );
  });

  it("cancelling a running inline job aborts its handler", async () => {
    const sluice = inline();
    const job = await sluice
      .task("cancel-me", {
        run: async (_p, ctx) => {
          await sluice.admin.cancel(ctx.id);
          await new Promise((_resolve, reject) => {
            if (ctx.signal.aborted) reject(ctx.signal.reason);
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
          });
        },
      })
      .enqueue({});
    expect(job.state).toBe("cancelled");
    expect((await sluice.admin.getJob(job.id)).state).toBe("cancelled");
  });

  it("stops a job that reschedules itself forever with InlineRunawayError", async () => {
    const sluice = inline("inline:?maxRunsPerDrive=20");
    let runs = 0;
    sluice.task("tick", {
      run: async (_p, ctx) => {
        runs++;
        await ctx.enqueue("tick", {}, { delayMs: 60_000 });
      },
    });
    const error = await sluice.enqueue("tick", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InlineRunawayError);
    expect((error as SluiceError).code).toBe("INLINE_RUNAWAY");
    expect(runs).toBe(20);
    // The job it could not run is left waiting, uncharged.
    const waiting = await sluice.admin.listJobs({ state: "waiting" });
    expect(waiting.jobs).toHaveLength(1);
    expect(waiting.jobs[0]?.attempt).toBe(0);
  });

  it("refuses a shared transaction: the in-memory store cannot join it", async () => {
    const sluice = inline();
    sluice.task("t", { run: () => {} });
    const error = await sluice
      .withTransaction({})
      .enqueue("t", {})
      .catch((e: unknown) => e);
    expect((error as SluiceError).code).toBe("TRANSACTION_UNSUPPORTED");
    expect((await sluice.admin.listJobs({})).jobs).toEqual([]);
  });

  it("hands out a worker that takes no jobs and says so", async () => {
    const warnings: string[] = [];
    const logger = silentLogger();
    const spy = Object.assign(Object.create(logger) as Logger, {
      warn: (_obj: unknown, message?: string) => void warnings.push(String(message)),
      child: () => spy,
    });
    const sluice = inline("inline:", spy);
    const worker = sluice.worker({ queues: ["default"], concurrency: 2 });
    await worker.start();
    expect(warnings.some((w) => w.includes("this worker takes no jobs"))).toBe(true);
    expect(worker.busy).toBe(0);
    expect(await worker.stop()).toEqual({ released: [], unsettled: [] });
    // Its options are still checked like any worker's.
    expect(() => sluice.worker({ concurrency: 0 })).toThrow(ValidationError);
  });

  it("is selected by SLUICE_URL=inline:", async () => {
    const before = process.env.SLUICE_URL;
    process.env.SLUICE_URL = "inline:";
    try {
      const sluice = new Sluice({ logger: silentLogger() });
      open.push(sluice);
      expect(sluice.url).toBe("inline:");
      const ran: string[] = [];
      const job = await sluice.task("env", { run: () => void ran.push("env") }).enqueue({});
      expect(ran).toEqual(["env"]);
      expect(job.state).toBe("completed");
    } finally {
      if (before === undefined) delete process.env.SLUICE_URL;
      else process.env.SLUICE_URL = before;
    }
  });

  it("rejects a malformed inline: URL with INVALID_CONFIG", () => {
    for (const url of ["inline:foo", "inline:?maxRunsPerDrive=0", "inline:?speed=fast"]) {
      expect(() => new Sluice({ url, logger: silentLogger() }), url).toThrow(
        expect.objectContaining({ code: "INVALID_CONFIG" }),
      );
    }
  });

  it("each instance has its own store", async () => {
    const a = inline();
    const b = inline();
    const job = await a.task("t", { run: () => 1 }).enqueue({});
    b.task("t", { run: () => 2 });
    expect((await a.admin.getJob(job.id)).state).toBe("completed");
    await expect(b.admin.getJob(job.id)).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
  });

  it("the CLI refuses inline: with a usage error that says why", async () => {
    const error = await resolveUrl(undefined, { SLUICE_URL: "inline:" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/memory of the application process/);
  });
});
