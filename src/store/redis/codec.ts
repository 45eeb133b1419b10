/** Mapping between the job model and the compact Redis job hash (field names: see lua.ts). */

import type { BatchCallbackRecord, BatchEvent, BatchRecord, DependencyPolicy } from "../../core/flows.js";
import { BATCH_EVENTS, batchCallbackJobId } from "../../core/flows.js";
import type { AttemptError, BackoffSpec, JobRecord, JobState, Json, Retention } from "../../core/job.js";
import type { QueueLimits } from "../../core/limits.js";
import type { JobTemplate, NewBatch, NewJob } from "../contract.js";

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
 * count, the distinct shapes (14 fields: everything but id and payload), then id, payload and shape index per
 * job. A batch of one task's jobs has one shape, so a job costs 3 arguments instead of 16.
 */
export function encodeNewJobs(jobs: readonly NewJob[]): string[] {
  const shapes = new Map<string, number>();
  const shapeArgs: string[] = [];
  const jobArgs: string[] = [];
  for (const job of jobs) {
    const shape = shapeOf(job);
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

/** The shape fields of a job (everything but id and payload): ENQUEUE's 14 fields (lua.ts). */
function shapeOf(job: NewJob): string[] {
  return [
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
    job.limitKey ?? "",
  ];
}

/** A dependency policy as the one character edges store (lua.ts FLOW): f, c or i. */
const POLICY_CHAR: Record<DependencyPolicy, string> = { fail: "f", continue: "c", ignore: "i" };
const POLICY_OF: Record<string, DependencyPolicy> = { f: "fail", c: "continue", i: "ignore" };

/** An edge as stored (`{p}:fup:<id>` value): the policy, and whether it is resolved. */
export function decodeEdge(text: string): { onFailure: DependencyPolicy; resolved: boolean } {
  return { onFailure: POLICY_OF[text[0] ?? "f"] ?? "fail", resolved: text[1] === "1" };
}

/** Dependencies as the flow scripts take them: JSON [[id, policy char], ...]; '' when none. */
export function encodeDependencies(dependsOn: NewJob["dependsOn"]): string {
  if (dependsOn.length === 0) return "";
  return JSON.stringify(dependsOn.map((d) => [d.id, POLICY_CHAR[d.onFailure]]));
}

/** Whether an enqueue call needs the flow script (ENQUEUE_FLOW) rather than the plain per-queue one. */
export function hasFlowFields(jobs: readonly NewJob[], batch: NewBatch | undefined): boolean {
  return batch !== undefined || jobs.some((j) => j.dependsOn.length > 0 || j.batchId !== null);
}

/**
 * The ENQUEUE_FLOW script's arguments (lua.ts): the new batch, count, shape count, shapes of 15 fields
 * (ENQUEUE's 14, then the queue), then per job id, payload, shape index, dependencies, batch id.
 */
export function encodeFlowJobs(jobs: readonly NewJob[], batch: NewBatch | undefined): string[] {
  const shapes = new Map<string, number>();
  const shapeArgs: string[] = [];
  const jobArgs: string[] = [];
  for (const job of jobs) {
    const shape = [...shapeOf(job), job.queue];
    const key = JSON.stringify(shape);
    let index = shapes.get(key);
    if (index === undefined) {
      index = shapes.size;
      shapes.set(key, index);
      shapeArgs.push(...shape);
    }
    jobArgs.push(job.id, job.payload, String(index), encodeDependencies(job.dependsOn), job.batchId ?? "");
  }
  const batchArg =
    batch === undefined
      ? ""
      : JSON.stringify({
          id: batch.id,
          ds: batch.description,
          data: batch.dataJson,
          cbs: Object.fromEntries(batch.callbacks.map((c) => [c.event, encodeTemplate(c.template)])),
        });
  return [batchArg, String(jobs.length), String(shapes.size), ...shapeArgs, ...jobArgs];
}

/**
 * A batch callback's template as the batch hash keeps it: JSON [queue, flat job hash fields] (lua.ts
 * fl_create writes them as they are). Not a batch member, no dependencies; its id is deterministic, so a
 * unique key would add nothing and is not kept.
 */
export function encodeTemplate(template: JobTemplate): string {
  const fields: string[] = [
    "t",
    template.task,
    "pr",
    String(template.priority),
    "ma",
    String(template.maxAttempts),
    "rt",
    encodeRetention(template.retention),
  ];
  if (template.backoff) fields.push("bo", JSON.stringify(template.backoff));
  if (template.timeoutMs !== null) fields.push("to", String(template.timeoutMs));
  if (template.tags.length > 0) fields.push("tg", JSON.stringify(template.tags));
  if (template.parentId) fields.push("pi", template.parentId);
  return JSON.stringify([template.queue, fields]);
}

/** A batch hash (`{p}:bt:<id>`, HGETALL as an object) as a BatchRecord. */
export function decodeBatch(id: string, f: Record<string, string>): BatchRecord {
  const callbacks: BatchCallbackRecord[] = [];
  for (const event of BATCH_EVENTS) {
    const template = f[`cb:${event}`];
    if (template === undefined) continue;
    const [queue, fields] = JSON.parse(template) as [string, string[]];
    const task = fields[fields.indexOf("t") + 1] ?? "";
    const fired = f[`cf:${event}`];
    callbacks.push({
      event: event as BatchEvent,
      task,
      queue,
      jobId: batchCallbackJobId(id, event),
      firedAt: fired === undefined ? null : Number(fired),
    });
  }
  return {
    id,
    description: f.ds ?? null,
    createdAt: Number(f.ca ?? 0),
    finishedAt: f.fa === undefined ? null : Number(f.fa),
    total: Number(f.tot ?? 0),
    completed: Number(f.c ?? 0),
    dead: Number(f.d ?? 0),
    cancelled: Number(f.x ?? 0),
    callbacks,
  };
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
  // One pass over the flat field list into locals (a field given twice: the last wins), rather than an
  // object keyed by field name: ~28 keys made that a dictionary-mode object per claimed job.
  let sq: string | undefined;
  let t: string | undefined;
  let st: string | undefined;
  let p: string | undefined;
  let r: string | undefined;
  let pr: string | undefined;
  let ra: string | undefined;
  let ca: string | undefined;
  let sa: string | undefined;
  let fa: string | undefined;
  let a: string | undefined;
  let ma: string | undefined;
  let bo: string | undefined;
  let to: string | undefined;
  let uk: string | undefined;
  let tg: string | undefined;
  let pg: string | undefined;
  let lt: string | undefined;
  let le: string | undefined;
  let w: string | undefined;
  let cr: string | undefined;
  let rt: string | undefined;
  let e: string | undefined;
  let rs: string | undefined;
  let pi: string | undefined;
  let bi: string | undefined;
  let pd: string | undefined;
  let lk: string | undefined;
  for (let i = 0; i < flat.length; i += 2) {
    const value = flat[i + 1] as string;
    switch (flat[i]) {
      case "sq":
        sq = value;
        break;
      case "t":
        t = value;
        break;
      case "s":
        st = value;
        break;
      case "p":
        p = value;
        break;
      case "r":
        r = value;
        break;
      case "pr":
        pr = value;
        break;
      case "ra":
        ra = value;
        break;
      case "ca":
        ca = value;
        break;
      case "sa":
        sa = value;
        break;
      case "fa":
        fa = value;
        break;
      case "a":
        a = value;
        break;
      case "ma":
        ma = value;
        break;
      case "bo":
        bo = value;
        break;
      case "to":
        to = value;
        break;
      case "uk":
        uk = value;
        break;
      case "tg":
        tg = value;
        break;
      case "pg":
        pg = value;
        break;
      case "lt":
        lt = value;
        break;
      case "le":
        le = value;
        break;
      case "w":
        w = value;
        break;
      case "cr":
        cr = value;
        break;
      case "rt":
        rt = value;
        break;
      case "e":
        e = value;
        break;
      case "rs":
        rs = value;
        break;
      case "pi":
        pi = value;
        break;
      case "bi":
        bi = value;
        break;
      case "pd":
        pd = value;
        break;
      case "lk":
        lk = value;
        break;
    }
  }
  const payload = reply[2] || p || null;
  const problems: string[] = [];
  if (payload === null) problems.push("payload: missing");
  const job: JobRecord = {
    id,
    seq: Number(sq ?? 0),
    task: t ?? "",
    queue,
    state: (st ?? "waiting") as JobState,
    payload: parseField<Json>(payload, "payload", null, problems),
    result: parseField<Json | null>(r, "result", null, problems),
    priority: Number(pr ?? 0),
    runAt: Number(ra ?? 0),
    createdAt: Number(ca ?? 0),
    startedAt: sa === undefined ? null : Number(sa),
    finishedAt: fa === undefined ? null : Number(fa),
    attempt: Number(a ?? 0),
    maxAttempts: Number(ma ?? 1),
    backoff: parseField<BackoffSpec | null>(bo, "backoff", null, problems),
    timeoutMs: to === undefined ? null : Number(to),
    uniqueKey: uk ?? null,
    tags: parseField<string[]>(tg, "tags", [], problems),
    progress: parseField<Json | null>(pg, "progress", null, problems),
    leaseToken: Number(lt ?? 0),
    leaseExpiresAt: le === undefined ? null : Number(le),
    workerId: w ?? null,
    cancelRequested: cr === "1",
    retention: decodeRetention(rt),
    errors: parseField<AttemptError[]>(e, "errors", [], problems),
    reason: rs ?? null,
    parentId: pi ?? null,
    batchId: bi ?? null,
    pendingDependencies: Number(pd ?? 0),
    limitKey: lk ?? null,
  };
  if (problems.length > 0) job.dataError = `stored job data is unreadable (${problems.join("; ")})`;
  return job;
}

/** A JSON field of a job hash: absent → `fallback`; unreadable → `fallback` and a problem noted. */
function parseField<T>(text: string | undefined | null, field: string, fallback: T, problems: string[]): T {
  if (text === undefined || text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    problems.push(`${field}: ${(error as Error).message}`);
    return fallback;
  }
}

/** Optional script argument: `-` absent, `=value` present. */
export function opt(value: string | number | undefined | null): string {
  return value === undefined || value === null ? "-" : `=${value}`;
}

/**
 * A queue's limits as its meta hash keeps them (`<qp>m` field `lim`, read by the claim script): JSON with
 * short names, a field only for a limit that is set (Lua's cjson turns a JSON null into a truthy value).
 * c concurrency, r / rw rate max / windowMs, kc keyConcurrency, kr / krw keyRate max / windowMs.
 */
export function encodeLimits(limits: QueueLimits): string {
  const out: Record<string, number> = {};
  if (limits.concurrency !== null) out.c = limits.concurrency;
  if (limits.rate !== null) {
    out.r = limits.rate.max;
    out.rw = limits.rate.windowMs;
  }
  if (limits.keyConcurrency !== null) out.kc = limits.keyConcurrency;
  if (limits.keyRate !== null) {
    out.kr = limits.keyRate.max;
    out.krw = limits.keyRate.windowMs;
  }
  return JSON.stringify(out);
}

export function decodeLimits(text: string): QueueLimits {
  const v = JSON.parse(text) as Record<string, number | undefined>;
  return {
    concurrency: v.c ?? null,
    rate: v.r !== undefined && v.rw !== undefined ? { max: v.r, windowMs: v.rw } : null,
    keyConcurrency: v.kc ?? null,
    keyRate: v.kr !== undefined && v.krw !== undefined ? { max: v.kr, windowMs: v.krw } : null,
  };
}
