/** Small helpers for benchmark figures. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

export function summarize(samples: number[]): {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
} {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    n: sorted.length,
  };
}

/**
 * Milliseconds on the host's monotonic clock (CLOCK_MONOTONIC, since boot): the same clock in every process
 * of the machine, so a worker child can subtract the producer's enqueue time. `performance.timeOrigin +
 * performance.now()` is not: each process fixes its `timeOrigin` from the wall clock when it starts, and on
 * this VM the wall clock ran about 0.5 % ahead of the monotonic one (100 ms in 20 s, comparing `Date.now()`
 * and `process.hrtime` deltas), so a child started minutes after the producer measured every latency of a
 * probe shifted by the drift between the two starts (3.5 s in one bench:scale run).
 */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";
}

/** The median of `xs` (the upper one of an even count), as the rounds of a benchmark report it. */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
}
