/**
 * `npm run bench:events -- [--engine sqlite|postgres|redis] [--batch 1] [--rounds 6] [--jobs 20000]`: what
 * writing fleet-wide events costs the store's hot path. Claims and completes `jobs` jobs `batch` at a time
 * (one claim and one complete per batch, as a worker at concurrency `batch` does), on a fresh store with
 * events off and on, alternating, `rounds` times; prints jobs/s of each and the median change. The store
 * alone, without the worker runtime, so the difference is the events' own cost. Asserts nothing.
 */
import { parseArgs } from "node:util";
import { createStore, silentLogger } from "../src/index.js";
import { newJob } from "../test/support/new-job.js";
import { type BenchEngine, engineUrl } from "./engines.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "sqlite" },
    batch: { type: "string", default: "1" },
    rounds: { type: "string", default: "6" },
    jobs: { type: "string", default: "20000" },
  },
});
const engine = values.engine as BenchEngine;
const batch = Number(values.batch);
const jobs = Number(values.jobs);

async function once(events: boolean): Promise<number> {
  const { url, cleanup } = engineUrl(engine);
  const store = await createStore(url, {
    logger: silentLogger(),
    events: { enabled: events, maxEvents: 1e9, retentionMs: 1e12 },
  });
  try {
    await store.open();
    for (let i = 0; i < jobs; i += 1000) {
      await store.enqueue(Array.from({ length: 1000 }, () => newJob({ queue: "q", retention: false })));
    }
    const started = performance.now();
    for (let done = 0; done < jobs; ) {
      const claimed = await store.claim({ queues: ["q"], limit: batch, workerId: "w", leaseMs: 60_000 });
      await store.complete(claimed.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
      done += claimed.length;
    }
    return (jobs / (performance.now() - started)) * 1000;
  } finally {
    await store.close();
    await cleanup();
  }
}

const changes: number[] = [];
console.log(`events cost on ${engine}: claim + complete of ${jobs} jobs, ${batch} per call\n`);
console.log("| round | events off (jobs/s) | events on (jobs/s) | change |");
console.log("| --- | --- | --- | --- |");
for (let round = 1; round <= Number(values.rounds); round++) {
  const off = await once(false);
  const on = await once(true);
  changes.push((on - off) / off);
  console.log(
    `| ${round} | ${Math.round(off)} | ${Math.round(on)} | ${(((on - off) / off) * 100).toFixed(1)} % |`,
  );
}
changes.sort((a, b) => a - b);
const mid = changes.length / 2;
const median =
  changes.length % 2 ? changes[Math.floor(mid)] : ((changes[mid - 1] ?? 0) + (changes[mid] ?? 0)) / 2;
console.log(`\nmedian change: ${((median ?? 0) * 100).toFixed(1)} %`);
