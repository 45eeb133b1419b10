/**
 * A worker survives its Redis restarting mid-run: the PRIVATE server (AOF, appendfsync always) is killed
 * with SIGKILL by its pid while jobs run, started again on the same data directory, and every job still
 * completes; none is lost, none goes dead. While Redis is down, a producer gets StoreUnavailableError.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { Sluice, StoreUnavailableError } from "../../src/index.js";
import { eventually, PrivateRedis } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("redis restart", () => {
  it("a worker keeps going through a Redis crash and restart: all jobs complete, none lost", async () => {
    const redis = await PrivateRedis.start(["--appendonly", "yes", "--appendfsync", "always"]);
    cleanups.push(() => redis.destroy());
    const logs: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split("\n"))
            if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
          done();
        },
      }),
    );
    const sluice = new Sluice({ url: `${redis.url}?prefix=restart`, logger });
    cleanups.push(() => sluice.close());
    const ran = new Set<string>();
    const task = sluice.task<{ n: number }>("work", {
      queue: "work",
      async run(_payload, ctx) {
        await new Promise((resolve) => setTimeout(resolve, 3));
        ran.add(ctx.id);
      },
    });
    const N = 400;
    const enqueued = await task.enqueueMany(Array.from({ length: N }, (_, n) => ({ payload: { n } })));
    expect(enqueued).toHaveLength(N);

    const worker = sluice.worker({ queues: ["work"], concurrency: 10, leaseMs: 1_500 });
    await worker.start();
    cleanups.push(() => worker.stop({ graceMs: 1_000 }));
    await eventually("some jobs to run before the crash", () => ran.size >= 50);

    await redis.stop("SIGKILL");
    expect(ran.size).toBeLessThan(N); // the crash really happened mid-run
    await expect(task.enqueue({ n: -1 })).rejects.toBeInstanceOf(StoreUnavailableError);

    await redis.startAgain();
    const admin = new Sluice({ url: `${redis.url}?prefix=restart`, logger: pino({ level: "silent" }) });
    cleanups.push(() => admin.close());
    const store = await admin.store();
    await eventually(
      "every job to complete after the restart",
      async () => {
        const [stats] = await store.stats();
        return stats?.counts.completed === N;
      },
      30_000,
    );
    const [stats] = await store.stats();
    expect(stats!.counts).toMatchObject({ completed: N, dead: 0, waiting: 0, active: 0, scheduled: 0 });
    for (const job of enqueued) expect(ran.has(job.id)).toBe(true);
    expect(logs.some((l) => l.msg.includes("reconnecting"))).toBe(true);
    expect(logs.some((l) => l.msg.includes("connection restored"))).toBe(true);
  });
});
