/**
 * `npm run bench:bursts -- [--engine postgres|redis|sqlite] [--size 300] [--bursts 5] [--concurrency 1]
 * [--idle-ms 3000]`: bursts of no-op jobs reaching an idle worker. The worker (defaults, the given concurrency)
 * runs in this process and sits idle for `idle-ms` before each burst, long enough for the rate it holds ahead by
 * to decay to nothing (runtime/claim-ahead.ts); then one `enqueueMany` of `size` jobs. Prints, per burst, the
 * time from the enqueue call to the last job's handler and the claims the worker sent for it: how fast a worker
 * that knows no rate yet gets up to speed. The first burst also pays for warming up (JIT, connections).
 * Asserts nothing.
 */
import { parseArgs } from "node:util";
import { Sluice, silentLogger } from "../src/index.js";
import { benchEngineArg, engineUrl, wholeArg } from "./engines.js";
import { fmt } from "./stats.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    size: { type: "string", default: "300" },
    bursts: { type: "string", default: "5" },
    concurrency: { type: "string", default: "1" },
    "idle-ms": { type: "string", default: "3000" },
  },
});
const engine = benchEngineArg(values.engine);
const size = wholeArg("size", values.size, 1, 100_000);
const bursts = wholeArg("bursts", values.bursts, 1, 100);
const concurrency = wholeArg("concurrency", values.concurrency, 1, 1_000);
const idleMs = wholeArg("idle-ms", values["idle-ms"], 0, 60_000);
/** Longest one burst may take before the run gives up on it. */
const BURST_DEADLINE_MS = 60_000;

const { url, cleanup } = engineUrl(engine);
const producer = new Sluice({ url, logger: silentLogger() });
const consumer = new Sluice({ url, logger: silentLogger() });
let ran = 0;
let awaited = 0;
let reached: () => void = () => {};
const definition = {
  queue: "bursts",
  run: async () => {
    if (++ran === awaited) reached();
  },
};
const task = producer.task<{ i: number }>("noop", definition);
consumer.task<{ i: number }>("noop", definition);
await producer.store();
// Counts the worker's claims (its store is the consumer's).
const workerStore = (await consumer.store()) as unknown as { claim: (...a: unknown[]) => Promise<unknown> };
let claims = 0;
const claim = workerStore.claim.bind(workerStore);
workerStore.claim = (...a: unknown[]) => {
  claims++;
  return claim(...a);
};
const worker = consumer.worker({ queues: ["bursts"], concurrency });
try {
  console.log(
    `bursts — engine ${engine} — ${bursts} bursts of ${size} no-op jobs (one enqueueMany each) to a worker ` +
      `idle for ${idleMs} ms, concurrency ${concurrency}, in this process — node ${process.version}`,
  );
  await worker.start();
  const rows: string[] = [];
  for (let b = 0; b < bursts; b++) {
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const claimsBefore = claims;
    awaited = ran + size;
    const done = new Promise<void>((resolve) => (reached = resolve));
    const t0 = performance.now();
    await task.enqueueMany(Array.from({ length: size }, (_, i) => ({ payload: { i } })));
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), BURST_DEADLINE_MS);
    });
    const late = (await Promise.race([done, gaveUp])) === "late";
    clearTimeout(timer);
    const ms = performance.now() - t0;
    rows.push(
      `  burst ${b + 1}: ${late ? `not done in ${BURST_DEADLINE_MS} ms` : `${fmt(ms, 1)} ms`}, ` +
        `${claims - claimsBefore} claims, ${fmt((size * 1_000) / ms)} jobs/s`,
    );
  }
  console.log(rows.join("\n"));
} finally {
  await worker.stop();
  await producer.close();
  await consumer.close();
  await cleanup();
}
