/**
 * pg-boss (v10) as a benchmark peer, in its documented fast configuration (README, "Job polling"):
 * - enqueue: `send` one at a time; `insert` (one statement per array of jobs) for batches;
 * - worker: `work()` with `batchSize` (one fetch takes a batch) and the minimum polling interval
 *   (0.5 s: pg-boss polls and has no LISTEN-based wake-up); concurrency is split across
 *   min(concurrency, 10) `work()` loops of `concurrency / loops` jobs each, so at most `concurrency`
 *   jobs are in flight and the polls of different loops interleave;
 * - maintenance and cron scheduling off (as Sluice's bench worker runs without maintenance);
 * - its own schema on the given URL, dropped by close().
 */

import pg from "pg";
import PgBoss from "pg-boss";
import type { BenchPayload, BenchTarget, BenchTargetFactory, BenchWorker } from "../target.js";

const QUEUE = "bench_noop";

export const createTarget: BenchTargetFactory = async (url: string): Promise<BenchTarget> => {
  const schema = `pgboss_bench_${process.pid}`;
  const boss = new PgBoss({ connectionString: url, schema, max: 10, supervise: false, schedule: false });
  boss.on("error", () => {}); // surfaced by the workload's own counts; avoid crashing on an emitted error
  await boss.start();
  await boss.createQueue(QUEUE);
  let onJob: (payload: BenchPayload) => void = () => {};

  return {
    name: "pg-boss",
    async reset() {
      await boss.offWork(QUEUE).catch(() => undefined);
      await boss.getDb().executeSql(`DELETE FROM "${schema}".job WHERE name = $1`, [QUEUE]);
    },
    async enqueueOne(payload) {
      await boss.send(QUEUE, payload);
    },
    async enqueueBatch(payloads) {
      await boss.insert(payloads.map((data) => ({ name: QUEUE, data })));
    },
    async startWorker(concurrency, handler): Promise<BenchWorker> {
      onJob = handler;
      const loops = Math.min(concurrency, 10);
      const batchSize = Math.ceil(concurrency / loops);
      for (let i = 0; i < loops; i++) {
        await boss.work<BenchPayload>(QUEUE, { batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
          for (const job of jobs) onJob(job.data);
        });
      }
      return {
        async stop() {
          await boss.offWork(QUEUE);
        },
      };
    },
    async close() {
      await boss.stop({ graceful: false, wait: true, timeout: 5_000 });
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
};
