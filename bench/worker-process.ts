/**
 * A worker child process for the multi-process workloads (bench/child-workers.ts), for any target:
 * argv[2] = JSON `{ spec: TargetSpec, concurrency }`. Builds the target from `spec.module` (attaching
 * to the parent's namespace, `owner: false`), starts its worker, prints `ready`, then `count <n>` every
 * 10 ms while it changes (handler starts so far). On SIGTERM it stops the worker, closes the target and prints
 * `result <json>`: handler starts, enqueue → handler start latencies (ms), and this process's peak RSS.
 */
import { now } from "./stats.js";
import { openTarget, type TargetSpec } from "./target.js";

export interface ChildResult {
  count: number;
  latencies: number[];
  /** `process.resourceUsage().maxRSS` at the end: peak resident set size, KiB. */
  maxRssKiB: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as { spec: TargetSpec; concurrency: number };
const target = await openTarget(args.spec, false);
let count = 0;
const latencies: number[] = [];
const worker = await target.startWorker(args.concurrency, (p) => {
  count++;
  latencies.push(now() - p.t);
});
process.stdout.write("ready\n");
let reported = -1;
const report = setInterval(() => {
  if (count === reported) return;
  reported = count;
  process.stdout.write(`count ${count}\n`);
}, 10);
process.once("SIGTERM", () => {
  void (async () => {
    clearInterval(report);
    try {
      await worker.stop();
      await target.close();
    } catch (error) {
      process.stderr.write(`worker child ${process.pid}: ${String(error)}\n`);
    }
    const result: ChildResult = { count, latencies, maxRssKiB: process.resourceUsage().maxRSS };
    process.stdout.write(`result ${JSON.stringify(result)}\n`, () => process.exit(0));
  })();
});
