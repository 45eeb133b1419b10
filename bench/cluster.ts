/**
 * `npm run bench:cluster -- [--rounds 3] [--jobs 20000] [--queues 8]`: no-op jobs processed at concurrency 50
 * by 2 and by 4 worker processes, against a private single Redis node and against a private 3-master Redis
 * Cluster (both started here on free loopback ports, with AOF off as the shared server, and stopped at the
 * end). The jobs are spread over `--queues` queues so that, on the cluster, they land on every master (each
 * queue is one hash slot). Prints completed jobs/s, the medians of the rounds, and the cross-process
 * latency (enqueue → handler start, 1 worker process, 500 jobs/s) per target. Asserts nothing.
 *
 * This module is also the benchmark target of its worker children (bench/worker-process.ts imports its
 * `createTarget`).
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PENDING_STATES } from "../src/core/job.js";
import { Sluice, silentLogger } from "../src/index.js";
import { PrivateRedisCluster } from "../test/support/redis-cluster.js";
import { crossProcessLatency, multiProcessThroughput } from "./child-workers.js";
import { wholeArg } from "./engines.js";
import { fmt, median } from "./stats.js";
import type { BenchPayload, BenchTarget, BenchWorker, TargetSpec } from "./target.js";

/** Queues the jobs are spread over (BENCH_CLUSTER_QUEUES in the children, set by the parent). */
const queueNames = (): string[] =>
  Array.from({ length: Number(process.env.BENCH_CLUSTER_QUEUES ?? 8) }, (_, i) => `bench_${i}`);

/** The benchmark target: no-op jobs round-robin over the queues; a worker serves them all (weighted 1:1). */
export async function createTarget(url: string): Promise<BenchTarget> {
  const queues = queueNames();
  const sluice = new Sluice({ url, logger: silentLogger() });
  let onJob: (p: BenchPayload) => void = () => {};
  for (const queue of queues)
    sluice.task<BenchPayload>(`noop_${queue}`, { queue, retention: false, run: (p) => onJob(p) });
  await sluice.store();
  let next = 0;
  return {
    name: url.startsWith("redis+cluster") ? "cluster" : "single",
    async reset() {
      for (const queue of queues) await sluice.admin.delete({ queue }, { batchSize: 10_000 });
    },
    async enqueueOne(payload) {
      const queue = queues[next++ % queues.length]!;
      await sluice.enqueue(`noop_${queue}`, payload);
    },
    async enqueueBatch(payloads) {
      // One enqueueMany per queue, all at once (a cluster runs them on their masters in parallel).
      const byQueue = queues.map(() => [] as BenchPayload[]);
      for (const p of payloads) byQueue[next++ % queues.length]!.push(p);
      await Promise.all(
        queues.map((queue, i) =>
          byQueue[i]!.length === 0
            ? Promise.resolve()
            : sluice.enqueueMany(
                `noop_${queue}`,
                byQueue[i]!.map((payload) => ({ payload })),
              ),
        ),
      );
    },
    async pending() {
      const stats = await sluice.admin.queues();
      return stats
        .filter((q) => queues.includes(q.queue))
        .reduce((n, q) => n + PENDING_STATES.reduce((m, state) => m + q.counts[state], 0), 0);
    },
    async startWorker(concurrency, handler): Promise<BenchWorker> {
      onJob = handler;
      const worker = sluice.worker({
        queues: queues.map((q) => [q, 1] as [string, number]),
        concurrency,
        maintenance: false,
      });
      await worker.start();
      return { stop: async () => void (await worker.stop({ graceMs: 5_000 })) };
    },
    close: () => sluice.close(),
  };
}

/** One measurement in a process of its own: `processes` worker children (0 = the latency run). */
async function measure(url: string, processes: number, jobs: number): Promise<string> {
  const target = await createTarget(url);
  const spec: TargetSpec = { module: import.meta.url, url, namespace: "cluster-bench" };
  try {
    if (processes === 0) {
      const l = await crossProcessLatency(target, spec, 2_000, 500, 1);
      return JSON.stringify({ p50: l.p50, p95: l.p95, p99: l.p99 });
    }
    const r = await multiProcessThroughput(target, spec, jobs, 50, processes, 1_000);
    return String(Math.round(r.completed));
  } finally {
    await target.close();
  }
}

const self = fileURLToPath(import.meta.url);
// Worker children import this module for createTarget: only the command line runs the benchmark.
const main = process.argv[1] !== undefined && resolve(process.argv[1]) === self;
const { values } = main
  ? parseArgs({
      options: {
        rounds: { type: "string", default: "3" },
        jobs: { type: "string", default: "20000" },
        queues: { type: "string", default: "8" },
        child: { type: "string" },
      },
    })
  : { values: {} as { rounds?: string; jobs?: string; queues?: string; child?: string } };

if (main && values.child !== undefined) {
  const { url, processes, jobs } = JSON.parse(values.child) as {
    url: string;
    processes: number;
    jobs: number;
  };
  process.stdout.write(`${await measure(url, processes, jobs)}\n`);
  process.exit(0);
} else if (main) {
  const rounds = wholeArg("rounds", values.rounds, 1, 100);
  const jobs = wholeArg("jobs", values.jobs, 1_000, 10_000_000);
  const queueCount = wholeArg("queues", values.queues, 1, 1_000);
  const { PrivateRedis } = await import("../test/redis/helpers.js");
  const single = await PrivateRedis.start(["--appendonly", "no", "--maxmemory-policy", "noeviction"]);
  const cluster = await PrivateRedisCluster.start(3);
  try {
    const targets = [
      { name: "single node", url: `${single.url}?prefix=bench` },
      { name: "3-master cluster", url: `${cluster.url}?prefix=bench` },
    ];
    const run = (url: string, processes: number): string => {
      const child = spawnSync(
        process.execPath,
        ["--import", "tsx", self, "--child", JSON.stringify({ url, processes, jobs })],
        { env: { ...process.env, BENCH_CLUSTER_QUEUES: String(queueCount) }, encoding: "utf8" },
      );
      if (child.status !== 0) throw new Error(`measurement failed: ${child.stderr}`);
      return child.stdout.trim().split("\n").at(-1) ?? "";
    };
    console.log(
      `${jobs.toLocaleString("en")} no-op jobs over ${queueCount} queues, concurrency 50 per worker process, ` +
        `completed jobs/s (median of ${rounds}; each round in its own process); Redis 7.0, AOF off, ` +
        `events on; ${process.env.HOSTNAME ?? "this host"} has ${(await import("node:os")).availableParallelism()} cores\n`,
    );
    console.log("| target | 2 processes × 50 | 4 processes × 50 | latency p50 / p95 / p99 (1 process) |");
    console.log("| --- | --- | --- | --- |");
    for (const target of targets) {
      const two: number[] = [];
      const four: number[] = [];
      for (let r = 0; r < rounds; r++) {
        two.push(Number(run(target.url, 2)));
        four.push(Number(run(target.url, 4)));
      }
      const latency = JSON.parse(run(target.url, 0)) as { p50: number; p95: number; p99: number };
      console.log(
        `| ${target.name} | ${fmt(median(two))} (${two.map((n) => fmt(n)).join(", ")}) | ` +
          `${fmt(median(four))} (${four.map((n) => fmt(n)).join(", ")}) | ` +
          `${fmt(latency.p50, 2)} / ${fmt(latency.p95, 2)} / ${fmt(latency.p99, 2)} ms |`,
      );
    }
  } finally {
    await cluster.stop();
    await single.destroy();
  }
}
