/**
 * Flows (core/flows.ts) on every engine: dependencies and their policies, chains, batches and their
 * callbacks, parents waiting for their children, cascades, exactly-once under races and SIGKILL, bad input.
 */
import { describe, expect, it } from "vitest";
import {
  type BatchCallbackPayload,
  BatchExistsError,
  BatchFinishedError,
  BatchNotFoundError,
  DependencyCycleError,
  DependencyNotFoundError,
  MAX_QUOTED_ERROR,
  type Sluice,
  UnknownTaskError,
  ValidationError,
} from "../../src/index.js";
import { newJob } from "../support/new-job.js";
import type { ConformanceContext } from "./context.js";
import { deferred, until } from "./context.js";

/**
 * Redis Cluster (`harness.crossSlotRefused`) keeps a flow in one queue's slot: a flow across queues is
 * refused with CLUSTER_CROSS_SLOT, having written nothing. On such an engine this asserts the refusal of each
 * kind (a batch callback, a dependency, a child in another queue) and returns true: the caller's scenario,
 * which needs two queues, cannot hold there by design. Elsewhere it does nothing and returns false.
 */
async function refusedAcrossQueues(ctx: ConformanceContext, sluice: Sluice, queue: string): Promise<boolean> {
  if (!ctx.harness.crossSlotRefused) return false;
  const other = `${queue}_other`;
  sluice.task("xq-member", { queue });
  sluice.task("xq-elsewhere", { queue: other });
  const refused = { code: "CLUSTER_CROSS_SLOT" };
  await expect(
    sluice.batch([{ task: "xq-member", payload: {} }], { onComplete: "xq-elsewhere" }),
  ).rejects.toMatchObject(refused);
  const first = await sluice.enqueue("xq-member", {});
  await expect(sluice.enqueue("xq-elsewhere", {}, { dependsOn: [first.id] })).rejects.toMatchObject(refused);
  const store = await sluice.store();
  await expect(store.enqueue([newJob({ queue: other, parentId: first.id })])).rejects.toMatchObject(refused);
  expect((await sluice.admin.listJobs({ queue })).jobs.map((j) => j.id)).toEqual([first.id]);
  expect((await sluice.admin.listJobs({ queue: other })).jobs).toEqual([]);
  return true;
}

/** Polls until the job is in one of `states`; returns it. */
async function settled(sluice: Sluice, id: string, states: string[], timeoutMs = 20_000) {
  return until(
    `job ${id} ${states.join("/")}`,
    async () => {
      const job = await sluice.admin.getJob(id);
      return states.includes(job.state) ? job : null;
    },
    timeoutMs,
  );
}

