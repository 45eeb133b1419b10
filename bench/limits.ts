/**
 * `npm run bench:limits [-- --engine sqlite|postgres|redis] [--count 10000] [--rounds 3]`: what the
 * store-enforced limits cost (issue 13). One in-process worker at concurrency 50 on the defaults, in
 * interleaved rounds of three workloads of N no-op jobs each:
 *   plain  — a queue without limits;
 *   keys   — keyConcurrency 1, jobs spread over 1,000 limit keys;
 *   rate   — a queue rate limit far above the achieved rate (100,000 per second): the enforcement alone.
 * Rate = N / (worker start → last completion written). Prints each round and the medians.
 */
import { parseArgs } from "node:util";
import { Sluice, silentLogger } from "../src/index.js";
import { benchEngineArg, engineUrl, wholeArg } from "./engines.js";
import { fmt, median } from "./stats.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "sqlite" },
    count: { type: "string", default: "10000" },
    rounds: { type: "string", default: "3" },
  },
});
const engine = benchEngineArg(values.engine);
const count = wholeArg("count", values.count, 1, 100_000);
const rounds = wholeArg("rounds", values.rounds, 1, 10);
const DEADLINE_MS = 180_000;
type Workload = "plain" | "keys" | "rate";

async function round(url: string, workload: Workload, n: number): Promise<number> {
  const sluice = new Sluice({ url, logger: silentLogger() });
  const queue = `limits_${workload}_${process.pid}_${n}`;
  try {
    if (workload === "keys") await sluice.limits(queue, { keyConcurrency: 1 });
    if (workload === "rate") await sluice.limits(queue, { rate: { max: 100_000, windowMs: 1_000 } });
    let completed = 0;
    let last = 0;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`round did not finish in ${DEADLINE_MS} ms`)),
        DEADLINE_MS,
      );
      sluice.on("completed", (e) => {
        last = Math.max(last, e.at);
        if (++completed === count) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    sluice.task("noop", { queue, run: () => {} });
    for (let at = 0; at < count; at += 1_000) {
      await sluice.enqueueMany(
        "noop",
        Array.from({ length: Math.min(1_000, count - at) }, (_, i) => ({
          payload: { i: at + i },
          ...(workload === "keys" ? { options: { limitKey: `k${(at + i) % 1_000}` } } : {}),
        })),
      );
    }
    const worker = sluice.worker({ queues: [queue], concurrency: 50 });
    const begin = Date.now();
    await worker.start();
    await done;
    await worker.stop();
    return count / ((last - begin) / 1_000);
  } finally {
    await sluice.close();
  }
}

const { url, cleanup } = engineUrl(engine);
process.stdout.write(
  `sluice limits benchmark — engine ${engine} — ${fmt(count)} no-op jobs, concurrency 50, ${rounds} rounds, defaults\n`,
);
const results: Record<Workload, number[]> = { plain: [], keys: [], rate: [] };
try {
  for (let r = 0; r < rounds; r++) {
    const line: string[] = [];
    for (const workload of ["plain", "keys", "rate"] as const) {
      const rate = await round(url, workload, r);
      results[workload].push(rate);
      line.push(`${workload} ${fmt(rate)} jobs/s`);
    }
    process.stdout.write(`round ${r + 1}: ${line.join("   ")}\n`);
  }
  const plain = median(results.plain);
  process.stdout.write(
    `median: plain ${fmt(plain)} jobs/s   keyConcurrency 1 over 1,000 keys ${fmt(median(results.keys))} jobs/s ` +
      `(${fmt((median(results.keys) / plain) * 100)} %)   queue rate limit ${fmt(median(results.rate))} jobs/s ` +
      `(${fmt((median(results.rate) / plain) * 100)} %)\n`,
  );
} finally {
  await cleanup();
}
