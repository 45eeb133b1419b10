/**
 * `npm run bench:scale -- --engine sqlite|postgres|redis [--max 1000000] [--variant defaults|tuned]
 * [--phase-timeout 900]`: how Sluice holds up as the store grows (issue 14). Each part on a fresh store,
 * the worker (concurrency 50) in a child process, Sluice on its defaults unless `--variant tuned`:
 *
 * 1. Throughput with 10k / 100k / 1M jobs waiting: enqueue the backlog (`enqueueMany`, batches of 1,000),
 *    then time a fixed window of 50k jobs processed from it (half the backlog when that is smaller, so
 *    10k waiting measures 5k jobs). Store bytes per waiting job.
 * 2. A drain of 1M jobs, reported per 100k, leaving 1M completed jobs retained (the default retention
 *    keeps them 24 h; with `--variant tuned` they are deleted); store bytes per completed job; then the
 *    same 50k window from 100k fresh waiting jobs, to compare with part 1's 100k row.
 * 3. Latency (enqueue → handler start, 2,000 jobs at 200/s, an idle worker child at concurrency 10, as
 *    `bench:compare`'s latency workload) on an empty store, and again with part 2's completed jobs retained,
 *    before the fresh jobs are enqueued: maintenance passes and their retention prunes run meanwhile.
 *
 * `--max N` scales every size by N / 1,000,000 (`--max 100000` for a quick look: 1k / 10k / 100k, windows
 * of 5k). Never run by CI. Every phase (an enqueue, a window, a drain, a size reading) has a deadline
 * (`--phase-timeout`, seconds): past it the run stops, says which phase and how far it got, removes its
 * stores and exits 1. Rows are printed as they are measured, so an aborted run keeps what it reached.
 *
 * Window and drain times run from the worker child's `start` line (about to start its worker) to the
 * `count` line that reported the jobs done (handler returned; the child reports every 50 ms, and the
 * worker writes completions in batches within milliseconds of that); the drain's total also waits for the
 * store to report no job left. Store bytes are the engine's own accounting, growth over the empty store:
 * SQLite: database file + WAL; PostgreSQL: `pg_total_relation_size` (table, indexes, TOAST) of every table
 * of the store's schema; Redis: `MEMORY USAGE … SAMPLES 0` summed over the store's keys (SCAN on its
 * prefix).
 */
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { type ChildWorker, crossProcessLatency, finishAll, startChildren } from "./child-workers.js";
import { benchEngineArg, engineUrl, wholeArg } from "./engines.js";
import { createSluiceTarget } from "./sluice-target.js";
import { fmt, now } from "./stats.js";
import type { BenchTarget, TargetSpec, Variant } from "./target.js";
import { drained, FULL } from "./workloads.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string" },
    max: { type: "string" },
    variant: { type: "string" },
    "phase-timeout": { type: "string" },
  },
});
const engine = benchEngineArg(values.engine);
const max = values.max === undefined ? 1_000_000 : wholeArg("max", values.max, 1_000, 10_000_000);
const phaseTimeoutS =
  values["phase-timeout"] === undefined ? 900 : wholeArg("phase-timeout", values["phase-timeout"], 1, 86_400);
const variantArg = values.variant ?? "defaults";
if (variantArg !== "defaults" && variantArg !== "tuned") {
  process.stderr.write(`--variant must be defaults or tuned; got ${JSON.stringify(values.variant)}\n`);
  process.exit(2);
}
const variant: Exclude<Variant, "batched"> = variantArg;

const CONCURRENCY = 50;
const BATCH = 1_000;
const scaled = (n: number) => Math.max(1, Math.round((n * max) / 1_000_000));
const BACKLOGS = [10_000, 100_000, 1_000_000].map(scaled);
const WINDOW = scaled(50_000);
const RETAINED = scaled(1_000_000);
const FRESH = scaled(100_000);
const SEGMENT = scaled(100_000);

/** A phase that passed its deadline: what it was and how far it got. */
class PhaseTimeout extends Error {}

/**
 * Runs one phase under the deadline; `progress` says how far it got if the deadline passes first. The
 * phase's loops throw {@link PhaseTimeout} themselves when they see the deadline pass (see `checkDeadline`);
 * a timer catches an await that never returns.
 */
