/** `sluice doctor`: findings with severity, evidence and the exact fix; exit 1 when anything is critical. */
import type { Command } from "commander";
import {
  buildReport,
  type DoctorReport,
  type Finding,
  gatherDoctorInput,
  runChecks,
} from "../../doctor/index.js";
import { shellQuote } from "../../doctor/target.js";
import { redactUrl, Sluice } from "../../index.js";
import { resolveUrl } from "../config.js";
import { globals, quietLogger } from "../context.js";
import { CommandFailed } from "../errors.js";
import { durationFlag } from "../filters.js";
import { colourEnabled, palette } from "../output/colour.js";
import { toJson } from "../output/json.js";

/** Renders a doctor report for people. */
export function renderDoctor(report: DoctorReport, colour: boolean, verbose: boolean): string {
  const c = palette(colour);
  const tag = (f: Finding) =>
    f.severity === "critical"
      ? c.red("CRIT")
      : f.severity === "warn"
        ? c.yellow("WARN")
        : f.severity === "skipped"
          ? c.dim("SKIP")
          : c.green(" OK ");
  const lines: string[] = [
    `${c.bold("store")} ${report.store.engine} ${report.store.version ?? ""} ${report.store.location}`.replace(
      /\s+/g,
      " ",
    ),
    "",
  ];
  for (const f of report.findings) {
    if (f.severity === "ok" && !verbose && f.check === "store-hazard") continue;
    lines.push(`${tag(f)}  ${c.dim(f.check.padEnd(18))} ${f.message}`);
    if (f.severity === "warn" || f.severity === "critical") {
      const evidence = Object.entries(f.evidence)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(" ");
      if (evidence) lines.push(`      ${c.dim(`evidence: ${evidence}`)}`);
      if (f.fix) lines.push(`      fix: ${c.cyan(f.fix)}`);
    }
  }
  const { critical, warn, ok, skipped } = report.summary;
  lines.push(
    "",
    `${critical} critical, ${warn} warning${warn === 1 ? "" : "s"}, ${ok} ok` +
      (skipped > 0 ? `, ${skipped} not checked (the store is unreachable)` : ""),
  );
  if (report.findings.some((f) => f.fix?.includes('"$SLUICE_URL"'))) {
    lines.push(c.dim("the fixes read the store URL from $SLUICE_URL (it holds a password): export it first"));
  }
  return `${lines.join("\n")}\n`;
}

/**
 * What the suggested `sluice …` commands append so they reach the same store: nothing when the URL came
 * from SLUICE_URL or a config file (the next command finds it the same way); `--url '…'` when it came
 * from --url; `--url "$SLUICE_URL"` when that URL holds a secret (anything {@link redactUrl} hides: never
 * the password, never `***`).
 */
export function commandSuffix(flagUrl: string | undefined): string {
  if (flagUrl === undefined || flagUrl === "") return "";
  const hasSecret = redactUrl(flagUrl) !== flagUrl; // a password in the user info or the query
  return hasSecret ? ' --url "$SLUICE_URL"' : ` --url ${shellQuote(flagUrl)}`;
}

/** Registers `sluice doctor`. */
export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("diagnose the store, queues, workers and jobs; print each finding with its fix")
    .option(
      "--window <duration>",
      "stagnation: a backlog older than this with no completion within it (dead letters: the hours containing it)",
      "10m",
    )
    .option("--stale-after <duration>", "a worker whose heartbeat is older than this is late", "60s")
    .option("--connect-timeout <duration>", "report the store unreachable after this long", "10s")
    .option("--json", "print JSON (shape in docs/cli.md)")
    .option("-v, --verbose", "also list ok store settings")
    .addHelpText(
      "after",
      "\nExit code 1 when any finding is critical.\n\nExamples:\n  $ sluice doctor\n  $ sluice doctor --window 30m --json | jq '.findings[] | select(.severity != \"ok\")'",
    )
    .action(
      async (
        opts: {
          window: string;
          staleAfter: string;
          connectTimeout: string;
          json?: boolean;
          verbose?: boolean;
        },
        cmd: Command,
      ) => {
        const windowMs = durationFlag(opts.window, "--window");
        const staleAfterMs = durationFlag(opts.staleAfter, "--stale-after");
        const connectTimeoutMs = durationFlag(opts.connectTimeout, "--connect-timeout");
        const flagUrl = globals(cmd).url;
        const url = await resolveUrl(flagUrl);
        const sluice = new Sluice({ url: url.url, logger: quietLogger() });
        try {
          const input = await gatherDoctorInput(sluice, {
            windowMs,
            staleAfterMs,
            connectTimeoutMs,
            commandSuffix: commandSuffix(flagUrl),
          });
          const report = buildReport(input, runChecks(input));
          process.stdout.write(
            opts.json
              ? toJson(report)
              : renderDoctor(report, colourEnabled(process.stdout), opts.verbose === true),
          );
          if (!report.ok) throw new CommandFailed(`${report.summary.critical} critical finding(s)`);
        } finally {
          await sluice.close().catch(() => {});
        }
      },
    );
}
