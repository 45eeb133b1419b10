/**
 * `npm run bench:compare [-- --engine postgres|redis|sqlite] [--targets …] [--variants …] [--workloads …]
 * [--rounds N] [--quick] [--deadline S]`: the same workloads, in one run, on Sluice and on its peers against
 * the same server — PostgreSQL: graphile-worker and pg-boss; Redis: BullMQ; SQLite: Sluice alone (no peer
 * runs on it), so its rows are on the same footing as the others' — each target TWICE (issue 14), and
 * graphile-worker a third time:
 *
 * - `defaults`: the library as a user gets it from its documented defaults (the headline). Sluice:
 *   `new Sluice({ url })`, a task with no retention option, `sluice.worker({ queues, concurrency })`.
 * - `tuned`: the like-for-like fast configuration. Sluice: completed jobs removed, no maintenance; peers:
 *   their documented fast settings (each file of bench/peers/ says which and where they are documented).
 * - `batched` (graphile-worker only): the configuration issue 14's harness ran as "graphile-worker
 *   (batched)", the comparator of that issue's PostgreSQL targets: local queue of 100, batched
 *   completions, its defaults otherwise (bench/peers/graphile-worker.ts).
 *
 * Rows are labelled with their configuration. Workloads (`--workloads`, comma-separated, default all):
 * `enqueue1` one at a time, `bulk` batches of 1,000, `c1` / `c10` / `c50` processing in ONE worker child
 * process at that concurrency, `2x25` two worker processes at 25 each, `latency` enqueue → handler start at
 * 200 jobs/s with an idle worker child at concurrency 10, `io` jobs that await 50–500 ms at concurrency
 * 100 in one worker child. Every row run by worker children also shows the workers' own CPU time per
 * 1,000 jobs and their peak RSS over the workload (bench/worker-process.ts).
 *
 * Rounds are interleaved: round 1 of every row, then round 2, …, with the order of the rows rotating from
 * round to round (a row is not always measured first, or right after the same neighbour, on a machine whose
 * load drifts). Each table shows medians over the rounds and every round's main figure. Default rounds: 1
 * with --quick, 3 otherwise. `--targets sluice --variants defaults --workloads c50 --rounds 1` re-runs one
 * row.
 */
import { parseArgs } from "node:util";
import { crossProcessLatency, multiProcessThroughput } from "./child-workers.js";
import { engineUrl, PG_URL, REDIS_URL, wholeArg } from "./engines.js";
import { fmt, median } from "./stats.js";
import { type BenchTarget, openTarget, type TargetSpec, VARIANTS, type Variant } from "./target.js";
import { enqueueBatches, enqueueOneByOne, FULL, LATENCY_CONCURRENCY, QUICK } from "./workloads.js";

type Engine = "postgres" | "redis" | "sqlite";

/** Targets by `--targets` name: which engine they run on and their factory module. */
/** Each target's engines and configurations (`batched` is graphile-worker's alone: bench/target.ts). */
const TARGETS: Record<string, { engines: readonly Engine[]; module: string; variants: readonly Variant[] }> =
  {
    sluice: {
      engines: ["postgres", "redis", "sqlite"],
      module: "./sluice-target.ts",
      variants: ["defaults", "tuned"],
    },
    "graphile-worker": { engines: ["postgres"], module: "./peers/graphile-worker.ts", variants: VARIANTS },
    "pg-boss": { engines: ["postgres"], module: "./peers/pg-boss.ts", variants: ["defaults", "tuned"] },
    bullmq: { engines: ["redis"], module: "./peers/bullmq.ts", variants: ["defaults", "tuned"] },
  };

const IO_CONCURRENCY = 100;

const { values } = parseArgs({
  options: {
    engine: { type: "string" },
    targets: { type: "string" },
    variants: { type: "string" },
    workloads: { type: "string" },
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    deadline: { type: "string" },
  },
});

/** A comma-separated flag's items, each checked against `allowed`; anything else exits 2. */
function listArg<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T[] {
  if (value === undefined) return [...allowed];
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((s) => !allowed.includes(s as T));
  if (bad.length > 0 || items.length === 0) {
    process.stderr.write(
      `--${flag}: unknown ${JSON.stringify(bad.join(","))}; use any of ${allowed.join(", ")}\n`,
    );
    process.exit(2);
  }
  return [...new Set(items)] as T[];
}

