/**
 * Dependency health checks (runtime/health.ts) against a real dependency: a private redis-server this test
 * starts and stops. While it is down, no job of the checked queue starts and no attempt is charged, jobs
 * claimed ahead go back, running ones finish, other queues keep flowing; when it is back, the backlog drains.
 * Plus the bad checks: one that never resolves (times out), one that throws synchronously, one that answers
 * false — and bad options.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type HealthEvent,
  type JobRecord,
  Sluice,
  type SluiceError,
  silentLogger,
  ValidationError,
  type Worker,
} from "../../src/index.js";
import { PrivateRedis } from "../redis/helpers.js";
import { deferred, until } from "../support/wait.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-health-"));
let redis: PrivateRedis;
const open: { sluice: Sluice; workers: Worker[] }[] = [];

beforeAll(async () => {
  redis = await PrivateRedis.start();
});

afterAll(async () => {
  await redis.destroy();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const { sluice, workers } of open.splice(0)) {
    await Promise.all(workers.map((w) => w.stop({ graceMs: 0 })));
    await sluice.close();
  }
  if (!redis.pid) await redis.startAgain();
});

let n = 0;
function newSluice(): { sluice: Sluice; workers: Worker[]; path: string } {
  const path = join(dir, `h${++n}.db`);
  const entry = { sluice: new Sluice({ url: `sqlite:${path}`, logger: silentLogger() }), workers: [], path };
  open.push(entry);
  return entry;
}

/** Jobs leased in the file, held ahead included (users see those as waiting, so the admin API cannot tell). */
function leased(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM jobs WHERE state = 'active'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** A check as an application would write it: PING the dependency with a fresh client, honouring the signal. */
function pingRedis(url: string) {
  let runs = 0;
  return {
    runs: () => runs,
    async check(signal: AbortSignal): Promise<void> {
      runs++;
      const client = new Redis(url, {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        connectTimeout: 500,
      });
      client.on("error", () => {});
      const abort = () => client.disconnect();
      signal.addEventListener("abort", abort);
      try {
        await client.connect();
        await client.ping();
      } finally {
        signal.removeEventListener("abort", abort);
        client.disconnect();
      }
    },
  };
}

async function job(sluice: Sluice, id: string): Promise<JobRecord> {
  return sluice.admin.getJob(id);
}

describe("health checks with a real dependency (a private redis-server)", () => {
  it("while the dependency is down: no job of its queue starts, no attempt is charged, other queues flow; back up: the backlog drains", async () => {
    const entry = newSluice();
    const { sluice } = entry;
    const started: string[] = [];
    const vec = sluice.task("vec-upsert", {
      queue: "vec",
      async run(p: { i: number }, ctx) {
        started.push(ctx.job.id);
        // The handler really uses the dependency: a job that ran while it was down would fail here.
        const client = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
        client.on("error", () => {});
        try {
          await client.set(`doc:${p.i}`, "1");
        } finally {
          client.disconnect();
        }
      },
    });
    const other = sluice.task("thumbnail", { queue: "other", async run() {} });
    const ping = pingRedis(redis.url);
    const events: HealthEvent[] = [];
    sluice.on("health", (e) => events.push(e));
    const worker = sluice.worker({
      queues: ["vec", "other"],
      concurrency: 4,
      pollMs: 50,
      heartbeatMs: 100,
      leaseMs: 3_000,
      health: { vec: { check: (s) => ping.check(s), everyMs: 50, timeoutMs: 1_000 } },
    });
    entry.workers.push(worker);
    await worker.start();

    const first = await vec.enqueue({ i: 0 });
    await until(
      "the first vec job to complete",
      async () => (await job(sluice, first.id)).state === "completed",
    );
    expect(events).toEqual([]);

    await redis.stop();
    await until("the check to report failing", () => events.some((e) => !e.ok));
    const failed = events.find((e) => !e.ok) as HealthEvent;
    expect(failed).toMatchObject({ queue: "vec", ok: false, workerId: worker.id });
    expect(failed.error).toMatch(/ECONNREFUSED|Connection is closed|connect/i);
    const startedBefore = started.length;

    const backlog = await Promise.all([1, 2, 3, 4, 5].map((i) => vec.enqueue({ i })));
    const flowing = await Promise.all([1, 2, 3].map(() => other.enqueue({})));
    await until("the other queue's jobs to complete while vec's check fails", async () => {
      const states = await Promise.all(flowing.map(async (j) => (await job(sluice, j.id)).state));
      return states.every((s) => s === "completed");
    });
    // Several more failing runs of the check, each followed by fetch passes, and still nothing of vec ran.
    const runs = ping.runs();
    await until("five more runs of the check", () => ping.runs() >= runs + 5);
    expect(started.length).toBe(startedBefore);
    for (const j of backlog) {
      const stored = await job(sluice, j.id);
      expect(stored.state).toBe("waiting");
      expect(stored.attempt).toBe(0);
    }
    // Fleet-wide view: the registry entry says which queue fails on which worker, and why.
    const entryWhileDown = await until("the registry to show the failing check", async () => {
      const w = (await sluice.admin.workers()).find((x) => x.id === worker.id);
      return w?.health.find((h) => h.queue === "vec" && !h.ok) ? w : null;
    });
    expect(entryWhileDown.health[0]).toMatchObject({ queue: "vec", ok: false, since: failed.since });
    expect(entryWhileDown.health[0]?.lastError).toBe(failed.error);
    expect(Math.abs(entryWhileDown.clockSkewMs)).toBeLessThan(2_000);

    await redis.startAgain();
    await until("the check to pass again", () => events.some((e) => e.ok));
    await until(
      "the vec backlog to drain",
      async () => {
        const states = await Promise.all(backlog.map(async (j) => (await job(sluice, j.id)).state));
        return states.every((s) => s === "completed");
      },
      20_000,
    );
    for (const j of backlog) expect((await job(sluice, j.id)).attempt).toBe(1);
    expect(events.map((e) => e.ok)).toEqual([false, true]);
    const client = redis.client();
    try {
      expect(await client.exists("doc:1", "doc:2", "doc:3", "doc:4", "doc:5")).toBe(5);
    } finally {
      client.disconnect();
    }
  });

  it("a running job finishes when the check starts failing; jobs claimed ahead go back uncharged", async () => {
    const entry = newSluice();
    const { sluice } = entry;
    const gate = deferred();
    let running = 0;
    const vec = sluice.task("vec-slow", {
      queue: "vec",
      async run() {
        running++;
        await gate.promise;
      },
    });
    const ping = pingRedis(redis.url);
    const events: HealthEvent[] = [];
    sluice.on("health", (e) => events.push(e));
    const released: string[] = [];
    sluice.on("released", (e) => released.push(e.jobId));
    const worker = sluice.worker({
      queues: ["vec"],
      concurrency: 1,
      prefetch: 2,
      pollMs: 50,
      health: { vec: { check: (s) => ping.check(s), everyMs: 50, timeoutMs: 1_000 } },
    });
    entry.workers.push(worker);
    const jobs = await Promise.all([1, 2, 3].map(() => vec.enqueue({})));
    await worker.start();
    await until("one job running and two held ahead", () => running === 1 && leased(entry.path) === 3);
    await redis.stop();
    await until("the check to fail", () => events.some((e) => !e.ok));
    await until("the two held jobs to go back", () => released.length === 2);
    gate.resolve();
    const states = await until("the running job to complete and the others to wait", async () => {
      const all = await Promise.all(jobs.map((j) => job(sluice, j.id)));
      const done = all.filter((j) => j.state === "completed");
      const waiting = all.filter((j) => j.state === "waiting");
      return done.length === 1 && waiting.length === 2 ? { done, waiting } : null;
    });
    expect(states.done[0]?.attempt).toBe(1);
    for (const j of states.waiting) expect(j.attempt).toBe(0);
    expect(running).toBe(1);
  });
});

describe("checks that misbehave", () => {
  it("a check that never resolves times out, counts as failing and has its signal aborted; stop() is not held up", async () => {
    const entry = newSluice();
    const { sluice } = entry;
    const t = sluice.task("never", { queue: "hung", async run() {} });
    const free = sluice.task("free", { queue: "free", async run() {} });
    const aborted: unknown[] = [];
    const events: HealthEvent[] = [];
    sluice.on("health", (e) => events.push(e));
    const worker = sluice.worker({
      queues: ["hung", "free"],
      pollMs: 50,
      health: {
        hung: {
          everyMs: 50,
          timeoutMs: 100,
          check: (signal) =>
            new Promise(() => {
              signal.addEventListener("abort", () => aborted.push(signal.reason));
            }),
        },
      },
    });
    entry.workers.push(worker);
    const stuck = await t.enqueue({});
    const fine = await free.enqueue({});
    const startedAt = Date.now();
    await worker.start(); // its first run is awaited, bounded by the timeout
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(events[0]).toMatchObject({ queue: "hung", ok: false });
    expect(events[0]?.error).toContain("did not answer within 100 ms");
    expect((aborted[0] as SluiceError).code).toBe("HEALTH_CHECK_TIMEOUT");
    await until(
      "the other queue's job to complete",
      async () => (await job(sluice, fine.id)).state === "completed",
    );
    await until("more timed-out runs", () => aborted.length >= 3);
    expect((await job(sluice, stuck.id)).state).toBe("waiting");
    expect((await job(sluice, stuck.id)).attempt).toBe(0);
    const stopping = Date.now();
    await worker.stop({ graceMs: 0 });
    expect(Date.now() - stopping).toBeLessThan(5_000);
  });

  it("a check that throws synchronously, or answers false, counts as failing", async () => {
    const entry = newSluice();
    const { sluice } = entry;
    sluice.task("a", { queue: "qa", async run() {} });
    sluice.task("b", { queue: "qb", async run() {} });
    const events: HealthEvent[] = [];
    sluice.on("health", (e) => events.push(e));
    const worker = sluice.worker({
      queues: ["qa", "qb"],
      health: {
        qa: {
          check: () => {
            throw new Error("no route to host");
          },
        },
        qb: { check: () => false },
      },
    });
    entry.workers.push(worker);
    await worker.start();
    const byQueue = Object.fromEntries(events.map((e) => [e.queue, e]));
    expect(byQueue.qa).toMatchObject({ ok: false, error: "no route to host" });
    expect(byQueue.qb).toMatchObject({ ok: false, error: "health check returned false" });
    const registered = await until("the registry entry", async () =>
      (await sluice.admin.workers()).find((w) => w.id === worker.id),
    );
    expect(registered.health.map((h) => [h.queue, h.ok])).toEqual([
      ["qa", false],
      ["qb", false],
    ]);
  });

  it("refuses bad options with INVALID_OPTION naming the field", () => {
    const { sluice } = newSluice();
    const bad = (health: unknown, queues: string[] = ["rag"]) => {
      try {
        sluice.worker({ queues, health: health as never });
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return { code: (error as ValidationError).code, field: (error as ValidationError).field };
      }
      throw new Error("accepted");
    };
    const check = async () => {};
    expect(bad({ other: { check } })).toEqual({ code: "INVALID_OPTION", field: "worker.health.other" });
    expect(bad({ rag: { check: "ping" } })).toEqual({ code: "INVALID_OPTION", field: "worker.health.rag" });
    expect(bad({ rag: { check, everyMs: 0 } })).toEqual({
      code: "INVALID_OPTION",
      field: "worker.health.rag.everyMs",
    });
    expect(bad({ rag: { check, everyMs: Number.NaN } }).field).toBe("worker.health.rag.everyMs");
    expect(bad({ rag: { check, timeoutMs: -5 } }).field).toBe("worker.health.rag.timeoutMs");
    expect(bad({ rag: { check, every: 10 } }).field).toBe("worker.health.rag.every");
    expect(bad([check]).field).toBe("worker.health");
  });
});
