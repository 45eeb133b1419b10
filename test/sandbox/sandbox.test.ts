/**
 * Sandboxed handlers (src/runtime/sandbox/): a handler that runs out of memory, crashes its process or
 * spins past its timeout kills its sandbox, not the worker; the attempt fails with a typed error and is
 * retried; the worker keeps heartbeating and other jobs complete. Runtime only, so on SQLite (the store
 * plays no part in the sandbox); the handlers are in fixtures/handlers.ts, loaded by the sandboxes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type JobRecord, type SandboxOptions, Sluice, silentLogger, type Worker } from "../../src/index.js";
import { until } from "../support/wait.js";

const HANDLERS = new URL("./fixtures/handlers.ts", import.meta.url);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function open(): Sluice {
  const dir = mkdtempSync(join(tmpdir(), "sluice-sandbox-"));
  const sluice = new Sluice({ url: `sqlite:${join(dir, "sluice.db")}`, logger: silentLogger() });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => sluice.close());
  return sluice;
}

function sandbox(kind: "thread" | "process", name: string, extra: Partial<SandboxOptions> = {}) {
  return { kind, module: HANDLERS, export: name, ...extra } satisfies SandboxOptions;
}

async function start(sluice: Sluice, queues: string[], concurrency = 4): Promise<Worker> {
  const worker = sluice.worker({ queues, concurrency, leaseMs: 2_000, heartbeatMs: 200, pollMs: 50 });
  await worker.start();
  cleanups.push(async () => void (await worker.stop({ graceMs: 0 })));
  return worker;
}

async function final(sluice: Sluice, id: string, timeoutMs = 40_000): Promise<JobRecord> {
  return until(
    `job ${id} to finish`,
    async () => {
      const job = await sluice.admin.getJob(id);
      return ["completed", "dead", "cancelled"].includes(job.state) ? job : null;
    },
    timeoutMs,
  );
}

/** Plain jobs beside the sandboxed one: they must all complete while the sandbox misbehaves. */
function plainTask(sluice: Sluice) {
  return sluice.task("sb-plain", { queue: "sb", run: (p: { i: number }) => p.i });
}

describe.each(["thread", "process"] as const)("%s sandbox", (kind) => {
  it("runs payload, result, progress, log, heartbeat and enqueue inside", async () => {
    const sluice = open();
    const task = sluice.task("sb-all", { queue: "sb", sandbox: sandbox(kind, "everything") });
    sluice.task("sb-child", { queue: "sb", run: (p) => p });
    await start(sluice, ["sb"]);
    const { id } = await task.enqueue({ n: 21 });
    const job = await final(sluice, id);
    expect(job.state).toBe("completed");
    expect(job.result).toMatchObject({ doubled: 42, id, attempt: 1, queue: "sb", aborted: false });
    expect(job.result).toMatchObject({ child: { id: `${id}.1`, created: true } });
    expect(job.progress).toEqual({ half: 10.5 });
    const detail = await sluice.admin.getJob(id);
    expect(detail.logs.map((l) => l.message)).toEqual([expect.stringMatching(/^hello from \d+$/)]);
    // The log names the sandbox's pid: a child process is another process, a thread is this one.
    const pid = Number(detail.logs[0]?.message.split(" ").at(-1));
    expect(pid === process.pid).toBe(kind === "thread");
    expect((await final(sluice, `${id}.1`)).state).toBe("completed");
  });

  it("keeps a thrown error's name, message, code and stack; RateLimitedError still holds the queue", async () => {
    const sluice = open();
    const throws = sluice.task("sb-throws", { queue: "sb", attempts: 1, sandbox: sandbox(kind, "throws") });
    const limited = sluice.task("sb-limited", { queue: "sb2", sandbox: sandbox(kind, "limited") });
    await start(sluice, ["sb", "sb2"]);
    const failed = await final(sluice, (await throws.enqueue({})).id);
    expect(failed.state).toBe("dead");
    expect(failed.errors[0]).toMatchObject({ name: "ParseError", message: "bad page", code: "E_PARSE" });
    expect(failed.errors[0]?.stack).toContain("handlers.ts");
    const { id } = await limited.enqueue({});
    // Released without charging an attempt, its queue paused for the retry-after.
    await until("the rate-limited job back in waiting", async () => {
      const job = await sluice.admin.getJob(id);
      return job.state !== "active" && job.reason?.startsWith("rate limited") && job.attempt === 0;
    });
  });

  it("recycles a sandbox after recycleAfter jobs (its module state starts again)", async () => {
    const sluice = open();
    const task = sluice.task("sb-count", {
      queue: "sb",
      sandbox: sandbox(kind, "count", { recycleAfter: 3 }),
    });
    await start(sluice, ["sb"], 1);
    const counts: number[] = [];
    for (let i = 0; i < 7; i++) {
      const job = await final(sluice, (await task.enqueue({})).id);
      counts.push((job.result as { count: number }).count);
    }
    expect(counts).toEqual([1, 2, 3, 1, 2, 3, 1]);
  });

  it("an out-of-memory kills the sandbox, not the worker: retried with the memory error, other jobs complete", async () => {
    const sluice = open();
    const hog = sluice.task("sb-hog", {
      queue: "sb",
      attempts: 3,
      backoff: { type: "fixed", delayMs: 10 },
      sandbox: sandbox(kind, "hog", { memoryMb: 64 }),
    });
    const plain = plainTask(sluice);
    const worker = await start(sluice, ["sb"]);
    const { id } = await hog.enqueue({ failUntil: 1 });
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => plain.enqueue({ i })));
    const job = await final(sluice, id);
    expect(job.state).toBe("completed");
    expect(job.result).toBe("recovered");
    expect(job.errors).toHaveLength(1);
    expect(job.errors[0]).toMatchObject({
      name: "SandboxMemoryError",
      code: "SANDBOX_OUT_OF_MEMORY",
      outcome: "error",
    });
    expect(job.errors[0]?.message).toMatch(/^sandbox exceeded 64 MB running task "sb-hog"/);
    for (const other of others) expect((await final(sluice, other.id)).state).toBe("completed");
    expect(worker.busy).toBe(0);
  });

  it("a handler that spins past its timeout is killed; the worker's heartbeats kept flowing", async () => {
    const sluice = open();
    const spin = sluice.task("sb-spin", {
      queue: "sb",
      attempts: 2,
      timeoutMs: 3_000, // longer than the 2 s lease: only heartbeats during the spin keep the job
      backoff: { type: "fixed", delayMs: 10 },
      sandbox: sandbox(kind, "spin"),
    });
    const plain = plainTask(sluice);
    await start(sluice, ["sb"]);
    const store = await sluice.store();
    const { id } = await spin.enqueue({ failUntil: 1 });
    const started = await until("the spin to start", async () => {
      const job = await sluice.admin.getJob(id);
      return job.state === "active" ? job : null;
    });
    const beats = new Set<number>();
    const leases = new Set<number>();
    // While the sandbox spins, the worker's registry entry and the job's lease keep moving.
    await until(
      "heartbeats during the spin",
      async () => {
        const [info] = await store.listWorkers();
        if (info) beats.add(info.lastHeartbeatAt);
        const job = await sluice.admin.getJob(id);
        if (job.attempt === 1 && job.leaseExpiresAt !== null) leases.add(job.leaseExpiresAt);
        return beats.size >= 4 && leases.size >= 4;
      },
      2_900,
    );
    const others = await Promise.all(Array.from({ length: 10 }, (_, i) => plain.enqueue({ i })));
    for (const other of others) expect((await final(sluice, other.id)).state).toBe("completed");
    const job = await final(sluice, id);
    expect(job.state).toBe("completed");
    expect(job.result).toBe("recovered");
    expect(job.errors).toHaveLength(1);
    expect(job.errors[0]).toMatchObject({
      name: "SandboxTimeoutError",
      code: "JOB_TIMEOUT",
      outcome: "timeout",
      message: "sandbox killed after timeout 3s: the handler ignored its abort signal",
    });
    // Not recovered by lease expiry: the same claim ran until the timeout.
    expect(job.errors[0]?.workerId).toBe(started.workerId);
  });

  it("forwards an abort to ctx.signal: a handler that listens fails with the reason and its sandbox lives on", async () => {
    const sluice = open();
    const task = sluice.task("sb-listens", {
      queue: "sb",
      attempts: 1,
      timeoutMs: 300,
      sandbox: sandbox(kind, "listens"),
    });
    await start(sluice, ["sb"]);
    const job = await final(sluice, (await task.enqueue({})).id);
    expect(job.errors[0]).toMatchObject({ name: "TimeoutError", code: "JOB_TIMEOUT", outcome: "timeout" });
    // Cancel: the running handler hears CancelledError.
    const running = await task.enqueue({}, { timeoutMs: 60_000 });
    await until("the job to run", async () => (await sluice.admin.getJob(running.id)).state === "active");
    await sluice.admin.cancel(running.id);
    const cancelled = await final(sluice, running.id);
    expect(cancelled.state).toBe("cancelled");
  });
});

