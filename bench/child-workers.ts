/**
 * Workloads whose workers run in child processes (bench/worker-process.ts) while this process enqueues:
 * processing throughput (one or several worker processes), the I/O-bound workload and cross-process
 * latency, for any target (the child builds the same target from its factory module, `TargetSpec`). Each
 * reports the worker processes' own cost: CPU time per 1,000 jobs and peak RSS (see worker-process.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { now, summarize } from "./stats.js";
import type { BenchTarget, TargetSpec, WorkKind } from "./target.js";
import type { ChildArgs, ChildResult } from "./worker-process.js";
import {
  DEADLINE_MS,
  drained,
  LATENCY_CONCURRENCY,
  prefill,
  SETTLE_MS,
  steadyEnqueue,
  type Throughput,
  until,
  within,
} from "./workloads.js";

const SCRIPT = fileURLToPath(new URL("./worker-process.ts", import.meta.url));
/** Longest a child may take to start its worker (tsx compile, connect, migrate check). */
const START_MS = 60_000;
/** Longest a child may take to stop and report after SIGTERM before it is killed. */
const FINISH_MS = 20_000;

/** How a worker child runs its jobs. */
export interface ChildOptions {
  /** `noop` (default) or `io`. */
  work?: WorkKind;
  /** Record per-job latencies (default true). */
  latencies?: boolean;
}

/** Lines of the children's own output already shown, by message (every child says the same at start). */
const shown = new Set<string>();

/** Shows a child's line on stderr the first time its message is seen (pino's `msg`, else the line). */
function passOn(pid: number | undefined, line: string): void {
  let key = line;
  try {
    const parsed = JSON.parse(line) as { msg?: unknown };
    if (typeof parsed.msg === "string") key = parsed.msg;
  } catch {
    // not JSON: the line is its own key
  }
  if (shown.has(key)) return;
  shown.add(key);
  // On a line of its own: the parent may be in the middle of a progress line.
  process.stderr.write(`\n  [worker ${pid}, shown once] ${line}\n`);
}

/** Every child not yet exited, so that an aborted run can stop them all ({@link finishAll}). */
const running = new Set<ChildWorker>();

/** Stops every worker child still running (SIGTERM, then SIGKILL if it does not report in time). */
export async function finishAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.finish()));
}

/** One worker child process (bench/worker-process.ts). */
export class ChildWorker {
  readonly ready: Promise<void>;
  private readonly child: ChildProcess;
  private readonly result: Promise<ChildResult | null>;
  private seen = 0;
  private done = 0;
  /** When the child said it was about to start its worker (`now()`), or NaN before. */
  startAt = Number.NaN;
  /** When the child reported ready (`now()`), or NaN before. */
  readyAt = Number.NaN;
  /** When the latest `count` line arrived (`now()`): the counts held then (the child reports every 50 ms). */
  countAt = Number.NaN;

  constructor(spec: TargetSpec, concurrency: number, options: ChildOptions = {}) {
    const args: ChildArgs = { spec, concurrency, ...options };
    this.child = spawn(process.execPath, ["--import", "tsx", SCRIPT, JSON.stringify(args)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    running.add(this);
    let resolveReady: () => void = () => {};
    let rejectReady: (error: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    let resolveResult: (r: ChildResult | null) => void = () => {};
    this.result = new Promise<ChildResult | null>((resolve) => {
      resolveResult = resolve;
    });
    const timer = setTimeout(
      () => rejectReady(new Error(`worker child not ready after ${START_MS} ms`)),
      START_MS,
    );
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line === "start") this.startAt = now();
      else if (line === "ready") {
        this.readyAt = now();
        clearTimeout(timer);
        resolveReady();
      } else if (line.startsWith("count ")) {
        const [, started, finished] = line.split(" ");
        this.seen = Number(started);
        this.done = Number(finished);
        this.countAt = now();
      } else if (line.startsWith("result ")) resolveResult(JSON.parse(line.slice(7)) as ChildResult);
      // Anything else is the library's own output (e.g. a warning on stdout): shown once, not parsed.
      else passOn(this.child.pid, line);
    });
    this.child.once("exit", (code, signal) => {
      running.delete(this);
      clearTimeout(timer);
      rejectReady(new Error(`worker child exited before ready (code ${code}, signal ${signal})`));
      resolveResult(null);
    });
  }

  /** Handler starts reported so far (every 50 ms). */
  count(): number {
    return this.seen;
  }

  /** Handlers returned so far (every 50 ms); the store records them within its completion batching. */
  finished(): number {
    return this.done;
  }

  /** SIGTERM, then the child's report (or what is known, with cost unknown, if it does not report in time). */
  async finish(): Promise<ChildResult> {
    this.child.kill("SIGTERM");
    let result: ChildResult | null = null;
    await within(
      this.result.then((r) => {
        result = r;
      }),
      FINISH_MS,
    );
    if (!result) this.child.kill("SIGKILL");
    return (
      result ?? {
        count: this.seen,
        finished: this.done,
        latencies: [],
        maxRssKiB: Number.NaN,
        peakRssKiB: Number.NaN,
        cpuMs: Number.NaN,
      }
    );
  }
}

