/**
 * `sluice worker`: runs a worker, systemd-friendly. Logs JSON lines to stdout (pino); SIGTERM / SIGINT
 * stop it gracefully within the shutdown grace and exit 0; a bad config exits 2 before anything starts;
 * a store that cannot be reached exits 1.
 *
 * Task handlers come from `--tasks <module>` (or `tasks:` in the config file): an ES module whose default
 * export is `(sluice: Sluice) => void | Promise<void>` and defines the tasks on the instance it is given.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { pino } from "pino";
import { Sluice, type WorkerOptions } from "../../index.js";
import { loadWorkerConfig, parseQueuesFlag, resolveUrl, type WorkerFileConfig } from "../config.js";
import { globals } from "../context.js";
import { UsageError } from "../errors.js";
import { durationFlag, wholeNumber } from "../filters.js";

/** The default export a `--tasks` module must have. */
export type TasksModule = (sluice: Sluice) => void | Promise<void>;

interface WorkerFlags {
  config?: string;
  queues?: string;
  concurrency?: number;
  tasks?: string;
  shutdownGrace?: string;
  lease?: string;
}

/** Imports the tasks module and lets it define tasks on `sluice`. */
export async function loadTasks(path: string, sluice: Sluice): Promise<void> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown };
  } catch (error) {
    throw new UsageError(`cannot load tasks module ${path}: ${(error as Error).message}`);
  }
  if (typeof mod.default !== "function") {
    throw new UsageError(
      `tasks module ${path} must have a default export (sluice) => void that defines the tasks, e.g.\n` +
        '  export default (sluice) => { sluice.task("embed", { queue: "rag", async run(p) { … } }); }',
    );
  }
  await (mod.default as TasksModule)(sluice);
}

/** Registers `sluice worker`. */
export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("run a worker (SIGTERM/SIGINT: graceful stop within the grace, exit 0; JSON logs on stdout)")
    .option(
      "-c, --config <file>",
      "worker config file (YAML or JSON): concurrency, queues, shutdownGrace, lease, tasks",
    )
    .option("--queues <list>", "queues in strict order (a,b) or with weights (a:5,b:3); overrides the file")
    .option("--concurrency <n>", "jobs at once; overrides the file", wholeNumber)
    .option("--tasks <module>", "ES module whose default export (sluice) => void defines the task handlers")
    .option("--shutdown-grace <duration>", "grace before running jobs are aborted and released on stop")
    .option("--lease <duration>", "lease length (a silent worker's jobs are recovered after it)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ sluice worker --config /etc/sluice/host1.yaml\n" +
        "  $ sluice worker --queues rag_processing --concurrency 4 --tasks ./dist/tasks.js\n\n" +
        "Log level: SLUICE_LOG_LEVEL (default info).",
    )
    .action(async (flags: WorkerFlags, cmd: Command) => {
      const file: WorkerFileConfig = flags.config ? loadWorkerConfig(flags.config) : { options: {} };
      const options: WorkerOptions = { ...file.options };
      if (flags.queues !== undefined) options.queues = parseQueuesFlag(flags.queues);
      if (flags.concurrency !== undefined) options.concurrency = flags.concurrency;
      if (flags.shutdownGrace !== undefined) {
        options.shutdownGraceMs = durationFlag(flags.shutdownGrace, "--shutdown-grace");
      }
      if (flags.lease !== undefined) options.leaseMs = durationFlag(flags.lease, "--lease");
      const tasks = flags.tasks ?? file.tasks;
      const flagUrl = globals(cmd).url;
      const url =
        flagUrl === undefined && !process.env.SLUICE_URL && file.url
          ? { url: file.url, source: flags.config ?? "" }
          : await resolveUrl(flagUrl);

      const logger = pino({ level: process.env.SLUICE_LOG_LEVEL ?? "info" });
      const sluice = new Sluice({ url: url.url, logger });
      if (tasks) await loadTasks(tasks, sluice);
      if (sluice.tasks.size === 0) {
        logger.warn(
          "no task handlers defined (pass --tasks <module>): jobs claimed here fail with NO_HANDLER",
        );
      }
      let worker: ReturnType<Sluice["worker"]>;
      try {
        worker = sluice.worker(options);
      } catch (error) {
        await sluice.close();
        throw error;
      }
      let stopping: Promise<void> | null = null;
      let stopped!: (result: Promise<void>) => void;
      const done = new Promise<void>((resolveDone) => {
        stopped = resolveDone as (result: Promise<void>) => void;
      });
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, "second signal: exiting now");
          process.exit(1);
        }
        logger.info({ signal }, "signal received: stopping gracefully");
        stopping = (async () => {
          await worker.stop();
          await sluice.close();
          logger.info("sluice worker stopped");
        })();
        stopped(stopping);
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
      try {
        await worker.start();
      } catch (error) {
        await sluice.close().catch(() => {});
        throw error;
      }
      logger.info(
        { url: sluice.safeUrl, tasks: [...sluice.tasks.keys()] },
        "sluice worker running; SIGTERM to stop",
      );
      // Stay alive until a signal has stopped the worker (a failed stop rejects: exit 1).
      await done;
    });
}
