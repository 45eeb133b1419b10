/**
 * Puts jobs straight into a state through the store contract (in the style of River's riverdrivertest
 * factories): enqueue, then claim and complete / fail / nothing. No runtime, no admin method: a case that
 * tests an admin method never depends on that method (or another one) to set up its jobs.
 *
 * `blocked` is not reachable through the contract yet (flows are not built), so it is not made here.
 */
import { isDeepStrictEqual } from "node:util";
import type { AttemptError, JobRecord, JobState } from "../../../src/core/job.js";
import type { NewJob, Store } from "../../../src/store/contract.js";
import { newJob } from "../../support/new-job.js";

/** The states the factory can make. */
export const MAKEABLE_STATES = ["scheduled", "waiting", "active", "completed", "dead", "cancelled"] as const;
export type MakeableState = (typeof MAKEABLE_STATES)[number];

/** States the factory makes through a claim (the job is claimed in its own queue). */
const CLAIMED: readonly JobState[] = ["active", "completed", "dead", "cancelled"];

export interface MakeJobOptions extends Partial<Omit<NewJob, "queue">> {
  state: MakeableState;
  queue: string;
  /** Worker id of the claim (claimed states). */
  workerId?: string;
  /**
   * For `scheduled`: a `runAt` in the future (the default, an hour ahead) is a delayed enqueue; one in the
   * past makes a due scheduled job through a failed attempt with backoff (`fail` → `scheduled`).
   */
  runAt?: number;
}

const HOUR = 3_600_000;

/** Makes one job in `options.state` and returns it as the store now holds it. */
export async function makeJob(store: Store, options: MakeJobOptions): Promise<JobRecord> {
  const { state, workerId = "factory/1/f", ...fields } = options;
  const dueScheduled = state === "scheduled" && fields.runAt !== undefined && fields.runAt <= Date.now();
  const claimed = CLAIMED.includes(state) || dueScheduled;
  const runAt =
    state === "scheduled" && !dueScheduled
      ? (fields.runAt ?? Date.now() + HOUR)
      : claimed
        ? Date.now()
        : fields.runAt;
  const job = newJob({ ...fields, ...(runAt === undefined ? {} : { runAt }) });
  const [enqueued] = await store.enqueue([job]);
  if (enqueued?.id !== job.id || !enqueued.created)
    throw new Error(`makeJob: enqueue did not create ${job.id}`);
  if (!claimed) return read(store, job.id, state);

  // Claims take the queue's first job by priority, run time and enqueue order: make claimed jobs of a queue
  // before its waiting ones (makeJobInEveryState does).
  const [lease] = await store.claim({ queues: [job.queue], limit: 1, workerId, leaseMs: 10 * 60_000 });
  if (lease?.id !== job.id) {
    throw new Error(
      `makeJob(${state}): the claim took ${lease?.id ?? "nothing"}, not ${job.id}; make claimed states of queue ${job.queue} before its waiting jobs`,
    );
  }
  const ref = { id: lease.id, token: lease.leaseToken };
  const error = (message: string): AttemptError => ({
    attempt: lease.attempt,
    outcome: "error",
    name: "Error",
    message,
    at: Date.now(),
    workerId,
  });
  let applied = [true];
  if (state === "completed") {
    applied = await store.complete([{ ...ref, result: JSON.stringify({ made: "completed" }) }]);
  } else if (state === "dead") {
    applied = await store.fail([
      { ...ref, error: error("made dead"), next: { state: "dead", reason: "made dead" } },
    ]);
  } else if (state === "cancelled") {
    applied = await store.fail([
      { ...ref, error: error("made cancelled"), next: { state: "cancelled", reason: "made cancelled" } },
    ]);
  } else if (dueScheduled) {
    applied = await store.fail([
      { ...ref, error: error("made scheduled"), next: { state: "scheduled", runAt: fields.runAt as number } },
    ]);
  }
  if (!applied[0]) throw new Error(`makeJob(${state}): the transition was refused`);
  return read(store, job.id, state);
}

async function read(store: Store, id: string, state: JobState): Promise<JobRecord> {
  const record = await store.getJob(id);
  if (record?.state !== state) {
    throw new Error(`makeJob: ${id} is ${record?.state ?? "missing"}, not ${state}`);
  }
  return record;
}

/**
 * One job in every makeable state, in `queue`, keyed by state. Claimed states are made first, so each
 * claim takes the job just enqueued; the scheduled job is an hour ahead (not due).
 */
export async function makeJobInEveryState(
  store: Store,
  queue: string,
  fields: Partial<Omit<MakeJobOptions, "state" | "queue">> = {},
): Promise<Record<MakeableState, JobRecord>> {
  const order: MakeableState[] = ["active", "completed", "dead", "cancelled", "waiting", "scheduled"];
  const made = {} as Record<MakeableState, JobRecord>;
  for (const state of order) made[state] = await makeJob(store, { ...fields, state, queue });
  return made;
}

/** The states whose job differs from before (deleted jobs count as changed). */
export async function changedStates(
  store: Store,
  before: Record<MakeableState, JobRecord>,
): Promise<MakeableState[]> {
  const changed: MakeableState[] = [];
  for (const state of MAKEABLE_STATES) {
    const now = await store.getJob(before[state].id);
    if (!isDeepStrictEqual(now, before[state])) changed.push(state);
  }
  return changed;
}
