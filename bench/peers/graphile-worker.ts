/**
 * graphile-worker (0.17) as a benchmark peer, in three configurations (`TargetOptions.variant`, issue 14).
 * Both delete a job when it completes (graphile-worker keeps no completed jobs).
 *
 * `defaults`: `run({ connectionString, schema, concurrency, taskList })` and nothing else but a silent logger
 * and `noHandleSignals` (the bench's worker child handles SIGTERM itself). Per
 * node_modules/graphile-worker/dist/index.d.ts the defaults are: `localQueue.size` `-1` (no local queue:
 * each job slot fetches its own job), `completeJobBatchDelay` / `failJobBatchDelay` `-1` (one statement
 * per completion), `maxPoolSize` `10` (so at concurrency 50 jobs wait for a connection), `pollInterval`
 * 2 s (LISTEN/NOTIFY wakes the worker anyway).
 *
 * `tuned` ("fast"), its documented fast configuration:
 *
 * - Enqueue: `addJob` one at a time; `addJobs` (one statement per batch) for batches. No `queueName`
 *   (named queues run serially by design).
 * - Worker: `run()` with the workload's `concurrency` and the batching options of the performance page
 *   (https://worker.graphile.org/docs/performance, the configuration behind its "quick stats":
 *   `localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0`): the pool locks and
 *   fetches up to 500 jobs per round trip and completes the jobs finished within a tick in one statement.
 *   New jobs wake the worker through LISTEN/NOTIFY (built in); `pollInterval` stays at its default.
 * - Pool: `run()` gets its own pool of `max(10, concurrency + 2)` connections, as `maxPoolSize`'s
 *   documentation recommends ("we recommend setting it to `10` or `concurrentJobs + 2`, whichever is
 *   larger", node_modules/graphile-worker/dist/index.d.ts); the pool is created with the worker, when the
 *   concurrency is known, and released when it stops. Enqueues and resets use a separate pool of 10.
 * - `batched`: the configuration issue 14's harness measured as "graphile-worker (batched)", the
 *   comparator its PostgreSQL targets are written against: "localQueue 100, batched completions", on its
 *   defaults otherwise, so `maxPoolSize` stays 10 (`localQueue: { size: 100 }, completeJobBatchDelay: 0,
 *   failJobBatchDelay: 0`). Enqueue as above.
 * - Recovery: its only pass (one UPDATE releasing locks older than 4 h, once within the first minute and
 *   then every 8-10 min) has no off switch and costs one statement; it is left as it is. (Sluice's bench
 *   worker runs without maintenance.)
 * - Its own schema (`gw_<namespace>`) on the given URL, dropped by the owner's close().
 */
import { Logger, makeWorkerUtils, run, runMigrations, type WorkerUtils } from "graphile-worker";
import pg from "pg";
import type { BenchPayload, BenchTarget, BenchTargetFactory, BenchWorker, Variant } from "../target.js";

const TASK = "bench_noop";
const LABELS: Record<Variant, string> = {
  defaults: "graphile-worker (defaults)",
  batched: "graphile-worker (batched, issue 14's: localQueue 100, pool 10)",
  tuned: "graphile-worker (fast: localQueue 500, batched completions, pool c+2)",
};

/** graphile-worker's logs are noise in a benchmark. */
const silent = new Logger(() => () => {});

export const createTarget: BenchTargetFactory = async (
  url,
  { namespace, owner, variant = "tuned" },
): Promise<BenchTarget> => {
  const schema = `gw_${namespace}`;
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // Connection errors are handled by graphile-worker per query; these listeners only keep a dropped
  // connection from becoming an uncaught 'error' event (graphile-worker warns without them).
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  if (owner) await runMigrations({ pgPool: pool, schema, logger: silent });
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool, schema, logger: silent });
  const runners = new Set<{ stop(): Promise<void> }>();

  return {
    name: LABELS[variant],
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
    async pending() {
      const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}"._private_jobs`);
      return Number(rows[0]?.n ?? 0);
    },
    async startWorker(concurrency, onJob): Promise<BenchWorker> {
      const taskList = {
        [TASK]: async (payload: unknown) => {
          await onJob(payload as BenchPayload);
        },
      };
      const base = {
        connectionString: url,
        schema,
        logger: silent,
        concurrency,
        noHandleSignals: true,
        taskList,
      };
      const batching = { completeJobBatchDelay: 0, failJobBatchDelay: 0 };
      const runner = await run(
        variant === "tuned"
          ? {
              ...base,
              maxPoolSize: Math.max(10, concurrency + 2),
              preset: { worker: { localQueue: { size: 500 }, ...batching } },
            }
          : variant === "batched"
            ? { ...base, preset: { worker: { localQueue: { size: 100 }, ...batching } } }
            : base,
      );
      runners.add(runner);
      return {
        async stop() {
          runners.delete(runner);
          await runner.stop(); // also ends the pool run() created from connectionString
        },
      };
    },
    async close() {
      await Promise.all([...runners].map((r) => r.stop()));
      runners.clear();
      await utils.release();
      if (owner) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
};
