/**
 * Flows on PostgreSQL: what only this engine can get wrong — concurrent transactions (READ COMMITTED) racing
 * on one flow (the lock order of src/store/postgres/migration-flows.ts), and the SQL of settle itself.
 * Behaviour shared by every engine lives in the conformance suite.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchFinishedError, BatchNotFoundError, DependencyNotFoundError } from "../../src/core/errors.js";
import type { JobRecord } from "../../src/core/job.js";
import type { NewBatch, NewJob } from "../../src/store/contract.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import {
  dropSchema,
  newJob,
  openStore,
  SHARED_URL,
  uniqueSchema,
  urlWithSchema,
  withAdmin,
} from "./pg-test-utils.js";

const schema = uniqueSchema("sluice_flows");
const url = urlWithSchema(SHARED_URL, schema);
let store: PostgresStore;
/** A second store with its own pool: its statements run in parallel with the first's on the server. */
let other: PostgresStore;
let q = 0;
const queue = () => `flows_${++q}`;

beforeAll(async () => {
  store = await openStore(url);
  other = await openStore(url);
});
afterAll(async () => {
  await store?.close();
  await other?.close();
  await dropSchema(SHARED_URL, schema);
});

/** Enqueues `job` alone in a fresh queue and claims it: its lease. */
async function running(overrides: Partial<NewJob> = {}): Promise<JobRecord> {
  const job = newJob({ queue: queue(), ...overrides });
  await store.enqueue([job]);
  const [claimed] = await store.claim({ queues: [job.queue], limit: 1, workerId: "w", leaseMs: 60_000 });
  if (!claimed) throw new Error("claim returned nothing");
  return claimed;
}

const state = async (id: string) => (await store.getJob(id))?.state ?? null;

function batchOf(id: string, events: NewBatch["callbacks"][number]["event"][]): NewBatch {
  const template = newJob({ task: "on-batch", queue: queue() });
  return {
    id,
    description: "test batch",
    callbacks: events.map((event) => ({ event, template })),
    dataJson: '{"doc":7}',
  };
}

