#!/usr/bin/env node
/**
 * The `sluice` command: program assembly only; each command lives in ./commands. Every command calls the
 * library's public API (Sluice, Admin) only.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { SluiceError, VERSION } from "../index.js";
import { registerBatches } from "./commands/batches.js";
import { registerBulkCommands } from "./commands/bulk-commands.js";
import { registerDev } from "./commands/dev.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerInfo } from "./commands/info.js";
import { registerJobs } from "./commands/jobs.js";
import { registerMigrate } from "./commands/migrate.js";
import { registerPauseResume } from "./commands/queues.js";
import { registerRecover } from "./commands/recover.js";
import { registerSchedules } from "./commands/schedules.js";
import { registerServe } from "./commands/serve.js";
import { registerStats } from "./commands/stats.js";
import { registerWorker } from "./commands/worker.js";

/** Error codes that mean the command line (or a config) must change: exit 2. */
const USAGE_CODES = new Set(["INVALID_OPTION", "INVALID_CONFIG", "INVALID_CRON"]);

/** Builds the `sluice` program with every command. */
export function buildProgram(): Command {
  const program = new Command()
    .name("sluice")
    .description("Durable background jobs for Node.js on SQLite, PostgreSQL or Redis")
    .version(VERSION)
    .option("--url <url>", "store URL (sqlite:./sluice.db, postgres://…, redis://…); else SLUICE_URL")
    .showHelpAfterError("(add --help for usage and examples)")
    .exitOverride();
  program.addHelpText(
    "after",
    "\nThe store URL comes from --url, SLUICE_URL, or sluice.config.{json,yaml,yml,js} in this directory.\n" +
      "Exit codes: 0 success, 1 failure, 2 usage error. Reference: docs/cli.md\n\n" +
      "Example:\n  $ sluice info --url redis://localhost:6379/5",
  );
  registerWorker(program);
  registerInfo(program);
  registerJobs(program);
  registerBatches(program);
  registerBulkCommands(program);
  registerPauseResume(program);
  registerSchedules(program);
  registerRecover(program);
  registerDoctor(program);
  registerStats(program);
  registerMigrate(program);
  registerDev(program);
  registerServe(program);
  return program;
}

/** Maps anything a command threw to a message and an exit code. */
export function exitCodeOf(error: unknown): { code: number; message: string | null } {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help / version).
    return { code: error.exitCode === 0 ? 0 : 2, message: null };
  }
  const exitCode = (error as { exitCode?: unknown })?.exitCode;
  if (error instanceof Error && (exitCode === 1 || exitCode === 2))
    return { code: exitCode, message: error.message };
  if (error instanceof SluiceError) {
    return { code: USAGE_CODES.has(error.code) ? 2 : 1, message: `${error.code}: ${error.message}` };
  }
  return { code: 1, message: String((error as Error)?.stack ?? error) };
}

/**
 * When the reader of stdout goes away (`sluice jobs list | head -1`), stop quietly: the output nobody reads
 * is not an error, and a stack trace about EPIPE helps no one. Exit 0, as `head`'s caller expects a
 * successful pipeline; any other stdout error is reported and exits 1.
 */
export function exitQuietlyOnEpipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    process.stderr.write(`sluice: cannot write the output: ${error.message}\n`);
    process.exit(1);
  });
}

/** Parses `argv`, runs the command, and sets the process exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  exitQuietlyOnEpipe();
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    const { code, message } = exitCodeOf(error);
    if (message !== null) process.stderr.write(`sluice: ${message}\n`);
    process.exitCode = code;
  }
}

/** True when this file is the program being run (not imported, e.g. by tests). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