/** Starts `processes` children; if any fails to start, stops the others and throws. */
export async function startChildren(
  spec: TargetSpec,
  processes: number,
  concurrency: number,
  options: ChildOptions = {},
): Promise<ChildWorker[]> {
  const children = Array.from({ length: processes }, () => new ChildWorker(spec, concurrency, options));
  const started = await Promise.allSettled(children.map((c) => c.ready));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await Promise.all(children.map((c) => c.finish()));
    throw failed.reason;
  }
  return children;
}

const total = (children: ChildWorker[]) => children.reduce((n, c) => n + c.count(), 0);

/** The worker processes' own cost over a workload. */
export interface WorkerCost {
  /** Peak RSS of each child over the whole life (`maxRSS`), MiB. */
  rssMiB: number[];
  /** Peak RSS of each child over the workload's window (sampled every 50 ms), MiB. */
  peakRssMiB: number[];
  /** CPU time of all children over the window (user + system), ms. */
  cpuMs: number;
  /** `cpuMs` per 1,000 jobs the workload completed. */
  cpuMsPer1k: number;
}

function costOf(results: ChildResult[], jobs: number): WorkerCost {
  const cpuMs = results.reduce((n, r) => n + r.cpuMs, 0);
  return {
    rssMiB: results.map((r) => r.maxRssKiB / 1024),
    peakRssMiB: results.map((r) => r.peakRssKiB / 1024),
    cpuMs,
    cpuMsPer1k: jobs > 0 ? (cpuMs / jobs) * 1_000 : Number.NaN,
  };
}

export interface MultiProcessThroughput extends Throughput, WorkerCost {
  /** Jobs the store reported completed when the clock stopped. */
  jobs: number;
  /** True when the deadline stopped the clock before every job was completed (the rate is over the window). */
  deadlineHit: boolean;
}

/** Options of {@link multiProcessThroughput}. */
export interface ThroughputOptions extends ChildOptions {
  /** Longest the run may take before it reports what it reached. Default `DEADLINE_MS`. */
  deadlineMs?: number;
}

/**
 * Pre-filled jobs drained by `processes` worker children at `concurrency` each: completed jobs/s. The
 * clock starts when the FIRST child is about to start its worker (so a child that starts later only
 * lowers the figure) and stops when the store reports no job left, or at the deadline.
 */
export async function multiProcessThroughput(
  target: BenchTarget,
  spec: TargetSpec,
  count: number,
  concurrency: number,
  processes = 2,
  batchSize = 1_000,
  options: ThroughputOptions = {},
): Promise<MultiProcessThroughput> {
  const { deadlineMs = DEADLINE_MS, ...child } = options;
  await target.reset();
  await prefill(target, count, batchSize);
  const children = await startChildren(spec, processes, concurrency, child);
  const begin = Math.min(...children.map((c) => c.startAt));
  const deadline = begin + deadlineMs;
  const allStarted = await until(() => total(children) >= count, deadline);
  const lastStart = now(); // within 50 ms of it: children report every 50 ms
  const end = await drained(target, count, deadline);
  const results = await Promise.all(children.map((c) => c.finish()));
  await target.reset();
  return {
    completed: end.completed / ((end.at - begin) / 1_000),
    started: allStarted ? count / ((lastStart - begin) / 1_000) : Number.NaN,
    jobs: end.completed,
    deadlineHit: end.completed < count,
    ...costOf(results, end.completed),
  };
}

export interface CrossProcessLatency extends ReturnType<typeof summarize>, WorkerCost {
  /** Jobs enqueued (`n` of them started within the settle time). */
  enqueued: number;
}

/**
 * Enqueue here at a steady rate, run in `processes` idle worker children (concurrency 10 each):
 * enqueue call → handler start latency, and the children's cost over the run.
 */
export async function crossProcessLatency(
  target: BenchTarget,
  spec: TargetSpec,
  count: number,
  ratePerSec: number,
  processes = 1,
  /** `reset: false` leaves the store as it is, before and after (the jobs it holds are the point). */
  { reset = true }: { reset?: boolean } = {},
): Promise<CrossProcessLatency> {
  if (reset) await target.reset();
  const children = await startChildren(spec, processes, LATENCY_CONCURRENCY);
  await sleep(300); // let the workers reach their idle wait
  await steadyEnqueue(target, count, ratePerSec);
  await until(() => total(children) >= count, now() + SETTLE_MS, 10);
  const results = await Promise.all(children.map((c) => c.finish()));
  if (reset) await target.reset();
  const latencies = results.flatMap((r) => r.latencies);
  return {
    ...summarize(latencies),
    enqueued: count,
    ...costOf(results, latencies.length),
  };
}
