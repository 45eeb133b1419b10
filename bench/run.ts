/**
 * `npm run bench [-- --engine sqlite|postgres|redis] [--quick]`: Sluice's figures on one engine.
 * Prints enqueue rates (one by one, batches of 1,000), processing rates (concurrency 1, 10, 50 in one
 * process, and two worker processes), end-to-end latency percentiles at a steady rate with idle workers
 * (in process and across processes), and peak RSS (this process, and each worker child).
 */
import { parseArgs } from "node:util";
import { crossProcessLatency, multiProcessThroughput } from "./child-workers.js";
import { BENCH_ENGINES, type BenchEngine, engineUrl } from "./engines.js";
import { flowRound } from "./flow-workload.js";
import { createSluiceTarget } from "./sluice-target.js";
import { fmt } from "./stats.js";
import type { TargetSpec } from "./target.js";
import type { Throughput } from "./workloads.js";
import {
  enqueueBatches,
  enqueueOneByOne,
  FULL,
  LATENCY_CONCURRENCY,
  latency,
  processing,
  QUICK,
} from "./workloads.js";

const { values } = parseArgs({
  options: { engine: { type: "string", default: "sqlite" }, quick: { type: "boolean", default: false } },
});
const engine = values.engine as BenchEngine;
if (!BENCH_ENGINES.includes(engine)) {
  process.stderr.write(
    `unknown engine "${engine}": use ${BENCH_ENGINES.slice(0, -1).join(", ")} or ${BENCH_ENGINES.at(-1)}\n`,
  );
  process.exit(2);
}
const sizes = values.quick ? QUICK : FULL;
const { url, cleanup } = engineUrl(engine);
const spec: TargetSpec = {
  module: new URL("./sluice-target.ts", import.meta.url).href,
  url,
  namespace: `bench_${process.pid}`,
};
const target = await createSluiceTarget(url, `sluice/${engine}`);
const row = (label: string, value: string) => process.stdout.write(`${label.padEnd(46)} ${value}\n`);
const mib = (n: number) => `${fmt(n, 1)} MiB`;
const rate = (n: number) => `${fmt(n).padStart(7)} jobs/s`;
const throughput = (t: Throughput) =>
  `${rate(t.completed)} completed  (handlers started at ${fmt(t.started)}/s)`;
const percentiles = (s: { p50: number; p95: number; p99: number; max: number }) =>
  `p50 ${fmt(s.p50, 2)} ms  p95 ${fmt(s.p95, 2)} ms  p99 ${fmt(s.p99, 2)} ms  max ${fmt(s.max, 1)} ms`;

process.stdout.write(
  `sluice benchmark — engine ${engine} — ${values.quick ? "quick" : "full"} sizes — node ${process.version}\n`,
);
process.stdout.write(
  "processing = COMPLETED jobs/s: from asking for the worker(s) until the store reports no job left;\n" +
    "  handler starts/s (clock stopped at the last handler start) in brackets\n" +
    `latency = enqueue call → handler start, idle workers at concurrency ${LATENCY_CONCURRENCY}\n\n`,
);
try {
  row(
    `enqueue one at a time (${fmt(sizes.enqueueOne)} jobs)`,
    rate(await enqueueOneByOne(target, sizes.enqueueOne)),
  );
  row(
    `enqueueMany, batches of ${fmt(sizes.batchSize)} (${fmt(sizes.enqueueBatch)})`,
    rate(await enqueueBatches(target, sizes.enqueueBatch, sizes.batchSize)),
  );
  for (const concurrency of [1, 10, 50]) {
    row(
      `process ${fmt(sizes.process)} no-op jobs, concurrency ${concurrency}`,
      throughput(await processing(target, sizes.process, concurrency, sizes.batchSize)),
    );
  }
  const multi = await multiProcessThroughput(target, spec, sizes.process, 50, 2, sizes.batchSize);
  row(`process ${fmt(sizes.process)}, 2 worker processes × 50`, throughput(multi));
  const flow = await flowRound(url, { count: sizes.process, concurrency: 50, batch: true, round: 0 });
  row(
    `flow: batch of ${fmt(sizes.process)} children + callback, c50 (defaults)`,
    `${rate(flow.rate)} children  callback ${fmt(flow.callbackLagMs, 1)} ms after the last child`,
  );
  const inProcess = await latency(target, sizes.latencyJobs, sizes.latencyRate);
  row(`latency in process @${sizes.latencyRate}/s (${inProcess.n} jobs)`, percentiles(inProcess));
  const cross = await crossProcessLatency(target, spec, sizes.latencyJobs, sizes.latencyRate, 2);
  row(`latency, 2 worker processes @${sizes.latencyRate}/s (${cross.n} jobs)`, percentiles(cross));
  row("peak RSS, this process", mib(process.resourceUsage().maxRSS / 1024));
  row("peak RSS, each worker process (2 × 50 run)", multi.rssMiB.map(mib).join(", "));
} finally {
  await target.close();
  await cleanup();
}
