/**
 * What every command shares: opening a Sluice instance on the resolved URL, the output streams, whether
 * the session is interactive, and the confirmation prompt of destructive commands.
 */
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { pino } from "pino";
import { type Logger, Sluice, silentLogger } from "../index.js";
import { type ResolvedUrl, resolveUrl } from "./config.js";
import { CommandFailed, UsageError } from "./errors.js";
import { colourEnabled, type Palette, palette } from "./output/colour.js";

/** Options every command accepts (declared on the program, usable anywhere on the command line). */
export interface GlobalOptions {
  url?: string;
}

/** The global options of the program `command` belongs to. */
export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** Logger for commands other than `worker`: silent unless `SLUICE_LOG_LEVEL` is set (then JSON on stderr). */
export function quietLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  const level = env.SLUICE_LOG_LEVEL;
  return level ? pino({ level }, pino.destination(2)) : silentLogger();
}

/**
 * Runs `fn` with a Sluice instance on the resolved store URL and closes it afterwards. The store is opened
 * (connect + migrations) before `fn` runs, so an unreachable store fails here with a clear message.
 */
export async function withSluice<T>(
  command: Command,
  fn: (sluice: Sluice, url: ResolvedUrl) => Promise<T>,
  options: { logger?: Logger } = {},
): Promise<T> {
  const url = await resolveUrl(globals(command).url);
  const sluice = new Sluice({ url: url.url, logger: options.logger ?? quietLogger() });
  try {
    await sluice.admin.ping(); // connect (and migrate) first, so an unreachable store fails here clearly
    return await fn(sluice, url);
  } finally {
    await sluice.close();
  }
}

/** Human output helpers bound to stdout. */
export function out(): { write(text: string): void; c: Palette; json: boolean } {
  return {
    write: (text: string) => {
      process.stdout.write(text);
    },
    c: palette(colourEnabled(process.stdout)),
    json: false,
  };
}

/**
 * Whether the CLI may ask questions: stdin and stderr are terminals. `SLUICE_INTERACTIVE=1` forces it on
 * (for `expect`-style scripts and tests), `SLUICE_INTERACTIVE=0` off.
 */
export function interactive(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.SLUICE_INTERACTIVE === "1") return true;
  if (env.SLUICE_INTERACTIVE === "0") return false;
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/**
 * Gate of destructive commands. `--yes` proceeds; on a terminal the question is asked on stderr and only
 * `y`/`yes` proceeds; otherwise the command is refused with a usage error telling to pass `--yes`.
 */
export async function confirm(question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!interactive()) {
    throw new UsageError(
      `refusing to ${lowerFirst(question.replace(/\?$/, ""))} without confirmation: not a terminal. ` +
        "Pass --yes to confirm, or --dry-run to see what would change.",
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  try {
    process.stderr.write(`${question} [y/N] `);
    const answer = await new Promise<string>((resolve) => {
      rl.once("line", resolve);
      rl.once("close", () => resolve(""));
    });
    if (!/^y(es)?$/i.test(answer.trim())) throw new CommandFailed("aborted: nothing was changed");
  } finally {
    rl.close();
  }
}

/**
 * Runs `fn` with an AbortSignal that the first SIGINT (Ctrl-C) or SIGTERM aborts, so bulk work stops
 * between batches; a second signal exits at once with code 130.
 */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(
      "\ninterrupted: stopping after the current batch (press Ctrl-C again to quit now)\n",
    );
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
