/**
 * `npm run bench:queue-stats -- [--engine postgres|redis|sqlite] [--waiting 100000] [--completed 0]
 * [--queues 2] [--calls 20]`: what one `admin.queues()` costs (the counts behind `sluice info`, the HTTP API
 * and the dashboard) as the store grows. Fills a fresh store through the public API: `completed` jobs run by a
 * worker in this process (defaults: completed jobs kept), then `waiting` jobs enqueued in batches of 1,000,
 * spread over `queues` queues and three priorities. Then times `calls` calls, one after another, and prints
 * the median and the slowest. Asserts nothing.
 */
import { parseArgs } from "node:util";
import { Sluice, silentLogger } from "../src/index.js";
import { benchEngineArg, engineUrl, wholeArg } from "./engines.js";
import { fmt } from "./stats.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    waiting: { type: "string", default: "100000" },
    completed: { type: "string", default: "0" },
    queues: { type: "string", default: "2" },
    calls: { type: "string", default: "20" },
  },
});
const engine = benchEngineArg(values.engine);
const waiting = wholeArg("waiting", values.waiting, 0, 2_000_000);
const completed = wholeArg("completed", values.completed, 0, 2_000_000);
const queueCount = wholeArg("queues", values.queues, 1, 100);
const calls = wholeArg("calls", values.calls, 1, 1_000);
const BATCH = 1_000;
/** Longest the fill may take before the run gives up. */
const FILL_DEADLINE_MS = 30 * 60_000;

const { url, cleanup } = engineUrl(engine);
const sluice = new Sluice({ url, logger: silentLogger() });
const queues = Array.from({ length: queueCount }, (_, i) => `stats_${i}`);
const tasks = queues.map((queue) =>
  sluice.task<{ i: number }>(`noop_${queue}`, { queue, run: async () => {} }),
);

/** Enqueues `count` jobs round-robin over the queues, in batches, with priorities 0, 1 and 2. */
async function fill(count: number): Promise<void> {
  for (let n = 0; n < count; n += BATCH) {
    const task = tasks[(n / BATCH) % tasks.length]!;
    const size = Math.min(BATCH, count - n);
    await task.enqueueMany(
      Array.from({ length: size }, (_, k) => ({ payload: { i: n + k }, priority: k % 3 })),
    );
  }
}

async function pending(): Promise<number> {
  let n = 0;
  for (const q of await sluice.admin.queues()) n += q.counts.waiting + q.counts.active + q.counts.scheduled;
  return n;
}

try {
  console.log(
    `queue stats — engine ${engine} — ${fmt(completed)} completed (kept), ${fmt(waiting)} waiting, ` +
      `${queueCount} queues, ${calls} calls of admin.queues() — node ${process.version}`,
  );
  const deadline = Date.now() + FILL_DEADLINE_MS;
  if (completed > 0) {
    await fill(completed);
    const worker = sluice.worker({ queues, concurrency: 50 });
    await worker.start();
    while ((await pending()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1_000));
    await worker.stop();
  }
  await fill(waiting);
  for (let i = 0; i < 3; i++) await sluice.admin.queues(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await sluice.admin.queues();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(
    `admin.queues()   median ${fmt(times[Math.floor(times.length / 2)]!, 1)} ms, ` +
      `slowest ${fmt(times[times.length - 1]!, 1)} ms`,
  );
} finally {
  await sluice.close();
  await cleanup();
}