describe("process sandbox", () => {
  it("process.abort() kills the sandbox, not the worker: retried with SIGABRT, other jobs complete", async () => {
    const sluice = open();
    const crash = sluice.task("sb-crash", {
      queue: "sb",
      attempts: 3,
      backoff: { type: "fixed", delayMs: 10 },
      sandbox: sandbox("process", "crash"),
    });
    const plain = plainTask(sluice);
    await start(sluice, ["sb"]);
    const { id } = await crash.enqueue({ failUntil: 2 });
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => plain.enqueue({ i })));
    const job = await final(sluice, id);
    expect(job.state).toBe("completed");
    expect(job.errors.map((e) => [e.name, e.code, e.message])).toEqual([
      [
        "SandboxCrashedError",
        "SANDBOX_CRASHED",
        'sandbox crashed: SIGABRT (task "sb-crash"); the worker is unaffected',
      ],
      [
        "SandboxCrashedError",
        "SANDBOX_CRASHED",
        'sandbox crashed: SIGABRT (task "sb-crash"); the worker is unaffected',
      ],
    ]);
    for (const other of others) expect((await final(sluice, other.id)).state).toBe("completed");
  });

  it("goes dead when the crashes use up its attempts", async () => {
    const sluice = open();
    const crash = sluice.task("sb-crash", { queue: "sb", attempts: 2, sandbox: sandbox("process", "crash") });
    await start(sluice, ["sb"]);
    const job = await final(sluice, (await crash.enqueue({ failUntil: 9 })).id);
    expect(job.state).toBe("dead");
    expect(job.reason).toMatch(/^attempts exhausted \(2\/2\): SandboxCrashedError: sandbox crashed: SIGABRT/);
  });
});

describe("thread sandbox", () => {
  it("process.abort() is refused inside a thread: the handler fails with Node's error, the worker lives", async () => {
    const sluice = open();
    const crash = sluice.task("sb-crash", { queue: "sb", attempts: 1, sandbox: sandbox("thread", "crash") });
    await start(sluice, ["sb"]);
    const job = await final(sluice, (await crash.enqueue({ failUntil: 9 })).id);
    expect(job.errors[0]).toMatchObject({ code: "ERR_WORKER_UNSUPPORTED_OPERATION" });
  });
});
