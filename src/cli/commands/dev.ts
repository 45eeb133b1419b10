/** `sluice dev`: embedded SQLite, a worker and the demo pipeline, shown live. */
import { type Command, InvalidArgumentError } from "commander";
import { pino } from "pino";
import { Sluice } from "../../index.js";
import { runDev } from "../dev/dev-command.js";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number");
  return n;
}

/** Registers `sluice dev`. */
export function registerDev(program: Command): void {
  program
    .command("dev")
    .description("run Sluice on an embedded SQLite file with a worker and a demo RAG pipeline, shown live")
    .option("--db <path>", "SQLite file to create or reuse", "./sluice-dev.db")
    .option("--duration <seconds>", "stop after this many seconds (default: until Ctrl-C)", positiveInt, 0)
    .option("--concurrency <n>", "worker concurrency", positiveInt, 8)
    .option("--every <ms>", "enqueue a new document every N ms", positiveInt, 700)
    .addHelpText(
      "after",
      "\nExample:\n  $ sluice dev                 # Ctrl-C to stop\n  $ sluice dev --duration 30   # a 30-second tour",
    )
    .action(async (opts: { db: string; duration: number; concurrency: number; every: number }) => {
      // Logs go to a file-free quiet level: the live screen is the output. Warnings still reach stderr.
      const logger = pino({ level: process.env.SLUICE_LOG_LEVEL ?? "error" }, pino.destination(2));
      const sluice = new Sluice({ url: `sqlite:${opts.db}`, logger });
      try {
        await runDev(sluice, {
          durationSec: opts.duration,
          concurrency: Math.max(opts.concurrency, 1),
          everyMs: Math.max(opts.every, 10),
          maxDocuments: 10_000,
          out: process.stdout,
        });
      } finally {
        await sluice.close();
      }
    });
}