const sizes = values.quick ? QUICK : FULL;
const ioJobs = values.quick ? 2_000 : 20_000;
const rounds =
  values.rounds === undefined ? (values.quick ? 1 : 3) : wholeArg("rounds", values.rounds, 1, 50);
const deadlineS = values.deadline === undefined ? 60 : wholeArg("deadline", values.deadline, 1, 3_600);
const engines = listArg<Engine>("engine", values.engine, ["postgres", "redis", "sqlite"]);
const targetNames = listArg("targets", values.targets, Object.keys(TARGETS));
// "fast" is accepted for "tuned": the peers' rows call their tuned configuration that.
const variants = [
  ...new Set(
    listArg<Variant | "fast">("variants", values.variants ?? VARIANTS.join(","), [...VARIANTS, "fast"]).map(
      (v): Variant => (v === "fast" ? "tuned" : v),
    ),
  ),
];

/** A column of a workload's table. */
interface Column {
  head: string;
  /** Decimals; `rate`: 0, or 1-2 below 100 (pg-boss on its defaults completes 0.5 jobs/s at c=1). */
  digits: number | "rate";
  /** The ratio column against Sluice compares this figure: higher or lower is better. */
  better?: "higher" | "lower";
}

/** One round of one workload on one row: a figure per column, and whether it is partial. */
interface Measured {
  figures: number[];
  /** The deadline (or settle time) cut the run: the figures cover what was done by then. */
  partial: boolean;
}

interface Workload {
  key: string;
  title: string;
  columns: Column[];
  run(target: BenchTarget, spec: TargetSpec): Promise<Measured>;
}

const rate: Column = { head: "jobs/s", digits: "rate", better: "higher" };
const cpu: Column = { head: "CPU ms/1k", digits: 1 };
const rss: Column = { head: "peak RSS MiB", digits: 1 };
const deadlineMs = deadlineS * 1_000;

function processingWorkload(key: string, processes: number, concurrency: number): Workload {
  const who = processes === 1 ? "one worker child" : `${processes} worker children`;
  return {
    key,
    title: `process ${fmt(sizes.process)} no-op jobs, ${who} at concurrency ${concurrency}${processes > 1 ? " each" : ""}`,
    columns: [rate, cpu, rss],
    async run(target, spec) {
      const t = await multiProcessThroughput(
        target,
        spec,
        sizes.process,
        concurrency,
        processes,
        sizes.batchSize,
        {
          deadlineMs,
        },
      );
      return { figures: [t.completed, t.cpuMsPer1k, Math.max(...t.peakRssMiB)], partial: t.deadlineHit };
    },
  };
}

const WORKLOADS: Workload[] = [
  {
    key: "enqueue1",
    title: `enqueue one at a time, awaited in sequence (${fmt(sizes.enqueueOne)} jobs, this process)`,
    columns: [rate],
    run: async (target) => ({ figures: [await enqueueOneByOne(target, sizes.enqueueOne)], partial: false }),
  },
  {
    key: "bulk",
    title: `enqueue in batches of ${fmt(sizes.batchSize)} (${fmt(sizes.enqueueBatch)} jobs, this process)`,
    columns: [rate],
    run: async (target) => ({
      figures: [await enqueueBatches(target, sizes.enqueueBatch, sizes.batchSize)],
      partial: false,
    }),
  },
  processingWorkload("c1", 1, 1),
  processingWorkload("c10", 1, 10),
  processingWorkload("c50", 1, 50),
  processingWorkload("2x25", 2, 25),
  {
    key: "latency",
    title:
      `latency enqueue → handler start, ${fmt(sizes.latencyJobs)} jobs at ${sizes.latencyRate}/s, ` +
      `idle worker child at concurrency ${LATENCY_CONCURRENCY}`,
    columns: [
      { head: "p50 ms", digits: 2, better: "lower" },
      // p95 too: where the tail starts shows whether a p99 gap is Sluice's or the host's (both shift).
      { head: "p95 ms", digits: 2, better: "lower" },
      { head: "p99 ms", digits: 2, better: "lower" },
      cpu,
      rss,
    ],
    async run(target, spec) {
      const l = await crossProcessLatency(target, spec, sizes.latencyJobs, sizes.latencyRate, 1);
      return {
        figures: [l.p50, l.p95, l.p99, l.cpuMsPer1k, Math.max(...l.peakRssMiB)],
        partial: l.n < l.enqueued,
      };
    },
  },
  {
    key: "io",
    title: `I/O-bound: ${fmt(ioJobs)} jobs awaiting 50–500 ms, one worker child at concurrency ${IO_CONCURRENCY}`,
    columns: [rate, { head: "worker CPU s", digits: 2 }, cpu, rss],
    async run(target, spec) {
      const t = await multiProcessThroughput(target, spec, ioJobs, IO_CONCURRENCY, 1, sizes.batchSize, {
        deadlineMs,
        work: "io",
      });
      return {
        figures: [t.completed, t.cpuMs / 1_000, t.cpuMsPer1k, Math.max(...t.peakRssMiB)],
        partial: t.deadlineHit,
      };
    },
  },
];
const workloads = listArg(
  "workloads",
  values.workloads,
  WORKLOADS.map((w) => w.key),
).map((key) => WORKLOADS.find((w) => w.key === key) as Workload);

