/**
 * Enqueue of a flow on PostgreSQL: jobs with dependencies, members of batches, and the batch an enqueue
 * call creates. Runs inside a transaction (the store's, or the application's), in the lock order of
 * migration-flows.ts: store-resident dependencies first (locked in id order and marked `has_dependents`
 * before their states are read, so a dependency completing at the same instant either waits for this
 * transaction and then sees its edges, or has committed and is seen final here), then batches, in id order.
 * Calls without flows never come here (postgres-store.ts enqueue keeps its one-statement path).
 */
import {
  BatchExistsError,
  BatchFinishedError,
  BatchNotFoundError,
  DependencyNotFoundError,
} from "../../core/errors.js";
import type { DependencyPolicy } from "../../core/flows.js";
import { dependencyFailedMessage } from "../../core/flows.js";
import type { AttemptError, JobState } from "../../core/job.js";
import type { EnqueueResult, NewBatch, NewJob } from "../contract.js";
import { retentionColumns } from "../sql-common.js";
import { dedupesByKey, insertArrays, type Queryable, rowsOf } from "./insert.js";
import { jobsPayload } from "./signals.js";
import type { statements } from "./sql.js";

/** What the flow enqueue needs from its store. */
export interface FlowEnqueueContext {
  /** The quoted schema. */
  s: string;
  /** The schema's name: the NOTIFY channel and the unique-key lock namespace. */
  schema: string;
  sql: ReturnType<typeof statements>;
  events: boolean;
  /** Runs one of `sql`'s statements on `db` (named on the store's own connections, see PostgresStore.run). */
  run: (db: Queryable, text: string, values: unknown[]) => Promise<unknown>;
}

/** True when the call needs the flow path: a batch, a member, or a dependency. */
export function isFlowCall(jobs: readonly NewJob[], batch: NewBatch | undefined): boolean {
  return batch !== undefined || jobs.some((job) => job.dependsOn.length > 0 || job.batchId !== null);
}

const FINAL: ReadonlySet<JobState> = new Set(["completed", "dead", "cancelled"]);

/** A dependency as the new edge sees it. */
interface Target {
  id: string;
  task: string;
  state: JobState;
  /** Its latest error message, or reason. */
  error: string | null;
}

interface Edge {
  dep: string;
  policy: DependencyPolicy;
  resolved: boolean;
}

/** One job of the call, decided, waiting to be inserted with the others of its run. */
interface Pending {
  index: number;
  job: NewJob;
  state: JobState;
  pending: number;
  killed: string | null;
  edges: Edge[];
}

