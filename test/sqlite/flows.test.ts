/**
 * Flows on SQLite (core/flows.ts, src/store/sqlite/flows.ts) at the store level: what only this engine can
 * get wrong — the edges and counters of migration 7, settle on every final transition inside the same
 * write, the per-job flags that keep plain jobs off the flow tables, one batch counter update per call,
 * chains failing to their end without recursion, the application's transaction carrying a flow, and
 * stuckBlocked reporting a store edited by hand. The conformance suite covers the behaviour every engine
 * shares.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { type NewJob, type Store, silentLogger } from "../../src/index.js";
import type { JobTemplate, NewBatch } from "../../src/store/contract.js";
import { createStore } from "../../src/store/index.js";
import { newJob } from "../support/new-job.js";

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function openStore(): Promise<{ store: Store; path: string; raw: Database.Database }> {
  const dir = mkdtempSync(join(tmpdir(), "sluice-sqlite-flows-"));
  dirs.push(dir);
  const path = join(dir, "sluice.db");
  const store = await createStore(`sqlite:${path}`, { logger: silentLogger() });
  await store.open();
  cleanups.push(() => store.close());
  // A second connection to look at (and, on purpose, break) what the store wrote.
  const raw = new Database(path);
  cleanups.push(() => void raw.close());
  return { store, path, raw };
}

/** Lease tokens of every job the test claimed (a job claimed once stays active until it ends). */
const leases = new Map<string, number>();
afterEach(() => leases.clear());

/** Claims every waiting job of `queue` (one worker); returns the lease tokens of all jobs claimed so far. */
async function claimAll(store: Store, queue = "q"): Promise<Map<string, number>> {
  const jobs = await store.claim({ queues: [queue], limit: 10_000, workerId: "w", leaseMs: 60_000 });
  for (const job of jobs) leases.set(job.id, job.leaseToken);
  return leases;
}

async function runAndComplete(store: Store, ids: string[], queue = "q"): Promise<void> {
  const tokens = await claimAll(store, queue);
  const requests = ids.map((id) => ({
    id,
    token: tokens.get(id) as number,
    result: JSON.stringify({ from: id }),
  }));
  for (const r of requests) expect(r.token, `job ${r.id} was claimable`).toBeTypeOf("number");
  expect(await store.complete(requests)).toEqual(requests.map(() => true));
}

async function runAndFailDead(store: Store, id: string, message = "boom", queue = "q"): Promise<void> {
  const tokens = await claimAll(store, queue);
  const token = tokens.get(id) as number;
  const applied = await store.fail([
    {
      id,
      token,
      error: { attempt: 1, outcome: "error", name: "Error", message, at: Date.now() },
      next: { state: "dead", reason: `failed: ${message}` },
    },
  ]);
  expect(applied).toEqual([true]);
}

async function stateOf(store: Store, id: string): Promise<string | undefined> {
  return (await store.getJob(id))?.state;
}

function template(task: string, queue = "callbacks"): JobTemplate {
  const { id: _id, idempotent: _idempotent, runAt: _runAt, ...rest } = newJob({ task, queue });
  return rest;
}

function batchOf(
  id: string,
  events: NewBatch["callbacks"][number]["event"][],
  data: unknown = null,
): NewBatch {
  return {
    id,
    description: `batch ${id}`,
    callbacks: events.map((event) => ({ event, template: template(`on-${event}`) })),
    dataJson: JSON.stringify(data),
  };
}

async function eventTypes(store: Store, jobId: string): Promise<string[]> {
  return (await store.readEvents({ after: null, limit: 1000, jobId })).events.map((e) =>
    e.data && "state" in e.data ? `${e.type}:${String(e.data.state)}` : e.type,
  );
}

