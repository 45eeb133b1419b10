/** `sluice batches list` and `sluice batches show <id>`: batches, their counts and callbacks. */
import type { Command } from "commander";
import type { BatchRecord } from "../../index.js";
import { renderJobs } from "../bulk.js";
import { withSluice } from "../context.js";
import { UsageError } from "../errors.js";
import { wholeNumber } from "../filters.js";
import { colourEnabled, palette } from "../output/colour.js";
import { ago, isoTime } from "../output/format.js";
import { toJson } from "../output/json.js";
import { renderTable } from "../output/table.js";

type BatchView = BatchRecord & { pending: number };

/** "n/m" progress of a batch: final members of all. */
function progress(b: BatchView): string {
  return `${b.total - b.pending}/${b.total}`;
}

/** Callbacks as `complete ✓ success – death ✓` (fired or not). */
function callbacks(b: BatchView): string {
  if (b.callbacks.length === 0) return "-";
  return b.callbacks.map((c) => `${c.event} ${c.firedAt === null ? "-" : "fired"}`).join(", ");
}

/** Renders one batch for people. */
export function renderBatch(b: BatchView, colour: boolean): string {
  const c = palette(colour);
  const now = Date.now();
  const lines = [
    `${c.bold("batch")}      ${b.id}`,
    ...(b.description ? [`about      ${b.description}`] : []),
    `progress   ${progress(b)}  (${b.pending} pending)`,
    `completed  ${c.green(String(b.completed))}`,
    `dead       ${b.dead > 0 ? c.red(String(b.dead)) : "0"}`,
    `cancelled  ${b.cancelled}`,
    `created    ${isoTime(b.createdAt)}  (${ago(b.createdAt, now)})`,
    `finished   ${isoTime(b.finishedAt)}`,
    "",
    c.bold("callbacks"),
  ];
  if (b.callbacks.length === 0) lines.push("-");
  for (const cb of b.callbacks) {
    lines.push(
      `  ${cb.event.padEnd(8)} ${cb.task} (queue ${cb.queue})  ` +
        (cb.firedAt === null ? c.dim("not fired") : `fired ${isoTime(cb.firedAt)} as job ${cb.jobId}`),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Registers `sluice batches list` and `sluice batches show`. */
export function registerBatches(program: Command): void {
  const batches = program.command("batches").description("batches: counts, progress and callbacks");
  batches
    .command("list")
    .description("list batches, newest first")
    .option("--open", "only batches with members still pending")
    .option("--finished", "only batches whose members are all final")
    .option("-n, --limit <n>", "batches to show (default 50, at most 1000)", wholeNumber, 50)
    .option("--cursor <cursor>", "continue after a previous page (nextCursor of --json)")
    .option("--json", "print JSON: { batches: [...], nextCursor }")
    .addHelpText("after", "\nExample:\n  $ sluice batches list --open")
    .action(
      async (
        opts: { open?: boolean; finished?: boolean; limit: number; cursor?: string; json?: boolean },
        cmd: Command,
      ) => {
        if (opts.open && opts.finished) throw new UsageError("--open and --finished exclude each other");
        if (opts.limit < 1 || opts.limit > 1_000) throw new UsageError("--limit must be from 1 to 1000");
        await withSluice(cmd, async (sluice) => {
          const page = await sluice.admin.batches({
            limit: opts.limit,
            cursor: opts.cursor ?? null,
            ...(opts.open ? { finished: false } : opts.finished ? { finished: true } : {}),
          });
          if (opts.json) {
            process.stdout.write(toJson(page));
            return;
          }
          const now = Date.now();
          process.stdout.write(
            renderTable(
              [
                { header: "batch", value: (b: BatchView) => b.id },
                { header: "progress", value: progress, align: "right" },
                { header: "completed", value: (b) => String(b.completed), align: "right" },
                { header: "dead", value: (b) => String(b.dead), align: "right" },
                { header: "cancelled", value: (b) => String(b.cancelled), align: "right" },
                { header: "created", value: (b) => ago(b.createdAt, now) },
                { header: "callbacks", value: callbacks },
                { header: "about", value: (b) => b.description ?? "" },
              ],
              page.batches,
              "(no batches)",
            ),
          );
          if (page.nextCursor) process.stdout.write(`more: --cursor ${page.nextCursor}\n`);
        });
      },
    );
  batches
    .command("show <id>")
    .description("one batch: counts, progress, callbacks and when they fired, and its first members")
    .option("-n, --limit <n>", "members to list (default 20)", wholeNumber, 20)
    .option("--json", "print JSON: the batch and { members: [...] }")
    .addHelpText("after", "\nExample:\n  $ sluice batches show 01J0ABCDEF --json | jq .callbacks")
    .action(async (id: string, opts: { limit: number; json?: boolean }, cmd: Command) => {
      await withSluice(cmd, async (sluice) => {
        const batch = await sluice.admin.batch(id);
        const members = await sluice.admin.listJobs(
          { batchId: id },
          { limit: Math.max(1, opts.limit), order: "asc" },
        );
        if (opts.json) {
          process.stdout.write(toJson({ ...batch, members: members.jobs }));
          return;
        }
        process.stdout.write(renderBatch(batch, colourEnabled(process.stdout)));
        process.stdout.write(`\nmembers (first ${members.jobs.length} of ${batch.total})\n`);
        process.stdout.write(renderJobs(members.jobs));
      });
    });
}
