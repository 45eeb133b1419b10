/**
 * Sluice as a benchmark target, on any engine URL. The URL carries the engine's isolation (a SQLite file,
 * `?schema=` on PostgreSQL, `?prefix=` on Redis), so `TargetOptions.namespace` is not used; the bench
 * process removes that store in its cleanup (bench/engines.ts), never a worker child.
 *
 * Two configurations (`TargetOptions.variant`, issue 14):
 *
 * - `defaults`: exactly what a user writes — `new Sluice({ url })`, a task with no retention option (completed
 *   jobs kept 24 h), `sluice.worker({ queues, concurrency })` (maintenance on, prefetch at its default).
 *   Nothing else: the default logger too (JSON lines at `warn` on stdout).
 * - `tuned`: completed jobs deleted at once (`retention: false`) and a worker without maintenance (no
 *   lease recovery or retention passes), as the peers' fast configurations run without their recovery
 *   loops (see bench/peers/*). The older benches (`npm run bench`, bench:multi) use it.
 *
 * `BENCH_EVENTS=off` turns fleet-wide events off in either (docs/benchmarks.md, "Cost of fleet-wide events").
 */
import { PENDING_STATES } from "../src/core/job.js";
import { Sluice, silentLogger } from "../src/index.js";
import type { Worker } from "../src/runtime/worker.js";
import type { BenchPayload, BenchTarget, BenchTargetFactory, BenchWorker, Variant } from "./target.js";

export const BENCH_QUEUE = "bench";

/** `sluice/sqlite` etc., from the URL's scheme. */
function nameOf(url: string): string {
  const scheme = url.slice(0, url.indexOf(":"));
  return `sluice/${scheme === "postgresql" ? "postgres" : scheme}`;
}

/** The row label's suffix for each configuration. */
export const SLUICE_VARIANT_LABEL: Record<Exclude<Variant, "batched">, string> = {
  defaults: "defaults",
  tuned: "tuned: no retention, no maintenance",
};

export async function createSluiceTarget(
  url: string,
  name = nameOf(url),
  variant: Exclude<Variant, "batched"> = "tuned",
): Promise<BenchTarget> {
  const tuned = variant === "tuned";
  // BENCH_EVENTS=off: no fleet-wide events (the A/B that measures what writing them costs).
  const events = process.env.BENCH_EVENTS === "off" ? { events: false as const } : {};
  const sluice = tuned
    ? new Sluice({ url, logger: silentLogger(), ...events })
    : new Sluice({ url, ...events });
  let onJob: (p: BenchPayload) => undefined | Promise<void> = () => undefined;
  const task = sluice.task<BenchPayload>("noop", {
    queue: BENCH_QUEUE,
    // Tuned: completed no-op jobs deleted at once, as the peers' fast configurations do (removeOnComplete).
    ...(tuned ? { retention: false } : {}),
    run: (p) => onJob(p),
  });
  await sluice.store();
  return {
    name: `${name} (${SLUICE_VARIANT_LABEL[variant]})`,
    async reset() {
      await sluice.admin.delete({ queue: BENCH_QUEUE }, { batchSize: 10_000 });
    },
    async enqueueOne(payload) {
      await task.enqueue(payload);
    },
    async enqueueBatch(payloads) {
      await task.enqueueMany(payloads.map((payload) => ({ payload })));
    },
    async pending() {
      const queue = (await sluice.admin.queues()).find((q) => q.queue === BENCH_QUEUE);
      return queue ? PENDING_STATES.reduce((n, state) => n + queue.counts[state], 0) : 0;
    },
    async startWorker(concurrency, handler): Promise<BenchWorker> {
      onJob = handler;
      const worker: Worker = tuned
        ? sluice.worker({ queues: [BENCH_QUEUE], concurrency, maintenance: false })
        : sluice.worker({ queues: [BENCH_QUEUE], concurrency });
      await worker.start();
      return { stop: async () => void (await worker.stop({ graceMs: 5_000 })) };
    },
    close: () => sluice.close(),
  };
}

export const createTarget: BenchTargetFactory = async (url, options) => {
  const variant = options.variant ?? "tuned";
  // bench/compare.ts runs Sluice in its own two configurations only.
  if (variant === "batched")
    throw new Error("Sluice has no 'batched' bench configuration (graphile-worker's)");
  return createSluiceTarget(url, undefined, variant);
};
