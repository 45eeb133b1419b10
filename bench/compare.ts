/**
 * `npm run bench:compare [-- --engine postgres|redis] [--quick] [--rounds N]`: the same workloads, in one
 * run, on Sluice and on its peers against the same server — PostgreSQL: graphile-worker and pg-boss;
 * Redis: BullMQ — each peer in its documented fast configuration (see bench/peers/*).
 *
 * Every target runs every workload once per round; the order of the targets rotates from round to round
 * (a target is not always measured first, or right after the same neighbour, on a machine whose load
 * drifts), and the table shows each figure's median over the rounds, then Sluice/peer ratios (for
 * latency, peer/Sluice: above 1 means Sluice is faster). Default rounds: 1 with --quick, 3 otherwise.
 */
import { parseArgs } from "node:util";
import { crossProcessLatency } from "./child-workers.js";
import { type BenchEngine, engineUrl, PG_URL, REDIS_URL } from "./engines.js";
import { fmt } from "./stats.js";
import { type BenchTarget, openTarget, type TargetSpec } from "./target.js";
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
  options: {
    engine: { type: "string" },
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
  },
});
const sizes = values.quick ? QUICK : FULL;
const rounds = values.rounds === undefined ? (values.quick ? 1 : 3) : Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
  process.stderr.write(`--rounds must be an integer from 1 to 50, got "${values.rounds}"\n`);
  process.exit(2);
}
const PROCESS_CONCURRENCY = 50;

const COLUMNS = [
  ["enqueueOne", "enqueue 1×1/s", 0],
  ["enqueueMany", "enqueueMany/s", 0],
  ["process50", `process c=${PROCESS_CONCURRENCY}/s`, 0],
  ["p50", "p50 ms", 2],
  ["p99", "p99 ms", 2],
  ["xp50", "x-proc p50", 2],
  ["xp99", "x-proc p99", 2],
] as const;
type Figure = (typeof COLUMNS)[number][0];
type Figures = Record<Figure, number>;
/** Throughputs: higher is better (ratio Sluice/peer); latencies: lower is better (ratio peer/Sluice). */
const HIGHER_IS_BETTER: Record<Figure, boolean> = {
  enqueueOne: true,
  enqueueMany: true,
  process50: true,
  p50: false,
  p99: false,
  xp50: false,
  xp99: false,
};

async function measure(target: BenchTarget, spec: TargetSpec): Promise<Figures> {
  const enqueueOne = await enqueueOneByOne(target, sizes.enqueueOne);
  const enqueueMany = await enqueueBatches(target, sizes.enqueueBatch, sizes.batchSize);
  const process50 = (await processing(target, sizes.process, PROCESS_CONCURRENCY, sizes.batchSize)).completed;
  const lat = await latency(target, sizes.latencyJobs, sizes.latencyRate);
  const cross = await crossProcessLatency(target, spec, sizes.latencyJobs, sizes.latencyRate, 1);
  return { enqueueOne, enqueueMany, process50, p50: lat.p50, p99: lat.p99, xp50: cross.p50, xp99: cross.p99 };
}

