/**
 * Workloads whose workers run in child processes (bench/worker-process.ts) while this process enqueues:
 * multi-process throughput and cross-process latency, for any target (the child builds the same target
 * from its factory module, `TargetSpec`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { now, summarize } from "./stats.js";
import type { BenchTarget, TargetSpec } from "./target.js";
import type { ChildResult } from "./worker-process.js";
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

class ChildWorker {
  readonly ready: Promise<void>;
  private readonly child: ChildProcess;
  private readonly result: Promise<ChildResult | null>;
  private seen = 0;
  /** When the child reported ready (`now()`), or NaN before. */
  readyAt = Number.NaN;

  constructor(spec: TargetSpec, concurrency: number) {
    this.child = spawn(process.execPath, ["--import", "tsx", SCRIPT, JSON.stringify({ spec, concurrency })], {
      stdio: ["ignore", "pipe", "inherit"],
    });
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
      if (line === "ready") {
        this.readyAt = now();
        clearTimeout(timer);
        resolveReady();
      } else if (line.startsWith("count ")) this.seen = Number(line.slice(6));
      else if (line.startsWith("result ")) resolveResult(JSON.parse(line.slice(7)) as ChildResult);
    });
    this.child.once("exit", (code, signal) => {
      clearTimeout(timer);
      rejectReady(new Error(`worker child exited before ready (code ${code}, signal ${signal})`));
      resolveResult(null);
    });
  }

  /** Handler starts reported so far (every 10 ms). */
  count(): number {
    return this.seen;
  }

  /** SIGTERM, then the child's report (or what is known, with RSS unknown, if it does not report in time). */
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
    return result ?? { count: this.seen, latencies: [], maxRssKiB: Number.NaN };
  }
}

/** Starts `processes` children; if any fails to start, stops the others and throws. */
async function startChildren(
  spec: TargetSpec,
  processes: number,
  concurrency: number,
): Promise<ChildWorker[]> {
  const children = Array.from({ length: processes }, () => new ChildWorker(spec, concurrency));
  const started = await Promise.allSettled(children.map((c) => c.ready));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await Promise.all(children.map((c) => c.finish()));
    throw failed.reason;
  }
  return children;
}

const total = (children: ChildWorker[]) => children.reduce((n, c) => n + c.count(), 0);

export interface MultiProcessThroughput extends Throughput {
  /** Peak RSS of each child, MiB. */
  rssMiB: number[];
}

/**
 * Pre-filled jobs drained by `processes` worker children at `concurrency` each: completed jobs/s. Each
 * child claims as soon as it is up; the clock starts when the FIRST reports ready (so a child that starts
 * later only lowers the figure) and stops when the store reports no job left.
 */
export async function multiProcessThroughput(
  target: BenchTarget,
  spec: TargetSpec,
  count: number,
  concurrency: number,
  processes = 2,
  batchSize = 1_000,
): Promise<MultiProcessThroughput> {
  await target.reset();
  await prefill(target, count, batchSize);
  const children = await startChildren(spec, processes, concurrency);
  const begin = Math.min(...children.map((c) => c.readyAt));
  const deadline = begin + DEADLINE_MS;
  const allStarted = await until(() => total(children) >= count, deadline);
  const lastStart = now(); // within 10 ms of it: children report every 10 ms
  const end = await drained(target, count, deadline);
  const results = await Promise.all(children.map((c) => c.finish()));
  await target.reset();
  return {
    completed: end.completed / ((end.at - begin) / 1_000),
    started: allStarted ? count / ((lastStart - begin) / 1_000) : Number.NaN,
    rssMiB: results.map((r) => r.maxRssKiB / 1024),
  };
}

export interface CrossProcessLatency extends ReturnType<typeof summarize> {
  /** Peak RSS of each child, MiB. */
  rssMiB: number[];
}

/**
 * Enqueue here at a steady rate, run in `processes` idle worker children (concurrency 10 each):
 * enqueue call → handler start latency.
 */
export async function crossProcessLatency(
  target: BenchTarget,
  spec: TargetSpec,
  count: number,
  ratePerSec: number,
  processes = 1,
): Promise<CrossProcessLatency> {
  await target.reset();
  const children = await startChildren(spec, processes, LATENCY_CONCURRENCY);
  await sleep(300); // let the workers reach their idle wait
  await steadyEnqueue(target, count, ratePerSec);
  await until(() => total(children) >= count, now() + SETTLE_MS, 10);
  const results = await Promise.all(children.map((c) => c.finish()));
  await target.reset();
  return {
    ...summarize(results.flatMap((r) => r.latencies)),
    rssMiB: results.map((r) => r.maxRssKiB / 1024),
  };
}
