/**
 * Flows on the Redis engine (core/flows.ts), what only this engine can get wrong: dependents and callback
 * jobs in other queues (other slots) reached from the transition's own script, exactly-once settling
 * under concurrent scripts from several connections, the keys flow scripts write outside their queue's
 * slot (docs/redis.md, "Flows"), and plain jobs paying nothing for flows. The behaviour every engine
 * shares is in test/conformance/flows.ts.
 */
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { BatchFinishedError, BatchNotFoundError, DependencyNotFoundError } from "../../src/core/errors.js";
import type { Dependency } from "../../src/core/flows.js";
import type { JobRecord } from "../../src/core/job.js";
import { silentLogger } from "../../src/core/logger.js";
import type { JobTemplate, NewBatch, NewJob } from "../../src/store/contract.js";
import { RedisStore } from "../../src/store/redis/redis-store.js";
import { newJob as makeJob } from "../support/new-job.js";
import { SHARED_REDIS, sharedStore } from "./helpers.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

async function open() {
  const s = await sharedStore();
  disposers.push(s.dispose);
  const raw = new Redis(SHARED_REDIS);
  disposers.push(async () => {
    raw.disconnect();
  });
  return { ...s, raw };
}

function job(queue: string, overrides: Partial<NewJob> = {}): NewJob {
  return makeJob({ queue, task: `${queue}-task`, ...overrides });
}

const dep = (id: string, onFailure: Dependency["onFailure"] = "fail"): Dependency => ({ id, onFailure });

function template(queue: string, task: string): JobTemplate {
  const { id: _id, idempotent: _i, runAt: _r, ...rest } = makeJob({ queue, task });
  return rest;
}

function newBatch(id: string, callbacks: NewBatch["callbacks"], data: unknown = null): NewBatch {
  return { id, description: `batch ${id}`, callbacks, dataJson: JSON.stringify(data) };
}

/** Claims `id` (only it: its queue's head must be it) and returns its lease. */
async function claimOne(store: RedisStore, queue: string, id: string): Promise<JobRecord> {
  const [claimed] = await store.claim({ queues: [queue], limit: 1, workerId: "w", leaseMs: 60_000 });
  expect(claimed?.id).toBe(id);
  return claimed!;
}

async function state(store: RedisStore, id: string) {
  return (await store.getJob(id))?.state ?? null;
}

