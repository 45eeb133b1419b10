/**
 * A worker process of the soak run (bench/soak.ts): argv[2] = JSON `{ url, concurrency }`. Runs the `soak`
 * task (a no-op that returns its payload's sequence number), prints `rss <bytes>` every second, and stops
 * gracefully on SIGTERM. The soak run SIGKILLs one of these every so often: recovery takes its jobs back.
 */
import { Sluice, silentLogger } from "../src/index.js";

const { url, concurrency } = JSON.parse(process.argv[2] ?? "{}") as { url: string; concurrency: number };
const sluice = new Sluice({ url, logger: silentLogger() });
sluice.task("soak", { queue: "soak", run: (payload: unknown) => (payload as { n: number }).n });
const worker = sluice.worker({ queues: ["soak"], concurrency, leaseMs: 5_000 });
await worker.start();
process.stdout.write("ready\n");
const report = setInterval(() => process.stdout.write(`rss ${process.memoryUsage().rss}\n`), 1_000);
process.once("SIGTERM", () => {
  clearInterval(report);
  void worker
    .stop({ graceMs: 2_000 })
    .then(() => sluice.close())
    .finally(() => process.exit(0));
});
