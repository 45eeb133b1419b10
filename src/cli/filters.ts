/**
 * The job filter flags shared by listing and bulk commands (`--queue --state --task --tag --older-than
 * --where --oldest-first --limit`), turned into an Admin filter plus the CLI-side payload predicate.
 */
import { type Command, InvalidArgumentError } from "commander";
import { type AdminFilter, isJobState, JOB_STATES, type JobState, parseDuration } from "../index.js";
import { UsageError } from "./errors.js";
import { type Expr, parseWhere } from "./where/index.js";

/** Raw filter flags as commander parses them. */
export interface FilterFlags {
  queue?: string;
  state?: string;
  task?: string;
  tag?: string;
  batch?: string;
  parent?: string;
  olderThan?: string;
  where?: string;
  oldestFirst?: boolean;
  limit?: number;
}

/** Adds the filter flags to a command. */
export function addFilterOptions(command: Command, options: { limitHelp?: string } = {}): Command {
  return command
    .option("-q, --queue <name>", "only jobs of this queue")
    .option("-s, --state <states>", `only jobs in these states (comma separated: ${JOB_STATES.join(", ")})`)
    .option("-t, --task <name>", "only jobs of this task")
    .option("--tag <tag>", "only jobs with this tag")
    .option("--batch <id>", "only members of this batch")
    .option("--parent <id>", "only children of this job")
    .option("--older-than <duration>", "only jobs created more than this long ago (30m, 2h, 7d)")
    .option(
      "-w, --where <expr>",
      "payload filter, e.g. 'fileSizeMb >= 10 and lang = \"ko\"' (see docs/cli.md)",
    )
    .option("--oldest-first", "take the oldest jobs first (default: newest first)")
    .option("-n, --limit <n>", options.limitHelp ?? "at most this many jobs", wholeNumber);
}

/** A commander argument parser for whole numbers >= 1. */
export function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number >= 1");
  return n;
}

/** Parsed filter: what the store filters, and what the CLI filters on top. */
export interface ParsedFilter {
  filter: AdminFilter;
  /** States the user asked for (undefined = any). */
  states: JobState[] | undefined;
  where: Expr | null;
  order: "asc" | "desc";
  limit: number | null;
  /** True when the user gave any narrowing flag. */
  narrowed: boolean;
}

/** Parses comma-separated states; throws UsageError naming the valid ones. */
export function parseStates(text: string): JobState[] {
  const states = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (states.length === 0) throw new UsageError(`--state needs at least one of ${JOB_STATES.join(", ")}`);
  for (const s of states) {
    if (!isJobState(s)) throw new UsageError(`--state: unknown state "${s}"; use ${JOB_STATES.join(", ")}`);
  }
  return states as JobState[];
}

/** Parses a duration flag into ms; throws UsageError. */
export function durationFlag(text: string, flag: string): number {
  try {
    return parseDuration(text, flag);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Turns the flags into a ParsedFilter (validating everything, so mistakes exit 2 before any I/O). */
export function parseFilter(flags: FilterFlags): ParsedFilter {
  const filter: AdminFilter = {};
  if (flags.queue !== undefined) filter.queue = flags.queue;
  if (flags.task !== undefined) filter.task = flags.task;
  if (flags.tag !== undefined) filter.tag = flags.tag;
  if (flags.batch !== undefined) filter.batchId = flags.batch;
  if (flags.parent !== undefined) filter.parentId = flags.parent;
  if (flags.olderThan !== undefined) filter.olderThanMs = durationFlag(flags.olderThan, "--older-than");
  const states = flags.state === undefined ? undefined : parseStates(flags.state);
  if (states) filter.state = states;
  const where = flags.where === undefined ? null : parseWhere(flags.where);
  const narrowed =
    flags.queue !== undefined ||
    flags.task !== undefined ||
    flags.tag !== undefined ||
    flags.batch !== undefined ||
    flags.parent !== undefined ||
    flags.olderThan !== undefined ||
    states !== undefined ||
    where !== null;
  return {
    filter,
    states,
    where,
    order: flags.oldestFirst ? "asc" : "desc",
    limit: flags.limit ?? null,
    narrowed,
  };
}
