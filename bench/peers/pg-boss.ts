/**
 * pg-boss (v10) as a benchmark peer, in two configurations (`TargetOptions.variant`, issue 14).
 *
 * `defaults`: `new PgBoss({ connectionString, schema })` (maintenance and cron scheduling on, pool of 10,
 * completed jobs kept) and ONE `work(queue, { batchSize: concurrency }, handler)` whose handler runs its
 * batch concurrently — `batchSize` is how pg-boss 10 runs jobs at once (its docs: "The default options for
 * work() is 1 job every 2 seconds"), so that is the workload's concurrency, not a tuning. The polling interval
 * stays at its default 2 s and there is no `notifyWorker`: one loop completes at most `concurrency` jobs per
 * 2 s and an idle worker sees a new job about 1 s later on average. Rows that hit the workload deadline say so.
 *
 * `tuned` ("fast"): the configuration a pg-boss user chasing throughput would use,
 * from its v10 docs (docs/readme.md at v10: `work()`, `fetch()`, `notifyWorker()`) and source
 * (node_modules/pg-boss/src/worker.js, src/manager.js, src/plans.js):
 *
 * - Enqueue: `send` one at a time; `insert` (one statement per array of jobs) for batches.
 * - pg-boss 10 POLLS: it has no LISTEN-based wake-up, so with idle workers a new job waits for the next
 *   poll and its latency is bounded below by the polling interval (minimum 0.5 s: "Interval to check for
 *   new jobs in seconds, must be >=0.5"), about half of it on average. A `work()` worker is a loop:
 *   fetch a batch (`batchSize`, one `SKIP LOCKED` statement), await the handler, complete the batch in one
 *   statement (not awaited by the loop), then sleep the interval minus the time the iteration took, EVEN
 *   when the batch was full. So a loop drains at most `batchSize` jobs per 0.5 s unless told otherwise:
 *   the earlier bench config (10 loops × 5 jobs) capped pg-boss at ~100 jobs/s, below the latency
 *   workload's 200 jobs/s, so it measured a growing backlog (~17 s), not pg-boss.
 * - Worker: ONE `work()` loop with `batchSize: concurrency`, so at most `concurrency` jobs are claimed and
 *   running at once; the handler runs the batch concurrently (`Promise.all`, as the docs' `fetch()`
 *   example does with its batch); `pollingIntervalSeconds: 0.5`, the minimum; and when a fetch came back
 *   full (a backlog) the handler calls `notifyWorker(id)`, documented as "Notifies a worker by id to
 *   bypass the job polling interval (see `pollingIntervalSeconds`) for this iteration in the loop", so a
 *   busy loop fetches again at once instead of sleeping. `includeMetadata: false` (id, name, data only).
 *   Why one loop and not several smaller ones ("Each call to work() will add a new worker"): each fetch
 *   sorts every ready job of the queue (index job_i5 is on `(name, start_after)`, the fetch orders by
 *   priority, created_on), so fetches are expensive and concurrent ones contend for the same rows; with
 *   20,000 jobs at concurrency 50 this machine drained ~2,000 jobs/s with 1 × 50 or 2 × 25 but ~400/s
 *   with 10 × 5. More loops would divide the idle latency (polls interleave) at that cost in throughput.
 * - Completed jobs stay in the job table as `completed` (pg-boss's default; deleting them in the handler
 *   would cost a statement per batch); reset() empties the queue.
 * - Pool: pg-boss's default `max: 10` connections, as Sluice's default pool of 10.
 * - Maintenance and cron scheduling off (`supervise: false, schedule: false`), as Sluice's bench worker
 *   runs without maintenance.
 * - Its own schema (`pgboss_<namespace>`) on the given URL, dropped by the owner's close().
 */

import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import PgBoss from "pg-boss";
import type { BenchPayload, BenchTarget, BenchTargetFactory, BenchWorker } from "../target.js";

const QUEUE = "bench_noop";
const POLLING_INTERVAL_S = 0.5;

export const createTarget: BenchTargetFactory = async (
  url,
  { namespace, owner, variant = "tuned" },
): Promise<BenchTarget> => {
  const fast = variant === "tuned";
  const schema = `pgboss_${namespace}`;
  const boss = fast
    ? new PgBoss({ connectionString: url, schema, max: 10, supervise: false, schedule: false })
    : new PgBoss({ connectionString: url, schema });
  boss.on("error", () => {}); // surfaced by the workload's own counts; avoid crashing on an emitted error
  await boss.start();
  if (owner) await boss.createQueue(QUEUE);

  return {
    name: fast ? "pg-boss (fast: poll 0.5 s, notifyWorker, no maintenance)" : "pg-boss (defaults)",
    async reset() {
      await boss.getDb().executeSql(`DELETE FROM "${schema}".job WHERE name = $1`, [QUEUE]);
    },
    async enqueueOne(payload) {
      await boss.send(QUEUE, payload);
    },
    async enqueueBatch(payloads) {
      await boss.insert(payloads.map((data) => ({ name: QUEUE, data })));
    },
    async pending() {
      // created + retry + active: every job not yet completed (or failed).
      return boss.getQueueSize(QUEUE, { before: "completed" });
    },
    async startWorker(concurrency, onJob): Promise<BenchWorker> {
      let stopped = false;
      let running = 0;
      let id: string | undefined;
      id = await boss.work<BenchPayload>(
        QUEUE,
        fast
          ? { batchSize: concurrency, pollingIntervalSeconds: POLLING_INTERVAL_S, includeMetadata: false }
          : { batchSize: concurrency },
        async (jobs) => {
          if (stopped) return;
          running++;
          try {
            await Promise.all(jobs.map(async (job) => onJob(job.data)));
          } finally {
            running--;
          }
          // A full batch: more are probably waiting, so fetch again now rather than after the interval.
          if (fast && jobs.length === concurrency && id !== undefined) boss.notifyWorker(id);
        },
      );
      return {
        async stop() {
          stopped = true;
          await boss.offWork(QUEUE); // stops the loop after its current iteration
          for (let waited = 0; running > 0 && waited < 5_000; waited++) await sleep(1);
          await sleep(10); // let the last batch's completion statement be issued
        },
      };
    },
    async close() {
      await boss.stop({ graceful: true, wait: true, timeout: 5_000 });
      if (!owner) return;
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