describe("sqlite flows: dependencies", () => {
  it("writes a chain in one call and releases each link when the one before completes", async () => {
    const { store } = await openStore();
    const a = newJob();
    const b = newJob({ dependsOn: [{ id: a.id, onFailure: "fail" }] });
    const c = newJob({ dependsOn: [{ id: b.id, onFailure: "fail" }] });
    const results = await store.enqueue([a, b, c]);
    expect(results.map((r) => r.state)).toEqual(["waiting", "blocked", "blocked"]);
    expect((await store.getJob(b.id))?.pendingDependencies).toBe(1);

    await runAndComplete(store, [a.id]);
    expect(await stateOf(store, b.id)).toBe("waiting");
    expect((await store.getJob(b.id))?.pendingDependencies).toBe(0);
    expect(await stateOf(store, c.id)).toBe("blocked");
    const flow = await store.getFlow(b.id);
    expect(flow?.dependencies).toEqual([
      {
        id: a.id,
        task: "t",
        queue: "q",
        state: "completed",
        result: { from: a.id },
        error: null,
        onFailure: "fail",
        resolved: true,
      },
    ]);
    expect(flow?.dependents.map((d) => [d.id, d.state, d.resolved])).toEqual([[c.id, "blocked", false]]);
    expect(await eventTypes(store, b.id)).toEqual(["enqueued:blocked", "unblocked:waiting"]);

    await runAndComplete(store, [b.id]);
    expect(await stateOf(store, c.id)).toBe("waiting");
  });

  it("releases a dependent whose run time is ahead as scheduled, and keeps it blocked until its last dependency", async () => {
    const { store } = await openStore();
    const a = newJob();
    const b = newJob();
    const later = Date.now() + 3_600_000;
    const d = newJob({
      runAt: later,
      dependsOn: [
        { id: a.id, onFailure: "fail" },
        { id: b.id, onFailure: "fail" },
      ],
    });
    await store.enqueue([a, b, d]);
    expect((await store.getJob(d.id))?.pendingDependencies).toBe(2);
    await runAndComplete(store, [a.id]);
    expect(await stateOf(store, d.id)).toBe("blocked");
    expect((await store.getJob(d.id))?.pendingDependencies).toBe(1);
    await runAndComplete(store, [b.id]);
    expect(await stateOf(store, d.id)).toBe("scheduled");
  });

  it("resolves an edge once: a dependency retried and completed again does not release a dependent early", async () => {
    const { store } = await openStore();
    const a = newJob();
    const slow = newJob({ queue: "slow" });
    const d = newJob({
      dependsOn: [
        { id: a.id, onFailure: "fail" },
        { id: slow.id, onFailure: "fail" },
      ],
    });
    await store.enqueue([a, slow, d]);
    await runAndComplete(store, [a.id]);
    await store.retry({ ids: [a.id] }, { limit: 10 });
    leases.delete(a.id);
    await runAndComplete(store, [a.id]);
    expect(await store.getJob(d.id)).toMatchObject({ state: "blocked", pendingDependencies: 1 });
    await runAndComplete(store, [slow.id], "slow");
    expect(await stateOf(store, d.id)).toBe("waiting");
  });

  it("rejects a dependency that does not exist (nor earlier in the call) and writes nothing", async () => {
    const { store, raw } = await openStore();
    const a = newJob();
    const b = newJob({ dependsOn: [{ id: "missing", onFailure: "fail" }] });
    await expect(store.enqueue([a, b])).rejects.toMatchObject({
      code: "DEPENDENCY_NOT_FOUND",
      jobId: b.id,
      dependencyId: "missing",
    });
    // A dependency on a LATER job of the call is not one either.
    const first = newJob();
    const second = newJob();
    await expect(
      store.enqueue([{ ...first, dependsOn: [{ id: second.id, onFailure: "fail" }] }, second]),
    ).rejects.toMatchObject({ code: "DEPENDENCY_NOT_FOUND" });
    expect(raw.prepare("SELECT COUNT(*) AS n FROM jobs").get()).toEqual({ n: 0 });
    expect(raw.prepare("SELECT COUNT(*) AS n FROM job_deps").get()).toEqual({ n: 0 });
    expect(await store.lastEventId()).toBeNull();
  });

  it("points an edge at the job a deduplicated earlier job of the call returned", async () => {
    const { store } = await openStore();
    const original = newJob({ uniqueKey: "k", uniqueStates: ["waiting"] });
    await store.enqueue([original]);
    const duplicate = newJob({ uniqueKey: "k", uniqueStates: ["waiting"] });
    const dependent = newJob({ dependsOn: [{ id: duplicate.id, onFailure: "fail" }] });
    const results = await store.enqueue([duplicate, dependent]);
    expect(results[0]).toMatchObject({ id: original.id, created: false });
    expect(results[1]?.state).toBe("blocked");
    expect((await store.getFlow(dependent.id))?.dependencies.map((d) => d.id)).toEqual([original.id]);
    await runAndComplete(store, [original.id]);
    expect(await stateOf(store, dependent.id)).toBe("waiting");
  });

  it("returns an existing idempotent job as is, adding no edge", async () => {
    const { store, raw } = await openStore();
    const a = newJob();
    const b = newJob({ idempotent: true });
    await store.enqueue([a, b]);
    const again = await store.enqueue([{ ...b, dependsOn: [{ id: a.id, onFailure: "fail" }] }]);
    expect(again).toEqual([{ id: b.id, state: "waiting", created: false }]);
    expect(raw.prepare("SELECT COUNT(*) AS n FROM job_deps").get()).toEqual({ n: 0 });
  });

  it("resolves dependencies already final at enqueue by their policy", async () => {
    const { store } = await openStore();
    const done = newJob();
    const failed = newJob();
    await store.enqueue([done, failed]);
    await runAndComplete(store, [done.id]);
    await runAndFailDead(store, failed.id, "disk full");

    const [onDone, onFailedContinue, onFailedFail] = await store.enqueue([
      newJob({ dependsOn: [{ id: done.id, onFailure: "fail" }] }),
      newJob({ dependsOn: [{ id: failed.id, onFailure: "continue" }] }),
      newJob({ dependsOn: [{ id: failed.id, onFailure: "fail" }] }),
    ]);
    expect(onDone?.state).toBe("waiting");
    expect(onFailedContinue?.state).toBe("waiting");
    expect(onFailedFail?.state).toBe("dead");
    const dead = await store.getJob(onFailedFail?.id as string);
    const message = `dependency ${failed.id} (t) ended dead: disk full`;
    expect(dead?.reason).toBe(message);
    expect(dead?.finishedAt).not.toBeNull();
    expect(dead?.errors).toEqual([
      expect.objectContaining({
        attempt: 0,
        outcome: "dependency-failed",
        name: "DependencyFailedError",
        code: "DEPENDENCY_FAILED",
        message,
      }),
    ]);
    expect(await eventTypes(store, onFailedFail?.id as string)).toEqual(["enqueued:dead"]);
  });

  it("fails a chain of 3,000 to its end in the one transition, iteratively", async () => {
    const { store, raw } = await openStore();
    const jobs: NewJob[] = [newJob()];
    for (let i = 1; i < 3000; i++) {
      jobs.push(newJob({ dependsOn: [{ id: (jobs[i - 1] as NewJob).id, onFailure: "fail" }] }));
    }
    await store.enqueue(jobs);
    await runAndFailDead(store, (jobs[0] as NewJob).id, "root cause");
    const states = raw.prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").all();
    expect(states).toEqual([{ state: "dead", n: 3000 }]);
    const last = await store.getJob((jobs[2999] as NewJob).id);
    expect(last?.reason?.startsWith(`dependency ${(jobs[2998] as NewJob).id} (t) ended dead: `)).toBe(true);
    // Each link quotes the one before, bounded: the text stays O(1) per job, not O(chain).
    expect(last?.reason?.length).toBeLessThan(1200);
    expect((await store.getJob((jobs[1] as NewJob).id))?.reason).toBe(
      `dependency ${(jobs[0] as NewJob).id} (t) ended dead: root cause`,
    );
  });

  it("applies continue and ignore: the dependent runs when a dependency ends dead", async () => {
    const { store } = await openStore();
    const a = newJob();
    const cont = newJob({ dependsOn: [{ id: a.id, onFailure: "continue" }] });
    const ignore = newJob({ dependsOn: [{ id: a.id, onFailure: "ignore" }] });
    const fail = newJob({ dependsOn: [{ id: a.id, onFailure: "fail" }] });
    await store.enqueue([a, cont, ignore, fail]);
    await runAndFailDead(store, a.id, "nope");
    expect(await stateOf(store, cont.id)).toBe("waiting");
    expect(await stateOf(store, ignore.id)).toBe("waiting");
    expect(await stateOf(store, fail.id)).toBe("dead");
    const flow = await store.getFlow(cont.id);
    expect(flow?.dependencies[0]).toMatchObject({ state: "dead", error: "nope", resolved: true });
  });

  it("settles on every final path: recover to dead, release of a cancel-requested job, operator cancel", async () => {
    const { store } = await openStore();
    const recovered = newJob({ queue: "r", maxAttempts: 1 });
    const released = newJob();
    const cancelled = newJob({ runAt: Date.now() + 3_600_000 });
    const [onRecovered, onReleased, onCancelled] = [recovered, released, cancelled].map((j) =>
      newJob({ queue: "d", dependsOn: [{ id: j.id, onFailure: "continue" }] }),
    ) as [NewJob, NewJob, NewJob];
    await store.enqueue([recovered, released, cancelled, onRecovered, onReleased, onCancelled]);
    const tokens = await claimAll(store);
    await claimAll(store, "r");

    expect(await store.cancel({ ids: [released.id] }, { limit: 10 })).toMatchObject({
      requested: [released.id],
    });
    await store.release([{ id: released.id, token: tokens.get(released.id) as number, reason: "shutdown" }]);
    expect(await stateOf(store, released.id)).toBe("cancelled");
    expect(await stateOf(store, onReleased.id)).toBe("waiting");

    await store.cancel({ ids: [cancelled.id] }, { limit: 10 });
    expect(await stateOf(store, onCancelled.id)).toBe("waiting");

    expect(await stateOf(store, onRecovered.id)).toBe("blocked");
    await store.recover({ mode: { kind: "startedBefore", at: Date.now() + 1 }, limit: 10, dryRun: false });
    expect(await stateOf(store, recovered.id)).toBe("dead");
    expect(await stateOf(store, onRecovered.id)).toBe("waiting");
  });

  it("resolves the dependents of a job deleted before it finished as deleted; a finished one changes nothing", async () => {
    const { store } = await openStore();
    const a = newJob({ runAt: Date.now() + 3_600_000 });
    const failOn = newJob({ dependsOn: [{ id: a.id, onFailure: "fail" }] });
    const continueOn = newJob({ dependsOn: [{ id: a.id, onFailure: "continue" }] });
    await store.enqueue([a, failOn, continueOn]);
    await store.remove({ ids: [a.id] }, { limit: 10 });
    expect(await stateOf(store, failOn.id)).toBe("dead");
    expect((await store.getJob(failOn.id))?.reason).toMatch(
      new RegExp(`^dependency ${a.id} \\(t\\) ended deleted`),
    );
    expect(await stateOf(store, continueOn.id)).toBe("waiting");
    // The edge stays, to a job that is gone.
    expect((await store.getFlow(continueOn.id))?.dependencies[0]).toMatchObject({
      id: a.id,
      state: null,
      task: "",
      queue: "",
      resolved: true,
    });
    // The dependent's own edges go with it when it is deleted.
    await store.remove({ ids: [continueOn.id] }, { limit: 10 });
    expect((await store.getFlow(failOn.id))?.dependencies).toHaveLength(1);
  });

  it("moves only a dependent that is still blocked (an operator cancelled it meanwhile)", async () => {
    const { store } = await openStore();
    const a = newJob();
    const b = newJob({ dependsOn: [{ id: a.id, onFailure: "fail" }] });
    await store.enqueue([a, b]);
    await store.cancel({ ids: [b.id] }, { limit: 10 });
    await runAndFailDead(store, a.id);
    const job = await store.getJob(b.id);
    expect(job?.state).toBe("cancelled");
    expect(job?.reason).toBe("cancelled by operator");
    expect((await store.getFlow(b.id))?.dependencies[0]?.resolved).toBe(true);
  });
});

