/**
 * A chaos-suite worker in its own process (it gets SIGKILLed at random). argv[2] = JSON
 * { url, queue, concurrency, leaseMs, runLog, logFile }.
 *
 * Every handler run appends one line to `runLog` when it starts (`S <jobId> <attempt> <pid> <ms>`) and one
 * when its work is done (`F …`), synchronously with O_APPEND, so the lines of a process killed right after
 * are on disk: the suite counts who ran what, and how often, after the fact. Warnings go to `logFile`.
 * Prints `ready` once the worker runs; SIGTERM stops it gracefully.
 */
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { Sluice } from "../../src/index.js";

const args = JSON.parse(process.argv[2] ?? "{}") as {
  url: string;
  queue: string;
  concurrency: number;
  leaseMs: number;
  runLog: string;
  logFile: string;
};
const logger = pino({ level: "warn" }, pino.destination({ dest: args.logFile, sync: true }));
const sluice = new Sluice({ url: args.url, logger });
const record = (kind: "S" | "F", id: string, attempt: number) =>
  appendFileSync(args.runLog, `${kind} ${id} ${attempt} ${process.pid} ${Date.now()}\n`);
sluice.task("chaos", {
  queue: args.queue,
  async run(_payload, ctx) {
    record("S", ctx.id, ctx.attempt);
    await sleep(5 + Math.floor(Math.random() * 20));
    record("F", ctx.id, ctx.attempt);
    return null;
  },
});
const worker = sluice.worker({ queues: [args.queue], concurrency: args.concurrency, leaseMs: args.leaseMs });
await worker.start();
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void (async () => {
    let code = 0;
    try {
      await worker.stop({ graceMs: 5_000 });
      await sluice.close();
    } catch (error) {
      logger.error({ err: error }, "stop failed");
      code = 1;
    }
    process.exit(code);
  })();
});
