/**
 * Bulk actions (retry, cancel, delete, purge, move, reprioritize): plan, preview (`--dry-run`), confirm,
 * run in batches with progress and safe interruption, report.
 *
 * The matching jobs are walked **once**, and acted on by id, `--batch-size` at a time, through the Admin
 * bulk methods (id filter + the store-side filter + the action's states, so a job that changed meanwhile
 * is left alone):
 * - when the jobs were counted first (ids given, `--where`, `--limit`, `--oldest-first`, `--dry-run`, or a
 *   question to ask), exactly the counted ids are acted on;
 * - otherwise (`--yes` over a store-side filter) the CLI pages through `admin.listJobs` in enqueue order
 *   with the listing cursor and acts on each page. A job the action changes so that it matches again — a
 *   retried job that a live worker sends back to dead meanwhile — is behind the cursor and never taken
 *   twice (asking the store for "the matching jobs" again each batch would retry it again and again).
 *
 * Between batches the loop yields to the event loop, then checks the Ctrl-C signal: stores that answer
 * without I/O (SQLite) would otherwise never let the SIGINT handler run until the whole action is done.
 */
import type { Command } from "commander";
import type { Admin, AdminFilter, JobRecord, JobState } from "../index.js";
import { confirm, interactive, interruptible } from "./context.js";
import { CommandFailed, JobsNotFoundError, UsageError } from "./errors.js";
import { type FilterFlags, type ParsedFilter, parseFilter, wholeNumber } from "./filters.js";
import { colourEnabled, palette } from "./output/colour.js";
import { ago, plural } from "./output/format.js";
import { toJson } from "./output/json.js";
import { progressBar } from "./output/progress.js";
import { renderTable } from "./output/table.js";
import { evaluateWhere } from "./where/index.js";

/** What a bulk action does, for planning and messages. */
export interface BulkAction {
  /** Command name (`retry`). */
  name: string;
  /** Past tense for the report (`retried`). */
  past: string;
  /** States the action can change; the filter is narrowed to them. */
  states: readonly JobState[];
  /** Extra CLI-side condition (e.g. move: not already in the target queue). */
  applies?: (job: JobRecord) => boolean;
  /** Runs the Admin method for one filter. */
  run(admin: Admin, filter: AdminFilter, options: RunOptions): Promise<ActionResult>;
  /** Words after the count in the question and report (`to queue rag_large_docs`). */
  detail?: string;
}

/** Options handed to one Admin call. */
export interface RunOptions {
  batchSize: number;
  onProgress: (done: number) => void;
  signal: AbortSignal;
}

/** What one Admin call did. */
export interface ActionResult {
  count: number;
  ids: string[];
  /** cancel: active jobs whose cancellation was requested. */
  requested?: string[];
}

/** Flags every bulk command has. */
export interface BulkFlags extends FilterFlags {
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
  all?: boolean;
  batchSize: number;
}

/** Adds `--dry-run --yes --json --all --batch-size` to a bulk command. */
export function addBulkOptions(command: Command): Command {
  return command
    .option("--dry-run", "show what would change, change nothing")
    .option("-y, --yes", "do not ask for confirmation")
    .option("--json", "print the result as JSON (shape in docs/cli.md)")
    .option("--all", "allow acting without any filter (every job the action applies to)")
    .option("--batch-size <n>", "jobs per store call", wholeNumber, 500);
}

/** JSON shape of a bulk command's report (`--json`). */
export interface BulkReport {
  action: string;
  dryRun: boolean;
  /** Jobs that matched when the command looked (null when it did not count first). */
  matched: number | null;
  /** Jobs changed (dry run: that would change). */
  count: number;
  /** Ids changed (dry run: that would change), at most 10 000. */
  ids: string[];
  /** cancel only: active jobs asked to stop. */
  requested?: string[];
  /** True when stopped by Ctrl-C between batches. */
  interrupted: boolean;
  /** Dry run: the first 20 matching jobs. */
  jobs?: JobSummary[];
}

/** A job as listed in reports. */
export interface JobSummary {
  id: string;
  task: string;
  queue: string;
  state: JobState;
  priority: number;
  attempt: number;
  maxAttempts: number;
  createdAt: number;
  runAt: number;
}

/** Summary fields of a job. */
export function summarize(job: JobRecord): JobSummary {
  return {
    id: job.id,
    task: job.task,
    queue: job.queue,
    state: job.state,
    priority: job.priority,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    createdAt: job.createdAt,
    runAt: job.runAt,
  };
}