describe("sqlite flows: batches", () => {
  it("counts members, fires death at the first dead one and complete at the end (not success), each once", async () => {
    const { store } = await openStore();
    const members = [newJob(), newJob(), newJob()].map((j) => ({ ...j, batchId: "b1" }));
    await store.enqueue(members, { batch: batchOf("b1", ["complete", "success", "death"], { doc: 7 }) });
    expect(await store.getBatch("b1")).toMatchObject({ total: 3, completed: 0, finishedAt: null });

    await runAndFailDead(store, (members[0] as NewJob).id);
    const death = await store.getJob("b1:death");
    expect(death?.payload).toEqual({
      batchId: "b1",
      event: "death",
      total: 3,
      completed: 0,
      dead: 1,
      cancelled: 0,
      data: { doc: 7 },
    });
    expect(death).toMatchObject({ task: "on-death", queue: "callbacks", batchId: null });
    await runAndComplete(store, [(members[1] as NewJob).id, (members[2] as NewJob).id]);
    const batch = await store.getBatch("b1");
    expect(batch).toMatchObject({ total: 3, completed: 2, dead: 1, cancelled: 0 });
    expect(batch?.finishedAt).not.toBeNull();
    expect(batch?.callbacks.map((c) => [c.event, c.jobId, c.firedAt !== null])).toEqual([
      ["complete", "b1:complete", true],
      ["success", "b1:success", false],
      ["death", "b1:death", true],
    ]);
    expect((await store.getJob("b1:complete"))?.payload).toMatchObject({ completed: 2, dead: 1 });
    expect(await store.getJob("b1:success")).toBeNull();

    // An operator retrying the dead member after the end: no count changes, nothing fires again.
    await store.retry({ ids: [(members[0] as NewJob).id] }, { limit: 10 });
    await runAndComplete(store, [(members[0] as NewJob).id]);
    expect(await store.getBatch("b1")).toMatchObject({
      completed: 2,
      dead: 1,
      finishedAt: batch?.finishedAt,
    });
    const callbacks = await store.listJobs({ filter: { queue: "callbacks" }, limit: 10 });
    expect(callbacks.jobs).toHaveLength(2);
  });

  it("adds one counter update per batch per completion call, however many members complete", async () => {
    const { store, raw } = await openStore();
    const members = Array.from({ length: 100 }, () => newJob({ batchId: "big" }));
    await store.enqueue(members, { batch: batchOf("big", ["complete", "success"]) });
    raw.exec(`CREATE TABLE counter_updates (n INTEGER);
      CREATE TRIGGER count_updates AFTER UPDATE OF completed ON batches BEGIN INSERT INTO counter_updates VALUES (1); END`);
    await runAndComplete(
      store,
      members.map((m) => m.id),
    );
    expect(raw.prepare("SELECT COUNT(*) AS n FROM counter_updates").get()).toEqual({ n: 1 });
    expect(await store.getBatch("big")).toMatchObject({ total: 100, completed: 100 });
    expect((await store.getJob("big:success"))?.payload).toMatchObject({ total: 100, completed: 100 });
  });

  it("ends a batch whose members were all deduplicated at once, with counts 0", async () => {
    const { store } = await openStore();
    const existing = newJob({ idempotent: true });
    await store.enqueue([existing]);
    const results = await store.enqueue([{ ...existing, batchId: "empty" }], {
      batch: batchOf("empty", ["complete", "success"]),
    });
    expect(results[0]?.created).toBe(false);
    const batch = await store.getBatch("empty");
    expect(batch).toMatchObject({ total: 0, completed: 0 });
    expect(batch?.finishedAt).not.toBeNull();
    expect((await store.getJob("empty:success"))?.payload).toMatchObject({ total: 0, event: "success" });
  });

  it("extends an open batch, and rejects a missing or finished one without writing", async () => {
    const { store, raw } = await openStore();
    const first = newJob({ batchId: "b" });
    await store.enqueue([first], { batch: batchOf("b", ["complete"]) });
    await store.enqueue([newJob({ batchId: "b" })]);
    expect((await store.getBatch("b"))?.total).toBe(2);
    await expect(store.enqueue([newJob(), newJob({ batchId: "nope" })])).rejects.toMatchObject({
      code: "BATCH_NOT_FOUND",
      batchId: "nope",
    });
    const jobs = (raw.prepare("SELECT COUNT(*) AS n FROM jobs").get() as { n: number }).n;
    await store.cancel({ batchId: "b" }, { limit: 10 });
    expect(await store.getBatch("b")).toMatchObject({ total: 2, cancelled: 2 });
    await expect(store.enqueue([newJob({ batchId: "b" })])).rejects.toMatchObject({ code: "BATCH_FINISHED" });
    // complete fired (one callback job), nothing of the rejected calls.
    expect(raw.prepare("SELECT COUNT(*) AS n FROM jobs").get()).toEqual({ n: jobs + 1 });
  });

  it("rejects a batch with no member and a batch id already used", async () => {
    const { store, raw } = await openStore();
    await expect(store.enqueue([newJob()], { batch: batchOf("x", []) })).rejects.toMatchObject({
      code: "INVALID_OPTION",
    });
    await store.enqueue([newJob({ batchId: "x" })], { batch: batchOf("x", []) });
    await expect(
      store.enqueue([newJob({ batchId: "x" })], { batch: batchOf("x", []) }),
    ).rejects.toMatchObject({
      code: "BATCH_EXISTS",
    });
    expect(raw.prepare("SELECT COUNT(*) AS n FROM jobs").get()).toEqual({ n: 1 });
  });

  it("counts a member deleted before it finished as cancelled, and a member written dead at enqueue as dead", async () => {
    const { store } = await openStore();
    const failed = newJob();
    await store.enqueue([failed]);
    await runAndFailDead(store, failed.id);
    const doomed = newJob({ batchId: "m", dependsOn: [{ id: failed.id, onFailure: "fail" }] });
    const deleted = newJob({ batchId: "m" });
    await store.enqueue([doomed, deleted], { batch: batchOf("m", ["death", "complete"]) });
    expect(await store.getBatch("m")).toMatchObject({ total: 2, dead: 1 });
    expect(await store.getJob("m:death")).not.toBeNull();
    await store.remove({ ids: [deleted.id] }, { limit: 10 });
    const batch = await store.getBatch("m");
    expect(batch).toMatchObject({ total: 2, dead: 1, cancelled: 1 });
    expect(batch?.finishedAt).not.toBeNull();
  });

  it("lists batches newest first with an opaque cursor and the finished filter", async () => {
    const { store } = await openStore();
    for (const id of ["b1", "b2", "b3"]) {
      await store.enqueue([newJob({ batchId: id })], { batch: batchOf(id, []) });
    }
    await store.cancel({ batchId: "b2" }, { limit: 10 });
    const first = await store.listBatches({ limit: 2 });
    expect(first.batches.map((b) => b.id)).toEqual(["b3", "b2"]);
    const second = await store.listBatches({ limit: 2, cursor: first.nextCursor });
    expect(second).toMatchObject({ batches: [{ id: "b1" }], nextCursor: null });
    expect((await store.listBatches({ limit: 10, finished: true })).batches.map((b) => b.id)).toEqual(["b2"]);
    expect((await store.listBatches({ limit: 10, finished: false })).batches.map((b) => b.id)).toEqual([
      "b3",
      "b1",
    ]);
    await expect(store.listBatches({ limit: 1, cursor: "garbage" })).rejects.toMatchObject({
      code: "INVALID_OPTION",
    });
  });
});

