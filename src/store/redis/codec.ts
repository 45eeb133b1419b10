/** Mapping between the job model and the compact Redis job hash (field names: see lua.ts). */
import type { AttemptError, BackoffSpec, JobRecord, JobState, Json, Retention } from "../../core/job.js";
import type { NewJob } from "../contract.js";

/** Retention as one short string: `t` keep, `f` delete at once, `a:<ms>` by age, `c:<n>` newest n. */
export function encodeRetention(retention: Retention): string {
  if (retention === true) return "t";
  if (retention === false) return "f";
  if ("ageMs" in retention) return `a:${retention.ageMs}`;
  return `c:${retention.count}`;
}

export function decodeRetention(text: string | undefined): Retention {
  if (text === undefined || text === "t") return true;
  if (text === "f") return false;
  const value = Number(text.slice(2));
  return text.startsWith("a:") ? { ageMs: value } : { count: value };
}

/**
 * The enqueue script's arguments for a chunk of jobs (keep in sync with ENQUEUE in lua.ts): count, shape
 * count, the distinct shapes (13 fields: everything but id and payload), then id, payload and shape index per
 * job. A batch of one task's jobs has one shape, so a job costs 3 arguments instead of 15.
 */
export function encodeNewJobs(jobs: readonly NewJob[]): string[] {
  const shapes = new Map<string, number>();
  const shapeArgs: string[] = [];
  const jobArgs: string[] = [];
  for (const job of jobs) {
    const shape = [
      job.idempotent ? "1" : "0",
      job.task,
      String(job.priority),
      String(Math.round(job.runAt)),
      String(job.maxAttempts),
      job.backoff ? JSON.stringify(job.backoff) : "",
      job.timeoutMs === null ? "" : String(job.timeoutMs),
      job.uniqueKey ?? "",
      job.uniqueStates.length > 0 ? `,${job.uniqueStates.join(",")},` : "",
      job.uniqueUntil === null ? "" : String(job.uniqueUntil),
      job.tags.length > 0 ? JSON.stringify(job.tags) : "",
      encodeRetention(job.retention),
      job.parentId ?? "",
    ];
    const key = JSON.stringify(shape);
    let index = shapes.get(key);
    if (index === undefined) {
      index = shapes.size;
      shapes.set(key, index);
      for (const field of shape) shapeArgs.push(field);
    }
    jobArgs.push(job.id, job.payload, String(index));
  }
  return [String(jobs.length), String(shapes.size), ...shapeArgs, ...jobArgs];
}

/** Decodes one enqueue script result: `1<state>` (created, own id) or `0<state>:<id>` (existing job). */
export function decodeEnqueued(
  ownId: string,
  text: string,
): { id: string; state: JobState; created: boolean } {
  if (text[0] === "1") return { id: ownId, state: text.slice(1) as JobState, created: true };
  const colon = text.indexOf(":");
  return { id: text.slice(colon + 1), state: text.slice(1, colon) as JobState, created: false };
}

/**
 * A job as the scripts return it: `[id, flat hash fields, payload text | null | false]`; a small payload is
 * the hash field `p` instead (null/false then).
 */
export type JobReply = [string, string[], string | null | false];

/**
 * Decodes a job reply. A field that does not parse is reported in `dataError` (the worker then fails the
 * job with that reason) instead of throwing, so one corrupt job can never stop a claim batch.
 */
export function decodeJob(queue: string, reply: JobReply): JobRecord {
  const [id, flat] = reply;
  const f: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  const payload = reply[2] || f.p || null;
  const problems: string[] = [];
  const parse = <T>(text: string | undefined | null, field: string, fallback: T): T => {
    if (text === undefined || text === null) return fallback;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      problems.push(`${field}: ${(error as Error).message}`);
      return fallback;
    }
  };
  const num = (text: string | undefined): number | null => (text === undefined ? null : Number(text));
  if (payload === null) problems.push("payload: missing");
  const job: JobRecord = {
    id,
    seq: Number(f.sq ?? 0),
    task: f.t ?? "",
    queue,
    state: (f.s ?? "waiting") as JobState,
    payload: parse<Json>(payload, "payload", null),
    result: parse<Json | null>(f.r, "result", null),
    priority: Number(f.pr ?? 0),
    runAt: Number(f.ra ?? 0),
    createdAt: Number(f.ca ?? 0),
    startedAt: num(f.sa),
    finishedAt: num(f.fa),
    attempt: Number(f.a ?? 0),
    maxAttempts: Number(f.ma ?? 1),
    backoff: parse<BackoffSpec | null>(f.bo, "backoff", null),
    timeoutMs: num(f.to),
    uniqueKey: f.uk ?? null,
    tags: parse<string[]>(f.tg, "tags", []),
    progress: parse<Json | null>(f.pg, "progress", null),
    leaseToken: Number(f.lt ?? 0),
    leaseExpiresAt: num(f.le),
    workerId: f.w ?? null,
    cancelRequested: f.cr === "1",
    retention: decodeRetention(f.rt),
    errors: parse<AttemptError[]>(f.e, "errors", []),
    reason: f.rs ?? null,
    parentId: f.pi ?? null,
    batchId: null,
    pendingDependencies: 0,
  };
  if (problems.length > 0) job.dataError = `stored job data is unreadable (${problems.join("; ")})`;
  return job;
}

/** Optional script argument: `-` absent, `=value` present. */
export function opt(value: string | number | undefined | null): string {
  return value === undefined || value === null ? "-" : `=${value}`;
}
