/**
 * Limits on PostgreSQL (migration-limits.ts): what only this engine can get wrong. Claimers on separate
 * pools racing for the last slot of a queue, of a key and of a rate window, many rounds; claims naming the
 * same limited queues in opposite orders (no deadlock); a hot key's long backlog skipped without stopping;
 * the plain path runs exactly the statements it ran before limits existed; the claim flag follows limits
 * and holds; every limit key insert path (plain, flow, schedule) stores the key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueueLimits } from "../../src/core/limits.js";
import type { JobRecord } from "../../src/index.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { quoteSchema } from "../../src/store/postgres/sql.js";
import {
  dropSchema,
  newJob,
  openStore,
  SHARED_URL,
  uniqueSchema,
  urlWithSchema,
  withAdmin,
} from "./pg-test-utils.js";

const schema = uniqueSchema();
const url = urlWithSchema(SHARED_URL, schema);
const s = quoteSchema(schema);
let store: PostgresStore;
/** Claimers with pools of their own, so their claims really run at the same time on the server. */
let claimers: PostgresStore[] = [];
let q = 0;
const queue = () => `lim_${++q}`;

const LIMITS: QueueLimits = { concurrency: null, rate: null, keyConcurrency: null, keyRate: null };

beforeAll(async () => {
  store = await openStore(url);
  claimers = await Promise.all(Array.from({ length: 4 }, () => openStore(url)));
});
afterAll(async () => {
  await Promise.all(claimers.map((c) => c.close()));
  await store?.close();
  await dropSchema(SHARED_URL, schema);
});

/** Every claimer claims `limit` from `queues` at once; the jobs all of them got. */
async function race(queues: string[], limit: number, start?: number): Promise<JobRecord[]> {
  const got = await Promise.all(
    claimers.map((c, i) =>
      c.claim({
        queues: i % 2 === 0 ? queues : [...queues].reverse(),
        limit,
        workerId: `w${i}`,
        leaseMs: 60_000,
        ...(start === undefined ? {} : { start }),
      }),
    ),
  );
  return got.flat();
}

async function completeAll(jobs: readonly JobRecord[]): Promise<void> {
  await store.complete(jobs.map((j) => ({ id: j.id, token: j.leaseToken, result: null })));
}

