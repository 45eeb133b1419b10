/**
 * `sluice schedules list | show | pause | resume | remove | run-now`: recurring schedules for operators.
 * Every subcommand calls the Admin API only; an unknown name is SCHEDULE_NOT_FOUND (exit 1), a malformed
 * one INVALID_OPTION (exit 2, before connecting).
 */
import type { Command } from "commander";
import { validateTaskName } from "../../core/options.js";
import { formatDuration, type ScheduleRecord } from "../../index.js";
import { confirm, withSluice } from "../context.js";
import { colourEnabled, palette } from "../output/colour.js";
import { ago, isoTime } from "../output/format.js";
import { toJson } from "../output/json.js";
import { renderTable } from "../output/table.js";

/** A schedule as `--json` prints it: the record with its template's payload as JSON, not JSON text. */
export type ScheduleJson = Omit<ScheduleRecord, "template"> & {
  template: Omit<ScheduleRecord["template"], "payload"> & { payload: unknown };
};

/** The record for `--json`. A payload that is not JSON (never written by Sluice) is shown as its text. */
export function scheduleJson(schedule: ScheduleRecord): ScheduleJson {
  let payload: unknown;
  try {
    payload = JSON.parse(schedule.template.payload);
  } catch {
    payload = schedule.template.payload;
  }
  return { ...schedule, template: { ...schedule.template, payload } };
}

/** `cron 0 3 * * * (Asia/Seoul)` or `every 15m`. */
export function timingText(schedule: ScheduleRecord): string {
  if (schedule.everyMs !== null) return `every ${formatDuration(schedule.everyMs)}`;
  return `cron ${schedule.cron ?? "?"} (${schedule.timezone ?? "UTC"})`;
}

/** When the schedule fires next, for people: a paused one does not, whatever its stopped clock says. */
function nextText(schedule: ScheduleRecord, now: number): string {
  if (schedule.paused) return "- (paused)";
  if (schedule.nextAt === null) return "- (no later date matches)";
  return `${isoTime(schedule.nextAt)} (${ago(schedule.nextAt, now)})`;
}

/** The table of `sluice schedules list`. */
export function renderSchedules(schedules: readonly ScheduleRecord[], colour: boolean): string {
  const c = palette(colour);
  const now = Date.now();
  return renderTable(
    [
      { header: "name", value: (s: ScheduleRecord) => s.name },
      { header: "task", value: (s) => s.task },
      { header: "queue", value: (s) => s.queue },
      { header: "when", value: (s) => timingText(s) },
      { header: "next run", value: (s) => nextText(s, now) },
      {
        header: "last tick",
        value: (s) => (s.lastTickAt === null ? "-" : `${isoTime(s.lastTickAt)} (${ago(s.lastTickAt, now)})`),
      },
      { header: "paused", value: (s) => (s.paused ? c.yellow("yes") : "no") },
    ],
    schedules,
    "no schedules (declare them with sluice.schedule() or schedules: in a worker config file)",
  );
}

/** Everything about one schedule, for people (`sluice schedules show`). */
export function renderSchedule(schedule: ScheduleRecord, colour: boolean): string {
  const c = palette(colour);
  const now = Date.now();
  const t = schedule.template;
  const { payload } = scheduleJson(schedule).template;
  const lines = [
    `${c.bold("schedule")}   ${schedule.name}`,
    `task       ${schedule.task}`,
    `queue      ${schedule.queue}`,
    `when       ${timingText(schedule)}`,
    `missed     ${schedule.missed}`,
    `paused     ${schedule.paused ? c.yellow("yes (no tick fires until: sluice schedules resume)") : "no"}`,
    `next run   ${nextText(schedule, now)}`,
    `last tick  ${schedule.lastTickAt === null ? "-" : `${isoTime(schedule.lastTickAt)} (${ago(schedule.lastTickAt, now)})`}`,
    `updated    ${isoTime(schedule.updatedAt)}`,
    `version    ${schedule.version}`,
    "",
    c.bold("job template"),
    `priority   ${t.priority}`,
    `attempts   ${t.maxAttempts}`,
    `backoff    ${t.backoff === null ? "default" : JSON.stringify(t.backoff)}`,
    `timeout    ${t.timeoutMs === null ? "-" : formatDuration(t.timeoutMs)}`,
    `tags       ${t.tags.length > 0 ? t.tags.join(", ") : "-"}`,
    `retention  ${JSON.stringify(t.retention)}`,
    "",
    c.bold("payload"),
    JSON.stringify(payload, null, 2),
  ];
  return `${lines.join("\n")}\n`;
}

/** Checks a schedule name given on the command line before connecting (INVALID_OPTION, exit 2). */
function checkName(name: string): string {
  return validateTaskName(name, "schedule");
}

