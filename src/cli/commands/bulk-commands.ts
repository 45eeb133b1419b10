/**
 * `sluice retry | cancel | delete | purge | move | reprioritize`: bulk actions by id or filter, with
 * `--dry-run`, confirmation, batches, progress and safe interruption (see ../bulk.ts).
 */
import type { Command } from "commander";
import {
  CANCELLABLE_STATES,
  MOVABLE_STATES,
  PURGEABLE_STATES,
  REMOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRYABLE_STATES,
} from "../../core/states.js";
import type { Admin, AdminFilter } from "../../index.js";
import {
  type ActionResult,
  addBulkOptions,
  type BulkAction,
  type BulkFlags,
  type RunOptions,
  runBulk,
} from "../bulk.js";
import { withSluice } from "../context.js";
import { checkQueueName, UsageError } from "../errors.js";
import { addFilterOptions } from "../filters.js";

function bulkCommand(
  program: Command,
  name: string,
  description: string,
  examples: string,
  build: (flags: BulkFlags & Record<string, unknown>) => BulkAction,
  extra?: (command: Command) => Command,
): void {
  let command = program
    .command(`${name} [ids...]`)
    .description(description)
    .addHelpText("after", `\nExamples:\n${examples}`);
  command = addFilterOptions(command, { limitHelp: "act on at most this many jobs" });
  command = addBulkOptions(command);
  if (extra) command = extra(command);
  command.action(async (ids: string[], flags: BulkFlags & Record<string, unknown>, cmd: Command) => {
    const action = build(flags);
    await withSluice(cmd, (sluice) => runBulk(sluice.admin, action, ids, flags));
  });
}

const simple =
  (method: "retry" | "cancel" | "delete") =>
  (admin: Admin, filter: AdminFilter, options: RunOptions): Promise<ActionResult> =>
    admin[method](filter, options);

/** Registers the bulk commands. */
export function registerBulkCommands(program: Command): void {
  bulkCommand(
    program,
    "retry",
    "put jobs back to waiting with fresh attempts (dead: the DLQ requeue; also cancelled, completed, scheduled)",
    "  $ sluice retry 01J0ABCD…                          # one job\n" +
      "  $ sluice retry --state dead --queue rag_processing # requeue the dead-letter jobs of a queue\n" +
      "  $ sluice retry --state dead --dry-run              # see what would be requeued",
    () => ({ name: "retry", past: "retried", states: RETRYABLE_STATES, run: simple("retry") }),
  );
  bulkCommand(
    program,
    "cancel",
    "cancel waiting/scheduled/blocked jobs; running ones get their handler aborted",
    "  $ sluice cancel 01J0ABCD…\n  $ sluice cancel --queue rag_processing --where 'fileSizeMb > 500' --yes",
    () => ({
      name: "cancel",
      past: "cancelled",
      states: CANCELLABLE_STATES,
      run: (admin, filter, options) => admin.cancel(filter, options),
    }),
  );
  bulkCommand(
    program,
    "delete",
    "delete jobs that are not running",
    "  $ sluice delete 01J0ABCD…\n  $ sluice delete --queue tmp --state waiting --older-than 7d --yes",
    () => ({ name: "delete", past: "deleted", states: REMOVABLE_STATES, run: simple("delete") }),
  );
  bulkCommand(
    program,
    "purge",
    "delete finished jobs (completed, dead, cancelled), e.g. older than a week",
    "  $ sluice purge --older-than 7d --yes\n  $ sluice purge --state dead --queue rag_processing --older-than 30d --dry-run",
    (flags) => {
      // Purge is narrow by definition (finished jobs only), so it needs no --all.
      flags.all = true;
      return { name: "purge", past: "purged", states: PURGEABLE_STATES, run: simple("delete") };
    },
  );

  bulkCommand(
    program,
    "move",
    "move jobs that are not running to another queue (they keep id, attempts and place in line)",
    "  $ sluice move --queue rag_processing --where 'fileSizeMb >= 10' --to rag_large_docs --yes\n" +
      "  $ sluice move --queue seo --state dead --to seo_retry --dry-run",
    (flags) => {
      const to = flags.to;
      if (typeof to !== "string") throw new UsageError("move needs --to <queue>");
      checkQueueName(to, "--to"); // before anything is counted or asked
      return {
        name: "move",
        past: "moved",
        states: MOVABLE_STATES,
        detail: `to queue ${to}`,
        applies: (job) => job.queue !== to,
        run: (admin, filter, options) => admin.move(filter, to, options),
      };
    },
    (command) => command.requiredOption("--to <queue>", "target queue"),
  );
  bulkCommand(
    program,
    "reprioritize",
    "set the priority of jobs that have not started (lower runs first; default 0)",
    "  $ sluice reprioritize --queue rag_processing --oldest-first --limit 100 --priority -10 --yes\n" +
      "  $ sluice reprioritize --queue rag_processing --where 'fileSizeMb >= 20' --priority 10 --yes",
    (flags) => {
      const priority = Number(flags.priority);
      if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
        throw new UsageError(
          `--priority must be a whole number from -1000000 to 1000000, got "${String(flags.priority)}"`,
        );
      }
      return {
        name: "reprioritize",
        past: "reprioritized",
        states: REPRIORITIZABLE_STATES,
        detail: `to priority ${priority}`,
        applies: (job) => job.priority !== priority,
        run: (admin, filter, options) => admin.reprioritize(filter, priority, options),
      };
    },
    (command) => command.requiredOption("-p, --priority <n>", "new priority (lower runs first)"),
  );
}