const MAX_IDS = 10_000;
const SAMPLE = 20;
/** Most jobs per store call (what Admin accepts). */
export const MAX_BATCH = 10_000;

interface Plan {
  parsed: ParsedFilter;
  ids: string[] | null;
  /** Store filter narrowed to the action's states. */
  filter: AdminFilter;
  idMode: boolean;
}

function planFor(action: BulkAction, ids: readonly string[], flags: BulkFlags): Plan {
  const parsed = parseFilter(flags);
  if (flags.batchSize > MAX_BATCH) {
    throw new UsageError(`--batch-size must be at most ${MAX_BATCH}, got ${flags.batchSize}`);
  }
  if (ids.length === 0 && !parsed.narrowed && !flags.all) {
    throw new UsageError(
      `refusing to ${action.name} every job: give job ids or a filter (--queue, --state, --task, --tag, ` +
        "--older-than, --where), or --all to mean every job",
    );
  }
  let states = [...action.states];
  if (parsed.states) {
    states = parsed.states.filter((s) => action.states.includes(s));
    if (states.length === 0) {
      throw new UsageError(
        `${action.name} acts on ${action.states.join(", ")} jobs; --state ${parsed.states.join(",")} selects none of them`,
      );
    }
  }
  const unique = [...new Set(ids)];
  const filter: AdminFilter = { ...parsed.filter, state: states };
  if (unique.length > 0) filter.ids = unique;
  const idMode =
    unique.length > 0 || parsed.where !== null || parsed.limit !== null || parsed.order === "asc";
  return { parsed, ids: unique.length > 0 ? unique : null, filter, idMode };
}

/** Throws JobsNotFoundError (exit 1, nothing changed) when any of `ids` names no job at all. */
async function requireKnown(admin: Admin, action: BulkAction, ids: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const page of chunk(ids, 1_000)) {
    const { jobs } = await admin.listJobs({ ids: page }, { limit: page.length });
    const known = new Set(jobs.map((j) => j.id));
    missing.push(...page.filter((id) => !known.has(id)));
  }
  if (missing.length > 0) throw new JobsNotFoundError(missing, action.name);
}