/** One row of the tables: a target in one configuration. */
interface Entry {
  target: string;
  variant: Variant;
  spec: TargetSpec;
  bench?: BenchTarget;
  /** Per workload key, one Measured per round. */
  results: Map<string, Measured[]>;
}

const finiteMedian = (xs: number[]) => {
  const finite = xs.filter(Number.isFinite);
  return finite.length > 0 ? median(finite) : Number.NaN;
};

/** `n` with a column's decimals. */
function show(n: number, digits: Column["digits"] | undefined): string {
  if (digits === "rate") return fmt(n, Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return fmt(n, digits);
}

const LABEL = 72;
const WIDTH = 13;
const cell = (s: string) => s.padStart(WIDTH);

/**
 * One workload's table: medians, the ratio against Sluice in the same configuration (the `batched` rows:
 * against Sluice's defaults), every round.
 */
function table(workload: Workload, entries: Entry[]): string {
  const directed = workload.columns.flatMap((c, i) => (c.better ? [i] : []));
  const ratioHead = `sluice vs${directed.length > 1 ? ` (${directed.map((i) => workload.columns[i]?.head.split(" ")[0]).join(" / ")})` : ""}`;
  const lines = [
    `\n${workload.title}`,
    `${"row".padEnd(LABEL)} ${workload.columns.map((c) => cell(c.head)).join(" ")} ${ratioHead.padStart(WIDTH + 4)}   every round (${workload.columns[0]?.head})`,
  ];
  const medians = new Map<Entry, number[]>();
  for (const entry of entries) {
    const rs = entry.results.get(workload.key) ?? [];
    medians.set(
      entry,
      workload.columns.map((_, i) => finiteMedian(rs.map((r) => r.figures[i] ?? Number.NaN))),
    );
  }
  for (const entry of entries) {
    const rs = entry.results.get(workload.key) ?? [];
    const m = medians.get(entry) as number[];
    const partial = rs.some((r) => r.partial) ? "*" : "";
    const cells = workload.columns.map((c, i) =>
      cell(`${show(m[i] ?? Number.NaN, c.digits)}${i === 0 ? partial : ""}`),
    );
    let ratio = "";
    // The batched rows are issue 14's comparator for Sluice on its defaults.
    const against = entry.variant === "batched" ? "defaults" : entry.variant;
    const sluice = entries.find((e) => e.target === "sluice" && e.variant === against);
    if (entry.target !== "sluice" && sluice) {
      ratio = directed
        .map((i) => {
          const s = (medians.get(sluice) as number[])[i] as number;
          const p = m[i] as number;
          const r = workload.columns[i]?.better === "higher" ? s / p : p / s;
          return Number.isFinite(r) ? `${fmt(r, 2)}x` : "n/a";
        })
        .join(" / ");
    }
    const every = rs
      .map((r) => `${show(r.figures[0] ?? Number.NaN, workload.columns[0]?.digits)}${r.partial ? "*" : ""}`)
      .join(" / ");
    lines.push(
      `${(entry.bench?.name ?? entry.target).padEnd(LABEL)} ${cells.join(" ")} ${ratio.padStart(WIDTH + 4)}   ${every}`,
    );
  }
  return lines.join("\n");
}

const moduleUrl = (path: string) => new URL(path, import.meta.url).href;

async function group(engine: Engine): Promise<string | null> {
  const names = targetNames.filter((t) => TARGETS[t]?.engines.includes(engine));
  if (names.length === 0) return null;
  const cleanups: Array<() => Promise<void>> = [];
  const entries: Entry[] = [];
  // Defaults first (the headline), then the tuned rows; Sluice first within each.
  for (const variant of variants) {
    for (const name of names) {
      if (!TARGETS[name]?.variants.includes(variant)) continue;
      let url = engine === "postgres" ? PG_URL : REDIS_URL;
      if (name === "sluice") {
        const store = engineUrl(engine); // a fresh schema / key prefix per configuration
        cleanups.push(store.cleanup);
        url = store.url;
      }
      const spec: TargetSpec = {
        module: moduleUrl(TARGETS[name]?.module as string),
        url,
        namespace: `bench_${process.pid}_${variant.slice(0, 1)}`,
        variant,
      };
      entries.push({ target: name, variant, spec, results: new Map() });
    }
  }
  try {
    for (const entry of entries) entry.bench = await openTarget(entry.spec, true);
    for (let round = 0; round < rounds; round++) {
      // Rotate: round r starts with row r mod n.
      const order = entries.map((_, i) => (i + round) % entries.length);
      for (const i of order) {
        const entry = entries[i] as Entry;
        const bench = entry.bench as BenchTarget;
        for (const workload of workloads) {
          process.stderr.write(`  round ${round + 1}/${rounds}: ${bench.name} — ${workload.key}…`);
          let measured: Measured;
          try {
            measured = await workload.run(bench, entry.spec);
          } catch (error) {
            // One failing row (a child that would not start, a peer error) must not lose the others.
            process.stderr.write(` FAILED: ${error instanceof Error ? error.message : String(error)}`);
            await bench.reset().catch(() => {});
            measured = { figures: workload.columns.map(() => Number.NaN), partial: false };
          }
          const list = entry.results.get(workload.key) ?? [];
          list.push(measured);
          entry.results.set(workload.key, list);
          process.stderr.write(
            ` ${workload.columns.map((c, k) => `${c.head} ${show(measured.figures[k] ?? Number.NaN, c.digits)}`).join(", ")}${measured.partial ? " (partial)" : ""}\n`,
          );
        }
      }
    }
    return (
      `\n== ${engine}: medians of ${rounds} round${rounds > 1 ? "s" : ""}, same server for every row ==` +
      workloads.map((w) => table(w, entries)).join("\n")
    );
  } finally {
    for (const entry of entries) {
      await entry.bench?.reset().catch(() => {});
      await entry.bench?.close().catch(() => {});
    }
    for (const cleanup of cleanups) await cleanup();
  }
}

process.stdout.write(
  `sluice vs peers — ${values.quick ? "quick" : "full"} sizes — ${rounds} round${rounds > 1 ? "s" : ""} — node ${process.version}\n` +
    "(defaults): the library's documented defaults, what users get; (tuned …) / (fast …): the like-for-like\n" +
    "fast configuration, see bench/peers/* and bench/sluice-target.ts; (batched, as issue 14 ran it): the\n" +
    "comparator of issue 14's targets.\n" +
    "jobs/s: COMPLETED jobs/s, from asking for the worker until the store reports no job left; worker(s) in\n" +
    "child processes. CPU ms/1k: the worker processes' user+system CPU per 1,000 jobs completed over that\n" +
    "window; peak RSS: the largest worker process's RSS over the window (sampled every 50 ms).\n" +
    "sluice vs: jobs/s or latency against Sluice in the same kind of configuration\n" +
    "(throughput sluice/peer, latency peer/sluice: above 1x Sluice is better).\n" +
    `*: partial — the ${deadlineS} s deadline stopped the run (the rate is over that window), or for latency\n` +
    "not every job had started 30 s after the last enqueue (percentiles of those that did).\n" +
    "Figures are noisy on a shared machine: compare rows of one run, and look at every round.\n",
);
for (const engine of engines) {
  const out = await group(engine);
  if (out) process.stdout.write(`${out}\n`);
}