describe("postgres limits", () => {
  it("four claimers racing for the last slot of a queue never both take it (100 rounds)", async () => {
    const name = queue();
    await store.setQueueLimits(name, { ...LIMITS, concurrency: 2 });
    await store.enqueue(Array.from({ length: 400 }, () => newJob({ queue: name })));
    const deadline = Date.now() + 60_000;
    let rounds = 0;
    // One job stays active all along, so each round races for the one slot left.
    const [pinned] = await store.claim({ queues: [name], limit: 1, workerId: "pin", leaseMs: 600_000 });
    expect(pinned).toBeDefined();
    for (; rounds < 100 && Date.now() < deadline; rounds++) {
      const taken = await race([name], 3);
      expect(taken.length, `round ${rounds}`).toBe(1);
      await completeAll(taken);
    }
    expect(rounds).toBe(100);
  });

  it("racing claimers never take two jobs of a key at keyConcurrency 1, nor past a rate window (100 rounds)", async () => {
    const keyed = queue();
    const rated = queue();
    await store.setQueueLimits(keyed, { ...LIMITS, keyConcurrency: 1 });
    // One window for the whole test: at most 100 claims in it, by whoever races.
    await store.setQueueLimits(rated, { ...LIMITS, rate: { max: 100, windowMs: 86_400_000 } });
    await store.enqueue(
      Array.from({ length: 300 }, (_, n) => newJob({ queue: keyed, limitKey: n % 3 === 0 ? "a" : "b" })),
    );
    await store.enqueue(Array.from({ length: 300 }, () => newJob({ queue: rated })));
    const started = Date.now();
    let rated_total = 0;
    for (let round = 0; round < 100 && Date.now() - started < 60_000; round++) {
      const taken = await race([keyed], 2);
      const perKey = new Map<string | null, number>();
      for (const job of taken) perKey.set(job.limitKey, (perKey.get(job.limitKey) ?? 0) + 1);
      expect(Math.max(...perKey.values()), `round ${round}`).toBe(1);
      expect(taken.length).toBe(2); // both keys flow: one job each
      await completeAll(taken);
      const fromRate = await race([rated], 1);
      rated_total += fromRate.length;
      await completeAll(fromRate);
    }
    expect(rated_total).toBe(100);
    expect((await race([rated], 5)).length).toBe(0); // the window is spent
  });

  it("claims naming limited queues in opposite orders never deadlock, and every job is taken once", async () => {
    const a = queue();
    const b = queue();
    for (const name of [a, b]) {
      // A limit below the claim's, so every claim goes on to its second queue while it holds the first.
      await store.setQueueLimits(name, { ...LIMITS, concurrency: 2 });
      await store.enqueue(Array.from({ length: 300 }, () => newJob({ queue: name })));
    }
    const seen = new Set<string>();
    const started = Date.now();
    // A deadlock costs PostgreSQL's deadlock_timeout (1 s) and a retry per occurrence: it shows up as this
    // loop running out of time.
    while (seen.size < 600 && Date.now() - started < 30_000) {
      const taken = await race([a, b], 7); // claimers 0 and 2 name [a, b], 1 and 3 name [b, a]
      for (const job of taken) {
        expect(seen.has(job.id)).toBe(false);
        seen.add(job.id);
      }
      await completeAll(taken);
    }
    expect(seen.size).toBe(600);
  });

  it("claims held ahead count toward the limits like running jobs; a job leaving active frees its slot", async () => {
    const name = queue();
    await store.setQueueLimits(name, { ...LIMITS, concurrency: 3, keyConcurrency: 2 });
    await store.enqueue(Array.from({ length: 10 }, () => newJob({ queue: name, limitKey: "k" })));
    const held = await store.claim({ queues: [name], limit: 5, workerId: "w", leaseMs: 60_000, start: 0 });
    expect(held.length).toBe(2); // keyConcurrency 2
    expect(held.every((j) => j.startedAt === null)).toBe(true);
    expect(await store.claim({ queues: [name], limit: 5, workerId: "w", leaseMs: 60_000 })).toEqual([]);
    const stats = (await store.queueStats()).find((x) => x.queue === name);
    expect(stats).toMatchObject({ limitedActive: 2, heldKeys: 0 });
    expect(stats?.counts.waiting).toBe(10); // held ahead is waiting, as users see it
    // Released (back to waiting), failed, completed: each frees its slot at once (counted from the index).
    const [first, second] = held as [JobRecord, JobRecord];
    await store.release([{ id: first.id, token: first.leaseToken, reason: "shutdown" }]);
    const again = await store.claim({ queues: [name], limit: 5, workerId: "w", leaseMs: 60_000 });
    expect(again.length).toBe(1);
    await store.fail([
      {
        id: second.id,
        token: second.leaseToken,
        error: { attempt: 1, outcome: "error", name: "Error", message: "x", at: Date.now() },
        next: { state: "dead", reason: "failed" },
      },
    ]);
    expect((await store.claim({ queues: [name], limit: 5, workerId: "w", leaseMs: 60_000 })).length).toBe(1);
  });

  it("skips a held key and a full key's long backlog without stopping at them (no head-of-line blocking)", async () => {
    const name = queue();
    await store.setQueueLimits(name, { ...LIMITS, keyConcurrency: 1 });
    // 3,000 jobs of "hot" ahead of everything (many pages of the limited claim), then held, then cold.
    for (let i = 0; i < 3_000; i += 1_000) {
      await store.enqueue(
        Array.from({ length: 1_000 }, () => newJob({ queue: name, limitKey: "hot", priority: -1 })),
      );
    }
    await store.enqueue(Array.from({ length: 5 }, () => newJob({ queue: name, limitKey: "held" })));
    await store.enqueue(Array.from({ length: 5 }, (_, n) => newJob({ queue: name, limitKey: `cold-${n}` })));
    await store.enqueue([newJob({ queue: name, limitKey: null })]);
    await store.holdKey(name, "held", Date.now() + 60_000);
    await store.holdKey(name, "held", Date.now() + 1_000); // only ever extends
    const taken = await store.claim({ queues: [name], limit: 20, workerId: "w", leaseMs: 60_000 });
    expect(taken.map((j) => j.limitKey).sort()).toEqual(
      ["cold-0", "cold-1", "cold-2", "cold-3", "cold-4", "hot", null].sort(),
    );
    const [hold] = await store.keyHolds(10);
    expect(hold).toMatchObject({ queue: name, key: "held", backlog: 5 });
    expect(hold?.until).toBeGreaterThan(Date.now() + 30_000);
    expect((await store.queueStats()).find((x) => x.queue === name)?.heldKeys).toBe(1);
    // resumeQueue ends the queue's key holds.
    await store.resumeQueue(name);
    expect(await store.keyHolds(10)).toEqual([]);
    const after = await store.claim({ queues: [name], limit: 20, workerId: "w", leaseMs: 60_000 });
    expect(after.map((j) => j.limitKey)).toEqual(["held"]);
  });

  it("runs exactly the plain statements for a queue without limits, and turns the limited path on and off", async () => {
    const name = queue();
    await store.enqueue(Array.from({ length: 20 }, () => newJob({ queue: name })));
    const flag = async () =>
      (await withAdmin(SHARED_URL, (c) => c.query(`SELECT limited FROM ${s}.queues WHERE name = $1`, [name])))
        .rows[0]?.limited ?? null;
    /** The statements the claim function ran (auto_explain prints every nested statement's plan). */
    const statementsOfClaim = () =>
      withAdmin(SHARED_URL, async (client) => {
        const seen: string[] = [];
        client.on("notice", (notice) => seen.push(notice.message ?? ""));
        await client.query("LOAD 'auto_explain'");
        await client.query(
          "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; " +
            "SET auto_explain.log_level = notice; SET client_min_messages = notice",
        );
        await client.query("BEGIN");
        try {
          await client.query(`SELECT count(*) FROM ${s}.claim(ARRAY[$1], 5, 'w', 30000, 5, true)`, [name]);
        } finally {
          await client.query("ROLLBACK");
        }
        return seen
          .filter((n) => n.includes("Query Text"))
          .map((n) => n.split("Query Text:")[1]?.trim() ?? "");
      });
    expect(await flag()).toBeNull(); // no queues row at all
    const plain = await statementsOfClaim();
    // The top-level call, promotion, the pause+flag lookup, one take: as before migration 13.
    expect(plain.length, plain.join("\n---\n")).toBe(4);
    expect(plain.join("\n")).not.toMatch(/claim_limited|key_holds|FOR UPDATE;|key_rates/);

    await store.setQueueLimits(name, { ...LIMITS, concurrency: 10 });
    expect(await flag()).toBe(true);
    const limited = await statementsOfClaim();
    expect(limited.join("\n")).toMatch(/claim_limited/);
    expect(limited.join("\n")).toMatch(/FROM .*queues q WHERE q.name = p_queue FOR UPDATE/);

    // Limits removed: the flag goes off at once; a hold turns it on until a claim finds the hold over.
    await store.setQueueLimits(name, null);
    expect(await flag()).toBe(false);
    expect((await store.queueStats()).find((x) => x.queue === name)?.limits ?? null).toBeNull();
    await store.holdKey(name, "k", Date.now() + 50);
    expect(await flag()).toBe(true);
    const deadline = Date.now() + 10_000;
    while ((await flag()) && Date.now() < deadline) {
      await store.claim({ queues: [name], limit: 1, workerId: "w", leaseMs: 60_000 });
    }
    expect(await flag()).toBe(false);
    expect(await store.keyHolds(10)).toEqual([]);
    // Limits that limit nothing are none.
    await store.setQueueLimits(name, LIMITS);
    expect(await flag()).toBe(false);
  });

  it("stores the limit key on every insert path: plain, unique-key, flow (dependencies, batch)", async () => {
    const name = queue();
    const plain = newJob({ queue: name, limitKey: "p" });
    const unique = newJob({ queue: name, limitKey: "u", uniqueKey: "one", uniqueStates: ["waiting"] });
    await store.enqueue([plain]);
    await store.enqueue([unique]);
    const child = newJob({ queue: name, limitKey: "f", dependsOn: [{ id: plain.id, onFailure: "fail" }] });
    await store.enqueue([child]);
    for (const [job, key] of [
      [plain, "p"],
      [unique, "u"],
      [child, "f"],
    ] as const) {
      expect((await store.getJob(job.id))?.limitKey).toBe(key);
    }
  });
});
