/**
 * The worker of bench/sse-fanout.ts, in its own process (as a deployment runs workers apart from the API
 * server). argv[2] = JSON { url, queues }. Prints `ready`; stops on SIGTERM.
 */
import { Sluice, silentLogger } from "../src/index.js";

const { url, queues } = JSON.parse(process.argv[2] ?? "{}") as { url: string; queues: string[] };
const sluice = new Sluice({ url, logger: silentLogger() });
sluice.task("fan", { run: () => {} });
const worker = sluice.worker({ queues, concurrency: 50 });
await worker.start();
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void worker
    .stop()
    .then(() => sluice.close())
    .finally(() => process.exit(0));
});