/** Writes `jobs` (and `batch`) on `db`, which is inside a transaction. Results in input order. */
export async function enqueueFlow(
  db: Queryable,
  jobs: readonly NewJob[],
  batch: NewBatch | undefined,
  ctx: FlowEnqueueContext,
): Promise<EnqueueResult[]> {
  const { s, sql } = ctx;
  const results: (EnqueueResult | null)[] = new Array(jobs.length).fill(null);
  const killedMessages = new Map<number, string>();
  const edgesOf = new Map<number, Edge[]>();
  if (batch) await insertBatch(db, s, batch);

  // Store-resident dependencies: every named id that is not a job earlier in the call.
  const earlier = new Set<string>();
  const external = new Set<string>();
  const named = new Set<string>();
  for (const job of jobs) {
    for (const dep of job.dependsOn) {
      named.add(dep.id);
      if (!earlier.has(dep.id)) external.add(dep.id);
    }
    earlier.add(job.id);
  }
  const known = new Map<string, Target>();
  const lock = async (ids: readonly string[]) => {
    if (ids.length === 0) return;
    const rows = rowsOf<Target>(await ctx.run(db, sql.lockDependencies, [ids]));
    for (const row of rows) known.set(row.id, row);
  };
  await lock([...external]);

  if (jobs.some(dedupesByKey)) {
    const keys = [
      ...new Set(jobs.filter(dedupesByKey).map((job) => JSON.stringify([job.queue, job.uniqueKey]))),
    ];
    await ctx.run(db, sql.lockUniqueKeys, [ctx.schema, keys]);
  }

  // Jobs in call order; consecutive ones are inserted together, flushed before a job whose decision
  // needs the results of earlier ones (a dependency, a unique key).
  const firstIndex = new Map<string, number>();
  let run: Pending[] = [];
  const flush = async () => {
    if (run.length === 0) return;
    const batchRun = run;
    run = [];
    await insertRun(db, batchRun, named, results, ctx);
  };
  const now = Date.now();
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i] as NewJob;
    if (dedupesByKey(job)) {
      await flush();
      const existing = rowsOf<{ id: string; state: JobState }>(
        await ctx.run(db, sql.findUnique, [job.uniqueKey, job.uniqueStates, job.queue]),
      )[0];
      if (existing) {
        results[i] = { id: existing.id, state: existing.state, created: false };
        if (!firstIndex.has(job.id)) firstIndex.set(job.id, i);
        continue;
      }
    }
    let state: JobState = job.runAt > now ? "scheduled" : "waiting";
    let pending = 0;
    let killed: string | null = null;
    const edges: Edge[] = [];
    if (job.dependsOn.length > 0) {
      await flush();
      const targetOf = (depId: string): { id: string; created: boolean; index?: number } => {
        const k = firstIndex.get(depId);
        const result = k === undefined ? null : results[k];
        return result ? { id: result.id, created: result.created, index: k } : { id: depId, created: false };
      };
      // Earlier jobs of the call that were deduplicated are store-resident too: lock them now.
      await lock(
        job.dependsOn
          .map((dep) => targetOf(dep.id))
          .filter((t) => t.index !== undefined && !t.created && !known.has(t.id))
          .map((t) => t.id)
          .sort(),
      );
      const seen = new Set<string>();
      for (const dep of job.dependsOn) {
        const t = targetOf(dep.id);
        let target: Target | undefined;
        if (t.index !== undefined && t.created) {
          const result = results[t.index] as EnqueueResult;
          const of = jobs[t.index] as NewJob;
          target = {
            id: t.id,
            task: of.task,
            state: result.state,
            error: killedMessages.get(t.index) ?? null,
          };
        } else target = known.get(t.id);
        if (!target) throw new DependencyNotFoundError(job.id, dep.id);
        if (seen.has(target.id)) continue;
        seen.add(target.id);
        const resolved = FINAL.has(target.state);
        if (resolved && dep.onFailure === "fail" && target.state !== "completed") {
          killed ??= dependencyFailedMessage(target, target.state as "dead" | "cancelled", target.error);
        }
        if (!resolved) pending++;
        edges.push({ dep: target.id, policy: dep.onFailure, resolved });
      }
      if (killed !== null) state = "dead";
      else if (pending > 0) state = "blocked";
    }
    if (killed !== null) killedMessages.set(i, killed);
    edgesOf.set(i, edges);
    run.push({ index: i, job, state, pending, killed, edges });
    if (!firstIndex.has(job.id)) firstIndex.set(job.id, i);
  }
  await flush();

  // Edges of the jobs created (an existing job returned as it is gets none).
  const edgeRows: [string, string, string, boolean][] = [];
  for (const [i, edges] of edgesOf) {
    if (!results[i]?.created) continue;
    for (const edge of edges) edgeRows.push([(jobs[i] as NewJob).id, edge.dep, edge.policy, edge.resolved]);
  }
  if (edgeRows.length > 0) {
    await ctx.run(
      db,
      sql.insertEdges,
      [0, 1, 2, 3].map((c) => edgeRows.map((row) => row[c])),
    );
  }

  // Batches: those named by members must exist and be open (locked after every job: lock order); each
  // counts the members created.
  const added = new Map<string, number>();
  jobs.forEach((job, i) => {
    if (job.batchId !== null && results[i]?.created)
      added.set(job.batchId, (added.get(job.batchId) ?? 0) + 1);
  });
  const others = [
    ...new Set(jobs.map((job) => job.batchId).filter((id): id is string => id !== null && id !== batch?.id)),
  ].sort();
  if (others.length > 0) {
    const rows = rowsOf<{ id: string; finished_at: number | string | null }>(
      await db.query(
        `SELECT id, finished_at FROM ${s}.batches WHERE id = ANY ($1::text[]) ORDER BY id FOR NO KEY UPDATE`,
        [others],
      ),
    );
    const found = new Map(rows.map((row) => [row.id, row.finished_at]));
    for (const id of others) {
      if (!found.has(id)) throw new BatchNotFoundError(id);
      if (found.get(id) !== null) throw new BatchFinishedError(id);
    }
  }
  if (added.size > 0) {
    const ids = [...added.keys()].sort();
    await db.query(
      `UPDATE ${s}.batches b SET total = b.total + u.n FROM unnest($1::text[], $2::int[]) AS u(id, n) WHERE b.id = u.id`,
      [ids, ids.map((id) => added.get(id))],
    );
  }
  // Jobs written dead (a dependency had failed) settle like any other: counted, death callback.
  const killedIds = [...killedMessages.keys()]
    .filter((i) => results[i]?.created)
    .map((i) => (jobs[i] as NewJob).id);
  if (killedIds.length > 0) await ctx.run(db, sql.settleIds, [killedIds]);
  // A batch whose members were all deduplicated is complete at once (total 0).
  if (batch) {
    await db.query(`SELECT ${s}.count_batches($1::text[], '{0}', '{0}', '{0}', ${ctx.events})`, [[batch.id]]);
  }
  const woken = jobs.filter((_, i) => {
    const r = results[i];
    return r?.created && (r.state === "waiting" || r.state === "scheduled");
  });
  if (woken.length > 0) {
    await db.query("SELECT pg_notify($1, $2)", [ctx.schema, jobsPayload(woken.map((job) => job.queue))]);
  }
  return results as EnqueueResult[];
}