function median(xs: number[]): number {
  const sorted = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const WIDTH = 15;
const cell = (s: string) => s.padStart(WIDTH);
const label = (s: string) => s.padEnd(26);

function table(title: string, names: string[], results: Figures[][]): string {
  const medians = results.map(
    (perRound) =>
      Object.fromEntries(COLUMNS.map(([key]) => [key, median(perRound.map((f) => f[key]))])) as Figures,
  );
  const out = [`\n${title}`, `${label("target")} ${COLUMNS.map(([, head]) => cell(head)).join(" ")}`];
  names.forEach((name, i) => {
    const m = medians[i] as Figures;
    out.push(`${label(name)} ${COLUMNS.map(([key, , digits]) => cell(fmt(m[key], digits))).join(" ")}`);
  });
  const [sluice, ...peers] = medians;
  if (sluice) {
    peers.forEach((peer, i) => {
      const ratios = COLUMNS.map(([key]) => {
        const r = HIGHER_IS_BETTER[key] ? sluice[key] / peer[key] : peer[key] / sluice[key];
        return cell(`${fmt(r, 2)}x`);
      });
      out.push(`${label(`sluice / ${names[i + 1]}`)} ${ratios.join(" ")}`);
    });
  }
  if (rounds > 1) {
    out.push(`range over ${rounds} rounds (min–max):`);
    names.forEach((name, i) => {
      const perRound = results[i] as Figures[];
      const ranges = COLUMNS.map(([key, , digits]) => {
        const xs = perRound.map((f) => f[key]).filter(Number.isFinite);
        return cell(xs.length ? `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}` : "n/a");
      });
      out.push(`${label(`  ${name}`)} ${ranges.join(" ")}`);
    });
  }
  return out.join("\n");
}

const moduleUrl = (path: string) => new URL(path, import.meta.url).href;

async function group(engine: Exclude<BenchEngine, "sqlite">): Promise<string> {
  const { url, cleanup } = engineUrl(engine);
  const namespace = `bench_${process.pid}`;
  const specs: TargetSpec[] = [
    { module: moduleUrl("./sluice-target.ts"), url, namespace },
    ...(engine === "postgres"
      ? [
          { module: moduleUrl("./peers/graphile-worker.ts"), url: PG_URL, namespace },
          { module: moduleUrl("./peers/pg-boss.ts"), url: PG_URL, namespace },
        ]
      : [{ module: moduleUrl("./peers/bullmq.ts"), url: REDIS_URL, namespace }]),
  ];
  const targets: BenchTarget[] = [];
  try {
    for (const spec of specs) targets.push(await openTarget(spec, true));
    const results: Figures[][] = targets.map(() => []);
    for (let round = 0; round < rounds; round++) {
      // Rotate: round r starts with target r mod n.
      const order = targets.map((_, i) => (i + round) % targets.length);
      for (const i of order) {
        const target = targets[i] as BenchTarget;
        process.stderr.write(`  round ${round + 1}/${rounds}: ${target.name}…`);
        const figures = await measure(target, specs[i] as TargetSpec);
        (results[i] as Figures[]).push(figures);
        process.stderr.write(
          ` ${COLUMNS.map(([key, head, digits]) => `${head} ${fmt(figures[key], digits)}`).join(", ")}\n`,
        );
      }
    }
    return table(
      `${engine} — medians of ${rounds} round${rounds > 1 ? "s" : ""} (same server for every target; ` +
        "latency ratios are peer/sluice)",
      targets.map((t) => t.name),
      results,
    );
  } finally {
    for (const target of targets) {
      await target.reset().catch(() => {});
      await target.close().catch(() => {});
    }
    await cleanup();
  }
}

const engines = values.engine ? [values.engine] : ["postgres", "redis"];
for (const engine of engines) {
  if (engine !== "postgres" && engine !== "redis") {
    process.stderr.write(`unknown engine "${engine}": use postgres or redis\n`);
    process.exit(2);
  }
}
process.stdout.write(
  `sluice vs peers — ${values.quick ? "quick" : "full"} sizes — ${rounds} round${rounds > 1 ? "s" : ""} — node ${process.version}\n` +
    `process c=${PROCESS_CONCURRENCY}: COMPLETED jobs/s, one worker in this process, from asking for it until the store reports no job left\n` +
    `p50/p99: enqueue call → handler start, ${sizes.latencyJobs} jobs at ${sizes.latencyRate}/s, idle worker (concurrency ${LATENCY_CONCURRENCY}) in this process;\n` +
    "x-proc: the same with the worker in a child process (enqueued here)\n",
);
for (const engine of engines as Array<"postgres" | "redis">) {
  process.stdout.write(`${await group(engine)}\n`);
}