describe("postgres flows: transitions", () => {
  it("a chain written in one call releases link by link; a failed link kills the rest of the chain", async () => {
    const a = await running();
    const b = newJob({ dependsOn: [{ id: a.id, onFailure: "fail" }] });
    const c = newJob({ dependsOn: [{ id: b.id, onFailure: "fail" }] });
    const results = await store.enqueue([b, c]);
    expect(results.map((r) => r.state)).toEqual(["blocked", "blocked"]);
    expect((await store.getJob(b.id))?.pendingDependencies).toBe(1);
    expect(await store.complete([{ id: a.id, token: a.leaseToken, result: '"A"' }])).toEqual([true]);
    expect(await state(b.id)).toBe("waiting");
    expect((await store.getJob(b.id))?.pendingDependencies).toBe(0);
    expect(await state(c.id)).toBe("blocked");

    const [claimedB] = await store.claim({ queues: [b.queue], limit: 1, workerId: "w", leaseMs: 60_000 });
    expect(claimedB?.id).toBe(b.id);
    await store.fail([
      {
        id: b.id,
        token: claimedB?.leaseToken ?? 0,
        error: { attempt: 1, outcome: "error", name: "Error", message: "boom", at: Date.now() },
        next: { state: "dead", reason: "out of attempts" },
      },
    ]);
    const killed = await store.getJob(c.id);
    expect(killed?.state).toBe("dead");
    expect(killed?.reason).toBe(`dependency ${b.id} (t) ended dead: boom`);
    expect(killed?.errors.at(-1)).toMatchObject({ outcome: "dependency-failed", code: "DEPENDENCY_FAILED" });
    expect(await store.stuckBlocked(10)).toEqual([]);
  });

  it("refuses a missing dependency or batch, a finished batch, and writes nothing", async () => {
    const a = newJob();
    const b = newJob({ dependsOn: [{ id: "no-such-job", onFailure: "fail" }] });
    await expect(store.enqueue([a, b])).rejects.toBeInstanceOf(DependencyNotFoundError);
    await expect(store.enqueue([a, b])).rejects.toMatchObject({ code: "DEPENDENCY_NOT_FOUND" });
    expect(await store.getJob(a.id)).toBeNull();
    await expect(store.enqueue([newJob({ batchId: "no-such-batch" })])).rejects.toBeInstanceOf(
      BatchNotFoundError,
    );
    const done = batchOf(`b-${queue()}`, ["complete"]);
    const first = newJob({ batchId: done.id, queue: queue() });
    await store.enqueue([first], { batch: done });
    const [m] = await store.claim({ queues: [first.queue], limit: 1, workerId: "w", leaseMs: 60_000 });
    await store.complete([{ id: first.id, token: m?.leaseToken ?? 0, result: null }]);
    expect((await store.getBatch(done.id))?.finishedAt).not.toBeNull();
    const late = newJob({ batchId: done.id });
    await expect(store.enqueue([late])).rejects.toBeInstanceOf(BatchFinishedError);
    expect(await store.getJob(late.id)).toBeNull();
  });

  it("counts a batch once per member and fires each callback once with the counts", async () => {
    const batch = batchOf(`b-${queue()}`, ["complete", "success", "death"]);
    const name = queue();
    const members = Array.from({ length: 3 }, () => newJob({ queue: name, batchId: batch.id }));
    await store.enqueue(members, { batch });
    const claimed = await store.claim({ queues: [name], limit: 3, workerId: "w", leaseMs: 60_000 });
    expect(claimed).toHaveLength(3);
    const [x, y, z] = claimed as [JobRecord, JobRecord, JobRecord];
    await store.complete([
      { id: x.id, token: x.leaseToken, result: null },
      { id: y.id, token: y.leaseToken, result: null },
    ]);
    expect(await store.getBatch(batch.id)).toMatchObject({ total: 3, completed: 2, finishedAt: null });
    await store.fail([
      {
        id: z.id,
        token: z.leaseToken,
        error: { attempt: 1, outcome: "error", name: "Error", message: "no", at: Date.now() },
        next: { state: "dead", reason: "out of attempts" },
      },
    ]);
    const record = await store.getBatch(batch.id);
    expect(record).toMatchObject({ total: 3, completed: 2, dead: 1, cancelled: 0 });
    expect(record?.finishedAt).not.toBeNull();
    const fired = Object.fromEntries(record?.callbacks.map((c) => [c.event, c.firedAt !== null]) ?? []);
    expect(fired).toEqual({ complete: true, success: false, death: true });
    const complete = await store.getJob(`${batch.id}:complete`);
    expect(complete?.payload).toEqual({
      batchId: batch.id,
      event: "complete",
      total: 3,
      completed: 2,
      dead: 1,
      cancelled: 0,
      data: { doc: 7 },
    });
    // An operator's retry of the dead member changes nothing in the batch when it completes.
    await store.retry({ ids: [z.id] }, { limit: 10 });
    const [again] = await store.claim({ queues: [name], limit: 1, workerId: "w", leaseMs: 60_000 });
    await store.complete([{ id: z.id, token: again?.leaseToken ?? 0, result: null }]);
    expect(await store.getBatch(batch.id)).toMatchObject({ completed: 2, dead: 1 });
    expect((await store.listJobs({ filter: { batchId: batch.id }, limit: 10 })).jobs).toHaveLength(3);
  });

  it("block: waits for unfinished children, resolves finished ones at once, and a cancel cascades", async () => {
    const parent = await running();
    const done = await running({ parentId: parent.id });
    await store.complete([{ id: done.id, token: done.leaseToken, result: "1" }]);
    const child = newJob({ parentId: parent.id, queue: queue() });
    await store.enqueue([child]);
    expect(
      await store.block([
        {
          id: parent.id,
          token: parent.leaseToken,
          dependsOn: [
            { id: done.id, onFailure: "fail" },
            { id: child.id, onFailure: "fail" },
          ],
        },
      ]),
    ).toEqual([true]);
    const blocked = await store.getJob(parent.id);
    expect(blocked).toMatchObject({ state: "blocked", pendingDependencies: 1, attempt: 0 });
    const flow = await store.getFlow(parent.id);
    expect(flow?.dependencies.map((d) => [d.id, d.resolved])).toEqual([
      [done.id, true],
      [child.id, false],
    ]);
    expect(flow?.children.map((c) => c.id)).toEqual([done.id, child.id]);
    expect((await store.listJobs({ filter: { parentId: parent.id }, limit: 10 })).jobs).toHaveLength(2);
    // Cancelling the blocked parent cancels its unfinished child.
    await store.cancel({ ids: [parent.id] }, { limit: 10 });
    expect(await state(parent.id)).toBe("cancelled");
    const cancelledChild = await store.getJob(child.id);
    expect(cancelledChild?.state).toBe("cancelled");
    expect(cancelledChild?.reason).toBe(`cancelled with its parent ${parent.id}`);
  });

  it("deleting a dependency that had not finished kills a fail dependent and releases a continue one", async () => {
    const dep = newJob({ queue: queue() });
    await store.enqueue([dep]);
    const strict = newJob({ dependsOn: [{ id: dep.id, onFailure: "fail" }] });
    const lenient = newJob({ dependsOn: [{ id: dep.id, onFailure: "continue" }] });
    await store.enqueue([strict, lenient]);
    await store.remove({ ids: [dep.id] }, { limit: 10 });
    expect(await store.getJob(strict.id)).toMatchObject({
      state: "dead",
      reason: `dependency ${dep.id} (t) ended deleted`,
    });
    expect(await state(lenient.id)).toBe("waiting");
    const view = await store.getFlow(lenient.id);
    expect(view?.dependencies[0]).toMatchObject({ id: dep.id, state: null, task: "", resolved: true });
  });

  it("stuckBlocked reports a blocked job whose dependency finished without resolving its edge", async () => {
    const dep = newJob({ queue: queue() });
    const blocked = newJob({ dependsOn: [{ id: dep.id, onFailure: "fail" }] });
    await store.enqueue([dep, blocked]);
    expect((await store.stuckBlocked(100)).map((j) => j.id)).not.toContain(blocked.id);
    // Edit the store behind the engine's back: the dependency completes without settling.
    await withAdmin(SHARED_URL, (client) =>
      client.query(`UPDATE "${schema}".jobs SET state = 'completed' WHERE id = $1`, [dep.id]),
    );
    const stuck = await store.stuckBlocked(100);
    expect(stuck.find((j) => j.id === blocked.id)).toMatchObject({
      pendingDependencies: 1,
      waitingFor: [{ id: dep.id, state: "completed" }],
    });
    // Leave nothing stuck for the race tests below, which check that stuckBlocked stays empty.
    await store.remove({ ids: [blocked.id] }, { limit: 10 });
    expect(await store.stuckBlocked(100)).toEqual([]);
  });
});

