/**
 * `npm run soak [-- --engine sqlite|postgres|redis] [--minutes 30] [--rate 1000] [--workers 2]
 *  [--concurrency 10] [--kill-every 60]`: a long steady run, not part of CI.
 *
 * This process enqueues `rate` jobs/s (a batch every 100 ms) while `workers` child processes run them; every
 * `kill-every` seconds one child is SIGKILLed and replaced (its jobs come back by lease recovery). Every 30 s
 * it samples worker and producer RSS, the store's size and the backlog, and at the end prints each series
 * with its least-squares slope per hour: a flat run has slopes near zero. The soak task keeps completed
 * jobs for one minute (`retention: { ageMs: 60_000 }`), what a high-volume deployment would set, so the
 * store's steady size is bounded by design; growth beyond it is a leak. Finally it drains and counts lost
 * jobs (enqueued but never completed), which must be zero.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { statSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { Sluice, silentLogger } from "../src/index.js";
import { BENCH_ENGINES, type BenchEngine, engineUrl } from "./engines.js";
import { fmt } from "./stats.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "sqlite" },
    minutes: { type: "string", default: "30" },
    rate: { type: "string", default: "1000" },
    workers: { type: "string", default: "2" },
    concurrency: { type: "string", default: "10" },
    "kill-every": { type: "string", default: "60" },
  },
});
const engine = values.engine as BenchEngine;
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const workers = Number(values.workers);
const concurrency = Number(values.concurrency);
const killEveryMs = Number(values["kill-every"]) * 1_000;
if (
  !BENCH_ENGINES.includes(engine) ||
  ![minutes, rate, workers, concurrency, killEveryMs].every((n) => n > 0)
) {
  process.stderr.write(
    "usage: npm run soak -- --engine sqlite|postgres|redis --minutes N --rate N --workers N\n",
  );
  process.exit(2);
}

const SAMPLE_MS = 30_000;
const WORKER = fileURLToPath(new URL("./soak-worker.ts", import.meta.url));
const { url, cleanup } = engineUrl(engine);
const sluice = new Sluice({ url, logger: silentLogger() });
const soak = sluice.task("soak", { queue: "soak", retention: { ageMs: 60_000 } });

interface Child {
  process: ChildProcess;
  rss: number;
}
const children: Child[] = [];
let kills = 0;

function spawnWorker(): Promise<Child> {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER, JSON.stringify({ url, concurrency })], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const entry: Child = { process: child, rss: 0 };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("soak worker did not start within 60 s")), 60_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line === "ready") {
        clearTimeout(timer);
        resolve(entry);
      } else if (line.startsWith("rss ")) entry.rss = Number(line.slice(4));
    });
  });
}

/** Bytes the store holds for this run: the SQLite files, the PostgreSQL schema, or Redis's used memory. */
async function storeBytes(): Promise<number> {
  if (engine === "sqlite") {
    const path = url.replace(/^sqlite:(\/\/)?/, "").split("?")[0] as string;
    return ["", "-wal", "-shm"].reduce((sum, suffix) => {
      try {
        return sum + statSync(`${path}${suffix}`).size;
      } catch {
        return sum;
      }
    }, 0);
  }
  if (engine === "postgres") {
    const schema = new URL(url).searchParams.get("schema") ?? "sluice";
    const base = new URL(url);
    base.searchParams.delete("schema");
    const client = new pg.Client({ connectionString: base.toString() });
    await client.connect();
    try {
      const { rows } = await client.query<{ bytes: string | null }>(
        `SELECT sum(pg_total_relation_size(c.oid))::text AS bytes FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`,
        [schema],
      );
      return Number(rows[0]?.bytes ?? 0);
    } finally {
      await client.end();
    }
  }
  const redis = new Redis(url.split("?")[0] as string);
  try {
    const info = await redis.info("memory");
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  } finally {
    redis.disconnect();
  }
}

