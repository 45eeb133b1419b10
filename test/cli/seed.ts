/** Seeds stores for CLI tests through the public API (what an application would do). */
import { type JobRecord, Sluice, silentLogger } from "../../src/index.js";
import { until } from "./helpers.js";

/** A Sluice instance on `url` with a quiet logger. */
export function open(url: string): Sluice {
  return new Sluice({ url, logger: silentLogger() });
}

/** Enqueues jobs of task `task` to `queue` with the given payloads; returns their ids in order. */
export async function enqueue(
  sluice: Sluice,
  queue: string,
  payloads: readonly unknown[],
  task = `job_${queue}`,
): Promise<string[]> {
  const jobs = await sluice.enqueueMany(
    task,
    payloads.map((payload) => ({ payload, options: { queue, attempts: 1 } })),
  );
  return jobs.map((j) => j.id);
}

/** Every job of a queue (up to 1000), oldest first. */
export async function jobsOf(sluice: Sluice, queue: string): Promise<JobRecord[]> {
  return (await sluice.admin.listJobs({ queue }, { limit: 1_000, order: "asc" })).jobs;
}

/**
 * Runs an in-process worker for `queue` whose handler fails for `{ mode: "fail" }` and completes
 * otherwise, until every job of the queue is finished; stopping it flushes the stats roll-up.
 */
export async function drain(url: string, queue: string): Promise<void> {
  const sluice = open(url);
  sluice.task(`job_${queue}`, {
    queue,
    attempts: 1,
    async run(payload: { mode?: string } | null) {
      if (payload?.mode === "fail") throw new Error("boom: asked to fail");
      return { done: true };
    },
  });
  const worker = sluice.worker({ queues: [queue], concurrency: 4, maintenance: false });
  await worker.start();
  try {
    await until(`queue ${queue} to drain`, async () => {
      const q = (await sluice.admin.queues()).find((s) => s.queue === queue);
      return q && q.counts.waiting + q.counts.active + q.counts.scheduled === 0;
    });
  } finally {
    await worker.stop();
    await sluice.close();
  }
}
