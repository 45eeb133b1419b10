/**
 * `sluice worker`: runs a worker, systemd-friendly. Logs JSON lines to stdout (pino); SIGTERM / SIGINT
 * stop it gracefully within the shutdown grace and exit 0 (even while a handler that ignores its abort
 * signal still runs: its job is already back in the queue); a second signal exits 1 at once; a bad config exits 2 before anything starts;
 * a store that cannot be reached exits 1.
 *
 * Task handlers come from `--tasks <module>` (or `tasks:` in the config file): an ES module whose default
 * export is `(sluice: Sluice) => void | Promise<void>` and defines the tasks on the instance it is given.
 * Without one the worker refuses to start (exit 2): it would claim jobs and send every one to dead with
 * NO_HANDLER. `--check` validates the config and the tasks module, prints what would run, and exits 0
 * without connecting to the store.
 *
 * The config file's `limits:` are applied at start (`sluice.limits(queue, …)`, fleet-wide). Health checks
 * are code, so they are not in the file: the tasks module may export `health` (queue → { check, everyMs,
 * timeoutMs }), which becomes the worker's `health` option.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { pino } from "pino";
import { resolveEventRetention } from "../../core/fleet-events.js";
import type { RegisteredTask } from "../../core/task.js";
import { formatDuration, Sluice, type WorkerOptions } from "../../index.js";
import {
  applyFileSandboxes,
  ConfigFileError,
  type FileSandboxes,
  type FileSchedule,
  loadWorkerConfig,
  parseQueuesFlag,
  refuseInlineUrl,
  resolveUrl,
  type WorkerFileConfig,
} from "../config.js";
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
  check?: boolean;
}

/** The refusal when no tasks module is given: how to give one. */
export const NO_TASKS_MESSAGE =
  "no task handlers: every job this worker claimed would go dead with NO_HANDLER, so it does not start. " +
  "Pass --tasks <module> (an ES module whose default export (sluice) => { sluice.task(…) } defines them), " +
  "or set tasks: /path/to/tasks.js in the config file given with --config";

/**
 * Imports the tasks module and lets it define tasks on `sluice`; returns its `health` export (the worker's
 * health checks by queue) when it has one.
 */
export async function loadTasks(path: string, sluice: Sluice): Promise<{ health?: WorkerOptions["health"] }> {
  let mod: { default?: unknown; health?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown; health?: unknown };
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
  if (sluice.tasks.size === 0) {
    throw new UsageError(
      `tasks module ${path} defined no task: its default export must call sluice.task(name, { queue, run }) for each task`,
    );
  }
  if (mod.health === undefined) return {};
  if (mod.health === null || typeof mod.health !== "object" || Array.isArray(mod.health)) {
    throw new UsageError(
      `tasks module ${path}: its health export must map queue names to { check: async (signal) => …, everyMs?, timeoutMs? }`,
    );
  }
  return { health: mod.health as WorkerOptions["health"] };
}

/**
 * Applies the config file's `limits:` (`sluice.limits`, fleet-wide and stored) before the worker claims:
 * the file already validated them, so only the store can refuse here.
 */
export async function applyLimits(sluice: Sluice, limits: WorkerFileConfig["limits"]): Promise<void> {
  for (const [queue, queueLimits] of Object.entries(limits ?? {})) await sluice.limits(queue, queueLimits);
}

/**
 * Declares the config file's `schedules:` on `sluice` (`sluice.schedule`): what the file could not check
 * alone (the task is defined, the payload fits its schema) fails here, as a config error at the schedule's
 * line (exit 2). Declaring is idempotent: an unchanged schedule keeps its clock, a paused one stays paused.
 * Schedules removed from the file stay in the store until `sluice schedules remove`.
 */
export async function declareSchedules(
  sluice: Sluice,
  schedules: readonly FileSchedule[],
  path: string,
): Promise<void> {
  for (const schedule of schedules) {
    try {
      await sluice.schedule(schedule.name, schedule.definition);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "STORE_UNAVAILABLE" || code === "STORE_TIMEOUT" || code === "CLOSED") throw error;
      throw new ConfigFileError(resolve(path), [
        {
          line: schedule.line,
          column: schedule.column,
          field: `schedules.${schedule.name}`,
          message: `${code ? `${String(code)}: ` : ""}${(error as Error).message}`,
        },
      ]);
    }
  }
}

