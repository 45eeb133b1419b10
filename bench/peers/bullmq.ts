/**
 * BullMQ (6.x) as a benchmark peer, in two configurations (`TargetOptions.variant`, issue 14).
 *
 * `defaults`: `new Queue(name, { connection, prefix })`, `add` / `addBulk`, and
 * `new Worker(name, handler, { connection, prefix, concurrency })`: nothing else. Completed and failed jobs
 * are kept (BullMQ's default `removeOnComplete: false`, worker-options.d.ts / base-job-options.d.ts), the
 * stalled-jobs check runs every 30 s.
 *
 * `tuned` ("fast"), its documented fast configuration:
 *
 * - Enqueue: `add` one at a time; `addBulk` for batches ("Adds an array of jobs to the queue. This method
 *   may be faster than adding one job at a time in a sequence": one MULTI round trip per batch).
 * - Worker: one `Worker` at the workload's `concurrency`, BullMQ's "local concurrency factor"
 *   (https://docs.bullmq.io/guide/workers/concurrency, whose example is `{ concurrency: 50 }`). An idle
 *   worker waits on a blocking command (BZPOPMIN on the queue's marker key), so new jobs wake it at once.
 * - Completed and failed jobs removed at once (`removeOnComplete` / `removeOnFail` as default job options
 *   and worker options), as Sluice's target deletes completed jobs (retention false).
 * - Like for like with Sluice's bench worker, which runs without maintenance (no lease-recovery pass):
 *   `skipStalledCheck: true` ("Skip stalled check for this worker", worker-options.d.ts) switches off
 *   BullMQ's equivalent, the stalled-jobs check (one Lua call every `stalledInterval`, 30 s). Lock
 *   renewal, the equivalent of Sluice's lease heartbeat, stays on, as Sluice's heartbeat does. Neither is
 *   a speed option: at these durations the check runs at most once or twice per workload.
 * - Its own key prefix (`bull_<namespace>`); the owner obliterates its queue on reset() and close().
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

export const createTarget: BenchTargetFactory = async (
  url,
  { namespace, owner, variant = "tuned" },
): Promise<BenchTarget> => {
  const connection = connectionOf(url);
  const prefix = `bull_${namespace}`;
  const fast = variant === "tuned";
  const queue = new Queue<BenchPayload>(
    QUEUE,
    fast
      ? { connection, prefix, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } }
      : { connection, prefix },
  );
  await queue.waitUntilReady();
  const workers = new Set<Worker<BenchPayload>>();
  return {
    name: fast ? "bullmq (fast: removeOnComplete/Fail, no stalled check)" : "bullmq (defaults)",
    async reset() {
      await queue.obliterate({ force: true });
    },
    async enqueueOne(payload) {
      await queue.add("noop", payload);
    },
    async enqueueBatch(payloads) {
      await queue.addBulk(payloads.map((data) => ({ name: "noop", data })));
    },
    async pending() {
      const counts = await queue.getJobCounts("wait", "active", "delayed", "prioritized");
      return Object.values(counts).reduce((n, c) => n + c, 0);
    },
    async startWorker(concurrency, onJob): Promise<BenchWorker> {
      const worker = new Worker<BenchPayload>(
        QUEUE,
        async (job) => {
          await onJob(job.data);
        },
        fast
          ? {
              connection,
              prefix,
              concurrency,
              removeOnComplete: { count: 0 },
              removeOnFail: { count: 0 },
              skipStalledCheck: true,
            }
          : { connection, prefix, concurrency },
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
      if (owner) await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    },
  };
};
