/**
 * One thing the benchmark can drive: Sluice on an engine, or a peer (BullMQ, graphile-worker, pg-boss).
 * Every target runs the same workloads (bench/workloads.ts) so the numbers compare.
 *
 * A target is created by a factory module (bench/sluice-target.ts, bench/peers/*.ts) exporting
 * `createTarget: BenchTargetFactory`. The same module is imported by worker child processes
 * (bench/worker-process.ts), which attach to the namespace the parent created: so any target can run its
 * worker in another process.
 */
export interface BenchPayload {
  /** Sequence number within the workload. */
  n: number;
  /** `now()` of bench/stats.ts (the host's monotonic clock) at the enqueue call, for end-to-end latency. */
  t: number;
}

/**
 * Which configuration a target runs in (issue 14): `defaults` is what a user gets from the library's
 * documented defaults, the headline; `tuned` is the like-for-like fast configuration (Sluice: completed
 * jobs removed, no maintenance; peers: their documented fast settings, see bench/peers/*); `batched` is
 * the configuration issue 14's harness named "graphile-worker (batched)" (graphile-worker only: local
 * queue of 100 and batched completions, its defaults otherwise), the comparator of that issue's targets.
 */
export type Variant = "defaults" | "tuned" | "batched";

export const VARIANTS: readonly Variant[] = ["defaults", "tuned", "batched"];

/**
 * What a handler does: `noop` returns at once; `io` awaits a timer of 50–500 ms (an I/O-bound job that
 * uses no CPU), the same duration for the same job number on every target (see {@link ioSleepMs}).
 */
export type WorkKind = "noop" | "io";

/** The I/O-bound workload's sleep for job `n`: 50–500 ms, spread evenly, identical on every target. */
export function ioSleepMs(n: number): number {
  return 50 + ((n * 7_919) % 451);
}

export interface BenchWorker {
  /** Stops consuming; resolves once the worker no longer runs jobs and has released its connections. */
  stop(): Promise<void>;
}

export interface BenchTarget {
  /** Row label with its configuration, e.g. `sluice/postgres (defaults)`, `pg-boss (fast: …)`. */
  readonly name: string;
  /** Empties the queue used by the workloads (no jobs of earlier workloads left). */
  reset(): Promise<void>;
  /** Enqueues one job; resolves when the job is durably stored. */
  enqueueOne(payload: BenchPayload): Promise<void>;
  /** Enqueues many jobs the target's fastest documented way (one round trip per batch where it can). */
  enqueueBatch(payloads: BenchPayload[]): Promise<void>;
  /**
   * Jobs of the workload queue not yet completed, as the store reports them (waiting, locked or running):
   * 0 once every job's completion is durably written. Completed jobs are deleted or kept (as the
   * target's configuration says) but never counted, so "completed" means the same thing on each: the
   * handler ran and the store recorded its outcome.
   */
  pending(): Promise<number>;
  /**
   * Starts consuming the workload queue in this process at `concurrency` (at most that many handlers at
   * once). Each handler calls `onJob` at its start and returns what it returns: a no-op job when it
   * returns nothing, an I/O-bound one when it returns a promise (awaited before the job completes).
   * Resolves once the worker is ready to take jobs.
   */
  startWorker(
    concurrency: number,
    onJob: (payload: BenchPayload) => undefined | Promise<void>,
  ): Promise<BenchWorker>;
  /** Closes every connection; the owner also drops the namespace (schema, key prefix) it created. */
  close(): Promise<void>;
}

export interface TargetOptions {
  /**
   * Names the target's own schema / key prefix. The parent and its worker children pass the same value,
   * so they share one queue. (Sluice targets carry theirs in the URL and ignore it.)
   */
  namespace: string;
  /**
   * True in the benchmark process, which creates (migrates) the namespace and drops it on close; false
   * in worker children, which attach to it and leave it in place.
   */
  owner: boolean;
  /** The configuration to run in (default `tuned`, what the older benches measure). */
  variant?: Variant;
}

/** Creates a target against `url` (the peer's own store URL for peers). */
export type BenchTargetFactory = (url: string, options: TargetOptions) => Promise<BenchTarget>;

/** Everything a worker child process needs to build the same target as its parent. */
export interface TargetSpec {
  /** `file:` URL of a module exporting `createTarget: BenchTargetFactory`. */
  module: string;
  url: string;
  namespace: string;
  /** Default `tuned`. */
  variant?: Variant;
}

/** Imports a factory module and creates its target. */
export async function openTarget(spec: TargetSpec, owner: boolean): Promise<BenchTarget> {
  const { createTarget } = (await import(spec.module)) as { createTarget: BenchTargetFactory };
  return createTarget(spec.url, { namespace: spec.namespace, owner, variant: spec.variant ?? "tuned" });
}
