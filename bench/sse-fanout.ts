/**
 * `npm run bench:sse -- [--engine sqlite|postgres|redis] [--clients 200] [--queues 20] [--rate 5000]
 * [--seconds 10]`: Server-Sent Events fan-out. This process runs the HTTP API (`GET /events`) and a
 * producer that enqueues `rate` jobs/s spread over `queues` queues, for `seconds`; a worker process
 * (concurrency 50, no-op jobs) runs them; a client process holds `clients` SSE streams, client i following
 * queue i mod `queues` (each stream carries its queue's enqueued, active and completed events). Prints the jobs/s processed, the events
 * delivered per second to all clients together, and the delay from a transition (the event's store time)
 * to its arrival at the client (p50 / p99). Asserts nothing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { createHttpApi } from "../src/http/index.js";
import { Sluice, silentLogger } from "../src/index.js";
import { type BenchEngine, engineUrl } from "./engines.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const engine = flag("engine", "sqlite") as BenchEngine;
const clients = Number(flag("clients", "200"));
const queueCount = Number(flag("queues", "20"));
const rate = Number(flag("rate", "5000"));
const seconds = Number(flag("seconds", "10"));
const TOKEN = "bench-sse-token-0123456789";

function lineFrom(child: ChildProcess, prefix: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(
      () => reject(new Error(`no "${prefix}" from the clients in ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.stdout?.on("data", (d: Buffer) => {
      buffer += d.toString();
      const line = buffer.split("\n").find((l) => l.startsWith(prefix));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line.slice(prefix.length).trim());
      }
    });
  });
}

const { url, cleanup } = engineUrl(engine);
const sluice = new Sluice({ url, logger: silentLogger() });
const queues = Array.from({ length: queueCount }, (_, i) => `fan${i}`);
const followed = Array.from({ length: clients }, (_, i) => queues[i % queueCount] as string);
const app = createHttpApi(sluice, { tokens: `read:${TOKEN}` });
const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
await new Promise((resolve) => server.once("listening", resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
await sluice.store();

const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    fileURLToPath(new URL("./sse-clients.ts", import.meta.url)),
    JSON.stringify({ base, token: TOKEN, queues: followed }),
  ],
  { stdio: ["ignore", "pipe", "inherit"] },
);
await lineFrom(child, "ready", 60_000);

const worker = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    fileURLToPath(new URL("./sse-worker.ts", import.meta.url)),
    JSON.stringify({ url, queues }),
  ],
  { stdio: ["ignore", "pipe", "inherit"] },
);
await lineFrom(worker, "ready", 60_000);
const total = rate * seconds;
const started = performance.now();
let enqueued = 0;
// 10 ms ticks, each enqueueing what the rate allows by now, round-robin over the queues.
while (enqueued < total) {
  const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
  if (due > enqueued) {
    const items = Array.from({ length: due - enqueued }, (_, k) => ({
      payload: {},
      options: { queue: queues[(enqueued + k) % queueCount] as string },
    }));
    await sluice.enqueueMany("fan", items);
    enqueued = due;
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
}
const deadline = Date.now() + 120_000;
for (;;) {
  const stats = await sluice.admin.queues();
  const done = stats.filter((q) => q.queue.startsWith("fan")).reduce((n, q) => n + q.counts.completed, 0);
  if (done >= total || Date.now() > deadline) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const processedIn = (performance.now() - started) / 1000;
// Give the streams a moment past the last completion, then ask the clients what they saw.
await new Promise((resolve) => setTimeout(resolve, 1_500));
const result = lineFrom(child, "result", 30_000);
child.kill("SIGTERM");
const seen = JSON.parse(await result) as {
  received: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
};
const workerExited = new Promise((resolve) => worker.once("exit", resolve));
worker.kill("SIGTERM");
await workerExited;
server.close();
await sluice.close();
await cleanup();

// enqueued, active, completed per job, to each of the clients following its queue
const expected = total * 3 * (clients / queueCount);
console.log(
  `\nSSE fan-out on ${engine}: ${clients} clients over ${queueCount} queues, ${total.toLocaleString("en")} jobs offered at ${rate.toLocaleString("en")}/s, worker (concurrency 50) in its own process, defaults otherwise\n`,
);
console.log(
  "| engine | clients | jobs/s processed | events delivered | delivered/s | delay p50 ms | delay p99 ms | max ms |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
console.log(
  `| ${engine} | ${clients} | ${Math.round(total / processedIn).toLocaleString("en")} | ${seen.received.toLocaleString("en")} of ${expected.toLocaleString("en")} | ${Math.round(seen.received / processedIn).toLocaleString("en")} | ${seen.p50} | ${seen.p99} | ${seen.max} |`,
);
if (seen.failed > 0) console.log(`${seen.failed} client(s) failed to connect`);
process.exit(0);
