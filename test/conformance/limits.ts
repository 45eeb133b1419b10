/**
 * Fleet-wide limits (core/limits.ts) on every engine: queue and per-key concurrency measured by the handlers
 * of three worker processes, no head-of-line blocking between keys, rate windows, key holds from
 * RateLimitedError, and bad input.
 */
import { describe, expect, it } from "vitest";
import { RateLimitedError, type Sluice, ValidationError } from "../../src/index.js";
import type { ConformanceContext } from "./context.js";
import { until } from "./context.js";

interface Span {
  pid: number;
  start: number;
  end: number;
  key: string | null;
}

/** The most intervals open at one instant (an interval ending exactly when another starts does not overlap). */
function maxOverlap(spans: readonly Span[]): number {
  const points = spans.flatMap((s) => [
    { at: s.start, delta: 1 },
    { at: s.end, delta: -1 },
  ]);
  points.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let open = 0;
  let most = 0;
  for (const p of points) {
    open += p.delta;
    most = Math.max(most, open);
  }
  return most;
}

/** Every job of `queue` completed, with the span its handler returned. */
async function spansOf(sluice: Sluice, queue: string, total: number, timeoutMs = 60_000): Promise<Span[]> {
  await until(
    `${total} jobs of ${queue} completed`,
    async () => (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.completed === total,
    timeoutMs,
    50,
  );
  const spans: Span[] = [];
  let cursor: string | null = null;
  do {
    const page = await sluice.admin.listJobs({ queue, state: "completed" }, { limit: 1_000, cursor });
    spans.push(...page.jobs.map((j) => j.result as unknown as Span));
    cursor = page.nextCursor;
  } while (cursor !== null);
  return spans;
}

export function limitTests(ctx: ConformanceContext): void {
  describe("limits", () => {
    it("three worker processes never run more than the queue's or a key's concurrency", async () => {
      const queue = ctx.queue("conc");
      const producer = ctx.sluice();
      await producer.limits(queue, { concurrency: 4, keyConcurrency: 1 });
      // Each process runs at most 2, so the fleet (6) can exceed the queue's limit (4) but no process fills
      // it alone: the limit is what holds the fleet back, and the work is shared (a process at concurrency 4
      // could take every free slot again as its jobs ended, and run all 60 itself).
      const workers = [0, 1, 2].map(() => ctx.spawnWorker({ queue, mode: "timed", concurrency: 2 }));
      await Promise.all(workers.map((w) => w.waitFor("ready")));
      const total = 60;
      await producer.enqueueMany(
        queue,
        Array.from({ length: total }, (_, n) => ({
          payload: { holdMs: 15 + (n % 3) * 10 },
          options: { queue, limitKey: `tenant-${n % 10}` },
        })),
      );
      const spans = await spansOf(producer, queue, total);
      expect(spans).toHaveLength(total);
      expect(new Set(spans.map((s) => s.pid)).size).toBeGreaterThan(1); // the fleet shared the work
      expect(maxOverlap(spans)).toBeLessThanOrEqual(4);
      expect(maxOverlap(spans)).toBeGreaterThan(1); // and the limit was a limit, not a single lane
      for (let k = 0; k < 10; k++) {
        expect(maxOverlap(spans.filter((s) => s.key === `tenant-${k}`))).toBe(1);
      }
      const stats = (await producer.admin.queues()).find((q) => q.queue === queue);
      expect(stats?.limits).toEqual({ concurrency: 4, rate: null, keyConcurrency: 1, keyRate: null });
    });

    it("a key at its limit does not hold up the other keys of the queue (no head-of-line blocking)", async () => {
      const queue = ctx.queue("hol");
      const sluice = ctx.sluice();
      await sluice.limits(queue, { keyConcurrency: 1 });
      const finished: { key: string; at: number }[] = [];
      sluice.task("work", {
        queue,
        run: async (p: { ms: number }, job) => {
          await new Promise((resolve) => setTimeout(resolve, p.ms));
          finished.push({ key: job.job.limitKey ?? "", at: Date.now() });
        },
      });
      // The hot key's backlog first, in enqueue order ahead of every cold job.
      await sluice.enqueueMany(
        "work",
        Array.from({ length: 8 }, () => ({ payload: { ms: 150 }, options: { limitKey: "hot" } })),
      );
      await sluice.enqueueMany(
        "work",
        Array.from({ length: 20 }, (_, n) => ({ payload: { ms: 5 }, options: { limitKey: `cold-${n}` } })),
      );
      await sluice.worker({ queues: [queue], concurrency: 6 }).start();
      await until("every job finished", () => finished.length === 28, 30_000);
      const lastCold = Math.max(...finished.filter((f) => f.key !== "hot").map((f) => f.at));
      const hotDone = finished.filter((f) => f.key === "hot" && f.at <= lastCold).length;
      // Cold keys all finished while the hot key, one at a time, had most of its backlog left.
      expect(hotDone).toBeLessThanOrEqual(3);
    });

    it("starts at most `max` jobs per rate window across three processes", async () => {
      const queue = ctx.queue("rate");
      const producer = ctx.sluice();
      const windowMs = 400;
      await producer.limits(queue, { rate: { max: 5, windowMs } });
      // No prefetch: each claim is a start, so the store's startedAt is the moment the rate counted.
      const workers = [0, 1, 2].map(() =>
        ctx.spawnWorker({ queue, mode: "timed", concurrency: 4, prefetch: 0 }),
      );
      await Promise.all(workers.map((w) => w.waitFor("ready")));
      const total = 30;
      await producer.enqueueMany(
        queue,
        Array.from({ length: total }, () => ({ payload: { holdMs: 1 }, options: { queue } })),
      );
      await spansOf(producer, queue, total);
      const perWindow = new Map<number, number>();
      for (const job of (await producer.admin.listJobs({ queue }, { limit: 100 })).jobs) {
        const window = Math.floor((job.startedAt as number) / windowMs);
        perWindow.set(window, (perWindow.get(window) ?? 0) + 1);
      }
      expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(5);
      expect(perWindow.size).toBeGreaterThanOrEqual(6); // 30 jobs at 5 per window: at least 6 windows
    });

    it("a per-key rate limits each key alone", async () => {
      const queue = ctx.queue("krate");
      const sluice = ctx.sluice();
      const windowMs = 500;
      await sluice.limits(queue, { keyRate: { max: 2, windowMs } });
      sluice.task("k", { queue, run: () => {} });
      await sluice.enqueueMany(
        "k",
        Array.from({ length: 12 }, (_, n) => ({ payload: {}, options: { limitKey: n < 6 ? "a" : "b" } })),
      );
      await sluice.worker({ queues: [queue], concurrency: 4, prefetch: 0 }).start();
      await until(
        "all ran",
        async () => (await sluice.admin.queues()).find((q) => q.queue === queue)?.counts.completed === 12,
        30_000,
      );
      const jobs = (await sluice.admin.listJobs({ queue }, { limit: 100 })).jobs;
      for (const key of ["a", "b"]) {
        const windows = new Map<number, number>();
        for (const job of jobs.filter((j) => j.limitKey === key)) {
          const w = Math.floor((job.startedAt as number) / windowMs);
          windows.set(w, (windows.get(w) ?? 0) + 1);
        }
        expect(Math.max(...windows.values())).toBeLessThanOrEqual(2);
      }
    });

    it("RateLimitedError on a job with a key holds that key only; the job goes back uncharged", async () => {
      const queue = ctx.queue("hold");
      const sluice = ctx.sluice();
      let limitedOnce = false;
      const ran: string[] = [];
      sluice.task("call-api", {
        queue,
        limitKey: (p: { tenant: string }) => p.tenant,
        run: (p: { tenant: string }) => {
          if (p.tenant === "noisy" && !limitedOnce) {
            limitedOnce = true;
            throw new RateLimitedError(800, "upstream answered 429 for tenant noisy");
          }
          ran.push(p.tenant);
        },
      });
      const noisy = await sluice.enqueue("call-api", { tenant: "noisy" });
      await sluice.worker({ queues: [queue], concurrency: 2 }).start();
      await until("the noisy key is held", async () =>
        (await sluice.admin.keyHolds()).some((h) => h.key === "noisy"),
      );
      const held = (await sluice.admin.keyHolds()).find((h) => h.key === "noisy");
      expect(held).toMatchObject({ queue, key: "noisy" });
      for (let n = 0; n < 5; n++) await sluice.enqueue("call-api", { tenant: `quiet-${n}` });
      await until(
        "quiet tenants ran while noisy is held",
        () => ran.filter((t) => t.startsWith("quiet")).length === 5,
      );
      expect(ran).not.toContain("noisy");
      const queueStats = (await sluice.admin.queues()).find((q) => q.queue === queue);
      expect(queueStats?.paused).toBe(false); // the queue was never paused
      await until("noisy ran after its hold", () => ran.includes("noisy"), 10_000);
      expect((await sluice.admin.getJob(noisy.id)).attempt).toBe(1); // the limited attempt was not charged
    });

    it("refuses bad limits and a bad key with typed errors, and writes nothing", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue("badlim");
      for (const bad of [
        { concurrency: 0 },
        { concurrency: -1 },
        { concurrency: Number.NaN },
        { keyConcurrency: 1.5 },
        { rate: { max: 10 } },
        { rate: { max: 0, windowMs: 1000 } },
        { rate: { max: 5, windowMs: Number.POSITIVE_INFINITY } },
        { burst: 3 },
      ]) {
        await expect(sluice.limits(queue, bad as never)).rejects.toBeInstanceOf(ValidationError);
      }
      expect((await sluice.admin.queues()).find((q) => q.queue === queue)?.limits ?? null).toBeNull();
      sluice.task("keyed", {
        queue,
        limitKey: (p: { t?: unknown }) => {
          if (p.t === undefined) throw new Error("payload has no tenant");
          return p.t as string;
        },
      });
      await expect(sluice.enqueue("keyed", {})).rejects.toMatchObject({
        code: "INVALID_OPTION",
        field: "task.limitKey",
      });
      await expect(sluice.enqueue("keyed", { t: 7 })).rejects.toMatchObject({ code: "INVALID_OPTION" });
      await expect(sluice.enqueue("keyed", { t: "x" }, { limitKey: "" })).rejects.toMatchObject({
        code: "INVALID_OPTION",
        field: "options.limitKey",
      });
      expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
      // Removing limits: claims go back to the plain path.
      await sluice.limits(queue, { concurrency: 3 });
      expect((await sluice.admin.queues()).find((q) => q.queue === queue)?.limits?.concurrency).toBe(3);
      await sluice.limits(queue, null);
      expect((await sluice.admin.queues()).find((q) => q.queue === queue)?.limits ?? null).toBeNull();
    });
  });
}
