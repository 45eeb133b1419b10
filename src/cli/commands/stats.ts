/** `sluice stats --since 24h [--csv]`: per queue and hour, completed / failed / dead and p50 / p95 duration. */
import type { Command } from "commander";
import type { Sluice } from "../../index.js";
import { withSluice } from "../context.js";
import { durationFlag } from "../filters.js";
import { durationCell, isoTime } from "../output/format.js";
import { toJson } from "../output/json.js";
import { renderTable } from "../output/table.js";

/** One row of `sluice stats --json`. */
export interface StatsRowReport {
  queue: string;
  /** Start of the hour, epoch ms. */
  hour: number;
  /** Start of the hour, ISO-8601 UTC. */
  hourIso: string;
  completed: number;
  /** Failed attempts (each retry counts). */
  failed: number;
  dead: number;
  /** Upper bound of the histogram bucket holding the percentile, ms; null when no job completed or above 1 h. */
  p50Ms: number | null;
  p95Ms: number | null;
}

const finite = (v: number | null) => (v === null || !Number.isFinite(v) ? null : v);

/** Rows of the roll-up since `sinceMs` ago, ordered by hour then queue. */
export async function gatherStats(sluice: Sluice, sinceMs: number): Promise<StatsRowReport[]> {
  const rows = await sluice.admin.stats({ sinceMs });
  return rows
    .map((r) => ({
      queue: r.queue,
      hour: r.hour,
      hourIso: isoTime(r.hour),
      completed: r.completed,
      failed: r.failed,
      dead: r.dead,
      p50Ms: finite(r.p50Ms),
      p95Ms: finite(r.p95Ms),
    }))
    .sort((a, b) => a.hour - b.hour || a.queue.localeCompare(b.queue));
}

/** CSV header line of `sluice stats --csv`. */
export const CSV_HEADER = "hour,queue,completed,failed,dead,p50_ms,p95_ms";

/**
 * CSV, one line per queue and hour, with a header line unless `header: false` (appending to a file that
 * has one); hours in ISO-8601 UTC, durations in ms (empty when none). No rows and no header: empty.
 */
export function toCsv(rows: readonly StatsRowReport[], options: { header?: boolean } = {}): string {
  const cell = (v: number | null) => (v === null ? "" : String(v));
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = rows.map((r) =>
    [r.hourIso, quote(r.queue), r.completed, r.failed, r.dead, cell(r.p50Ms), cell(r.p95Ms)].join(","),
  );
  if (options.header !== false) lines.unshift(CSV_HEADER);
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

/** Registers `sluice stats`. */
export function registerStats(program: Command): void {
  program
    .command("stats")
    .description("throughput, failures and duration percentiles per queue and hour (capacity planning)")
    .option("--since <duration>", "how far back (rounded out to whole hours)", "24h")
    .option("--csv", "print CSV (hour,queue,completed,failed,dead,p50_ms,p95_ms)")
    .option("--no-header", "with --csv: no header line (when appending to a file that has one)")
    .option("--json", "print JSON (shape in docs/cli.md)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ sluice stats --since 24h\n  $ sluice stats --since 7d --csv > capacity.csv\n" +
        "  $ sluice stats --since 1h --csv --no-header >> capacity.csv   # hourly from cron",
    )
    .action(async (opts: { since: string; csv?: boolean; json?: boolean; header: boolean }, cmd: Command) => {
      const sinceMs = durationFlag(opts.since, "--since");
      await withSluice(cmd, async (sluice) => {
        const rows = await gatherStats(sluice, sinceMs);
        if (opts.json) return void process.stdout.write(toJson(rows));
        if (opts.csv) return void process.stdout.write(toCsv(rows, { header: opts.header }));
        process.stdout.write(
          renderTable(
            [
              {
                header: "hour (UTC)",
                value: (r: StatsRowReport) => r.hourIso.slice(0, 16).replace("T", " "),
              },
              { header: "queue", value: (r) => r.queue },
              { header: "completed", value: (r) => String(r.completed), align: "right" },
              { header: "failed", value: (r) => String(r.failed), align: "right" },
              { header: "dead", value: (r) => String(r.dead), align: "right" },
              { header: "p50", value: (r) => (r.completed ? durationCell(r.p50Ms) : "-"), align: "right" },
              { header: "p95", value: (r) => (r.completed ? durationCell(r.p95Ms) : "-"), align: "right" },
            ],
            rows,
            `(no activity in the last ${opts.since})`,
          ),
        );
      });
    });
}
