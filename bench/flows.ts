/**
 * `npm run bench:flows [-- --engine sqlite|postgres|redis] [--count 10000] [--rounds 3]`: a batch of N
 * no-op children with a completion callback against N plain no-op jobs, concurrency 50, on the defaults,
 * in interleaved rounds (plain, batch, plain, batch, …); prints each round and the medians.
 */
import { parseArgs } from "node:util";
import { benchEngineArg, engineUrl, wholeArg } from "./engines.js";
import { flowRound } from "./flow-workload.js";
import { fmt, median } from "./stats.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "sqlite" },
    count: { type: "string", default: "10000" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "50" },
  },
});
const engine = benchEngineArg(values.engine);
const count = wholeArg("count", values.count, 1, 100_000);
const rounds = wholeArg("rounds", values.rounds, 1, 10);
const concurrency = wholeArg("concurrency", values.concurrency, 1, 1_000);
const { url, cleanup } = engineUrl(engine);
process.stdout.write(
  `sluice flows benchmark — engine ${engine} — ${fmt(count)} children, concurrency ${concurrency}, ${rounds} rounds, defaults\n`,
);
const plain: number[] = [];
const batch: number[] = [];
const lag: number[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    const p = await flowRound(url, { count, concurrency, batch: false, round });
    const b = await flowRound(url, { count, concurrency, batch: true, round });
    plain.push(p.rate);
    batch.push(b.rate);
    lag.push(b.callbackLagMs);
    process.stdout.write(
      `round ${round + 1}: plain ${fmt(p.rate)} jobs/s   batch children ${fmt(b.rate)} jobs/s   callback ${fmt(b.callbackLagMs, 1)} ms after the last child\n`,
    );
  }
  process.stdout.write(
    `median: plain ${fmt(median(plain))} jobs/s   batch children ${fmt(median(batch))} jobs/s ` +
      `(${fmt((median(batch) / median(plain)) * 100)} % of plain)   callback lag ${fmt(median(lag), 1)} ms\n`,
  );
} finally {
  await cleanup();
}
