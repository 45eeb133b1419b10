/**
 * One thing the benchmark can drive: Sluice on an engine, or a peer (BullMQ, graphile-worker, pg-boss).
 * Every target runs the same workloads (bench/workloads.ts) so the numbers compare.
 */
export interface BenchPayload {
  /** Sequence number within the workload. */
  n: number;
  /** `performance.timeOrigin + performance.now()` at the enqueue call, for end-to-end latency. */
  t: number;
}

export interface BenchWorker {
  stop(): Promise<void>;
}

export interface BenchTarget {
  /** Row label, e.g. `sluice/postgres`, `pg-boss`. */
  readonly name: string;
  /** Empties the queue used by the workloads (no jobs of earlier workloads left). */
  reset(): Promise<void>;
  /** Enqueues one job; resolves when the job is durably stored. */
  enqueueOne(payload: BenchPayload): Promise<void>;
  /** Enqueues many jobs the target's fastest documented way (one round trip per batch where it can). */
  enqueueBatch(payloads: BenchPayload[]): Promise<void>;
  /**
   * Starts consuming the workload queue in this process at `concurrency`, calling `onJob` at the start
   * of each handler (a no-op job otherwise). Resolves once the worker is ready to take jobs.
   */
  startWorker(concurrency: number, onJob: (payload: BenchPayload) => void): Promise<BenchWorker>;
  /** Closes every connection. */
  close(): Promise<void>;
}

/** Creates a target against `url` (the peer's own store URL for peers). */
export type BenchTargetFactory = (url: string) => Promise<BenchTarget>;