async function phase<T>(
  name: string,
  run: (deadline: number) => Promise<T>,
  progress: () => string,
): Promise<T> {
  const deadline = now() + phaseTimeoutS * 1_000;
  const timeout = () =>
    new PhaseTimeout(
      `phase "${name}" passed its deadline of ${phaseTimeoutS} s after ${progress()}; aborting ` +
        "(raise --phase-timeout or lower --max)",
    );
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeout()), phaseTimeoutS * 1_000 + 1_000);
  });
  try {
    return await Promise.race([run(deadline), expired]);
  } catch (error) {
    throw error instanceof PhaseTimeout ? timeout() : error;
  } finally {
    clearTimeout(timer);
  }
}

/** Throws {@link PhaseTimeout} once `deadline` has passed (`phase` words the message). */
function checkDeadline(deadline: number): void {
  if (now() >= deadline) throw new PhaseTimeout("deadline");
}

const tick = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The store's size in bytes, by the engine's own accounting (see the top of this file), and what it is made of. */
interface StoreSize {
  bytes: number;
  detail: string;
}

const mib = (bytes: number) => `${fmt(bytes / 1_048_576, 1)} MiB`;

async function storeBytes(url: string): Promise<StoreSize> {
  if (engine === "sqlite") {
    const path = url.slice("sqlite:".length);
    const size = (p: string) => {
      try {
        return statSync(p).size;
      } catch {
        return 0; // no WAL yet
      }
    };
    const file = size(path);
    const wal = size(`${path}-wal`);
    return { bytes: file + wal, detail: `file ${mib(file)} + WAL ${mib(wal)}` };
  }
  const parsed = new URL(url);
  if (engine === "postgres") {
    const schema = parsed.searchParams.get("schema") as string;
    parsed.searchParams.delete("schema");
    const client = new pg.Client({ connectionString: parsed.toString() });
    await client.connect();
    try {
      // Per table with its indexes and TOAST; the jobs table's own heap apart, where dead row versions show.
      const { rows } = await client.query<{ bytes: string; jobs: string | null; tables: string }>(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS bytes,
                sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname = 'jobs') AS jobs,
                count(*) AS tables
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm')`,
        [schema],
      );
      const r = rows[0];
      return {
        bytes: Number(r?.bytes ?? 0),
        detail: `${r?.tables ?? 0} tables; jobs with its indexes ${mib(Number(r?.jobs ?? 0))}`,
      };
    } finally {
      await client.end();
    }
  }
  const prefix = parsed.searchParams.get("prefix") as string;
  parsed.search = "";
  const client = new Redis(parsed.toString(), { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  try {
    let bytes = 0;
    let count = 0;
    // The store's keys: `{prefix}:…` (global) and `{prefix:q:<queue>}:…` (per queue), as its key builder makes them.
    for (const pattern of [`{${prefix}}:*`, `{${prefix}:q:*`]) {
      let cursor = "0";
      do {
        const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1_000);
        cursor = next;
        if (keys.length === 0) continue;
        count += keys.length;
        const pipeline = client.pipeline();
        for (const key of keys) pipeline.call("MEMORY", "USAGE", key, "SAMPLES", "0");
        for (const [error, n] of (await pipeline.exec()) ?? []) if (!error) bytes += Number(n ?? 0);
      } while (cursor !== "0");
    }
    return { bytes, detail: `${fmt(count)} keys` };
  } finally {
    client.disconnect();
  }
}

/** Enqueues `count` no-op jobs in batches of 1,000; returns jobs/s. */
async function enqueue(target: BenchTarget, count: number, label: string): Promise<number> {
  let done = 0;
  return phase(
    `enqueue ${label}`,
    async (deadline) => {
      const started = now();
      while (done < count) {
        checkDeadline(deadline);
        const t = now();
        const n = Math.min(BATCH, count - done);
        await target.enqueueBatch(Array.from({ length: n }, (_, i) => ({ n: done + i, t })));
        done += n;
      }
      return count / ((now() - started) / 1_000);
    },
    () => `${fmt(done)} of ${fmt(count)} jobs enqueued`,
  );
}

/** What a worker child measured over a window or a drain. */
interface Run {
  jobs: number;
  rate: number;
  cpuMsPer1k: number;
  peakRssMiB: number;
}