/** Inserts one run of decided jobs; fills `results` (created, or the existing job for an idempotent id). */
async function insertRun(
  db: Queryable,
  run: readonly Pending[],
  named: ReadonlySet<string>,
  results: (EnqueueResult | null)[],
  ctx: FlowEnqueueContext,
): Promise<void> {
  const jobs = run.map((p) => p.job);
  const arrays: unknown[] = [
    ...insertArrays(
      jobs,
      run.map((p) => p.state),
    ),
    jobs.map((job) => job.batchId),
    run.map((p) => p.pending),
    jobs.map((job) => named.has(job.id)),
    run.map((p) => p.killed),
    run.map((p) => (p.killed === null ? "[]" : JSON.stringify([killedError(p.killed)]))),
  ];
  const idempotent = jobs.some((job) => job.idempotent);
  const rows = rowsOf<{ id: string; state: JobState }>(
    await ctx.run(db, idempotent ? ctx.sql.insertFlowIdempotent : ctx.sql.insertFlow, arrays),
  );
  const created = new Map(rows.map((row) => [row.id, row.state]));
  const missing: Pending[] = [];
  for (const p of run) {
    const state = created.get(p.job.id);
    if (state === undefined) {
      missing.push(p);
      continue;
    }
    created.delete(p.job.id);
    results[p.index] = { id: p.job.id, state, created: true };
  }
  if (missing.length === 0) return;
  const existing = rowsOf<{ id: string; state: JobState }>(
    await ctx.run(db, ctx.sql.statesById, [missing.map((p) => p.job.id)]),
  );
  const states = new Map(existing.map((row) => [row.id, row.state]));
  for (const p of missing) {
    const state = states.get(p.job.id);
    if (state !== undefined) results[p.index] = { id: p.job.id, state, created: false };
  }
}

/** The attempt error of a job written dead because a dependency had already failed. */
function killedError(message: string): AttemptError {
  return {
    attempt: 0,
    outcome: "dependency-failed",
    name: "DependencyFailedError",
    code: "DEPENDENCY_FAILED",
    message,
    at: Date.now(),
  };
}

/** The batch row and its callbacks' templates. */
async function insertBatch(db: Queryable, s: string, batch: NewBatch): Promise<void> {
  const callbacks = batch.callbacks;
  const keep = callbacks.map((c) => retentionColumns(c.template.retention));
  // An existing id is the caller's mistake (or a retry that already created it): a typed error, nothing written.
  const exists = rowsOf(await db.query(`SELECT 1 FROM ${s}.batches WHERE id = $1`, [batch.id]));
  if (exists.length > 0) throw new BatchExistsError(batch.id);
  await db.query(
    `WITH b AS (
       INSERT INTO ${s}.batches (id, description, created_at, data)
       VALUES ($1, $2, floor(extract(epoch from now()) * 1000)::bigint, $3) RETURNING id)
     INSERT INTO ${s}.batch_callbacks (batch_id, event, ord, task, queue, priority, max_attempts, backoff,
       timeout_ms, tags, keep_mode, keep_value, parent_id)
     SELECT b.id, u.event, u.ord, u.task, u.queue, u.priority, u.max_attempts, u.backoff, u.timeout_ms, u.tags,
       u.keep_mode, u.keep_value, u.parent_id
     FROM b, unnest($4::text[], $5::text[], $6::text[], $7::int[], $8::int[], $9::text[], $10::bigint[], $11::text[],
       $12::text[], $13::bigint[], $14::text[]) WITH ORDINALITY
       AS u(event, task, queue, priority, max_attempts, backoff, timeout_ms, tags, keep_mode, keep_value, parent_id, ord)`,
    [
      batch.id,
      batch.description,
      batch.dataJson,
      callbacks.map((c) => c.event),
      callbacks.map((c) => c.template.task),
      callbacks.map((c) => c.template.queue),
      callbacks.map((c) => c.template.priority),
      callbacks.map((c) => c.template.maxAttempts),
      callbacks.map((c) => (c.template.backoff ? JSON.stringify(c.template.backoff) : null)),
      callbacks.map((c) => c.template.timeoutMs),
      callbacks.map((c) => JSON.stringify(c.template.tags)),
      keep.map((k) => k.mode),
      keep.map((k) => k.value),
      callbacks.map((c) => c.template.parentId),
    ],
  );
}
