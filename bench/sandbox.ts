/**
 * `npm run bench:sandbox [-- --count 2000] [--rounds 3] [--concurrency 10]`: the per-job cost of a
 * sandbox. No-op jobs at concurrency 10 on SQLite, three ways, in interleaved rounds: the handler in the
 * worker's process (plain), in a worker thread, in a child process. Each round warms the worker first
 * (one job per slot, so every slot's sandbox has started and loaded the handler), then times N jobs from
 * the first enqueue to the last `completed` event; prints each round and the medians.
 */
import { parseArgs } from "node:util";
import { Sluice, silentLogger } from "../src/index.js";
import { engineUrl } from "./engines.js";
import { fmt, median } from "./stats.js";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "2000" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "10" },
  },
});
const count = Math.min(Number(values.count), 100_000);
const rounds = Math.min(Number(values.rounds), 10);
const concurrency = Number(values.concurrency);
const MODES = ["plain", "thread", "process"] as const;
type Mode = (typeof MODES)[number];
const NOOP = new URL("./sandbox-noop.ts", import.meta.url);
const DEADLINE_MS = 300_000;

/** One round of `mode`: jobs/s of N no-op jobs once the worker's sandboxes are warm. */
async function round(mode: Mode, n: number): Promise<number> {
  const { url, cleanup } = engineUrl("sqlite");
  const sluice = new Sluice({ url, logger: silentLogger() });
  const queue = `sandbox_${mode}_${n}`;
  try {
    sluice.task("noop", {
      queue,
      ...(mode === "plain" ? { run: () => null } : { sandbox: { kind: mode, module: NOOP } }),
    });
    let completed = 0;
    let last = 0;
    let target = concurrency;
    let wake: () => void = () => {};
    sluice.on("completed", (e) => {
      completed++;
      last = e.at;
      if (completed === target) wake();
    });
    const settle = () =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`round did not finish in ${DEADLINE_MS} ms`)),
          DEADLINE_MS,
        );
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    const worker = sluice.worker({ queues: [queue], concurrency });
    await worker.start();
    // Warm-up: one job per slot, so each slot's sandbox is started and has loaded the handler.
    let done = settle();
    await sluice.enqueueMany(
      "noop",
      Array.from({ length: concurrency }, (_, i) => ({ payload: { i } })),
    );
    await done;
    completed = 0;
    target = n;
    done = settle();
    // Timed from the first enqueue to the last completion, with the warm worker taking jobs as they land.
    const begin = Date.now();
    for (let at = 0; at < n; at += 1_000) {
      const size = Math.min(1_000, n - at);
      await sluice.enqueueMany(
        "noop",
        Array.from({ length: size }, (_, i) => ({ payload: { i: at + i } })),
      );
    }
    await done;
    await worker.stop();
    return n / ((last - begin) / 1_000);
  } finally {
    await sluice.close();
    await cleanup();
  }
}

process.stdout.write(
  `sluice sandbox benchmark — engine sqlite — ${fmt(count)} no-op jobs, concurrency ${concurrency}, ${rounds} rounds\n`,
);
const rates: Record<Mode, number[]> = { plain: [], thread: [], process: [] };
for (let r = 0; r < rounds; r++) {
  const line: string[] = [];
  for (const mode of MODES) {
    const rate = await round(mode, count);
    rates[mode].push(rate);
    line.push(`${mode} ${fmt(rate)} jobs/s`);
  }
  process.stdout.write(`round ${r + 1}: ${line.join("   ")}\n`);
}
const plain = median(rates.plain);
process.stdout.write(
  `median: ${MODES.map((m) => `${m} ${fmt(median(rates[m]))} jobs/s${m === "plain" ? "" : ` (${fmt((median(rates[m]) / plain) * 100)} % of plain, +${fmt((1_000 / median(rates[m]) - 1_000 / plain) * concurrency, 2)} ms per job)`}`).join("   ")}\n`,
);