/**
 * Starts a worker child on the store and waits until it has finished `jobs` handlers; `onCount` sees
 * each new count. Returns when the count was reported, the child's start time and the child itself.
 */
async function runChild(
  spec: TargetSpec,
  jobs: number,
  deadline: number,
  onCount: (child: ChildWorker) => void = () => {},
): Promise<{ child: ChildWorker; begin: number }> {
  const [child] = await startChildren(spec, 1, CONCURRENCY, { latencies: false });
  const worker = child as ChildWorker;
  const begin = worker.startAt;
  while (worker.finished() < jobs) {
    onCount(worker);
    checkDeadline(deadline);
    await tick(20);
  }
  onCount(worker);
  return { child: worker, begin };
}

async function stopChild(child: ChildWorker, jobs: number, seconds: number): Promise<Run> {
  const result = await child.finish();
  return {
    jobs,
    rate: jobs / seconds,
    cpuMsPer1k: (result.cpuMs / result.finished) * 1_000,
    peakRssMiB: result.peakRssKiB / 1024,
  };
}

/** Times `jobs` jobs processed from the store's backlog by one worker child at concurrency 50. */
async function window(spec: TargetSpec, jobs: number, label: string): Promise<Run> {
  let child: ChildWorker | undefined;
  return phase(
    `process ${label}`,
    async (deadline) => {
      const started = await runChild(spec, jobs, deadline, (c) => {
        child = c;
      });
      const done = started.child.finished();
      return stopChild(started.child, done, (started.child.countAt - started.begin) / 1_000);
    },
    () =>
      child
        ? `${fmt(child.finished())} of ${fmt(jobs)} jobs processed`
        : "the worker child was still starting",
  );
}

const row = (label: string, value: string) => process.stdout.write(`${label.padEnd(68)} ${value}\n`);
const runCells = (r: Run) =>
  `${fmt(r.rate).padStart(8)} jobs/s  CPU ${fmt(r.cpuMsPer1k, 1).padStart(6)} ms/1k  peak RSS ${fmt(r.peakRssMiB, 1)} MiB`;

/** A fresh store and this process's Sluice on it; `use` runs with both, the store is removed after. */
async function withStore(use: (target: BenchTarget, spec: TargetSpec, url: string) => Promise<void>) {
  const { url, cleanup } = engineUrl(engine);
  const target = await createSluiceTarget(url, undefined, variant);
  const spec: TargetSpec = {
    module: new URL("./sluice-target.ts", import.meta.url).href,
    url,
    namespace: `scale_${process.pid}`,
    variant,
  };
  try {
    await use(target, spec, url);
  } finally {
    await finishAll(); // a child left by an aborted phase, even one still starting
    await target.close().catch(() => {});
    await cleanup();
  }
}

/** Latency of jobs enqueued one by one into the store as it is (nothing waiting), as a row. */
async function latencyRow(target: BenchTarget, spec: TargetSpec, what: string): Promise<void> {
  const { latencyJobs, latencyRate } = FULL;
  const l = await phase(
    `latency ${what}`,
    () => crossProcessLatency(target, spec, latencyJobs, latencyRate, 1, { reset: false }),
    () => "enqueueing at a steady rate",
  );
  row(
    `latency, ${fmt(latencyJobs)} jobs at ${latencyRate}/s, ${what}`,
    `p50 ${fmt(l.p50, 2)} ms  p99 ${fmt(l.p99, 2)} ms  max ${fmt(l.max, 1)} ms  (${fmt(l.n)} started)`,
  );
}

/** Bytes per job of the store's growth since `empty`, as a row. */
async function bytesRow(url: string, empty: number, jobs: number, what: string): Promise<void> {
  const { bytes, detail } = await phase(
    `measure store size (${what})`,
    () => storeBytes(url),
    () => "reading sizes",
  );
  row(
    `store bytes per ${what} job`,
    `${fmt((bytes - empty) / jobs).padStart(8)} B/job  (${mib(bytes)} in all: ${detail}; ${mib(empty)} empty)`,
  );
}

/** 1.5M, 100k, 2k, 500: short sizes for labels. */
const k = (n: number) => {
  const short = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: 1 });
  return n >= 1_000_000 ? `${short(n / 1_000_000)}M` : n >= 1_000 ? `${short(n / 1_000)}k` : short(n);
};

