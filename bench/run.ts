/**
 * `npm run bench [-- --engine sqlite|postgres|redis] [--quick]`: Sluice's figures on one engine.
 * Prints enqueue rates (one by one, batches of 1,000), processing rates (concurrency 1, 10, 50 in one
 * process, and two worker processes), end-to-end latency percentiles at a steady rate with idle workers
 * (in process and across processes), and peak RSS.
 */
import { parseArgs } from "node:util";
import { type BenchEngine, engineUrl } from "./engines.js";
import { createSluiceTarget } from "./sluice-target.js";
import { fmt } from "./stats.js";
import { twoProcessLatency, twoProcessThroughput } from "./two-process.js";
import { enqueueBatches, enqueueOneByOne, FULL, latency, processing, QUICK } from "./workloads.js";

const { values } = parseArgs({
  options: { engine: { type: "string", default: "sqlite" }, quick: { type: "boolean", default: false } },
});
const engine = values.engine as BenchEngine;
if (!["sqlite", "postgres", "redis"].includes(engine)) {
  process.stderr.write(`unknown engine "${engine}": use sqlite, postgres or redis\n`);
  process.exit(2);
}
const sizes = values.quick ? QUICK : FULL;
const { url, cleanup } = engineUrl(engine);
const target = await createSluiceTarget(url, `sluice/${engine}`);
const row = (label: string, value: string) => process.stdout.write(`${label.padEnd(44)} ${value}\n`);

process.stdout.write(
  `sluice benchmark — engine ${engine} — ${values.quick ? "quick" : "full"} sizes — node ${process.version}\n\n`,
);
try {
  row(
    `enqueue one at a time (${fmt(sizes.enqueueOne)} jobs)`,
    `${fmt(await enqueueOneByOne(target, sizes.enqueueOne))} jobs/s`,
  );
  row(
    `enqueueMany, batches of ${fmt(sizes.batchSize)} (${fmt(sizes.enqueueBatch)})`,
    `${fmt(await enqueueBatches(target, sizes.enqueueBatch, sizes.batchSize))} jobs/s`,
  );
  for (const concurrency of [1, 10, 50]) {
    row(
      `process ${fmt(sizes.process)} no-op jobs, concurrency ${concurrency}`,
      `${fmt(await processing(target, sizes.process, concurrency, sizes.batchSize))} jobs/s`,
    );
  }
  row(
    `process ${fmt(sizes.process)}, 2 worker processes × 50`,
    `${fmt(await twoProcessThroughput(target, url, sizes.process, 50))} jobs/s`,
  );
  const inProcess = await latency(target, sizes.latencyJobs, sizes.latencyRate);
  row(
    `latency in process @${sizes.latencyRate}/s (${inProcess.n} jobs)`,
    `p50 ${fmt(inProcess.p50, 2)} ms  p95 ${fmt(inProcess.p95, 2)} ms  p99 ${fmt(inProcess.p99, 2)} ms  max ${fmt(inProcess.max, 1)} ms`,
  );
  const cross = await twoProcessLatency(target, url, sizes.latencyJobs, sizes.latencyRate);
  row(
    `latency across processes @${sizes.latencyRate}/s (${cross.n} jobs)`,
    `p50 ${fmt(cross.p50, 2)} ms  p95 ${fmt(cross.p95, 2)} ms  p99 ${fmt(cross.p99, 2)} ms  max ${fmt(cross.max, 1)} ms`,
  );
  row("peak RSS (this process)", `${fmt(process.resourceUsage().maxRSS / 1024, 1)} MiB`);
} finally {
  await target.close();
  await cleanup();
}