describe("sqlite flows: parents and children", () => {
  it("cancels a cancelled parent's children: waiting, blocked and held at once, running by request, recursively", async () => {
    const { store } = await openStore();
    const parent = newJob({ queue: "p" });
    await store.enqueue([parent]);
    const parentToken = (await claimAll(store, "p")).get(parent.id) as number;
    const running = newJob({ queue: "run", parentId: parent.id });
    const held = newJob({ queue: "held", parentId: parent.id });
    const waiting = newJob({ parentId: parent.id });
    const blocked = newJob({ parentId: parent.id, dependsOn: [{ id: running.id, onFailure: "continue" }] });
    const grandchild = newJob({ parentId: waiting.id });
    await store.enqueue([running, held, waiting, blocked, grandchild]);
    await claimAll(store, "run");
    await store.claim({ queues: ["held"], limit: 1, workerId: "w2", leaseMs: 60_000, start: 0 });

    await store.cancel({ ids: [parent.id] }, { limit: 10 });
    await store.release([{ id: parent.id, token: parentToken, reason: "cancelled" }]);
    expect(await stateOf(store, parent.id)).toBe("cancelled");
    for (const child of [held, waiting, blocked, grandchild]) {
      const job = await store.getJob(child.id);
      expect(job?.state, child.id).toBe("cancelled");
    }
    expect((await store.getJob(waiting.id))?.reason).toBe(`cancelled with its parent ${parent.id}`);
    expect((await store.getJob(grandchild.id))?.reason).toBe(`cancelled with its parent ${waiting.id}`);
    expect((await store.getJob(running.id))?.cancelRequested).toBe(true);
    const flow = await store.getFlow(parent.id);
    expect(flow?.children.map((c) => c.id)).toEqual([running.id, held.id, waiting.id, blocked.id]);
    expect((await store.getFlow(grandchild.id))?.parent).toMatchObject({
      id: waiting.id,
      state: "cancelled",
    });
    expect((await store.listJobs({ filter: { parentId: parent.id }, limit: 10 })).jobs).toHaveLength(4);
  });

  it("block: waits for children, runs again once they are final; the attempt is not charged", async () => {
    const { store } = await openStore();
    const parent = newJob({ queue: "p" });
    await store.enqueue([parent]);
    const token = (await claimAll(store, "p")).get(parent.id) as number;
    const kids = [newJob({ parentId: parent.id }), newJob({ parentId: parent.id })];
    await store.enqueue(kids);
    const dependsOn = kids.map((k) => ({ id: k.id, onFailure: "continue" as const }));
    expect(await store.block([{ id: parent.id, token: token + 1, dependsOn }])).toEqual([false]);
    expect(await store.block([{ id: parent.id, token, dependsOn }])).toEqual([true]);
    const blocked = await store.getJob(parent.id);
    expect(blocked).toMatchObject({ state: "blocked", attempt: 0, pendingDependencies: 2, workerId: null });
    await runAndComplete(store, [(kids[0] as NewJob).id]);
    await runAndFailDead(store, (kids[1] as NewJob).id);
    expect(await stateOf(store, parent.id)).toBe("waiting");
    expect(await eventTypes(store, parent.id)).toEqual([
      "enqueued:waiting",
      "active",
      "blocked",
      "unblocked:waiting",
    ]);
    // Second round: an edge of the first round is updated in place; children already final resolve at once.
    const again = (await claimAll(store, "p")).get(parent.id) as number;
    expect((await store.getJob(parent.id))?.attempt).toBe(1);
    expect(await store.block([{ id: parent.id, token: again, dependsOn }])).toEqual([true]);
    expect(await stateOf(store, parent.id)).toBe("waiting");
    expect((await store.getFlow(parent.id))?.dependencies).toHaveLength(2);
  });

  it("block: dead by policy on a failed child, cancelled when a cancel was requested", async () => {
    const { store } = await openStore();
    const parent = newJob({ queue: "p" });
    const other = newJob({ queue: "p" });
    await store.enqueue([parent, other]);
    const tokens = await claimAll(store, "p");
    const child = newJob();
    const kid = newJob({ queue: "k", parentId: other.id });
    await store.enqueue([child, kid]);
    await runAndFailDead(store, child.id, "bad chunk");
    await store.block([
      {
        id: parent.id,
        token: tokens.get(parent.id) as number,
        dependsOn: [{ id: child.id, onFailure: "fail" }],
      },
    ]);
    const dead = await store.getJob(parent.id);
    expect(dead?.state).toBe("dead");
    expect(dead?.reason).toBe(`dependency ${child.id} (t) ended dead: bad chunk`);

    await store.cancel({ ids: [other.id] }, { limit: 10 });
    await store.block([
      { id: other.id, token: tokens.get(other.id) as number, dependsOn: [{ id: kid.id, onFailure: "fail" }] },
    ]);
    expect(await stateOf(store, other.id)).toBe("cancelled");
    expect(await stateOf(store, kid.id)).toBe("cancelled");
  });
});

