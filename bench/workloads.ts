/**
 * The workloads every target runs. Each is bounded in count and time; none asserts a timing (this is a
 * benchmark, not a test): they measure and return numbers.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { now, summarize } from "./stats.js";
import type { BenchPayload, BenchTarget } from "./target.js";

export interface WorkloadSizes {
  enqueueOne: number;
  enqueueBatch: number;
  batchSize: number;
  process: number;
  latencyJobs: number;
  latencyRate: number;
}

export const FULL: WorkloadSizes = {
  enqueueOne: 5_000,
  enqueueBatch: 50_000,
  batchSize: 1_000,
  process: 20_000,
  latencyJobs: 2_000,
  latencyRate: 200,
};
export const QUICK: WorkloadSizes = {
  enqueueOne: 500,
  enqueueBatch: 5_000,
  batchSize: 1_000,
  process: 2_000,
  latencyJobs: 200,
  latencyRate: 200,
};

const DEADLINE_MS = 120_000;

/** Enqueue calls one at a time, awaited in sequence: jobs/s. */
export async function enqueueOneByOne(target: BenchTarget, count: number): Promise<number> {
  await target.reset();
  const started = now();
  for (let n = 0; n < count; n++) await target.enqueueOne({ n, t: now() });
  const rate = count / ((now() - started) / 1_000);
  await target.reset();
  return rate;
}

/** Enqueue in batches: jobs/s. */
export async function enqueueBatches(target: BenchTarget, count: number, batchSize: number): Promise<number> {
  await target.reset();
  const started = now();
  for (let n = 0; n < count; n += batchSize) {
    const t = now();
    await target.enqueueBatch(
      Array.from({ length: Math.min(batchSize, count - n) }, (_, i) => ({ n: n + i, t })),
    );
  }
  const rate = count / ((now() - started) / 1_000);
  await target.reset();
  return rate;
}

/** Pre-fills `count` jobs, then measures how fast one in-process worker at `concurrency` starts them all. */
export async function processing(
  target: BenchTarget,
  count: number,
  concurrency: number,
  batchSize: number,
): Promise<number> {
  await target.reset();
  for (let n = 0; n < count; n += batchSize) {
    const t = now();
    await target.enqueueBatch(
      Array.from({ length: Math.min(batchSize, count - n) }, (_, i) => ({ n: n + i, t })),
    );
  }
  let seen = 0;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const started = now();
  const worker = await target.startWorker(concurrency, () => {
    if (++seen === count) finished();
  });
  await Promise.race([done, sleep(DEADLINE_MS)]);
  const elapsed = now() - started;
  await worker.stop();
  const rate = seen / (elapsed / 1_000);
  await target.reset();
  return rate;
}

/** End-to-end latency (enqueue call → handler start) at a steady rate with idle workers. */
export async function latency(
  target: BenchTarget,
  count: number,
  ratePerSec: number,
): Promise<ReturnType<typeof summarize>> {
  await target.reset();
  const samples: number[] = [];
  const worker = await target.startWorker(10, (p: BenchPayload) => {
    samples.push(now() - p.t);
  });
  await sleep(200); // let the worker reach its idle wait
  const interval = 1_000 / ratePerSec;
  const started = now();
  for (let n = 0; n < count; n++) {
    const due = started + n * interval;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    await target.enqueueOne({ n, t: now() });
  }
  const deadline = now() + 30_000;
  while (samples.length < count && now() < deadline) await sleep(10);
  await worker.stop();
  await target.reset();
  return summarize(samples);
}
