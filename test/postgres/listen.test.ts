/** LISTEN/NOTIFY wake-ups: latency after enqueue, cancel signals, and recovery of a dropped LISTEN connection. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoreSignal } from "../../src/store/contract.js";
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
let producer: PostgresStore;
let consumer: PostgresStore;

beforeAll(async () => {
  producer = await openStore(url);
  consumer = await openStore(url);
});
afterAll(async () => {
  await producer?.close();
  await consumer?.close();
  await dropSchema(SHARED_URL, schema);
});

function collect(store: PostgresStore): { signals: StoreSignal[]; stop: () => void } {
  const signals: StoreSignal[] = [];
  const stop = store.subscribe((signal) => signals.push(signal));
  return { signals, stop };
}

describe("postgres wake-ups", () => {
  it("wakes a subscriber on another connection within milliseconds of an enqueue, naming the queue", async () => {
    const { signals, stop } = collect(consumer);
    try {
      expect(await consumer.listening()).toBe(true);
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const queue = `wake_${i}`;
        const start = performance.now();
        await producer.enqueue([newJob({ queue })]);
        await until(
          `the signal for ${queue}`,
          () => signals.some((s) => s.type === "jobs" && s.queues?.includes(queue)),
          5_000,
          0,
        );
        latencies.push(performance.now() - start);
      }
      latencies.sort((a, b) => a - b);
      // Generous bound for a shared 2-core box; typical is ~1 ms.
      expect(latencies[Math.floor(latencies.length / 2)]).toBeLessThan(50);
    } finally {
      stop();
    }
  });

  it("signals cancel requests and released jobs", async () => {
    const { signals, stop } = collect(consumer);
    try {
      await consumer.listening();
      signals.length = 0;
      await producer.enqueue([newJob({ queue: "wake_cancel" }), newJob({ queue: "wake_cancel" })]);
      const [job, other] = await producer.claim({
        queues: ["wake_cancel"],
        limit: 2,
        workerId: "w",
        leaseMs: 60_000,
      });
      const cancelled = await producer.cancel({ ids: [job!.id] }, { limit: 10 });
      expect(cancelled.requested).toEqual([job!.id]);
      await until("a cancel signal", () => signals.some((s) => s.type === "cancel"));
      signals.length = 0;
      // A released job is work again (the cancelled one, released too, is not: it goes to cancelled).
      expect(
        await producer.release([
          { id: other!.id, token: other!.leaseToken, reason: "stopping" },
          { id: job!.id, token: job!.leaseToken, reason: "stopping" },
        ]),
      ).toEqual([true, true]);
      await until("a jobs signal for the released job", () =>
        signals.some((s) => s.type === "jobs" && s.queues?.includes("wake_cancel")),
      );
      expect((await producer.getJob(job!.id))?.state).toBe("cancelled");
    } finally {
      stop();
    }
  });

  it("asks a new subscriber to look for work and cancels once its LISTEN is in place", async () => {
    // Anything notified before the LISTEN took effect is lost; a worker whose first claim ran before it
    // (or whose job was cancelled meanwhile) must look once instead of waiting for its poll or heartbeat.
    const fresh = await openStore(url);
    try {
      const { signals, stop } = collect(fresh);
      try {
        expect(await fresh.listening()).toBe(true);
        await until("both catch-up signals", () => {
          const kinds = signals.map((s) => (s.type === "jobs" ? `jobs:${s.queues}` : s.type));
          return kinds.includes("jobs:null") && kinds.includes("cancel");
        });
      } finally {
        stop();
      }
    } finally {
      await fresh.close();
    }
  });

  it("reconnects the LISTEN connection after the server drops it and asks the worker to re-poll", async () => {
    const { signals, stop } = collect(consumer);
    try {
      expect(await consumer.listening()).toBe(true);
      // Terminate only this schema's LISTEN backend(s) (never anything else on the shared server).
      const killed = await withAdmin(
        SHARED_URL,
        async (c) =>
          (
            await c.query(
              `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
             WHERE application_name = 'sluice' AND query = $1`,
              [`LISTEN "${schema}"`],
            )
          ).rowCount,
      );
      expect(killed).toBeGreaterThan(0);
      await until(
        "the re-poll signal after reconnecting",
        () => signals.some((s) => s.type === "jobs" && s.queues === null),
        15_000,
      );
      await producer.enqueue([newJob({ queue: "wake_after_reconnect" })]);
      await until("a wake-up on the new connection", () =>
        signals.some((s) => s.type === "jobs" && s.queues?.includes("wake_after_reconnect")),
      );
    } finally {
      stop();
    }
  });
});