export function flowTests(ctx: ConformanceContext): void {
  describe("flows", () => {
    describe("dependencies", () => {
      it("holds a job blocked until its dependency completes, then releases it by itself (store level)", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("dep");
        sluice.task("a", { queue });
        sluice.task("b", { queue });
        const a = await sluice.enqueue("a", {});
        const b = await sluice.enqueue("b", {}, { dependsOn: [a.id] });
        expect(b.state).toBe("blocked");
        const blocked = await sluice.admin.getJob(b.id);
        expect(blocked.pendingDependencies).toBe(1);
        const store = await sluice.store();
        // A blocked job is never claimed.
        const [claimed] = await store.claim({ queues: [queue], limit: 10, workerId: "w", leaseMs: 30_000 });
        expect(claimed?.id).toBe(a.id);
        expect(await store.claim({ queues: [queue], limit: 10, workerId: "w", leaseMs: 30_000 })).toEqual([]);
        expect(await store.stuckBlocked(100)).toEqual([]);
        expect(
          await store.complete([
            { id: a.id, token: (claimed as { leaseToken: number }).leaseToken, result: "7" },
          ]),
        ).toEqual([true]);
        const released = await sluice.admin.getJob(b.id);
        expect(released.state).toBe("waiting");
        expect(released.pendingDependencies).toBe(0);
        const flow = await sluice.admin.flow(b.id);
        expect(flow.dependencies).toEqual([
          expect.objectContaining({
            id: a.id,
            task: "a",
            state: "completed",
            result: 7,
            onFailure: "fail",
            resolved: true,
          }),
        ]);
        expect((await sluice.admin.flow(a.id)).dependents.map((d) => d.id)).toEqual([b.id]);
        const events = await store.readEvents({ after: null, limit: 1_000, jobId: b.id });
        expect(events.events.map((e) => e.type)).toEqual(["enqueued", "unblocked"]);
        expect(events.events[0]?.data).toMatchObject({ state: "blocked" });
      });

      it("a dependent quotes at most MAX_QUOTED_ERROR characters of its dependency's error", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("quote");
        sluice.task("t", { queue });
        const a = await sluice.enqueue("t", {});
        const b = await sluice.enqueue("t", {}, { dependsOn: [a.id] });
        const store = await sluice.store();
        const [claimed] = await store.claim({ queues: [queue], limit: 1, workerId: "w", leaseMs: 30_000 });
        const message = "x".repeat(MAX_QUOTED_ERROR * 5);
        const error = { attempt: 1, outcome: "error" as const, name: "Error", message, at: Date.now() };
        await store.fail([
          {
            id: a.id,
            token: (claimed as { leaseToken: number }).leaseToken,
            error,
            next: { state: "dead", reason: "boom" },
          },
        ]);
        const dead = await sluice.admin.getJob(b.id);
        expect(dead.state).toBe("dead");
        const quoted = dead.errors.at(-1)?.message ?? "";
        expect(quoted).toContain(`x`.repeat(MAX_QUOTED_ERROR));
        expect(quoted).not.toContain(`x`.repeat(MAX_QUOTED_ERROR + 1));
        expect(quoted.endsWith("…")).toBe(true);
        expect(dead.reason?.length).toBeLessThan(MAX_QUOTED_ERROR + 200);
      });

      it("a chain passes each step's result to the next, in one call", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("chain");
        const order: string[] = [];
        const step = (name: string) =>
          sluice.task<{ add: number }, { total: number }>(name, {
            queue,
            async run(payload, job) {
              order.push(name);
              const [previous] = await job.dependencies();
              const before = (previous?.result as { total: number } | null)?.total ?? 0;
              return { total: before + payload.add };
            },
          });
        const parse = step("parse");
        const chunk = step("chunk");
        const index = step("index");
        const jobs = await sluice.chain([
          { task: parse, payload: { add: 1 } },
          { task: chunk, payload: { add: 10 } },
          { task: "index", payload: { add: 100 } },
        ]);
        expect(jobs.map((j) => j.state)).toEqual(["waiting", "blocked", "blocked"]);
        void index;
        await sluice.worker({ queues: [queue], concurrency: 4 }).start();
        const last = await settled(sluice, (jobs[2] as { id: string }).id, ["completed", "dead"]);
        expect(last.state).toBe("completed");
        expect(last.result).toEqual({ total: 111 });
        expect(order).toEqual(["parse", "chunk", "index"]);
      });

      it("fail: a dead dependency takes its dependents dead with its error, to the end of the chain", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("fail");
        sluice.task("boom", {
          queue,
          attempts: 1,
          run: () => {
            throw new Error("pdf is encrypted");
          },
        });
        const ran: string[] = [];
        sluice.task("after", { queue, run: (_p, job) => void ran.push(job.id) });
        const jobs = await sluice.chain([
          { task: "boom", payload: {} },
          { task: "after", payload: {} },
          { task: "after", payload: {} },
        ]);
        await sluice.worker({ queues: [queue] }).start();
        const third = await settled(sluice, (jobs[2] as { id: string }).id, ["dead", "completed"]);
        const second = await sluice.admin.getJob((jobs[1] as { id: string }).id);
        expect(second.state).toBe("dead");
        expect(second.errors.at(-1)).toMatchObject({
          outcome: "dependency-failed",
          code: "DEPENDENCY_FAILED",
          name: "DependencyFailedError",
        });
        expect(second.errors.at(-1)?.message).toContain("pdf is encrypted");
        expect(second.reason).toContain((jobs[0] as { id: string }).id);
        expect(third.state).toBe("dead");
        expect(third.reason).toContain(second.id);
        expect(ran).toEqual([]);
      });

      it("continue: the dependent runs and sees the failure; ignore: it runs without it", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("policy");
        sluice.task("ok", { queue, run: () => "fine" });
        sluice.task("bad", {
          queue,
          attempts: 1,
          run: () => {
            throw new Error("no such file");
          },
        });
        const seen = new Map<string, { id: string; state: string | null; error: string | null }[]>();
        sluice.task("fanin", {
          queue,
          async run(_p, job) {
            seen.set(
              job.id,
              (await job.dependencies()).map((d) => ({ id: d.id, state: d.state, error: d.error })),
            );
          },
        });
        const ok = await sluice.enqueue("ok", {});
        const bad = await sluice.enqueue("bad", {});
        const cont = await sluice.enqueue(
          "fanin",
          {},
          { dependsOn: [ok.id, { id: bad.id, onFailure: "continue" }] },
        );
        const ign = await sluice.enqueue(
          "fanin",
          {},
          { dependsOn: [ok.id, { id: bad.id, onFailure: "ignore" }] },
        );
        await sluice.worker({ queues: [queue] }).start();
        await settled(sluice, cont.id, ["completed"]);
        await settled(sluice, ign.id, ["completed"]);
        const continued = seen.get(cont.id) ?? [];
        expect(continued).toHaveLength(2);
        expect(continued.find((d) => d.id === bad.id)).toMatchObject({ state: "dead" });
        expect(continued.find((d) => d.id === bad.id)?.error).toContain("no such file");
        expect(seen.get(ign.id)?.map((d) => d.id)).toEqual([ok.id]);
      });

      it("deleting or cancelling an unfinished dependency resolves its dependents by their policy", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("del");
        sluice.task("t", { queue });
        const a = await sluice.enqueue("t", {});
        const b = await sluice.enqueue("t", {});
        const failing = await sluice.enqueue("t", {}, { dependsOn: [a.id] });
        const going = await sluice.enqueue("t", {}, { dependsOn: [{ id: b.id, onFailure: "continue" }] });
        await sluice.admin.delete(a.id);
        const dead = await sluice.admin.getJob(failing.id);
        expect(dead.state).toBe("dead");
        expect(dead.reason).toContain("deleted");
        await sluice.admin.cancel(b.id);
        expect((await sluice.admin.getJob(going.id)).state).toBe("waiting");
        expect(await (await sluice.store()).stuckBlocked(100)).toEqual([]);
      });

      it("a dependency already final at enqueue is applied at once", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("late");
        sluice.task("t", { queue });
        const a = await sluice.enqueue("t", {});
        await sluice.admin.cancel(a.id);
        const failing = await sluice.enqueue("t", {}, { dependsOn: [a.id] });
        const running = await sluice.enqueue("t", {}, { dependsOn: [{ id: a.id, onFailure: "ignore" }] });
        expect(failing.state).toBe("dead");
        expect(running.state).toBe("waiting");
      });
    });

    describe("bad input", () => {
      it("a dependency on a job that does not exist: DependencyNotFoundError, nothing of the call written", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("nf");
        sluice.task("t", { queue });
        const error = await sluice
          .enqueueMany("t", [
            { payload: { n: 1 }, options: { jobId: `${queue}-first` } },
            { payload: { n: 2 }, options: { dependsOn: ["nope-never-enqueued"] } },
          ])
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DependencyNotFoundError);
        expect((error as DependencyNotFoundError).code).toBe("DEPENDENCY_NOT_FOUND");
        expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
      });

      it("a cycle among the jobs of a call: DependencyCycleError, nothing written", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("cyc");
        sluice.task("t", { queue });
        const error = await sluice
          .enqueueMany("t", [
            { payload: {}, options: { jobId: `${queue}-a`, dependsOn: [`${queue}-c`] } },
            { payload: {}, options: { jobId: `${queue}-b`, dependsOn: [`${queue}-a`] } },
            { payload: {}, options: { jobId: `${queue}-c`, dependsOn: [`${queue}-b`] } },
          ])
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DependencyCycleError);
        expect((error as DependencyCycleError).cycle).toHaveLength(4);
        const self = await sluice
          .enqueue("t", {}, { jobId: `${queue}-self`, dependsOn: [`${queue}-self`] })
          .catch((e: unknown) => e);
        expect(self).toBeInstanceOf(DependencyCycleError);
        expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
      });

      it("jobs of one call may depend on later ones: they are written dependencies first", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("ord");
        sluice.task("t", { queue });
        const [first, second] = await sluice.enqueueMany("t", [
          { payload: {}, options: { dependsOn: [`${queue}-later`] } },
          { payload: {}, options: { jobId: `${queue}-later` } },
        ]);
        expect(first?.state).toBe("blocked");
        expect(second).toMatchObject({ id: `${queue}-later`, state: "waiting" });
      });

      it("a batch of no jobs, an undefined callback task, bad options: typed errors, nothing written", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("badbatch");
        sluice.task("t", { queue });
        sluice.task("done", { queue });
        await expect(sluice.batch([], { onComplete: "done" })).rejects.toBeInstanceOf(ValidationError);
        await expect(
          sluice.batch([{ task: "t", payload: {} }], { onComplete: "not-defined-anywhere" }),
        ).rejects.toBeInstanceOf(UnknownTaskError);
        await expect(
          sluice.batch([{ task: "t", payload: {} }], { onCompleted: "done" } as never),
        ).rejects.toMatchObject({ code: "INVALID_OPTION" });
        for (const bad of [null, 5, { task: 7 }]) {
          await expect(
            sluice.batch([{ task: "t", payload: {} }], { onComplete: bad } as never),
          ).rejects.toMatchObject({ code: "INVALID_OPTION", field: "options.onComplete" });
        }
        await expect(
          sluice.enqueue("t", {}, { dependsOn: [{ id: "x", onFailure: "explode" }] } as never),
        ).rejects.toMatchObject({ code: "INVALID_OPTION", field: "options.dependsOn[0].onFailure" });
        expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
        expect(
          (await sluice.admin.batches()).batches.filter((b) => b.callbacks.some((c) => c.queue === queue)),
        ).toEqual([]);
      });

      it("adding to a batch that does not exist or has finished is refused", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("ext");
        sluice.task("t", { queue });
        const store = await sluice.store();
        const { newJob } = await import("../support/new-job.js");
        await expect(store.enqueue([newJob({ queue, batchId: "no-such-batch" })])).rejects.toBeInstanceOf(
          BatchNotFoundError,
        );
        const { batchId, jobs } = await sluice.batch([{ task: "t", payload: {} }]);
        await sluice.admin.cancel((jobs[0] as { id: string }).id);
        const batch = await sluice.admin.batch(batchId);
        expect(batch).toMatchObject({ total: 1, cancelled: 1, pending: 0 });
        expect(batch.finishedAt).not.toBeNull();
        await expect(store.enqueue([newJob({ queue, batchId })])).rejects.toBeInstanceOf(BatchFinishedError);
        // The same id again: refused whole, whatever its members.
        await expect(
          sluice.batch([{ task: "t", payload: { again: true } }], { id: batchId }),
        ).rejects.toBeInstanceOf(BatchExistsError);
        expect((await sluice.admin.listJobs({ queue })).jobs).toHaveLength(1);
        expect(await sluice.admin.batch(batchId)).toMatchObject({ total: 1, cancelled: 1 });
      });
    });

    describe("batches", () => {
      it("fires death at the first dead member, complete when all are final, never success; counts exact", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("batch");
        const calls: BatchCallbackPayload<{ doc: string }>[] = [];
        const record = (p: BatchCallbackPayload<{ doc: string }>) => void calls.push(p);
        sluice.task("member", {
          queue,
          attempts: 1,
          run: (p: { fail: boolean }) => {
            if (p.fail) throw new Error("bad page");
          },
        });
        sluice.task("on-complete", { queue, run: record });
        sluice.task("on-success", { queue, run: record });
        sluice.task("on-death", { queue, run: record });
        const { batchId, jobs } = await sluice.batch(
          [false, false, true, false, false].map((fail) => ({ task: "member", payload: { fail } })),
          {
            description: "doc d1",
            data: { doc: "d1" },
            onComplete: "on-complete",
            onSuccess: "on-success",
            onDeath: { task: "on-death", options: { priority: -5 } },
          },
        );
        expect(jobs).toHaveLength(5);
        expect((await sluice.admin.listJobs({ batchId })).jobs).toHaveLength(5);
        await sluice.worker({ queues: [queue], concurrency: 3 }).start();
        await until("complete callback ran", () => calls.some((c) => c.event === "complete"));
        await until("death callback ran", () => calls.some((c) => c.event === "death"));
        const complete = calls.find((c) => c.event === "complete");
        expect(complete).toEqual({
          batchId,
          event: "complete",
          total: 5,
          completed: 4,
          dead: 1,
          cancelled: 0,
          data: { doc: "d1" },
        });
        expect(calls.find((c) => c.event === "death")).toMatchObject({
          batchId,
          dead: 1,
          data: { doc: "d1" },
        });
        const batch = await sluice.admin.batch(batchId);
        expect(batch).toMatchObject({
          total: 5,
          completed: 4,
          dead: 1,
          cancelled: 0,
          pending: 0,
          description: "doc d1",
        });
        const fired = Object.fromEntries(batch.callbacks.map((c) => [c.event, c.firedAt !== null]));
        expect(fired).toEqual({ complete: true, success: false, death: true });
        expect((await sluice.admin.getJob(`${batchId}:death`)).priority).toBe(-5);
        expect(calls.filter((c) => c.event === "success")).toEqual([]);
        expect(calls).toHaveLength(2);
        const listed = await sluice.admin.batches({ finished: true });
        expect(listed.batches.map((b) => b.id)).toContain(batchId);
        expect((await sluice.admin.batches({ finished: false })).batches.map((b) => b.id)).not.toContain(
          batchId,
        );
      });

      it("fires success and complete once when every member completes; members a member adds join the batch", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("grow");
        const calls: BatchCallbackPayload[] = [];
        sluice.task("page", {
          queue,
          async run(p: { pages: number }, job) {
            // The first member fans out two more pages: they belong to the batch too.
            if (p.pages > 0) {
              await job.enqueue("page", { pages: 0 });
              await job.enqueue("page", { pages: 0 });
            }
          },
        });
        sluice.task("done", { queue, run: (p: BatchCallbackPayload) => void calls.push(p) });
        const { batchId } = await sluice.batch([{ task: "page", payload: { pages: 2 } }], {
          onComplete: "done",
          onSuccess: "done",
        });
        await sluice.worker({ queues: [queue], concurrency: 2 }).start();
        await until("two callbacks", () => calls.length === 2);
        expect(calls.map((c) => c.event).sort()).toEqual(["complete", "success"]);
        for (const call of calls)
          expect(call).toMatchObject({ total: 3, completed: 3, dead: 0, cancelled: 0, data: null });
        expect((await sluice.admin.listJobs({ batchId })).jobs).toHaveLength(3);
      });

      it("cancelling a batch cancels its unfinished members; complete fires with the counts", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("cbatch");
        if (await refusedAcrossQueues(ctx, sluice, queue)) return;
        const calls: BatchCallbackPayload[] = [];
        sluice.task("m", { queue });
        sluice.task("done", { queue: `${queue}_cb`, run: (p: BatchCallbackPayload) => void calls.push(p) });
        const { batchId } = await sluice.batch(
          Array.from({ length: 4 }, () => ({ task: "m", payload: {} })),
          { onComplete: "done" },
        );
        const result = await sluice.admin.cancel({ batchId });
        expect(result.count).toBe(4);
        await sluice.worker({ queues: [`${queue}_cb`] }).start();
        await until("complete ran", () => calls.length === 1);
        expect(calls[0]).toMatchObject({ total: 4, completed: 0, cancelled: 4, dead: 0 });
      });

      it("retrying a dead member after its batch finished runs it but changes no count and fires nothing again", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("retry");
        let fail = true;
        const calls: BatchCallbackPayload[] = [];
        sluice.task("m", {
          queue,
          attempts: 1,
          run: () => {
            if (fail) throw new Error("flaky upstream");
          },
        });
        sluice.task("done", { queue, run: (p: BatchCallbackPayload) => void calls.push(p) });
        const { batchId, jobs } = await sluice.batch([{ task: "m", payload: {} }], {
          onComplete: "done",
          onDeath: "done",
        });
        const id = (jobs[0] as { id: string }).id;
        await sluice.worker({ queues: [queue] }).start();
        await until("two callbacks", () => calls.length === 2);
        fail = false;
        await sluice.admin.retry(id);
        await settled(sluice, id, ["completed"]);
        expect(await sluice.admin.batch(batchId)).toMatchObject({
          total: 1,
          completed: 0,
          dead: 1,
          pending: 0,
        });
        // Wait for anything that might fire late: the worker is idle once the queue has nothing left.
        await until("queue idle", async () => {
          const q = (await sluice.admin.queues()).find((s) => s.queue === queue);
          return q && q.counts.waiting === 0 && q.counts.active === 0;
        });
        expect(calls.map((c) => c.event).sort()).toEqual(["complete", "death"]);
      });
    });

    describe("children", () => {
      it("fan-in over 1,000 children: the parent runs again once, after every child, and reads them all", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("fan");
        const runs: number[] = [];
        sluice.task("embed", { queue, run: (p: { n: number }) => ({ vector: p.n * 2 }) });
        const index = sluice.task("index", {
          queue,
          async run(_p, job) {
            const children = await job.children();
            runs.push(children.length);
            if (children.length === 0) {
              const steps = Array.from({ length: 1_000 }, (_, n) => ({ task: "embed", payload: { n } }));
              await job.enqueue(steps, { wait: true });
              return "waiting";
            }
            return {
              done: children.filter((c) => c.state === "completed").length,
              sum: children.reduce((s, c) => s + ((c.result as { vector: number }).vector ?? 0), 0),
            };
          },
        });
        const parent = await index.enqueue({});
        await sluice.worker({ queues: [queue], concurrency: 20 }).start();
        const done = await settled(sluice, parent.id, ["completed", "dead"], 60_000);
        expect(done.result).toEqual({ done: 1_000, sum: 999_000 });
        expect(runs).toEqual([0, 1_000]);
        expect(done.attempt).toBe(1); // waiting for children charges no attempt
        const flow = await sluice.admin.flow(parent.id);
        expect(flow.children).toHaveLength(1_000);
        expect(flow.children[0]?.id).toBe(`${parent.id}.1`);
        expect((await sluice.admin.flow(`${parent.id}.7`)).parent?.id).toBe(parent.id);
        // A filtered read may stop at its scan budget (Redis: 2,000 entries per call) and hand back a cursor:
        // follow it, as a reader must. The children wrote ~3,000 events between blocked and unblocked.
        const store = await sluice.store();
        const types: string[] = [];
        let after: string | null = null;
        for (let page = 0; page < 100; page++) {
          const read = await store.readEvents({ after, limit: 100, jobId: parent.id });
          types.push(...read.events.map((e) => e.type));
          if (read.cursor === after || read.cursor === null) break;
          after = read.cursor;
        }
        expect(types).toContain("blocked");
        expect(types).toContain("unblocked");
      });

      it("a retried parent gets its existing children back instead of new ones", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("idem");
        if (await refusedAcrossQueues(ctx, sluice, queue)) return;
        let attempts = 0;
        sluice.task("child", { queue: `${queue}_idle` }); // never run here: they stay waiting
        const parent = sluice.task("parent", {
          queue,
          backoff: { type: "fixed", delayMs: 1 },
          async run(_p, job) {
            attempts++;
            await job.enqueue([1, 2, 3].map((n) => ({ task: "child", payload: { n } })));
            if (job.attempt === 1) throw new Error("crashed after fanning out");
          },
        });
        const { id } = await parent.enqueue({});
        await sluice.worker({ queues: [queue] }).start();
        await settled(sluice, id, ["completed"]);
        expect(attempts).toBe(2);
        expect((await sluice.admin.listJobs({ parentId: id })).jobs).toHaveLength(3);
      });

      it("cancelling a parent waiting for its children cancels the unfinished ones", async () => {
        const sluice = ctx.sluice();
        const queue = ctx.queue("cascade");
        if (await refusedAcrossQueues(ctx, sluice, queue)) return;
        const started = deferred();
        sluice.task("slow", {
          queue,
          async run(_p, job) {
            started.resolve();
            await new Promise((_, reject) =>
              job.signal.addEventListener("abort", () => reject(job.signal.reason)),
            );
          },
        });
        sluice.task("idle", { queue: `${queue}_idle` });
        const parent = sluice.task("parent", {
          queue,
          async run(_p, job) {
            if ((await job.children()).length > 0) return;
            await job.enqueue(
              [
                { task: "slow", payload: {} },
                { task: "idle", payload: {} },
              ],
              { wait: true },
            );
          },
        });
        const { id } = await parent.enqueue({});
        await sluice.worker({ queues: [queue], concurrency: 2, maintenanceMs: 100 }).start();
        await started.promise;
        await settled(sluice, id, ["blocked"]);
        await sluice.admin.cancel(id);
        expect((await sluice.admin.getJob(id)).state).toBe("cancelled");
        expect((await sluice.admin.getJob(`${id}.2`)).state).toBe("cancelled");
        const slow = await settled(sluice, `${id}.1`, ["cancelled"]);
        expect(slow.state).toBe("cancelled");
      });
    });

    describe("exactly once", () => {
      it("two worker processes racing on the last members: each batch's counts and callback exactly once", async () => {
        const queue = ctx.queue("race");
        const producer = ctx.sluice();
        if (await refusedAcrossQueues(ctx, producer, queue)) return;
        const calls: BatchCallbackPayload[] = [];
        producer.task(queue, { queue });
        producer.task("cb", { queue: `${queue}_cb`, run: (p: BatchCallbackPayload) => void calls.push(p) });
        const after = new Map<string, number>();
        producer.task("after", {
          queue: `${queue}_cb`,
          run: (_p, job) => void after.set(job.id, (after.get(job.id) ?? 0) + 1),
        });
        const a = ctx.spawnWorker({ queue, mode: "record", concurrency: 4 });
        const b = ctx.spawnWorker({ queue, mode: "record", concurrency: 4 });
        await Promise.all([a.waitFor("ready"), b.waitFor("ready")]);
        const rounds = 25;
        const batches: string[] = [];
        const dependents: string[] = [];
        for (let r = 0; r < rounds; r++) {
          const { batchId, jobs } = await producer.batch(
            [0, 1].map((n) => ({ task: queue, payload: { r, n } })),
            { onComplete: "cb", onSuccess: "cb" },
          );
          batches.push(batchId);
          const dep = await producer.enqueue("after", {}, { dependsOn: jobs.map((j) => j.id) });
          dependents.push(dep.id);
        }
        await producer.worker({ queues: [`${queue}_cb`], concurrency: 4 }).start();
        await until(
          "every callback and dependent ran",
          () => calls.length === rounds * 2 && after.size === rounds,
          60_000,
        );
        for (const batchId of batches) {
          expect(await producer.admin.batch(batchId)).toMatchObject({ total: 2, completed: 2, pending: 0 });
          const mine = calls.filter((c) => c.batchId === batchId);
          expect(mine.map((c) => c.event).sort()).toEqual(["complete", "success"]);
          for (const call of mine)
            expect(call).toMatchObject({ total: 2, completed: 2, dead: 0, cancelled: 0 });
        }
        for (const id of dependents) {
          expect(after.get(id)).toBe(1);
          expect((await producer.admin.getJob(id)).attempt).toBe(1);
        }
      });

      it("a worker SIGKILLed in the middle of a flow: after lease recovery the flow completes, callbacks once", async () => {
        const queue = ctx.queue("kflow");
        const producer = ctx.sluice();
        if (await refusedAcrossQueues(ctx, producer, queue)) return;
        const victim = ctx.spawnWorker({ queue, mode: "hang", leaseMs: 600, concurrency: 2 });
        await victim.waitFor("ready");
        const calls: BatchCallbackPayload[] = [];
        producer.task(queue, { queue, attempts: 3 });
        producer.task("cb", { queue: `${queue}_cb`, run: (p: BatchCallbackPayload) => void calls.push(p) });
        const { batchId, jobs } = await producer.batch(
          [0, 1, 2].map((n) => ({ task: queue, payload: { n } })),
          { onComplete: "cb", onSuccess: "cb" },
        );
        producer.task("after", { queue: `${queue}_cb` });
        const last = await producer.enqueue("after", {}, { dependsOn: jobs.map((j) => j.id) });
        await victim.waitFor("started ");
        await until("two members running in the victim", async () => {
          const active = await producer.admin.listJobs({ batchId, state: "active" });
          return active.jobs.length === 2;
        });
        victim.child.kill("SIGKILL");
        expect(await victim.exited).toBe("SIGKILL");
        const rescuer = ctx.sluice();
        rescuer.task(queue, { queue, run: (_p, job) => ({ attempt: job.attempt }) });
        rescuer.task("cb", { queue: `${queue}_cb`, run: (p: BatchCallbackPayload) => void calls.push(p) });
        let afterRuns = 0;
        rescuer.task("after", { queue: `${queue}_cb`, run: () => void afterRuns++ });
        await rescuer.worker({ queues: [queue, `${queue}_cb`], maintenanceMs: 100, pollMs: 100 }).start();
        await until(
          "both callbacks and the dependent ran",
          () => calls.length === 2 && afterRuns === 1,
          30_000,
        );
        expect(await rescuer.admin.batch(batchId)).toMatchObject({
          total: 3,
          completed: 3,
          dead: 0,
          pending: 0,
        });
        const events = calls
          .filter((c) => c.batchId === batchId)
          .map((c) => c.event)
          .sort();
        expect(events).toEqual(["complete", "success"]);
        // The handler ran; its completion is written by the worker's outcome batcher just after.
        await until(
          "the dependent's completion stored",
          async () => (await rescuer.admin.getJob(last.id)).state === "completed",
        );
        const recovered = await Promise.all(jobs.map((j) => rescuer.admin.getJob(j.id)));
        // The two it ran were recovered from its lease (a third it may have held ahead went back uncharged).
        expect(
          recovered.filter((j) => j.errors.some((e) => e.outcome === "lease-expired")).length,
        ).toBeGreaterThanOrEqual(2);
        expect(afterRuns).toBe(1);
      });
    });
  });
}
