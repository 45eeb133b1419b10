/**
 * The workloads every target runs. Each is bounded in count and time; none asserts a timing (this is a
 * benchmark, not a test): they measure and return numbers.
 *
 * Processing figures count COMPLETED jobs: the clock runs from asking for a worker until the store
 * reports no job of the workload left (`BenchTarget.pending() === 0`), i.e. until the last completion is
 * durably written, not merely until the last handler started. The store is asked only once every
 * handler has started (see `drained` for how often).
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

/** Longest a processing run may take before it reports what it reached. */
export const DEADLINE_MS = 120_000;
/** Longest the latency workloads wait for the last jobs after the last enqueue. */
export const SETTLE_MS = 30_000;
/** Concurrency of the idle workers of the latency workloads. */
export const LATENCY_CONCURRENCY = 10;

/** Resolves when `done` does or after `ms`, whichever comes first; the timer never outlives the call. */
export async function within(done: Promise<unknown>, ms: number): Promise<void> {
  const timer = new AbortController();
  try {
    await Promise.race([done, sleep(ms, undefined, { signal: timer.signal }).catch(() => undefined)]);
  } finally {
    timer.abort();
  }
}

/** Polls `check` every `stepMs` until it holds or the deadline (epoch ms, as `now()`) passes. */
export async function until(
  check: () => boolean | Promise<boolean>,
  deadline: number,
  stepMs = 5,
): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (now() >= deadline) return false;
    await sleep(stepMs);
  }
}

/**
 * Waits (until `deadline`) for the store to report every job of the workload completed; returns the
 * time of the check that saw none pending and how many jobs were completed by then. The checks are
 * spaced by three times the last check's duration (5 to 100 ms), so that counting never takes more than
 * about a quarter of one connection (a count can cost several ms on a big table) away from the workers.
 */
export async function drained(
  target: BenchTarget,
  count: number,
  deadline: number,
): Promise<{ at: number; completed: number }> {
  for (;;) {
    const asked = now();
    const pending = await target.pending();
    const answered = now();
    if (pending === 0 || answered >= deadline) return { at: answered, completed: count - pending };
    await sleep(Math.min(100, Math.max(5, 3 * (answered - asked))));
  }
}

/** Enqueues `count` no-op jobs in batches (the pre-fill of the processing workloads). */
export async function prefill(target: BenchTarget, count: number, batchSize: number): Promise<void> {
  for (let n = 0; n < count; n += batchSize) {
    const t = now();
    await target.enqueueBatch(
      Array.from({ length: Math.min(batchSize, count - n) }, (_, i) => ({ n: n + i, t })),
    );
  }
}

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
  await prefill(target, count, batchSize);
  const rate = count / ((now() - started) / 1_000);
  await target.reset();
  return rate;
}

/** A processing run's figures. */
export interface Throughput {
  /** Completed jobs/s: the figure (see the top of this file). */
  completed: number;
  /**
   * Handler starts/s, clock stopped at the last handler start: above `completed` by as much as the
   * worker lets completions queue up behind the handlers (written later, in batches, or not at all if
   * the process dies).
   */
  started: number;
}

/**
 * Pre-fills `count` jobs, then measures how fast one in-process worker at `concurrency` completes them
 * all, from asking for the worker to the store reporting none left.
 */
export async function processing(
  target: BenchTarget,
  count: number,
  concurrency: number,
  batchSize: number,
): Promise<Throughput> {
  await target.reset();
  await prefill(target, count, batchSize);
  let seen = 0;
  let lastStart = Number.NaN;
  let allStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    allStarted = resolve;
  });
  const begin = now();
  const deadline = begin + DEADLINE_MS;
  const worker = await target.startWorker(concurrency, () => {
    if (++seen === count) {
      lastStart = now();
      allStarted();
    }
  });
  await within(started, DEADLINE_MS);
  const end = await drained(target, count, deadline);
  await worker.stop();
  await target.reset();
  return {
    completed: end.completed / ((end.at - begin) / 1_000),
    started: seen === count ? count / ((lastStart - begin) / 1_000) : Number.NaN,
  };
}

/** End-to-end latency (enqueue call → handler start) at a steady rate with an idle in-process worker. */
export async function latency(
  target: BenchTarget,
  count: number,
  ratePerSec: number,
): Promise<ReturnType<typeof summarize>> {
  await target.reset();
  const samples: number[] = [];
  const worker = await target.startWorker(LATENCY_CONCURRENCY, (p: BenchPayload) => {
    samples.push(now() - p.t);
  });
  await sleep(300); // let the worker reach its idle wait
  await steadyEnqueue(target, count, ratePerSec);
  await until(() => samples.length >= count, now() + SETTLE_MS, 10);
  await worker.stop();
  await target.reset();
  return summarize(samples);
}

/** `count` single enqueues at `ratePerSec`, on a fixed schedule (a late call does not shift the next). */
export async function steadyEnqueue(target: BenchTarget, count: number, ratePerSec: number): Promise<void> {
  const interval = 1_000 / ratePerSec;
  const started = now();
  for (let n = 0; n < count; n++) {
    const wait = started + n * interval - now();
    if (wait > 0) await sleep(wait);
    await target.enqueueOne({ n, t: now() });
  }
}
