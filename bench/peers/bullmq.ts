/**
 * BullMQ as a benchmark peer, in its documented fast configuration: `addBulk` for batches (one round trip
 * per batch), a Worker at the workload's concurrency, completed and failed jobs removed at once
 * (`removeOnComplete` / `removeOnFail`, as Sluice's target deletes completed jobs with retention false).
 * Runs under its own key prefix (`bullbench_<pid>`) and obliterates its queue in `reset()`.
 */
import { Queue, Worker } from "bullmq";
import type { BenchPayload, BenchTarget, BenchTargetFactory, BenchWorker } from "../target.js";

const QUEUE = "bench";

/** ioredis options from a `redis://[:password@]host:port/db` URL. BullMQ workers need maxRetriesPerRequest null. */
function connectionOf(url: string) {
  const parsed = new URL(url);
  return {
    host: parsed.hostname || "127.0.0.1",
    port: Number(parsed.port || 6379),
    db: Number(parsed.pathname.slice(1) || 0),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    maxRetriesPerRequest: null,
  };
}

export const createTarget: BenchTargetFactory = async (url: string): Promise<BenchTarget> => {
  const connection = connectionOf(url);
  const prefix = `bullbench_${process.pid}`;
  const queue = new Queue<BenchPayload>(QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  await queue.waitUntilReady();
  const workers = new Set<Worker<BenchPayload>>();
  return {
    name: "bullmq",
    async reset() {
      await queue.obliterate({ force: true });
    },
    async enqueueOne(payload) {
      await queue.add("noop", payload);
    },
    async enqueueBatch(payloads) {
      await queue.addBulk(payloads.map((data) => ({ name: "noop", data })));
    },
    async startWorker(concurrency, onJob): Promise<BenchWorker> {
      const worker = new Worker<BenchPayload>(
        QUEUE,
        async (job) => {
          onJob(job.data);
        },
        { connection, prefix, concurrency, removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } },
      );
      workers.add(worker);
      await worker.waitUntilReady();
      return {
        async stop() {
          workers.delete(worker);
          await worker.close();
        },
      };
    },
    async close() {
      await Promise.all([...workers].map((w) => w.close()));
      workers.clear();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    },
  };
};
