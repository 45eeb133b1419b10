/**
 * A worker child process (bench/child-workers.ts), for any target: argv[2] = JSON
 * `{ spec: TargetSpec, concurrency, work? }` (`work`: `noop`, the default, or `io`, see `WorkKind`). Builds
 * the target from `spec.module` (attaching to the parent's namespace, `owner: false`), prints `start`,
 * starts its worker, prints `ready`, then `count <started> <finished>` every 50 ms while either changes
 * (handlers started, handlers returned). On SIGTERM it reads its CPU time and RSS, then stops the worker,
 * closes the target and prints `result <json>` (ChildResult).
 *
 * The worker's own cost (issue 14): CPU time (`process.cpuUsage()`, user + system) from just before
 * `startWorker` to the SIGTERM — the parent sends it as soon as the store reports the workload done, so
 * that is the processing window — and the peak RSS over the same window, sampled every 50 ms (startup
 * transients such as compiling the bench's TypeScript are not in it). Every line but `start`, `ready`,
 * `count` and `result` (e.g. a library's own log lines) is passed on to the parent's stderr.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { now } from "./stats.js";
import { ioSleepMs, openTarget, type TargetSpec, type WorkKind } from "./target.js";

export interface ChildResult {
  /** Handlers started. */
  count: number;
  /** Handlers returned. */
  finished: number;
  /** Enqueue → handler start latencies, ms. */
  latencies: number[];
  /** `process.resourceUsage().maxRSS` at the end: peak resident set size over the whole life, KiB. */
  maxRssKiB: number;
  /** Peak RSS sampled every 50 ms from just before `startWorker` to the SIGTERM, KiB. */
  peakRssKiB: number;
  /** User + system CPU time from just before `startWorker` to the SIGTERM, ms. */
  cpuMs: number;
}

/** The arguments a parent passes in argv[2]. */
export interface ChildArgs {
  spec: TargetSpec;
  concurrency: number;
  work?: WorkKind;
  /** Record each job's latency (default true); off for the scale drains, whose million samples would weigh. */
  latencies?: boolean;
}

const args = JSON.parse(process.argv[2] ?? "{}") as ChildArgs;
const target = await openTarget(args.spec, false);
let count = 0;
let finished = 0;
const latencies: number[] = [];
const io = args.work === "io";
const recordLatency = args.latencies !== false;

let peakRss = process.memoryUsage.rss();
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 50);
process.stdout.write("start\n");
const cpuStart = process.cpuUsage();
const worker = await target.startWorker(args.concurrency, (p) => {
  count++;
  if (recordLatency) latencies.push(now() - p.t);
  if (!io) {
    finished++;
    return undefined;
  }
  // I/O-bound: a timer, no CPU; the job completes when it fires.
  return sleep(ioSleepMs(p.n)).then(() => {
    finished++;
  });
});
process.stdout.write("ready\n");
let reported = "";
const report = setInterval(() => {
  const line = `count ${count} ${finished}`;
  if (line === reported) return;
  reported = line;
  process.stdout.write(`${line}\n`);
}, 50);
process.once("SIGTERM", () => {
  // The window ends here: read CPU and RSS before stopping (stop and close are not processing).
  const cpu = process.cpuUsage(cpuStart);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  clearInterval(sampler);
  void (async () => {
    clearInterval(report);
    try {
      await worker.stop();
      await target.close();
    } catch (error) {
      process.stderr.write(`worker child ${process.pid}: ${String(error)}\n`);
    }
    const result: ChildResult = {
      count,
      finished,
      latencies,
      maxRssKiB: process.resourceUsage().maxRSS,
      peakRssKiB: peakRss / 1024,
      cpuMs: (cpu.user + cpu.system) / 1_000,
    };
    process.stdout.write(`result ${JSON.stringify(result)}\n`, () => process.exit(0));
  })();
});
