/** Claims under concurrency (SKIP LOCKED), claim order, fencing by lease token, retention on complete. */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import {
  dropSchema,
  newJob,
  openStore,
  SHARED_URL,
  uniqueSchema,
  until,
  urlWithSchema,
  withAdmin,
} from "./pg-test-utils.js";

const schema = uniqueSchema();
const url = urlWithSchema(SHARED_URL, schema);
let store: PostgresStore;
let q = 0;
const queue = () => `claims_${++q}`;

beforeAll(async () => {
  store = await openStore(url);
});
afterAll(async () => {
  await store?.close();
  await dropSchema(SHARED_URL, schema);
});

describe("postgres claims", () => {
  it("never hands the same job to two of several concurrent claimers (separate pools)", async () => {
    const name = queue();
    const total = 3_000;
    for (let i = 0; i < total; i += 1_000) {
      await store.enqueue(Array.from({ length: 1_000 }, () => newJob({ queue: name })));
    }
    // Eight claimers, each with its own pool, so claims really run in parallel on the server.
    const claimers = await Promise.all(Array.from({ length: 8 }, () => openStore(url)));
    try {
      const taken: string[][] = await Promise.all(
        claimers.map(async (claimer, i) => {
          const mine: string[] = [];
          for (;;) {
            const jobs = await claimer.claim({
              queues: [name],
              limit: 7,
              workerId: `w${i}`,
              leaseMs: 60_000,
            });
            if (jobs.length === 0) return mine;
            for (const job of jobs) {
              expect(job.state).toBe("active");
              expect(job.workerId).toBe(`w${i}`);
            }
            mine.push(...jobs.map((j) => j.id));
          }
        }),
      );
      const all = taken.flat();
      expect(all.length).toBe(total);
      expect(new Set(all).size).toBe(total);
      // Work was actually shared, so the claims did overlap in time.
      expect(taken.filter((t) => t.length > 0).length).toBeGreaterThan(1);
    } finally {
      await Promise.all(claimers.map((c) => c.close()));
    }
  }, 60_000);

  it("serves queues in the given order, then priority, run time and enqueue order", async () => {
    const [a, b] = [queue(), queue()];
    const now = Date.now();
    const [late, early, urgent] = await store.enqueue([
      newJob({ queue: a, runAt: now - 1_000 }),
      newJob({ queue: a, runAt: now - 5_000 }),
      newJob({ queue: a, priority: -5, runAt: now }),
    ]);
    const [first, second] = await store.enqueue([newJob({ queue: b }), newJob({ queue: b })]);
    const jobs = await store.claim({ queues: [b, a], limit: 10, workerId: "w", leaseMs: 60_000 });
    expect(jobs.map((j) => j.id)).toEqual([first?.id, second?.id, urgent?.id, early?.id, late?.id]);
    const limited = await store.enqueue([newJob({ queue: a }), newJob({ queue: a }), newJob({ queue: b })]);
    const two = await store.claim({ queues: [a, b], limit: 2, workerId: "w", leaseMs: 60_000 });
    expect(two.map((j) => j.id)).toEqual([limited[0]?.id, limited[1]?.id]);
  });

  it("promotes due scheduled jobs inside claim and skips paused queues", async () => {
    const name = queue();
    const [delayed] = await store.enqueue([newJob({ queue: name, runAt: Date.now() + 300 })]);
    expect(delayed?.state).toBe("scheduled");
    expect(await store.claim({ queues: [name], limit: 5, workerId: "w", leaseMs: 60_000 })).toEqual([]);
    await store.pauseQueue(name, null);
    await until(
      "the delayed job to be due",
      async () => ((await store.nextRunAt([name])) ?? 0) <= Date.now(),
    );
    expect(await store.claim({ queues: [name], limit: 5, workerId: "w", leaseMs: 60_000 })).toEqual([]);
    await store.resumeQueue(name);
    const jobs = await store.claim({ queues: [name], limit: 5, workerId: "w", leaseMs: 60_000 });
    expect(jobs.map((j) => j.id)).toEqual([delayed?.id]);
  });

  it("fences: a stale lease token can neither complete, fail, extend nor report progress", async () => {
    const name = queue();
    await store.enqueue([newJob({ queue: name, maxAttempts: 5 })]);
    const [first] = await store.claim({ queues: [name], limit: 1, workerId: "old", leaseMs: 1 });
    expect(first?.leaseToken).toBe(1);
    // The database clock expires the 1 ms lease; recovery returns the job; another worker claims it.
    await until("the lease to be recovered", async () =>
      (await store.recover({ mode: { kind: "expired" }, dryRun: false, limit: 10 })).some(
        (r) => r.id === first?.id,
      ),
    );
    const [second] = await store.claim({ queues: [name], limit: 1, workerId: "new", leaseMs: 60_000 });
    expect(second?.id).toBe(first?.id);
    expect(second?.leaseToken).toBe(2);
    expect(second?.attempt).toBe(2);
    const stale = { id: first!.id, token: first!.leaseToken };
    expect(await store.complete([{ ...stale, result: '"stale"' }])).toEqual([false]);
    expect(
      await store.fail([
        {
          ...stale,
          error: { attempt: 1, outcome: "error", name: "Error", message: "stale", at: Date.now() },
          next: { state: "dead", reason: "stale" },
        },
      ]),
    ).toEqual([false]);
    expect(await store.release([{ ...stale, reason: "stale" }])).toEqual([false]);
    expect(await store.saveProgress([{ ...stale, progress: "0.5" }])).toEqual([false]);
    expect(await store.extendLeases([stale], 60_000)).toEqual({
      lost: [stale],
      cancelRequested: [],
      paused: [],
    });
    const current = await store.getJob(first!.id);
    expect(current).toMatchObject({ state: "active", workerId: "new", leaseToken: 2, progress: null });
    expect(current?.errors.map((e) => e.outcome)).toEqual(["lease-expired"]);
    // The current owner's token still works.
    expect(await store.complete([{ id: second!.id, token: second!.leaseToken, result: '"ok"' }])).toEqual([
      true,
    ]);
    expect(await store.getJob(first!.id)).toMatchObject({ state: "completed", result: "ok" });
  });

  it("computes lease expiry with the database clock, not the caller's", async () => {
    const name = queue();
    await store.enqueue([newJob({ queue: name })]);
    // This process's clock an hour ahead (a skewed worker host): the lease must still follow the database.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 3_600_000 });
    let job: Awaited<ReturnType<typeof store.claim>>[number] | undefined;
    try {
      [job] = await store.claim({ queues: [name], limit: 1, workerId: "w", leaseMs: 60_000 });
    } finally {
      vi.useRealTimers();
    }
    const db = await withAdmin(SHARED_URL, async (c) =>
      Number((await c.query("SELECT floor(extract(epoch from now()) * 1000) AS ms")).rows[0].ms),
    );
    expect(Math.abs((job?.leaseExpiresAt ?? 0) - 60_000 - db)).toBeLessThan(5_000);
    expect(job?.leaseExpiresAt).toBe((job?.startedAt ?? 0) + 60_000);
  });

  it("applies retention on complete: false deletes the row, { count } keeps the newest N", async () => {
    const name = queue();
    const [gone, kept] = await store.enqueue([
      newJob({ queue: name, retention: false }),
      newJob({ queue: name, retention: true }),
    ]);
    await store.appendLogs([{ id: gone!.id, at: Date.now(), attempt: 1, message: "bye" }]);
    const jobs = await store.claim({ queues: [name], limit: 2, workerId: "w", leaseMs: 60_000 });
    expect(await store.complete(jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: null })))).toEqual([
      true,
      true,
    ]);
    expect(await store.getJob(gone!.id)).toBeNull();
    expect(await store.getLogs(gone!.id, 10)).toEqual([]);
    expect((await store.getJob(kept!.id))?.state).toBe("completed");

    const counted = queue();
    const made = await store.enqueue(
      Array.from({ length: 5 }, () => newJob({ queue: counted, retention: { count: 2 } })),
    );
    for (const _ of made) {
      const [job] = await store.claim({ queues: [counted], limit: 1, workerId: "w", leaseMs: 60_000 });
      await store.complete([{ id: job!.id, token: job!.leaseToken, result: null }]);
    }
    await store.prune({ limit: 100, workersSilentSince: 0 });
    const left = await store.listJobs({ filter: { queue: counted }, limit: 10, order: "asc" });
    expect(left.jobs.map((j) => j.id)).toEqual([made[3]?.id, made[4]?.id]);
  });

  it("completes and starts in one call, each item fenced by its lease like complete and start alone", async () => {
    const name = queue();
    await store.enqueue(Array.from({ length: 4 }, () => newJob({ queue: name })));
    // a, b run (started by the claim); c, d are held ahead.
    const [a, b, c, d] = await store.claim({
      queues: [name],
      limit: 4,
      workerId: "w",
      leaseMs: 60_000,
      start: 2,
    });
    if (!a || !b || !c || !d) throw new Error("expected four jobs");
    const result = await store.completeAndStart(
      [
        { id: a.id, token: a.leaseToken, result: '{"ok":true}' },
        { id: b.id, token: b.leaseToken + 1, result: null }, // a stale lease: not completed
      ],
      [
        { id: c.id, token: c.leaseToken },
        { id: d.id, token: d.leaseToken + 1 }, // stale: not started
      ],
    );
    expect(result).toEqual({ completed: [true, false], started: [true, false] });
    expect(await store.getJob(a.id)).toMatchObject({ state: "completed", result: { ok: true } });
    expect(await store.getJob(b.id)).toMatchObject({ state: "active" });
    const started = await store.getJob(c.id);
    expect(started?.state).toBe("active");
    expect(started?.startedAt).not.toBeNull();
    expect((await store.getJob(d.id))?.startedAt).toBeNull();
  });

  it("rejects with StoreUnavailableError (not a raw pg error) when the server refuses a statement", async () => {
    const broken = await openStore(url);
    await withAdmin(SHARED_URL, (c) =>
      c.query(
        `ALTER FUNCTION "${schema}".claim(text[], integer, text, bigint, integer, boolean) RENAME TO claim_gone`,
      ),
    );
    try {
      await expect(
        broken.claim({ queues: ["x"], limit: 1, workerId: "w", leaseMs: 1_000 }),
      ).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await withAdmin(SHARED_URL, (c) =>
        c.query(
          `ALTER FUNCTION "${schema}".claim_gone(text[], integer, text, bigint, integer, boolean) RENAME TO claim`,
        ),
      );
      await broken.close();
    }
  });
});