/** Registers `sluice schedules …`. */
export function registerSchedules(program: Command): void {
  const schedules = program
    .command("schedules")
    .description("recurring schedules: list, show, pause, resume, remove, run now");

  schedules
    .command("list")
    .description("every schedule: task, queue, cron or interval, next run, last tick, paused")
    .option("--json", "print JSON: { schedules: [...] } (shape in docs/cli.md)")
    .addHelpText(
      "after",
      "\nExample:\n  $ sluice schedules list --json | jq '.schedules[] | select(.paused)'",
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withSluice(cmd, async (sluice) => {
        const all = await sluice.admin.schedules();
        process.stdout.write(
          opts.json
            ? toJson({ schedules: all.map(scheduleJson) })
            : renderSchedules(all, colourEnabled(process.stdout)),
        );
      });
    });

  schedules
    .command("show <name>")
    .description("one schedule with its job template and payload")
    .option("--json", "print JSON: the schedule (shape in docs/cli.md)")
    .addHelpText("after", "\nExample:\n  $ sluice schedules show nightly-report")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      checkName(name);
      await withSluice(cmd, async (sluice) => {
        const schedule = await sluice.admin.getSchedule(name);
        process.stdout.write(
          opts.json
            ? toJson(scheduleJson(schedule))
            : renderSchedule(schedule, colourEnabled(process.stdout)),
        );
      });
    });

  schedules
    .command("pause <name>")
    .description("stop a schedule's ticks (a worker declaring it again at start keeps it paused)")
    .option("--json", "print JSON: the schedule")
    .addHelpText("after", "\nExample:\n  $ sluice schedules pause nightly-report")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      checkName(name);
      await withSluice(cmd, async (sluice) => {
        const schedule = await sluice.admin.pauseSchedule(name);
        process.stdout.write(
          opts.json
            ? toJson(scheduleJson(schedule))
            : `paused schedule ${name}: no tick fires until: sluice schedules resume ${name}\n`,
        );
      });
    });

  schedules
    .command("resume <name>")
    .description("fire a paused schedule again from its next tick (ticks missed while paused are dropped)")
    .option("--json", "print JSON: the schedule")
    .addHelpText("after", "\nExample:\n  $ sluice schedules resume nightly-report")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      checkName(name);
      await withSluice(cmd, async (sluice) => {
        const schedule = await sluice.admin.resumeSchedule(name);
        process.stdout.write(
          opts.json
            ? toJson(scheduleJson(schedule))
            : `resumed schedule ${name}; next run ${nextText(schedule, Date.now())}\n`,
        );
      });
    });

  schedules
    .command("remove <name>")
    .description("delete a schedule (jobs it already enqueued stay)")
    .option("--dry-run", "say what would be removed, change nothing")
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print JSON: { dryRun, removed, schedule }")
    .addHelpText(
      "after",
      "\nA worker whose code or config file declares the schedule creates it again at its next start:\n" +
        "remove it there too.\n\nExamples:\n  $ sluice schedules remove nightly-report --dry-run\n" +
        "  $ sluice schedules remove nightly-report --yes",
    )
    .action(async (name: string, opts: { json?: boolean; dryRun?: boolean; yes?: boolean }, cmd: Command) => {
      checkName(name);
      await withSluice(cmd, async (sluice) => {
        const schedule = await sluice.admin.removeSchedule(name, { dryRun: true });
        const what = `remove schedule ${name} (${schedule.task} on ${schedule.queue}, ${timingText(schedule)})`;
        if (opts.dryRun) {
          process.stdout.write(
            opts.json
              ? toJson({ dryRun: true, removed: false, schedule: scheduleJson(schedule) })
              : `dry run: would ${what}; jobs it already enqueued stay; nothing was changed\n`,
          );
          return;
        }
        await confirm(`${what[0]?.toUpperCase()}${what.slice(1)}?`, opts.yes === true);
        const removed = await sluice.admin.removeSchedule(name);
        process.stdout.write(
          opts.json
            ? toJson({ dryRun: false, removed: true, schedule: scheduleJson(removed) })
            : `removed schedule ${name}; jobs it already enqueued stay\n`,
        );
      });
    });

  schedules
    .command("run-now <name>")
    .description("enqueue one job from the schedule's template now, without moving its clock")
    .option("--json", "print JSON: { schedule, id, state, created }")
    .addHelpText("after", "\nExample:\n  $ sluice schedules run-now nightly-report")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      checkName(name);
      await withSluice(cmd, async (sluice) => {
        const run = await sluice.admin.runScheduleNow(name);
        process.stdout.write(
          opts.json ? toJson(run) : `enqueued job ${run.id} (${run.state}) from schedule ${name}\n`,
        );
      });
    });
}
