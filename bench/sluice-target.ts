/**
 * Sluice as a benchmark target, on any engine URL. The URL carries the engine's isolation (a SQLite file,
 * `?schema=` on PostgreSQL, `?prefix=` on Redis), so `TargetOptions.namespace` is not used; the bench
 * process removes that store in its cleanup (bench/engines.ts), never a worker child.
 *
 * `BENCH_EVENTS=off` turns fleet-wide events off (docs/benchmarks.md, "Cost of fleet-wide events").
 *
 * The bench worker runs with `maintenance: false` (no lease recovery or retention passes), as the peers'
 * workers run without their recovery loops (see bench/peers/*): no job is ever lost in a benchmark.
 */
import { PENDING_STATES } from "../src/core/job.js";
import { Sluice, silentLogger } from "../src/index.js";
import type { Worker } from "../src/runtime/worker.js";
import type { BenchPayload, BenchTarget, BenchTargetFactory, BenchWorker } from "./target.js";

export const BENCH_QUEUE = "bench";

/** `sluice/sqlite` etc., from the URL's scheme. */
function nameOf(url: string): string {
  const scheme = url.slice(0, url.indexOf(":"));
  return `sluice/${scheme === "postgresql" ? "postgres" : scheme}`;
}

export async function createSluiceTarget(url: string, name = nameOf(url)): Promise<BenchTarget> {
  // BENCH_EVENTS=off: no fleet-wide events (the A/B that measures what writing them costs).
  const events = process.env.BENCH_EVENTS === "off" ? { events: false as const } : {};
  const sluice = new Sluice({ url, logger: silentLogger(), ...events });
  let onJob: (p: BenchPayload) => void = () => {};
  // Completed no-op jobs are deleted at once, as the peers are configured (removeOnComplete etc.).
  const task = sluice.task<BenchPayload>("noop", {
    queue: BENCH_QUEUE,
    retention: false,
    run: (p) => onJob(p),
  });
  await sluice.store();
  return {
    name,
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
      const worker: Worker = sluice.worker({ queues: [BENCH_QUEUE], concurrency, maintenance: false });
      await worker.start();
      return { stop: async () => void (await worker.stop({ graceMs: 5_000 })) };
    },
    close: () => sluice.close(),
  };
}

export const createTarget: BenchTargetFactory = (url) => createSluiceTarget(url);