process.stdout.write(
  `sluice scale — engine ${engine} — ${variant} — sizes × ${max / 1_000_000} (--max ${fmt(max)}) — ` +
    `concurrency ${CONCURRENCY}, worker in a child process — node ${process.version}\n` +
    "jobs/s: jobs done per second over the window (see bench/scale.ts); CPU ms/1k: the worker process's\n" +
    "user+system CPU per 1,000 jobs; peak RSS: the worker process's, over the window (sampled every 50 ms).\n" +
    "Figures are noisy on a shared machine.\n\n",
);
try {
  await withStore((target, spec) => latencyRow(target, spec, "on an empty store"));
  for (const backlog of BACKLOGS) {
    await withStore(async (target, spec, url) => {
      const empty = (await storeBytes(url)).bytes;
      const enqueued = await enqueue(target, backlog, `${k(backlog)} waiting`);
      row(
        `enqueue ${fmt(backlog)} (enqueueMany, batches of ${fmt(BATCH)})`,
        `${fmt(enqueued).padStart(8)} jobs/s`,
      );
      await bytesRow(url, empty, backlog, "waiting");
      const jobs = Math.min(WINDOW, Math.floor(backlog / 2));
      const run = await window(spec, jobs, `${fmt(jobs)} of ${fmt(backlog)} waiting`);
      row(`process ${fmt(jobs)} with ${fmt(backlog)} waiting`, runCells(run));
    });
  }
  await withStore(async (target, spec, url) => {
    const empty = (await storeBytes(url)).bytes;
    const enqueued = await enqueue(target, RETAINED, `${k(RETAINED)} to drain`);
    row(
      `enqueue ${fmt(RETAINED)} (enqueueMany, batches of ${fmt(BATCH)})`,
      `${fmt(enqueued).padStart(8)} jobs/s`,
    );
    let child: ChildWorker | undefined;
    const segments: number[] = []; // countAt of each SEGMENT boundary crossed
    const drain = await phase(
      `drain ${k(RETAINED)}`,
      async (deadline) => {
        const started = await runChild(spec, RETAINED, deadline, (c) => {
          child = c;
          while (
            segments.length < Math.ceil(RETAINED / SEGMENT) &&
            c.finished() >= (segments.length + 1) * SEGMENT
          ) {
            segments.push(c.countAt);
          }
        });
        // Handlers done; the total also waits for the store to have written every completion.
        const end = await drained(target, RETAINED, deadline);
        if (end.completed < RETAINED) throw new PhaseTimeout("deadline");
        const run = await stopChild(started.child, end.completed, (end.at - started.begin) / 1_000);
        return { run, begin: started.begin };
      },
      () => `${fmt(child?.finished() ?? 0)} of ${fmt(RETAINED)} jobs done`,
    );
    row(`drain ${fmt(RETAINED)} waiting, per ${fmt(SEGMENT)}:`, "");
    let from = drain.begin;
    segments.forEach((at, i) => {
      row(
        `  ${k(i * SEGMENT)}–${k(Math.min((i + 1) * SEGMENT, RETAINED))}`,
        `${fmt((at - from) / 1_000, 2).padStart(8)} s  ${fmt(SEGMENT / ((at - from) / 1_000)).padStart(8)} jobs/s`,
      );
      from = at;
    });
    row(`drain ${fmt(RETAINED)}, total (until the store reports none left)`, runCells(drain.run));
    const kept = variant === "defaults" ? "completed (retained)" : "completed (deleted: tuned)";
    await bytesRow(url, empty, RETAINED, kept);
    await latencyRow(target, spec, `with ${fmt(RETAINED)} ${kept}`);
    await enqueue(target, FRESH, `${k(FRESH)} fresh`);
    const jobs = Math.min(WINDOW, Math.floor(FRESH / 2));
    const run = await window(spec, jobs, `${fmt(jobs)} of ${fmt(FRESH)} waiting after the drain`);
    row(`process ${fmt(jobs)} with ${fmt(FRESH)} waiting, ${fmt(RETAINED)} ${kept}`, runCells(run));
  });
} catch (error) {
  if (!(error instanceof PhaseTimeout)) throw error;
  process.stderr.write(`\nbench:scale: ${error.message}\n`);
  process.exitCode = 1;
}
// A worker child still stopping, or a pg/Redis socket left by an aborted phase, must not keep us alive.
process.exit();
