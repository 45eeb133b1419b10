/** `sluice jobs list` and `sluice jobs show <id>`: find and inspect jobs. */
import type { Command } from "commander";
import type { Admin, FlowEdge, FlowJob, FlowView, JobDetail, JobRecord } from "../../index.js";
import { renderJobs } from "../bulk.js";
import { withSluice } from "../context.js";
import { UsageError } from "../errors.js";
import { addFilterOptions, type FilterFlags, parseFilter, wholeNumber } from "../filters.js";
import { colourEnabled, palette } from "../output/colour.js";
import { ago, isoTime } from "../output/format.js";
import { toJson } from "../output/json.js";
import { evaluateWhere } from "../where/index.js";

/** `sluice jobs list --json`. */
export interface JobListReport {
  jobs: JobRecord[];
  /** Pass to `--cursor` for the next page; null at the end, and always null with `--where`. */
  nextCursor: string | null;
  /** With `--where`: true when more matching jobs may exist beyond `--limit`. */
  truncated: boolean;
}

/** Lists one page of jobs; with a `--where`, scans pages until `limit` matches. */
export async function listJobs(
  admin: Admin,
  flags: FilterFlags & { cursor?: string },
): Promise<JobListReport> {
  const parsed = parseFilter(flags);
  const limit = parsed.limit ?? 50;
  if (limit > 10_000) throw new UsageError("--limit must be at most 10000");
  if (!parsed.where) {
    const page = await admin.listJobs(parsed.filter, {
      limit,
      cursor: flags.cursor ?? null,
      order: parsed.order,
    });
    return { jobs: page.jobs, nextCursor: page.nextCursor, truncated: false };
  }
  const jobs: JobRecord[] = [];
  let cursor: string | null = flags.cursor ?? null;
  do {
    const page = await admin.listJobs(parsed.filter, { limit: 1_000, cursor, order: parsed.order });
    for (const job of page.jobs) {
      if (!evaluateWhere(parsed.where, job.payload)) continue;
      if (jobs.length === limit) return { jobs, nextCursor: null, truncated: true };
      jobs.push(job);
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { jobs, nextCursor: null, truncated: false };
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** Renders one job with its attempts and logs for people. */
export function renderJob(job: JobDetail, colour: boolean, flow?: FlowView): string {
  const c = palette(colour);
  const now = Date.now();
  const state =
    job.state === "dead"
      ? c.red(job.state)
      : job.state === "completed"
        ? c.green(job.state)
        : c.yellow(job.state);
  const lines = [
    `${c.bold("job")}       ${job.id}`,
    `task      ${job.task}`,
    `queue     ${job.queue}`,
    `state     ${state}${job.reason ? `  (${job.reason})` : ""}`,
    `attempt   ${job.attempt}/${job.maxAttempts}`,
    `priority  ${job.priority}`,
    `created   ${isoTime(job.createdAt)}  (${ago(job.createdAt, now)})`,
    `run at    ${isoTime(job.runAt)}`,
    `started   ${isoTime(job.startedAt)}`,
    `finished  ${isoTime(job.finishedAt)}`,
  ];
  if (job.timeoutMs !== null) lines.push(`timeout   ${job.timeoutMs} ms`);
  if (job.workerId) lines.push(`worker    ${job.workerId}`);
  if (job.tags.length > 0) lines.push(`tags      ${job.tags.join(", ")}`);
  if (job.uniqueKey) lines.push(`unique    ${job.uniqueKey}`);
  if (job.cancelRequested) lines.push(c.yellow("cancel requested"));
  if (job.dataError) lines.push(c.red(`data error: ${job.dataError}`));
  lines.push("", c.bold("payload"), json(job.payload));
  lines.push("", c.bold("progress"), job.progress === null ? "-" : json(job.progress));
  lines.push("", c.bold("result"), job.result === null ? "-" : json(job.result));
  lines.push("", c.bold(`attempts with errors (${job.errors.length})`));
  if (job.errors.length === 0) lines.push("-");
  for (const e of job.errors) {
    lines.push(
      `${c.red(`#${e.attempt} ${e.outcome}`)} at ${isoTime(e.at)}${e.workerId ? ` on ${e.workerId}` : ""}`,
      `  ${e.name}${e.code ? ` [${e.code}]` : ""}: ${e.message}`,
    );
    if (e.note) lines.push(c.yellow(`  note: ${e.note}`));
    // The stack starts with "Name: message", already printed above: keep only its frames.
    const stack = e.stack ? e.stack.split("\n") : [];
    const firstFrame = stack.findIndex((l) => /^\s*at /.test(l));
    const frames = firstFrame > 0 ? stack.slice(firstFrame) : stack;
    if (frames.length > 0) lines.push(c.dim(frames.map((l) => `    ${l.trimStart()}`).join("\n")));
  }
  lines.push("", c.bold(`logs (${job.logs.length})`));
  if (job.logs.length === 0) lines.push("-");
  for (const l of job.logs) lines.push(`${isoTime(l.at)} #${l.attempt} ${l.message}`);
  if (flow) lines.push(...renderFlow(job.id, flow, colour));
  return `${lines.join("\n")}\n`;
}

/** Most children listed one by one; the rest are counted by state. */
const CHILDREN_SHOWN = 20;

/** The flow section of `jobs show`: parent, batch, dependencies, dependents, children. */
export function renderFlow(id: string, flow: FlowView, colour: boolean): string[] {
  const c = palette(colour);
  const state = (s: string | null) =>
    s === null ? c.dim("gone") : s === "dead" ? c.red(s) : s === "completed" ? c.green(s) : c.yellow(s);
  const job = (j: FlowJob) => `${j.id}  ${j.task || "-"}  ${state(j.state)}`;
  const edge = (e: FlowEdge) =>
    `  ${job(e)}  on failure: ${e.onFailure}${e.resolved ? "" : c.yellow("  (unresolved)")}`;
  const empty =
    !flow.parent &&
    !flow.batch &&
    flow.dependencies.length + flow.dependents.length + flow.children.length === 0;
  if (empty) return [];
  const lines = ["", c.bold("flow")];
  if (flow.parent) lines.push(`parent        ${job(flow.parent)}`);
  if (flow.batch) {
    const b = flow.batch;
    lines.push(
      `batch         ${b.id}  ${b.completed} completed, ${b.dead} dead, ${b.cancelled} cancelled of ${b.total}` +
        `${b.finishedAt === null ? "" : "  (finished)"}`,
    );
  }
  if (flow.dependencies.length > 0) {
    lines.push(`dependencies (${flow.dependencies.length})`, ...flow.dependencies.map(edge));
  }
  if (flow.dependents.length > 0)
    lines.push(`dependents (${flow.dependents.length})`, ...flow.dependents.map(edge));
  if (flow.children.length > 0) {
    const counts = new Map<string, number>();
    for (const child of flow.children)
      counts.set(child.state ?? "gone", (counts.get(child.state ?? "gone") ?? 0) + 1);
    const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(", ");
    lines.push(`children (${flow.children.length}: ${summary})`);
    for (const child of flow.children.slice(0, CHILDREN_SHOWN)) lines.push(`  ${job(child)}`);
    if (flow.children.length > CHILDREN_SHOWN) {
      lines.push(
        c.dim(`  … ${flow.children.length - CHILDREN_SHOWN} more: npx sluice jobs list --parent ${id}`),
      );
    }
  }
  return lines;
}

/** Registers `sluice jobs list` and `sluice jobs show`. */
export function registerJobs(program: Command): void {
  const jobs = program.command("jobs").description("find and inspect jobs");
  addFilterOptions(
    jobs
      .command("list")
      .description("list jobs (newest first), filtered by queue, state, task, tag, age or payload")
      .addHelpText(
        "after",
        "\nExamples:\n  $ sluice jobs list --queue rag_processing --state dead\n" +
          "  $ sluice jobs list --where 'fileSizeMb >= 10' --oldest-first --limit 20 --json",
      ),
    { limitHelp: "jobs to show (default 50, at most 10000)" },
  )
    .option("--cursor <cursor>", "continue after a previous page (nextCursor of --json)")
    .option("--json", "print JSON (shape in docs/cli.md)")
    .action(async (flags: FilterFlags & { cursor?: string; json?: boolean }, cmd: Command) => {
      parseFilter(flags); // usage errors before connecting
      await withSluice(cmd, async (sluice) => {
        const report = await listJobs(sluice.admin, flags);
        if (flags.json) {
          process.stdout.write(toJson(report));
          return;
        }
        process.stdout.write(renderJobs(report.jobs));
        if (report.nextCursor) process.stdout.write(`more: --cursor ${report.nextCursor}\n`);
        if (report.truncated) process.stdout.write(`more matching jobs exist: raise --limit\n`);
      });
    });
  jobs
    .command("show <id>")
    .description(
      "one job: payload, result, progress, every attempt's error and stack, logs, and its flow " +
        "(parent, batch, dependencies, dependents, children with their states)",
    )
    .option("--log-limit <n>", "log lines to show", wholeNumber, 200)
    .option("--json", "print JSON (shape in docs/cli.md)")
    .addHelpText("after", "\nExample:\n  $ sluice jobs show 01J0ABCDEF --json | jq .errors")
    .action(async (id: string, opts: { json?: boolean; logLimit: number }, cmd: Command) => {
      await withSluice(cmd, async (sluice) => {
        const job = await sluice.admin.getJob(id, { logLimit: opts.logLimit });
        const flow = await sluice.admin.flow(id);
        process.stdout.write(
          opts.json ? toJson({ ...job, flow }) : renderJob(job, colourEnabled(process.stdout), flow),
        );
      });
    });
}