/** Registers `sluice worker`. */
export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("run a worker (SIGTERM/SIGINT: graceful stop within the grace, exit 0; JSON logs on stdout)")
    .option(
      "-c, --config <file>",
      "worker config file (YAML or JSON): concurrency, queues, shutdownGrace, lease, tasks, schedules, limits, events",
    )
    .option("--queues <list>", "queues in strict order (a,b) or with weights (a:5,b:3); overrides the file")
    .option("--concurrency <n>", "jobs at once; overrides the file", wholeNumber)
    .option("--tasks <module>", "ES module whose default export (sluice) => void defines the task handlers")
    .option("--shutdown-grace <duration>", "grace before running jobs are aborted and released on stop")
    .option("--lease <duration>", "lease length (a silent worker's jobs are recovered after it)")
    .option(
      "--check",
      "validate the config and the tasks module, print what would run, exit 0 without starting",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ sluice worker --config /etc/sluice/host1.yaml\n" +
        "  $ sluice worker --check --config /etc/sluice/host1.yaml   # before a deploy\n" +
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
      if (!tasks) throw new UsageError(NO_TASKS_MESSAGE);
      const flagUrl = globals(cmd).url;
      if (flags.check) {
        await checkOnly(
          tasks,
          options,
          flags.config,
          file.schedules ?? [],
          file.limits,
          file.sandbox,
          file.events,
        );
        return;
      }
      const url =
        flagUrl === undefined && !process.env.SLUICE_URL && file.url
          ? refuseInlineUrl({ url: file.url, source: flags.config ?? "" })
          : await resolveUrl(flagUrl);

      const logger = pino({ level: process.env.SLUICE_LOG_LEVEL ?? "info" });
      // `events:` of the file: what this worker's transitions write and what its maintenance prunes.
      const sluice = new Sluice({
        url: url.url,
        logger,
        ...(file.events !== undefined ? { events: file.events } : {}),
      });
      try {
        const loaded = await loadTasks(tasks, sluice);
        if (loaded.health) options.health = loaded.health;
        if (flags.config && file.sandbox) applyFileSandboxes(sluice.tasks, file.sandbox, tasks, flags.config);
        // Before the worker starts, so its first maintenance pass already sees them.
        if (flags.config && file.schedules) await declareSchedules(sluice, file.schedules, flags.config);
        // Before the first claim, so it already obeys them.
        await applyLimits(sluice, file.limits);
      } catch (error) {
        await sluice.close().catch(() => {});
        throw error;
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
          const report = await worker.stop();
          await sluice.close();
          logger.info(
            { released: report.released.length, unsettled: report.unsettled.length },
            "sluice worker stopped",
          );
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
      // Stay alive until a signal has stopped the worker, then exit at once: a handler that ignores its abort
      // signal would keep the event loop alive forever (systemd waiting for TimeoutStopSec), and its job is
      // already back in the queue. A failed stop exits 1.
      await done.catch((error: unknown) => {
        logger.error({ err: error }, "worker stop failed");
        process.exit(1);
      });
      process.exit(0);
    });
}

/**
 * `sluice worker --check`: loads the tasks module on an instance that never connects, builds the worker
 * (validating its options) without starting it, prints what would run and returns (exit 0). Problems exit
 * 2 as they would on a real start.
 */
async function checkOnly(
  tasks: string,
  options: WorkerOptions,
  config: string | undefined,
  schedules: readonly FileSchedule[],
  limits: WorkerFileConfig["limits"],
  sandboxes?: FileSandboxes,
  events?: WorkerFileConfig["events"],
): Promise<void> {
  // A private in-memory store: creating tasks and a worker does not touch it; declaring the schedules on it
  // checks them as a real start would (task defined, payload valid) without writing to the real store.
  const sluice = new Sluice({ url: "sqlite::memory:", logger: pino({ level: "silent" }) });
  try {
    const loaded = await loadTasks(tasks, sluice);
    const withHealth = loaded.health ? { ...options, health: loaded.health } : options;
    if (config && sandboxes) applyFileSandboxes(sluice.tasks, sandboxes, tasks, config);
    if (config) await declareSchedules(sluice, schedules, config);
    try {
      sluice.worker(withHealth);
    } catch (error) {
      throw new UsageError(`invalid worker options: ${(error as Error).message}`);
    }
    const queues = (options.queues ?? ["default"]).map((q) =>
      Array.isArray(q)
        ? { name: String(q[0]), shown: `${q[0]}:${q[1]}` }
        : { name: String(q), shown: String(q) },
    );
    const served = new Set(queues.map((q) => q.name));
    const queueOf = (t: RegisteredTask) => t.defaults.queue ?? "default";
    const unserved = [...sluice.tasks.values()].filter((t) => !served.has(queueOf(t)));
    const lines = [
      `config ok${config ? `: ${config}` : ""} (nothing started)`,
      `  queues       ${queues.map((q) => q.shown).join(", ")}`,
      `  concurrency  ${options.concurrency ?? 10}`,
      `  tasks        ${[...sluice.tasks.keys()].join(", ")} (from ${tasks})`,
    ];
    if (schedules.length > 0) {
      const timing = (d: FileSchedule["definition"]) =>
        d.cron !== undefined ? `cron ${d.cron}${d.timezone ? ` (${d.timezone})` : ""}` : `every ${d.every}`;
      lines.push(
        `  schedules    ${schedules.map((s) => `${s.name} (${String(s.definition.task)}, ${timing(s.definition)})`).join(", ")}`,
      );
    }
    const limited = Object.entries(limits ?? {});
    if (limited.length > 0) {
      lines.push(`  limits       ${limited.map(([q, l]) => `${q} ${JSON.stringify(l)}`).join(", ")}`);
    }
    if (events !== undefined) {
      const kept = resolveEventRetention(events);
      lines.push(
        `  events       ${kept.enabled ? `at most ${kept.maxEvents} events, at most ${formatDuration(kept.retentionMs)}` : "off (none written)"}`,
      );
    }
    if (withHealth.health)
      lines.push(`  health       ${Object.keys(withHealth.health).join(", ")} (from ${tasks})`);
    if (unserved.length > 0) {
      lines.push(
        `  note: none of these queues runs ${unserved.map((t) => `${t.name} (queue ${queueOf(t)})`).join(", ")}`,
      );
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await sluice.close().catch(() => {});
  }
}
