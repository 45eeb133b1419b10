/**
 * `sluice recover [--older-than 30m] [--dry-run]`: manual orphan recovery on top of the automatic one
 * (like a `recover_orphaned_jobs --timeout 30 --dry-run` script). Without `--older-than`: active jobs whose
 * lease expired. With it: any active job started longer ago, even if its worker still heartbeats.
 */
import type { Command } from "commander";
import type { RecoveredJob } from "../../index.js";
import { confirm, withSluice } from "../context.js";
import { durationFlag, wholeNumber } from "../filters.js";
import { plural } from "../output/format.js";
import { toJson } from "../output/json.js";
import { renderTable } from "../output/table.js";

/** `sluice recover --json`. */
export interface RecoverReport {
  dryRun: boolean;
  count: number;
  jobs: RecoveredJob[];
}

function renderRecovered(jobs: readonly RecoveredJob[]): string {
  return renderTable(
    [
      { header: "id", value: (j: RecoveredJob) => j.id },
      { header: "queue", value: (j) => j.queue },
      { header: "task", value: (j) => j.task },
      { header: "worker", value: (j) => j.workerId ?? "-" },
      { header: "attempt", value: (j) => `${j.attempt}/${j.maxAttempts}`, align: "right" },
      { header: "to", value: (j) => j.to },
    ],
    jobs,
  );
}

/** Registers `sluice recover`. */
export function registerRecover(program: Command): void {
  program
    .command("recover")
    .description(
      "recover orphaned active jobs now: expired leases, or (--older-than) anything running too long",
    )
    .option(
      "--older-than <duration>",
      "recover active jobs started more than this long ago, whatever their lease",
    )
    .option("--dry-run", "list what would be recovered, change nothing")
    .option("-y, --yes", "do not ask for confirmation")
    .option("-n, --limit <n>", "at most this many jobs", wholeNumber, 10_000)
    .option("--json", "print JSON: { dryRun, count, jobs: RecoveredJob[] }")
    .addHelpText(
      "after",
      "\nExamples:\n  $ sluice recover --older-than 30m --dry-run   # what would be recovered\n" +
        "  $ sluice recover --older-than 30m --yes       # recover them (retry, or dead when out of attempts)",
    )
    .action(
      async (
        opts: { olderThan?: string; dryRun?: boolean; yes?: boolean; limit: number; json?: boolean },
        cmd: Command,
      ) => {
        const olderThanMs =
          opts.olderThan === undefined ? undefined : durationFlag(opts.olderThan, "--older-than");
        const base = { limit: opts.limit, ...(olderThanMs === undefined ? {} : { olderThanMs }) };
        await withSluice(cmd, async (sluice) => {
          const preview = await sluice.admin.recover({ ...base, dryRun: true });
          const what =
            olderThanMs === undefined ? "with an expired lease" : `running longer than ${opts.olderThan}`;
          if (opts.dryRun || preview.length === 0) {
            const report: RecoverReport = { dryRun: true, count: preview.length, jobs: preview };
            if (opts.json) process.stdout.write(toJson(report));
            else {
              process.stdout.write(
                preview.length === 0
                  ? `no active jobs ${what}: nothing to recover\n`
                  : `dry run: would recover ${plural(preview.length, "job")} ${what}; nothing was changed\n${renderRecovered(preview)}`,
              );
            }
            return;
          }
          await confirm(`Recover ${plural(preview.length, "active job")} ${what}?`, opts.yes === true);
          const done = await sluice.admin.recover({ ...base, dryRun: false });
          const report: RecoverReport = { dryRun: false, count: done.length, jobs: done };
          if (opts.json) process.stdout.write(toJson(report));
          else process.stdout.write(`recovered ${plural(done.length, "job")}\n${renderRecovered(done)}`);
        });
      },
    );
}