describe("postgres flows: races between transactions", () => {
  const ROUNDS = 40;
  /**
   * Starts `fn` after 0-3 ms, so the rounds explore different interleavings of the two transactions (sent
   * at once, one side would always reach the server first). Not a synchronisation: results are checked
   * whatever the order.
   */
  const jittered = <T>(fn: () => Promise<T>): Promise<T> =>
    new Promise((resolve) => setTimeout(resolve, Math.random() * 3)).then(fn);

  it("two transactions completing the last two dependencies at once release the dependent exactly once", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const name = queue();
      const batch = batchOf(`race-${name}`, ["complete", "success"]);
      const a = newJob({ queue: name, batchId: batch.id });
      const b = newJob({ queue: name, batchId: batch.id });
      const fanIn = newJob({
        queue: queue(),
        dependsOn: [
          { id: a.id, onFailure: "fail" },
          { id: b.id, onFailure: "fail" },
        ],
      });
      await store.enqueue([a, b, fanIn], { batch });
      const [x, y] = await store.claim({ queues: [name], limit: 2, workerId: "w", leaseMs: 60_000 });
      if (!x || !y) throw new Error("claim returned fewer than two");
      const after = await store.lastEventId();
      await Promise.all([
        jittered(() => store.complete([{ id: x.id, token: x.leaseToken, result: null }])),
        jittered(() => other.complete([{ id: y.id, token: y.leaseToken, result: null }])),
      ]);
      const released = await store.getJob(fanIn.id);
      expect(released).toMatchObject({ state: "waiting", pendingDependencies: 0 });
      const events = (await store.readEvents({ after, limit: 100, jobId: fanIn.id })).events;
      expect(events.filter((e) => e.type === "unblocked")).toHaveLength(1);
      expect(await store.getBatch(batch.id)).toMatchObject({ completed: 2 });
      const callbacks = (await store.getBatch(batch.id))?.callbacks ?? [];
      expect(callbacks.every((c) => c.firedAt !== null)).toBe(true);
      const fired = (await store.readEvents({ after, limit: 100, jobId: `${batch.id}:complete` })).events;
      expect(fired.filter((e) => e.type === "enqueued")).toHaveLength(1);
    }
  }, 60_000);

  it("block racing a child's completion never strands the parent", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const parent = await running();
      const child = await running({ parentId: parent.id });
      await Promise.all([
        store.block([
          { id: parent.id, token: parent.leaseToken, dependsOn: [{ id: child.id, onFailure: "fail" }] },
        ]),
        other.complete([{ id: child.id, token: child.leaseToken, result: "1" }]),
      ]);
      // Whichever committed first, the child is final now, so the parent must be runnable again.
      expect(await store.getJob(parent.id)).toMatchObject({ state: "waiting", pendingDependencies: 0 });
    }
    expect(await store.stuckBlocked(100)).toEqual([]);
  }, 60_000);

  it("an enqueue racing its dependency's completion never leaves the dependent blocked", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const dep = await running();
      const dependent = newJob({ dependsOn: [{ id: dep.id, onFailure: "fail" }] });
      const [enqueued] = await Promise.all([
        jittered(() => store.enqueue([dependent])),
        jittered(() => other.complete([{ id: dep.id, token: dep.leaseToken, result: null }])),
      ]);
      expect(["blocked", "waiting"]).toContain(enqueued[0]?.state);
      expect(await state(dependent.id)).toBe("waiting");
    }
    expect(await store.stuckBlocked(100)).toEqual([]);
  }, 60_000);
});