describe("sqlite flows: the engine's own guarantees", () => {
  it("keeps plain jobs off the flow tables: they work with those tables gone", async () => {
    const { store, raw } = await openStore();
    // Prepared before: the store re-prepares them after the schema change.
    await store.enqueue([newJob()]);
    raw.exec("DROP TABLE job_deps; DROP TABLE batch_callbacks; DROP TABLE batches;");
    const jobs = [newJob(), newJob(), newJob(), newJob({ runAt: Date.now() + 3_600_000 })];
    await store.enqueue(jobs);
    const tokens = await claimAll(store);
    await store.complete([
      { id: (jobs[0] as NewJob).id, token: tokens.get((jobs[0] as NewJob).id) as number, result: null },
    ]);
    await store.fail([
      {
        id: (jobs[1] as NewJob).id,
        token: tokens.get((jobs[1] as NewJob).id) as number,
        error: { attempt: 1, outcome: "error", name: "Error", message: "x", at: Date.now() },
        next: { state: "dead", reason: "x" },
      },
    ]);
    await store.cancel({ ids: [(jobs[3] as NewJob).id] }, { limit: 10 });
    await store.remove({ ids: [(jobs[1] as NewJob).id] }, { limit: 10 });
    expect(await stateOf(store, (jobs[0] as NewJob).id)).toBe("completed");
    expect(await stateOf(store, (jobs[3] as NewJob).id)).toBe("cancelled");
  });

  it("carries a flow in the application's transaction: all of it or none of it", async () => {
    const { store, path } = await openStore();
    const app = new Database(path);
    cleanups.push(() => void app.close());
    const a = newJob();
    const b = newJob({ batchId: "tx", dependsOn: [{ id: a.id, onFailure: "fail" }] });
    app.exec("BEGIN IMMEDIATE");
    await store.enqueue([a, b], { transaction: app, batch: batchOf("tx", ["complete"]) });
    app.exec("ROLLBACK");
    expect(await store.getJob(b.id)).toBeNull();
    expect(await store.getBatch("tx")).toBeNull();
    app.exec("BEGIN IMMEDIATE");
    await store.enqueue([a, b], { transaction: app, batch: batchOf("tx", ["complete"]) });
    app.exec("COMMIT");
    expect(await stateOf(store, b.id)).toBe("blocked");
    await runAndComplete(store, [a.id]);
    await runAndComplete(store, [b.id]);
    expect((await store.getBatch("tx"))?.completed).toBe(1);
    expect(await store.getJob("tx:complete")).not.toBeNull();
  });

  it("stuckBlocked is empty for a correct store and reports one edited by hand", async () => {
    const { store, raw } = await openStore();
    const a = newJob();
    const b = newJob({ dependsOn: [{ id: a.id, onFailure: "fail" }] });
    const c = newJob({ dependsOn: [{ id: a.id, onFailure: "fail" }] });
    await store.enqueue([a, b, c]);
    expect(await store.stuckBlocked(10)).toEqual([]);
    // Completing the dependency behind the store's back: its edges never resolve.
    raw.prepare("UPDATE jobs SET state = 'completed' WHERE id = ?").run(a.id);
    const stuck = await store.stuckBlocked(10);
    expect(stuck.map((s) => s.id)).toEqual([b.id, c.id]);
    expect(stuck[0]).toMatchObject({
      pendingDependencies: 1,
      waitingFor: [{ id: a.id, state: "completed" }],
    });
    expect(await store.stuckBlocked(1)).toHaveLength(1);
    // A count that says 0 while the job is still blocked.
    raw.prepare("UPDATE jobs SET state = 'waiting' WHERE id = ?").run(a.id);
    raw.prepare("UPDATE jobs SET pending_deps = 0 WHERE id = ?").run(c.id);
    expect((await store.stuckBlocked(10)).map((s) => s.id)).toEqual([c.id]);
  });

  it("getFlow is null for a missing job; filters by batch reach listJobs and the bulk methods", async () => {
    const { store } = await openStore();
    expect(await store.getFlow("nope")).toBeNull();
    expect(await store.getBatch("nope")).toBeNull();
    const members = [newJob({ batchId: "f" }), newJob({ batchId: "f" })];
    await store.enqueue([...members, newJob()], { batch: batchOf("f", []) });
    expect(
      (await store.listJobs({ filter: { batchId: "f" }, limit: 10 })).jobs.map((j) => j.id).sort(),
    ).toEqual(members.map((m) => m.id).sort());
    expect((await store.getJob((members[0] as NewJob).id))?.batchId).toBe("f");
    expect(await store.remove({ batchId: "f" }, { limit: 10 })).toMatchObject({ count: 2 });
    expect(await store.getBatch("f")).toMatchObject({ total: 2, cancelled: 2 });
  });
});
