/** Store-level admin paths specific to the PostgreSQL engine: stats roll-up, per-queue unique keys, pagination. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HISTOGRAM_SIZE, hourOf, type StatsRow } from "../../src/core/stats.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { dropSchema, newJob, openStore, SHARED_URL, uniqueSchema, urlWithSchema } from "./pg-test-utils.js";

const schema = uniqueSchema();
const url = urlWithSchema(SHARED_URL, schema);
let store: PostgresStore;

beforeAll(async () => {
  store = await openStore(url);
});
afterAll(async () => {
  await store?.close();
  await dropSchema(SHARED_URL, schema);
});

function statsRow(queue: string, hour: number, completed: number, slot: number): StatsRow {
  const durations = new Array<number>(HISTOGRAM_SIZE).fill(0);
  durations[slot] = completed;
  return { queue, hour, completed, failed: 1, dead: 0, durations, lastCompletedAt: hour + completed };
}

describe("postgres admin", () => {
  it("adds concurrent stats flushes from many workers slot by slot", async () => {
    const hour = hourOf(Date.now());
    const others = await Promise.all(Array.from({ length: 4 }, () => openStore(url)));
    try {
      // 4 stores x 10 flushes, each with a duplicate row for the same (hour, queue) inside one call.
      await Promise.all(
        others.map(async (other) => {
          for (let i = 0; i < 10; i++) {
            await other.addHourlyStats([statsRow("rollup", hour, 2, 3), statsRow("rollup", hour, 1, 5)]);
          }
        }),
      );
    } finally {
      await Promise.all(others.map((o) => o.close()));
    }
    const [row] = (await store.readHourlyStats(hour)).filter((r) => r.queue === "rollup");
    expect(row).toMatchObject({
      queue: "rollup",
      hour,
      completed: 120,
      failed: 80,
      dead: 0,
      lastCompletedAt: hour + 2,
    });
    expect(row?.durations[3]).toBe(80);
    expect(row?.durations[5]).toBe(40);
    expect(row?.durations.reduce((a, b) => a + b, 0)).toBe(120);
    expect(await store.readHourlyStats(hour + 3_600_000)).toEqual([]);
  });

  it("scopes unique keys to their queue", async () => {
    const key = { uniqueKey: "doc:1", uniqueStates: ["waiting", "scheduled"] as const };
    const [a1, a2, b1] = await store.enqueue([
      newJob({ queue: "uq_a", ...key, uniqueStates: [...key.uniqueStates] }),
      newJob({ queue: "uq_a", ...key, uniqueStates: [...key.uniqueStates] }),
      newJob({ queue: "uq_b", ...key, uniqueStates: [...key.uniqueStates] }),
    ]);
    expect(a1?.created).toBe(true);
    expect(a2).toEqual({ id: a1?.id, state: "waiting", created: false });
    expect(b1?.created).toBe(true);
    expect(b1?.id).not.toBe(a1?.id);
  });

  it("pages through jobs with opaque cursors in both orders and counts every state", async () => {
    const made = await store.enqueue(
      Array.from({ length: 7 }, () => newJob({ queue: "pages", tags: ["t1"] })),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.listJobs({
        filter: { queue: "pages", tag: "t1" },
        limit: 3,
        cursor,
        order: "asc",
      });
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(made.map((m) => m.id));
    const newest = await store.listJobs({ filter: { queue: "pages" }, limit: 2 });
    expect(newest.jobs.map((j) => j.id)).toEqual([made[6]?.id, made[5]?.id]);
    const [stats] = (await store.queueStats()).filter((s) => s.queue === "pages");
    expect(stats?.counts).toEqual({
      scheduled: 0,
      waiting: 7,
      active: 0,
      completed: 0,
      dead: 0,
      cancelled: 0,
      blocked: 0,
    });
    expect(stats?.oldestWaitingAt).toBeTypeOf("number");
  });

  it("reports the engine, server version and a redacted location", async () => {
    const info = await store.info();
    expect(info.engine).toBe("postgres");
    expect(info.version).toMatch(/^\d+/);
    expect(info.location).toContain("127.0.0.1");
    expect(info.hazards.length).toBeGreaterThan(0);
  });
});