/** Pages through the matching jobs; returns their ids (in order) and the first few records. */
async function collect(
  admin: Admin,
  action: BulkAction,
  plan: Plan,
  signal?: AbortSignal,
): Promise<{ ids: string[]; sample: JobRecord[] }> {
  const ids: string[] = [];
  const sample: JobRecord[] = [];
  const max = plan.parsed.limit ?? Number.POSITIVE_INFINITY;
  const pageSize = 1_000;
  const pages = plan.ids ? chunk(plan.ids, pageSize).map((c) => ({ ...plan.filter, ids: c })) : [plan.filter];
  for (const filter of pages) {
    let cursor: string | null = null;
    do {
      if (signal?.aborted) return { ids, sample };
      const page = await admin.listJobs(filter, { limit: pageSize, cursor, order: plan.parsed.order });
      for (const job of page.jobs) {
        if (ids.length >= max) return { ids, sample };
        if (action.applies && !action.applies(job)) continue;
        if (plan.parsed.where && !evaluateWhere(plan.parsed.where, job.payload)) continue;
        ids.push(job.id);
        if (sample.length < SAMPLE) sample.push(job);
      }
      cursor = page.nextCursor;
    } while (cursor !== null);
  }
  return { ids, sample };
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Runs a bulk action end to end: plan, count (for the preview and the question), dry run or confirm,
 * batches with progress, interruption, report. Throws CommandFailed when interrupted (exit 1).
 */
export async function runBulk(
  admin: Admin,
  action: BulkAction,
  ids: readonly string[],
  flags: BulkFlags,
): Promise<BulkReport> {
  const plan = planFor(action, ids, flags);
  const c = palette(colourEnabled(process.stdout));
  if (plan.ids) await requireKnown(admin, action, plan.ids);
  const mustCount = plan.idMode || flags.dryRun === true || (!flags.yes && interactive());
  const found = mustCount ? await collect(admin, action, plan) : null;
  const what = `${action.name} ${found ? plural(found.ids.length, "job") : "the matching jobs"}${action.detail ? ` ${action.detail}` : ""}`;

  if (flags.dryRun) {
    const report: BulkReport = {
      action: action.name,
      dryRun: true,
      matched: found?.ids.length ?? 0,
      count: found?.ids.length ?? 0,
      ids: (found?.ids ?? []).slice(0, MAX_IDS),
      interrupted: false,
      jobs: (found?.sample ?? []).map(summarize),
    };
    if (flags.json) process.stdout.write(toJson(report));
    else {
      process.stdout.write(`dry run: would ${what}; nothing was changed\n`);
      if (found && found.sample.length > 0) {
        process.stdout.write(renderJobs(found.sample));
        if (found.ids.length > found.sample.length) {
          process.stdout.write(c.dim(`… and ${found.ids.length - found.sample.length} more\n`));
        }
      }
    }
    return report;
  }

  if (found && found.ids.length === 0) {
    const report: BulkReport = {
      action: action.name,
      dryRun: false,
      matched: 0,
      count: 0,
      ids: [],
      interrupted: false,
    };
    if (flags.json) process.stdout.write(toJson(report));
    else if (plan.ids) {
      process.stdout.write(
        `none of the ${plural(plan.ids.length, "job")} given is in a state ${action.name} acts on ` +
          `(${plan.filter.state ? [plan.filter.state].flat().join(", ") : action.states.join(", ")}): nothing to ${action.name}\n`,
      );
    } else process.stdout.write(`no matching jobs: nothing to ${action.name}\n`);
    return report;
  }

  await confirm(`${capitalise(what)}?`, flags.yes === true);

  const total: ActionResult = { count: 0, ids: [], requested: [] };
  const bar = progressBar(action.past, found ? found.ids.length : null);
  const interrupted = await interruptible(async (signal) => {
    const act = async (batch: string[]) => {
      const r = await action.run(
        admin,
        { ...plan.filter, ids: batch },
        { batchSize: batch.length, onProgress: () => {}, signal },
      );
      add(total, r);
      bar.update(total.count + (total.requested?.length ?? 0));
    };
    if (found) {
      // Exactly the jobs counted (and shown in the question), in batches.
      for (const batch of chunk(found.ids, flags.batchSize)) {
        await yieldToEventLoop();
        if (signal.aborted) return true;
        await act(batch);
      }
      return false;
    }
    // One walk over the filter, in batches: Admin lists the matches once by the listing cursor and acts
    // on each page by id (a job that matches again after the action is not taken twice), yielding and
    // checking the signal between batches.
    const r = await action.run(admin, plan.filter, {
      batchSize: flags.batchSize,
      onProgress: (done) => bar.update(done),
      signal,
    });
    add(total, r);
    return signal.aborted;
  });
  bar.finish();

  const report: BulkReport = {
    action: action.name,
    dryRun: false,
    matched: found ? found.ids.length : null,
    count: total.count,
    ids: total.ids.slice(0, MAX_IDS),
    interrupted,
  };
  if (total.requested && total.requested.length > 0) report.requested = total.requested;
  if (flags.json) process.stdout.write(toJson(report));
  else {
    const detail = action.detail ? ` ${action.detail}` : "";
    process.stdout.write(`${action.past} ${plural(total.count, "job")}${detail}\n`);
    if (total.requested && total.requested.length > 0) {
      process.stdout.write(
        `asked ${plural(total.requested.length, "running job")} to stop (their handlers are aborted)\n`,
      );
    }
    if (total.ids.length > 0 && total.ids.length <= SAMPLE) {
      process.stdout.write(c.dim(`${total.ids.join("\n")}\n`));
    }
  }
  if (interrupted) {
    throw new CommandFailed(
      `interrupted after ${plural(total.count, "job")}${found ? ` of ${found.ids.length}` : ""}; ` +
        "no batch was left half done; run the command again to continue",
    );
  }
  return report;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function add(total: ActionResult, r: ActionResult): void {
  total.count += r.count;
  if (total.ids.length < MAX_IDS) total.ids.push(...r.ids.slice(0, MAX_IDS - total.ids.length));
  if (r.requested) total.requested?.push(...r.requested);
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A table of jobs (id, task, queue, state, attempts, priority, age). */
export function renderJobs(jobs: readonly JobRecord[]): string {
  const now = Date.now();
  return renderTable(
    [
      { header: "id", value: (j: JobRecord) => j.id },
      { header: "task", value: (j) => j.task },
      { header: "queue", value: (j) => j.queue },
      { header: "state", value: (j) => j.state },
      { header: "attempt", value: (j) => `${j.attempt}/${j.maxAttempts}`, align: "right" },
      { header: "prio", value: (j) => String(j.priority), align: "right" },
      { header: "created", value: (j) => ago(j.createdAt, now) },
    ],
    jobs,
    "(no jobs)",
  );
}
