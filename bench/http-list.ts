/**
 * `npm run bench:http-list [-- sqlite postgres]`: latency of `GET /jobs` through the HTTP API on a real
 * server on 127.0.0.1, with BENCH_JOBS (default 1,000,000) jobs in the store: the first page and a deep
 * page (the cursor after BENCH_DEEP jobs, default 100,000), without and with a queue + state filter. The
 * jobs are written with the store's enqueue in batches of 5,000, spread over 10 queues. Prints a table;
 * asserts nothing.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { createHttpApi } from "../src/http/index.js";
import { type NewJob, Sluice, silentLogger } from "../src/index.js";
import { newJob } from "../test/support/new-job.js";
import { type BenchEngine, engineUrl } from "./engines.js";

const TOTAL = Number(process.env.BENCH_JOBS ?? 1_000_000);
const DEEP = Number(process.env.BENCH_DEEP ?? 100_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const QUEUES = 10;
const TOKEN = "bench-admin-token-0123456789";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function fill(sluice: Sluice): Promise<void> {
  const store = await sluice.store();
  const started = performance.now();
  const now = Date.now();
  for (let done = 0; done < TOTAL; done += 5_000) {
    const batch: NewJob[] = [];
    for (let i = done; i < Math.min(done + 5_000, TOTAL); i++) {
      batch.push(
        newJob({
          task: "bench",
          queue: `q${i % QUEUES}`,
          payload: JSON.stringify({ n: i, docId: `d${i}` }),
          runAt: now,
        }),
      );
    }
    await store.enqueue(batch);
    if ((done / 5_000) % 20 === 0) process.stderr.write(`\r  enqueued ${done + batch.length}/${TOTAL}`);
  }
  process.stderr.write(`\r  enqueued ${TOTAL} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

async function deepCursor(
  sluice: Sluice,
  filter: { queue?: string; state?: "waiting" },
  depth: number,
): Promise<string | null> {
  let cursor: string | null = null;
  for (let seen = 0; seen < depth; seen += 500) {
    const page = await sluice.admin.listJobs(filter, { limit: 500, cursor });
    cursor = page.nextCursor;
    if (cursor === null) break;
  }
  return cursor;
}

async function measure(base: string, path: string): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES + 10; i++) {
    const started = performance.now();
    const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    if (response.status !== 200) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    await response.arrayBuffer();
    if (i >= 10) times.push(performance.now() - started); // the first 10 warm up
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

async function run(engine: BenchEngine): Promise<string[]> {
  const { url, cleanup } = engineUrl(engine);
  const sluice = new Sluice({ url, logger: silentLogger() });
  const rows: string[] = [];
  try {
    process.stderr.write(`${engine}:\n`);
    await fill(sluice);
    const app = createHttpApi(sluice, { tokens: [{ role: "read", token: TOKEN }] });
    const server = createServer(getRequestListener(app.fetch));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const filtered = { queue: "q3", state: "waiting" as const };
    const deepAll = await deepCursor(sluice, {}, DEEP);
    const filteredDepth = Math.min(DEEP, Math.floor(TOTAL / QUEUES / 2));
    const deepFiltered = await deepCursor(sluice, filtered, filteredDepth);
    const cases: [string, string][] = [
      ["first page, no filter", "/jobs?limit=50"],
      ["first page, queue + state", "/jobs?queue=q3&state=waiting&limit=50"],
      [
        `page after ${DEEP.toLocaleString("en")}, no filter`,
        `/jobs?limit=50&cursor=${encodeURIComponent(deepAll ?? "")}`,
      ],
      [
        `page after ${filteredDepth.toLocaleString("en")}, queue + state`,
        `/jobs?queue=q3&state=waiting&limit=50&cursor=${encodeURIComponent(deepFiltered ?? "")}`,
      ],
    ];
    for (const [name, path] of cases) {
      const { p50, p99 } = await measure(base, path);
      rows.push(`| ${engine} | ${name} | ${p50.toFixed(1)} | ${p99.toFixed(1)} |`);
      process.stderr.write(`  ${name}: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms\n`);
    }
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  } finally {
    await sluice.close();
    await cleanup();
  }
  return rows;
}

const engines = (process.argv.slice(2).filter((a) => !a.startsWith("-")) as BenchEngine[]).filter(Boolean);
const rows: string[] = [];
for (const engine of engines.length > 0 ? engines : (["sqlite", "postgres"] as const))
  rows.push(...(await run(engine)));
process.stdout.write(
  `\nGET /jobs, ${TOTAL.toLocaleString("en")} jobs in 10 queues, ${SAMPLES} requests each, limit 50 (ms)\n\n` +
    `| engine | request | p50 | p99 |\n| --- | --- | --- | --- |\n${rows.join("\n")}\n`,
);
