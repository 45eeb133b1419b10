/** Workloads with two worker processes on one store: throughput and cross-process latency. */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { now, summarize } from "./stats.js";
import type { BenchTarget } from "./target.js";

const SCRIPT = fileURLToPath(new URL("./worker-process.ts", import.meta.url));

interface Child {
  ready: Promise<void>;
  count: () => number;
  finish: () => Promise<{ count: number; latencies: number[] }>;
}

function startChild(url: string, concurrency: number): Child {
  const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, JSON.stringify({ url, concurrency })], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let count = 0;
  let resolveReady: () => void = () => {};
  let resolveResult: (r: { count: number; latencies: number[] }) => void = () => {};
  const ready = new Promise<void>((r) => {
    resolveReady = r;
  });
  const result = new Promise<{ count: number; latencies: number[] }>((r) => {
    resolveResult = r;
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line === "ready") resolveReady();
    else if (line.startsWith("count ")) count = Number(line.slice(6));
    else if (line.startsWith("result ")) resolveResult(JSON.parse(line.slice(7)));
  });
  return {
    ready,
    count: () => count,
    finish: async () => {
      child.kill("SIGTERM");
      return Promise.race([result, sleep(20_000).then(() => ({ count, latencies: [] }))]);
    },
  };
}

/** Pre-filled jobs drained by two worker processes at `concurrency` each: jobs/s. */
export async function twoProcessThroughput(
  target: BenchTarget,
  url: string,
  count: number,
  concurrency: number,
): Promise<number> {
  await target.reset();
  for (let n = 0; n < count; n += 1_000) {
    const t = now();
    await target.enqueueBatch(
      Array.from({ length: Math.min(1_000, count - n) }, (_, i) => ({ n: n + i, t })),
    );
  }
  const children = [startChild(url, concurrency), startChild(url, concurrency)];
  // Both start claiming as soon as they are up; the clock starts when the first is ready.
  await Promise.race(children.map((c) => c.ready));
  const started = now();
  const deadline = started + 120_000;
  while (children.reduce((n, c) => n + c.count(), 0) < count && now() < deadline) await sleep(5);
  const elapsed = now() - started;
  const results = await Promise.all(children.map((c) => c.finish()));
  await target.reset();
  return results.reduce((n, r) => n + r.count, 0) / (elapsed / 1_000);
}

/** Enqueue here, run in two worker processes: enqueue → handler start latency. */
export async function twoProcessLatency(
  target: BenchTarget,
  url: string,
  count: number,
  ratePerSec: number,
): Promise<ReturnType<typeof summarize>> {
  await target.reset();
  const children = [startChild(url, 10), startChild(url, 10)];
  await Promise.all(children.map((c) => c.ready));
  await sleep(300);
  const started = now();
  for (let n = 0; n < count; n++) {
    const wait = started + (n * 1_000) / ratePerSec - now();
    if (wait > 0) await sleep(wait);
    await target.enqueueOne({ n, t: now() });
  }
  const deadline = now() + 30_000;
  while (children.reduce((n, c) => n + c.count(), 0) < count && now() < deadline) await sleep(10);
  const results = await Promise.all(children.map((c) => c.finish()));
  await target.reset();
  return summarize(results.flatMap((r) => r.latencies));
}