async function backlog(): Promise<number> {
  const q = (await sluice.admin.queues()).find((s) => s.queue === "soak");
  return q ? q.counts.waiting + q.counts.scheduled + q.counts.active : 0;
}

/** Least-squares slope of `ys` over `xs` (per unit of x). */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

const out = (line: string) => process.stdout.write(`${line}\n`);
out(
  `sluice soak — engine ${engine} — ${minutes} min at ${fmt(rate)} jobs/s — ${workers} worker processes × ${concurrency}`,
);
out(
  `  one worker SIGKILLed and replaced every ${killEveryMs / 1_000} s; completed jobs kept 1 min; node ${process.version}\n`,
);
await sluice.store();
for (let i = 0; i < workers; i++) children.push(await spawnWorker());

const started = Date.now();
const endAt = started + minutes * 60_000;
let enqueued = 0;
const samples: { t: number; workerRss: number; producerRss: number; store: number; backlog: number }[] = [];
out("   min  worker RSS (max)  producer RSS  store size   backlog  enqueued  kills");

const producer = setInterval(() => {
  const n = Math.round(rate / 10);
  const batch = Array.from({ length: n }, (_, i) => ({ payload: { n: enqueued + i } }));
  enqueued += n;
  void soak
    .enqueueMany(batch)
    .catch((error: unknown) => process.stderr.write(`enqueue failed: ${String(error)}\n`));
}, 100);

const killer = setInterval(() => {
  const victim = children.shift();
  if (!victim) return;
  victim.process.kill("SIGKILL");
  kills++;
  void spawnWorker().then((c) => children.push(c));
}, killEveryMs);

const sample = async () => {
  const s = {
    t: (Date.now() - started) / 60_000,
    workerRss: Math.max(0, ...children.map((c) => c.rss)),
    producerRss: process.memoryUsage().rss,
    store: await storeBytes(),
    backlog: await backlog(),
  };
  samples.push(s);
  const mb = (b: number) => `${fmt(b / 1_048_576, 1)} MiB`;
  out(
    `${fmt(s.t, 1).padStart(6)}  ${mb(s.workerRss).padStart(15)}  ${mb(s.producerRss).padStart(12)}  ${mb(s.store).padStart(10)}  ${fmt(s.backlog).padStart(8)}  ${fmt(enqueued).padStart(8)}  ${kills}`,
  );
};
while (Date.now() < endAt) {
  await new Promise((resolve) => setTimeout(resolve, Math.min(SAMPLE_MS, endAt - Date.now())));
  await sample();
}
clearInterval(producer);
clearInterval(killer);

// Drain, then count what never completed.
const drainDeadline = Date.now() + 120_000;
while ((await backlog()) > 0 && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 500));
const left = await backlog();
const hours = samples.map((s) => s.t / 60);
const perHour = (ys: number[]) => `${fmt(slope(hours, ys) / 1_048_576, 2)} MiB/h`;
out("\nslopes over the run (least squares; flat ≈ 0):");
out(`  worker RSS    ${perHour(samples.map((s) => s.workerRss))}`);
out(`  producer RSS  ${perHour(samples.map((s) => s.producerRss))}`);
out(`  store size    ${perHour(samples.map((s) => s.store))}`);
out(
  `  backlog       ${fmt(
    slope(
      hours,
      samples.map((s) => s.backlog),
    ),
  )} jobs/h`,
);
out(
  `\nenqueued ${fmt(enqueued)}, left unfinished after a 2-minute drain: ${fmt(left)}, workers killed: ${kills}`,
);

await Promise.all(
  children.map(
    (c) =>
      new Promise<void>((resolve) => {
        c.process.once("exit", () => resolve());
        c.process.kill("SIGTERM");
        setTimeout(() => {
          c.process.kill("SIGKILL");
          resolve();
        }, 10_000).unref();
      }),
  ),
);
await sluice.close();
await cleanup();
process.exit(left === 0 ? 0 : 1);