describe("redis flows", () => {
  it("a chain across two queues releases each link from the completing job's own script", async () => {
    const { store } = await open();
    const a = job("qa");
    const b = job("qb", { dependsOn: [dep(a.id)] });
    const c = job("qa", { dependsOn: [dep(b.id)] });
    const results = await store.enqueue([a, b, c]);
    expect(results.map((r) => r.state)).toEqual(["waiting", "blocked", "blocked"]);
    expect((await store.getJob(b.id))?.pendingDependencies).toBe(1);

    const la = await claimOne(store, "qa", a.id);
    expect(await store.complete([{ id: a.id, token: la.leaseToken, result: '{"n":1}' }])).toEqual([true]);
    expect(await state(store, b.id)).toBe("waiting");
    expect((await store.getJob(b.id))?.pendingDependencies).toBe(0);
    expect(await state(store, c.id)).toBe("blocked");

    const lb = await claimOne(store, "qb", b.id);
    await store.complete([{ id: b.id, token: lb.leaseToken, result: null }]);
    expect(await state(store, c.id)).toBe("waiting");
    await claimOne(store, "qa", c.id);

    const flow = await store.getFlow(b.id);
    expect(flow?.dependencies).toEqual([
      {
        id: a.id,
        task: "qa-task",
        queue: "qa",
        state: "completed",
        result: { n: 1 },
        error: null,
        onFailure: "fail",
        resolved: true,
      },
    ]);
    expect(flow?.dependents.map((d) => [d.id, d.queue, d.state, d.resolved])).toEqual([
      [c.id, "qa", "active", true],
    ]);
    const events = await store.readEvents({ after: null, limit: 100 });
    expect(events.events.filter((e) => e.type === "unblocked").map((e) => [e.jobId, e.queue])).toEqual([
      [b.id, "qb"],
      [c.id, "qa"],
    ]);
  });

  it("two connections completing the last two members at once fire the callback exactly once (many rounds)", async () => {
    const { store, url } = await open();
    const other = new RedisStore(url, { logger: silentLogger() });
    await other.open();
    disposers.push(() => other.close());
    const started = Date.now();
    for (let round = 0; round < 40; round++) {
      const bid = `b${round}`;
      const m1 = job("m1", { batchId: bid });
      const m2 = job("m2", { batchId: bid });
      await store.enqueue([m1, m2], {
        batch: newBatch(bid, [
          { event: "complete", template: template("cb", "done") },
          { event: "success", template: template("cb", "ok") },
        ]),
      });
      const l1 = await claimOne(store, "m1", m1.id);
      const l2 = await claimOne(other, "m2", m2.id);
      // Two processes, two connections: both scripts in flight at the same time.
      const [r1, r2] = await Promise.all([
        store.complete([{ id: m1.id, token: l1.leaseToken, result: null }]),
        other.complete([{ id: m2.id, token: l2.leaseToken, result: null }]),
      ]);
      expect([r1, r2]).toEqual([[true], [true]]);
      const batch = await store.getBatch(bid);
      expect(batch).toMatchObject({ total: 2, completed: 2, dead: 0, cancelled: 0 });
      expect(batch?.finishedAt).not.toBeNull();
      expect(batch?.callbacks.map((c) => [c.event, c.firedAt !== null])).toEqual([
        ["complete", true],
        ["success", true],
      ]);
    }
    const callbacks = await store.listJobs({ filter: { queue: "cb" }, limit: 1000 });
    expect(callbacks.jobs.length).toBe(80);
    const enqueued = (await store.readEvents({ after: null, limit: 10_000, queue: "cb" })).events.filter(
      (e) => e.type === "enqueued",
    );
    expect(enqueued.length).toBe(80);
    const payload = (await store.getJob("b7:complete"))?.payload;
    expect(payload).toEqual({
      batchId: "b7",
      event: "complete",
      total: 2,
      completed: 2,
      dead: 0,
      cancelled: 0,
      data: null,
    });
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("a failed dependency kills its chain to the end across queues; continue / ignore release", async () => {
    const { store } = await open();
    const a = job("fa");
    const b = job("fb", { dependsOn: [dep(a.id)] });
    const c = job("fa", { dependsOn: [dep(b.id)] });
    const d = job("fb", { dependsOn: [dep(c.id, "continue")] });
    const e = job("fb", { dependsOn: [dep(a.id, "ignore")] });
    await store.enqueue([a, b, c, d, e]);
    const la = await claimOne(store, "fa", a.id);
    await store.fail([
      {
        id: a.id,
        token: la.leaseToken,
        error: { attempt: 1, outcome: "error", name: "Error", message: "boom", at: Date.now() },
        next: { state: "dead", reason: "attempts exhausted" },
      },
    ]);
    const jb = await store.getJob(b.id);
    expect(jb?.state).toBe("dead");
    expect(jb?.reason).toBe(`dependency ${a.id} (fa-task) ended dead: boom`);
    expect(jb?.errors.at(-1)).toMatchObject({ outcome: "dependency-failed", code: "DEPENDENCY_FAILED" });
    expect(await state(store, c.id)).toBe("dead");
    expect((await store.getJob(c.id))?.reason).toBe(`dependency ${b.id} (fb-task) ended dead: ${jb?.reason}`);
    expect(await state(store, d.id)).toBe("waiting");
    expect(await state(store, e.id)).toBe("waiting");
    expect(await store.stuckBlocked(10)).toEqual([]);
  });

  it("cancelling a parent cancels its children in other queues; a running child by request", async () => {
    const { store } = await open();
    const parent = job("pp");
    await store.enqueue([parent]);
    const lp = await claimOne(store, "pp", parent.id);
    const waitingChild = job("pc1", { parentId: parent.id });
    const runningChild = job("pc2", { parentId: parent.id });
    const grandChild = job("pc1", { parentId: waitingChild.id, dependsOn: [dep(runningChild.id)] });
    await store.enqueue([waitingChild, runningChild, grandChild]);
    await claimOne(store, "pc2", runningChild.id);
    expect(
      await store.block([
        { id: parent.id, token: lp.leaseToken, dependsOn: [dep(waitingChild.id), dep(runningChild.id)] },
      ]),
    ).toEqual([true]);
    expect((await store.getJob(parent.id))?.pendingDependencies).toBe(2);
    const cancelled = await store.cancel({ ids: [parent.id] }, { limit: 10 });
    expect(cancelled.ids).toEqual([parent.id]);
    expect(await state(store, waitingChild.id)).toBe("cancelled");
    expect((await store.getJob(waitingChild.id))?.reason).toBe(`cancelled with its parent ${parent.id}`);
    expect(await state(store, grandChild.id)).toBe("cancelled");
    expect((await store.getJob(runningChild.id))?.cancelRequested).toBe(true);
    const flow = await store.getFlow(parent.id);
    expect(flow?.children.map((c) => [c.id, c.state])).toEqual([
      [waitingChild.id, "cancelled"],
      [runningChild.id, "active"],
    ]);
  });

  it("block: children already final resolve at once; the last child's completion releases the parent", async () => {
    const { store } = await open();
    const parent = job("bp");
    await store.enqueue([parent]);
    const lp = await claimOne(store, "bp", parent.id);
    const done = job("bc");
    const open1 = job("bc");
    await store.enqueue([done, open1]);
    const ld = await claimOne(store, "bc", done.id);
    await store.complete([{ id: done.id, token: ld.leaseToken, result: "1" }]);
    expect(
      await store.block([{ id: parent.id, token: lp.leaseToken + 1, dependsOn: [dep(done.id)] }]),
    ).toEqual([false]);
    await store.block([{ id: parent.id, token: lp.leaseToken, dependsOn: [dep(done.id), dep(open1.id)] }]);
    const blocked = await store.getJob(parent.id);
    expect(blocked).toMatchObject({ state: "blocked", pendingDependencies: 1, attempt: 0, workerId: null });
    const lo = await claimOne(store, "bc", open1.id);
    await store.complete([{ id: open1.id, token: lo.leaseToken, result: "2" }]);
    expect(await state(store, parent.id)).toBe("waiting");
    const again = await claimOne(store, "bp", parent.id);
    expect(again.attempt).toBe(1);
    // A second round whose children are all final goes waiting at once.
    await store.block([{ id: parent.id, token: again.leaseToken, dependsOn: [dep(done.id)] }]);
    expect(await state(store, parent.id)).toBe("waiting");
  });

  it("deleting an unfinished member resolves its dependents by policy and counts as cancelled", async () => {
    const { store } = await open();
    const m = job("dm", { batchId: "bd" });
    const keep = job("dm", { batchId: "bd" });
    const waiter = job("dw", { dependsOn: [dep(m.id)] });
    await store.enqueue([m, keep, waiter], {
      batch: newBatch("bd", [{ event: "complete", template: template("dcb", "done") }], { doc: 7 }),
    });
    await store.remove({ ids: [m.id] }, { limit: 10 });
    expect(await state(store, waiter.id)).toBe("dead");
    expect((await store.getJob(waiter.id))?.reason).toBe(`dependency ${m.id} (dm-task) ended deleted`);
    expect(await store.getBatch("bd")).toMatchObject({
      total: 2,
      completed: 0,
      cancelled: 1,
      finishedAt: null,
    });
    const lk = await claimOne(store, "dm", keep.id);
    await store.complete([{ id: keep.id, token: lk.leaseToken, result: null }]);
    expect((await store.getJob("bd:complete"))?.payload).toMatchObject({
      completed: 1,
      cancelled: 1,
      data: { doc: 7 },
    });
    expect((await store.getFlow(waiter.id))?.dependencies[0]).toMatchObject({
      id: m.id,
      state: null,
      task: "",
    });
    // Joining a finished batch, or one that does not exist, writes nothing.
    const late = job("dm", { batchId: "bd" });
    await expect(store.enqueue([late])).rejects.toBeInstanceOf(BatchFinishedError);
    await expect(store.enqueue([job("dm", { batchId: "nope" })])).rejects.toBeInstanceOf(BatchNotFoundError);
    expect(await store.getJob(late.id)).toBeNull();
  });

  it("retrying a dead member after its batch finished changes no count and fires nothing again", async () => {
    const { store } = await open();
    const m = job("rm", { batchId: "br" });
    const after = job("rw", { dependsOn: [dep(m.id, "continue")] });
    await store.enqueue([m, after], {
      batch: newBatch("br", [
        { event: "death", template: template("rcb", "died") },
        { event: "complete", template: template("rcb", "done") },
      ]),
    });
    const l1 = await claimOne(store, "rm", m.id);
    await store.fail([
      {
        id: m.id,
        token: l1.leaseToken,
        error: { attempt: 1, outcome: "error", name: "Error", message: "x", at: Date.now() },
        next: { state: "dead", reason: "attempts exhausted" },
      },
    ]);
    const finished = await store.getBatch("br");
    expect(finished).toMatchObject({ total: 1, dead: 1, completed: 0 });
    expect(await state(store, after.id)).toBe("waiting");
    await store.retry({ ids: [m.id] }, { limit: 1 });
    const l2 = await claimOne(store, "rm", m.id);
    await store.complete([{ id: m.id, token: l2.leaseToken, result: null }]);
    expect(await store.getBatch("br")).toEqual(finished);
    expect((await store.listJobs({ filter: { queue: "rcb" }, limit: 10 })).jobs.length).toBe(2);
    expect((await store.getJob(after.id))?.pendingDependencies).toBe(0);
  });

  it("a missing dependency rejects the whole call across queues and writes nothing", async () => {
    const { store, raw, prefix } = await open();
    const a = job("na");
    const b = job("nb", { dependsOn: [dep(a.id)] });
    const c = job("na", { dependsOn: [dep("no-such-job")] });
    const error = await store.enqueue([a, b, c], { batch: newBatch("bn", []) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyNotFoundError);
    expect(error).toMatchObject({ code: "DEPENDENCY_NOT_FOUND", jobId: c.id, dependencyId: "no-such-job" });
    expect(await raw.keys(`{${prefix}}*`)).toEqual([]);
    expect(await raw.keys(`{${prefix}:q:*`)).toEqual([]);
  });

  it("writes outside the queue's slot only the documented global keys (docs/redis.md, Flows)", async () => {
    const { store, raw, prefix } = await open();
    const a = job("ka");
    const b = job("ka", { dependsOn: [dep(a.id)], batchId: "bk", parentId: "p" });
    await store.enqueue([a, b], {
      batch: newBatch("bk", [{ event: "complete", template: template("ka", "cb") }]),
    });
    const la = await claimOne(store, "ka", a.id);
    await store.complete([{ id: a.id, token: la.leaseToken, result: null }]);
    const lb = await claimOne(store, "ka", b.id);
    await store.complete([{ id: b.id, token: lb.leaseToken, result: null }]);
    const global = (await raw.keys(`{${prefix}}:*`)).map((k) => k.slice(prefix.length + 3)).sort();
    expect(global).toEqual(
      ["batches", "bt:bk", "events", "fch:p", "fdn:" + a.id, "fup:" + b.id, "ids", "queues"].sort(),
    );
    // Everything else is in the queue's own slot.
    const all = await raw.keys(`*${prefix}*`);
    expect(all.filter((k) => !k.startsWith(`{${prefix}}:`) && !k.startsWith(`{${prefix}:q:ka}:`))).toEqual(
      [],
    );
  });

  it("plain jobs pay nothing for flows: no flow key, no flow field", async () => {
    const { store, raw, prefix } = await open();
    const plain = Array.from({ length: 20 }, () => job("pl"));
    await store.enqueue(plain);
    const claimed = await store.claim({ queues: ["pl"], limit: 20, workerId: "w", leaseMs: 60_000 });
    await store.complete(claimed.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
    const global = (await raw.keys(`{${prefix}}:*`)).map((k) => k.slice(prefix.length + 3)).sort();
    expect(global).toEqual(["events", "ids", "queues"]);
    const fields = await raw.hkeys(`{${prefix}:q:pl}:j:${plain[0]!.id}`);
    expect(fields.filter((f) => ["fd", "fu", "pd", "bi", "fb"].includes(f))).toEqual([]);
  });

  it("one complete() of 100 members writes the batch counter once", async () => {
    const { store, url, prefix } = await open();
    const members = Array.from({ length: 100 }, () => job("agg", { batchId: "ba" }));
    await store.enqueue(members, { batch: newBatch("ba", []) });
    const claimed = await store.claim({ queues: ["agg"], limit: 100, workerId: "w", leaseMs: 60_000 });
    const monitor = new Redis(url.split("?")[0]!);
    disposers.push(async () => {
      monitor.disconnect();
    });
    const m = await monitor.monitor();
    const seen: string[] = [];
    m.on("monitor", (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === "hincrby" && args[1] === `{${prefix}}:bt:ba`) seen.push(args[2]!);
    });
    await store.complete(claimed.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
    expect(await store.getBatch("ba")).toMatchObject({ total: 100, completed: 100 });
    await new Promise<void>((resolve) => {
      // MONITOR lines arrive asynchronously: read until a marker command sent after the completion.
      m.on("monitor", (_t: string, args: string[]) => {
        if (args[0]?.toLowerCase() === "echo" && args[1] === `${prefix}-done`) resolve();
      });
      void store["conn"]().echo(`${prefix}-done`);
    });
    m.disconnect();
    expect(seen).toEqual(["c"]);
  });

  it("stuckBlocked reports a blocked job whose dependency is final without having resolved the edge", async () => {
    const { store, raw, prefix } = await open();
    const a = job("sa");
    const b = job("sb", { dependsOn: [dep(a.id)] });
    await store.enqueue([a, b]);
    expect(await store.stuckBlocked(10)).toEqual([]);
    // Hand-edit the store: a completes without settling.
    await raw.hset(`{${prefix}:q:sa}:j:${a.id}`, "s", "completed");
    expect(await store.stuckBlocked(10)).toEqual([
      {
        id: b.id,
        queue: "sb",
        task: "sb-task",
        createdAt: expect.any(Number),
        pendingDependencies: 1,
        waitingFor: [{ id: a.id, state: "completed" }],
      },
    ]);
  });

  it("filters listings and bulk actions by batchId and parentId", async () => {
    const { store } = await open();
    const x = job("fl", { batchId: "bf", parentId: "px" });
    const y = job("fl", { batchId: "bf" });
    const z = job("fl");
    await store.enqueue([x, y, z], { batch: newBatch("bf", []) });
    const byBatch = await store.listJobs({ filter: { batchId: "bf" }, limit: 10 });
    expect(byBatch.jobs.map((j) => j.id).sort()).toEqual([x.id, y.id].sort());
    const byParent = await store.listJobs({ filter: { parentId: "px", queue: "fl" }, limit: 10 });
    expect(byParent.jobs.map((j) => j.id)).toEqual([x.id]);
    const cancelled = await store.cancel({ batchId: "bf", parentId: "px" }, { limit: 10 });
    expect(cancelled.ids).toEqual([x.id]);
    expect(await store.getBatch("bf")).toMatchObject({ total: 2, cancelled: 1 });
    const page1 = await store.listBatches({ limit: 1 });
    expect(page1.batches.map((b) => b.id)).toEqual(["bf"]);
    expect(page1.nextCursor).toBeNull();
  });
});
