/**
 * A Sluice worker process for the two-process benchmark. argv[2] = JSON { url, concurrency, expect }.
 * Prints `ready`, then on SIGTERM prints `result <json>` with jobs run and latency samples' summary.
 */
import { Sluice, silentLogger } from "../src/index.js";
import { BENCH_QUEUE } from "./sluice-target.js";
import { now } from "./stats.js";
import type { BenchPayload } from "./target.js";

const args = JSON.parse(process.argv[2] ?? "{}") as { url: string; concurrency: number };
const sluice = new Sluice({ url: args.url, logger: silentLogger() });
let count = 0;
const latencies: number[] = [];
sluice.task<BenchPayload>("noop", {
  queue: BENCH_QUEUE,
  retention: false,
  run: (p) => {
    count++;
    latencies.push(now() - p.t);
  },
});
const worker = sluice.worker({ queues: [BENCH_QUEUE], concurrency: args.concurrency, maintenance: false });
await worker.start();
process.stdout.write("ready\n");
const report = setInterval(() => process.stdout.write(`count ${count}\n`), 50);
process.on("SIGTERM", () => {
  void (async () => {
    clearInterval(report);
    await worker.stop({ graceMs: 2_000 });
    await sluice.close();
    process.stdout.write(`result ${JSON.stringify({ count, latencies })}\n`);
    process.exit(0);
  })();
});
