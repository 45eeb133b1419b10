/** Sluice as a benchmark target, on any engine URL. */
import { Sluice, silentLogger } from "../src/index.js";
import type { Worker } from "../src/runtime/worker.js";
import type { BenchPayload, BenchTarget, BenchWorker } from "./target.js";

export const BENCH_QUEUE = "bench";

export async function createSluiceTarget(url: string, name: string): Promise<BenchTarget> {
  const sluice = new Sluice({ url, logger: silentLogger() });
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
    async startWorker(concurrency, handler): Promise<BenchWorker> {
      onJob = handler;
      const worker: Worker = sluice.worker({ queues: [BENCH_QUEUE], concurrency, maintenance: false });
      await worker.start();
      return { stop: () => worker.stop({ graceMs: 5_000 }) };
    },
    close: () => sluice.close(),
  };
}
