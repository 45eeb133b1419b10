/**
 * graphile-worker as a benchmark peer, in its documented fast configuration
 * (https://worker.graphile.org/docs/performance):
 * - enqueue: `addJob` one at a time; `addJobs` (one statement per batch) for batches;
 * - no `queueName` (named queues run serially by design);
 * - worker: `run()` with `concurrency`, LISTEN/NOTIFY wake-ups (built in) and `pollInterval` as the
 *   fallback, a `localQueue` (the pool locks and fetches a batch of jobs per round trip) and
 *   `completeJobBatchDelay: 0` / `failJobBatchDelay: 0` (completions batched within a tick);
 * - its own schema on the given URL, dropped by close().
 */
import { Logger, makeWorkerUtils, run, runMigrations, type WorkerUtils } from "graphile-worker";
import pg from "pg";
import type { BenchPayload, BenchTarget, BenchTargetFactory, BenchWorker } from "../target.js";

const TASK = "bench_noop";
/** graphile-worker's logs are noise in a benchmark. */
const silent = new Logger(() => () => {});

export const createTarget: BenchTargetFactory = async (url: string): Promise<BenchTarget> => {
  const schema = `gw_bench_${process.pid}`;
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // Connection errors are handled by graphile-worker per query; these listeners only keep a dropped
  // connection from becoming an uncaught 'error' event (graphile-worker warns without them).
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  await runMigrations({ pgPool: pool, schema, logger: silent });
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool, schema, logger: silent });
  let onJob: (payload: BenchPayload) => void = () => {};

  return {
    name: "graphile-worker",
    async reset() {
      // Jobs are deleted on completion; this removes anything left (queued, locked by a stopped worker).
      await pool.query(`DELETE FROM "${schema}"._private_jobs`);
    },
    async enqueueOne(payload) {
      await utils.addJob(TASK, payload);
    },
    async enqueueBatch(payloads) {
      await utils.addJobs(payloads.map((payload) => ({ identifier: TASK, payload })));
    },
    async startWorker(concurrency, handler): Promise<BenchWorker> {
      onJob = handler;
      const runner = await run({
        pgPool: pool,
        schema,
        logger: silent,
        concurrency,
        noHandleSignals: true,
        pollInterval: 1_000,
        taskList: {
          [TASK]: async (payload) => {
            onJob(payload as BenchPayload);
          },
        },
        preset: {
          worker: {
            localQueue: { size: Math.max(concurrency * 2, 100) },
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      });
      return {
        async stop() {
          await runner.stop();
        },
      };
    },
    async close() {
      await utils.release();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
};
