import { afterEach, describe, expect, it, vi } from "vitest";
import { StoreUnavailableError, silentLogger } from "../../src/index.js";
import { Batcher, type Linger, settleTaken } from "../../src/runtime/batcher.js";
import { until } from "../support/wait.js";

describe("Batcher", () => {
  it("writes the items of one event-loop turn in one call", async () => {
    const calls: number[][] = [];
    const batcher = new Batcher<number, number>(
      "test",
      async (items) => {
        calls.push(items);
        return items.map((n) => n * 2);
      },
      silentLogger(),
    );
    expect(await Promise.all([1, 2, 3].map((n) => batcher.push(n)))).toEqual([2, 4, 6]);
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it("retries a batch while the store is unreachable, then writes it", async () => {
    let failures = 2;
    const batcher = new Batcher<string, string>(
      "test",
      async (items) => {
        if (failures-- > 0) throw new StoreUnavailableError("connection refused");
        return items;
      },
      silentLogger(),
    );
    expect(await Promise.all(["a", "b"].map((x) => batcher.push(x)))).toEqual(["a", "b"]);
    expect(failures).toBe(-1);
  });

  it("isolates an item the store refuses: only that item rejects, the others are written", async () => {
    const written: string[] = [];
    let calls = 0;
    const batcher = new Batcher<string, boolean>(
      "test",
      async (items) => {
        calls++;
        if (items.includes("poison")) {
          throw new StoreUnavailableError("rejected the statement", { rejected: true });
        }
        written.push(...items);
        return items.map(() => true);
      },
      silentLogger(),
    );
    const items = ["a", "b", "poison", "c", "d", "e"];
    const results = await Promise.allSettled(items.map((x) => batcher.push(x)));
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
      "fulfilled",
    ]);
    expect(written.sort()).toEqual(["a", "b", "c", "d", "e"]);
    // Halving finds it in a few calls, not one call per item.
    expect(calls).toBeLessThanOrEqual(7);
  });

  it("stops retrying an unreachable store on close: the items in flight reject", async () => {
    let calls = 0;
    const batcher = new Batcher<number, number>(
      "test",
      async () => {
        calls++;
        throw new StoreUnavailableError("connection refused");
      },
      silentLogger(),
    );
    const pending = batcher.push(1);
    await until("the first write failed", () => calls >= 1);
    batcher.close();
    await expect(pending).rejects.toThrow("connection refused");
    await batcher.drain();
  });
});

describe("Batcher callbacks", () => {
  it("hands each item its outcome; a receiver that throws neither stops the others nor is swallowed", async () => {
    const batcher = new Batcher<number, number>(
      "test",
      async (items) => items.map((n) => n * 10),
      silentLogger(),
    );
    // The throw surfaces as an unhandled rejection (as a throwing promise reaction would): caught here.
    const surfaced: unknown[] = [];
    const others = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    const catcher = (reason: unknown) => void surfaced.push(reason);
    process.on("unhandledRejection", catcher);
    try {
      const got: [number, boolean, unknown][] = [];
      const boom = new Error("listener bug");
      for (const n of [1, 2, 3]) {
        batcher.add(n, (failed, value) => {
          got.push([n, failed, value]);
          if (n === 1) throw boom;
        });
      }
      await batcher.drain();
      expect(got).toEqual([
        [1, false, 10],
        [2, false, 20],
        [3, false, 30],
      ]);
      await until("the receiver's throw surfaced", () => surfaced.length === 1);
      expect(surfaced).toEqual([boom]);
    } finally {
      process.off("unhandledRejection", catcher);
      for (const listener of others) process.on("unhandledRejection", listener);
    }
  });

  it("tells a receiver its item was not written when the store refuses it or the batcher closes", async () => {
    const batcher = new Batcher<string, boolean>(
      "test",
      async (items) => {
        if (items.includes("poison")) throw new StoreUnavailableError("rejected", { rejected: true });
        return items.map(() => true);
      },
      silentLogger(),
    );
    const got = new Map<string, [boolean, unknown]>();
    for (const item of ["a", "poison"]) batcher.add(item, (failed, value) => got.set(item, [failed, value]));
    await batcher.drain();
    expect(got.get("a")).toEqual([false, true]);
    expect(got.get("poison")?.[0]).toBe(true);
    expect(got.get("poison")?.[1]).toBeInstanceOf(StoreUnavailableError);
  });
});

describe("Batcher lanes", () => {
  it("keeps one write in flight with one lane, and lets a second start during the first with two", async () => {
    for (const lanes of [1, 2]) {
      let inFlight = 0;
      let most = 0;
      const gates: (() => void)[] = [];
      const batcher = new Batcher<number, number>(
        "test",
        async (items) => {
          inFlight++;
          most = Math.max(most, inFlight);
          await new Promise<void>((resolve) => gates.push(resolve));
          inFlight--;
          return items;
        },
        silentLogger(),
        500,
        lanes,
      );
      const first = batcher.push(1);
      await until("the first write started", () => gates.length === 1);
      const second = batcher.push(2); // queued while the first write is in flight
      // With two lanes the second write starts now; with one it waits for the first.
      await until("the writes settled into their lanes", () => gates.length === lanes);
      gates.shift()?.();
      await until("the rest started", () => gates.length >= 1 || inFlight === 0);
      while (gates.length > 0) gates.shift()?.();
      await until("all written", async () => (await Promise.all([first, second])).length === 2);
      expect(most).toBe(lanes);
    }
  });
});

/** A batcher whose writes are recorded; items settle, as themselves, when their write returns. */
function recording(lanes = 1, linger: Linger | null = null) {
  const calls: number[][] = [];
  const batcher = new Batcher<number, number>(
    "test",
    async (items) => {
      calls.push(items);
      return items;
    },
    silentLogger(),
    500,
    lanes,
    linger,
  );
  return { calls, batcher };
}

describe("Batcher with a linger", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A recording batcher with two lanes whose batches under `below` items are held 50 ms. */
  const lingering = (below: number) => recording(2, { ms: 50, below });

  it("holds a small batch back so that items of later turns join it", async () => {
    vi.useFakeTimers();
    const { calls, batcher } = lingering(8);
    const first = batcher.push(1);
    await vi.advanceTimersByTimeAsync(20); // many turns of the event loop, nothing written yet
    expect(calls).toEqual([]);
    const second = batcher.push(2);
    await vi.advanceTimersByTimeAsync(31); // the linger ends at 50 ms; the write starts on the next turn
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(calls).toEqual([[1, 2]]);
  });

  it("writes a batch of `below` items on the next turn, without waiting", async () => {
    vi.useFakeTimers();
    const { calls, batcher } = lingering(3);
    const written = Promise.all([1, 2, 3].map((n) => batcher.push(n)));
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([[1, 2, 3]]);
    expect(await written).toEqual([1, 2, 3]);
  });

  it("drain writes a lingering batch at once, and close rejects one still held", async () => {
    vi.useFakeTimers();
    const { calls, batcher } = lingering(8);
    const drained = batcher.push(1);
    await batcher.drain();
    expect(calls).toEqual([[1]]);
    expect(await drained).toBe(1);
    const held = batcher.push(2);
    batcher.close();
    await expect(held).rejects.toThrow(/closed before the write succeeded/);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toEqual([[1]]);
  });
});

describe("Batcher items taken by another writer", () => {
  afterEach(() => vi.useRealTimers());

  it("takeQueued hands over queued items (a held batch included) and stops holding them", async () => {
    vi.useFakeTimers();
    const { calls, batcher } = recording(1, { ms: 5, below: 8 });
    const results = [1, 2].map((n) => batcher.push(n));
    const taken = batcher.takeQueued(10);
    expect(taken.map((t) => t.item)).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(20);
    expect(calls).toEqual([]); // the held batch's timer is gone with its items
    for (const t of taken) settleTaken(t, false, t.item * 10);
    expect(await Promise.all(results)).toEqual([10, 20]);
  });

  it("requeue puts taken items back ahead of the others, and the batcher writes them", async () => {
    const { calls, batcher } = recording();
    const first = [1, 2].map((n) => batcher.push(n));
    const taken = batcher.takeQueued(10);
    const later = batcher.push(3);
    batcher.requeue(taken);
    expect(await Promise.all([...first, later])).toEqual([1, 2, 3]);
    expect(calls.flat()).toEqual([1, 2, 3]);
  });

  it("requeue after close rejects the items rather than dropping them", async () => {
    const batcher = new Batcher<number, number>("test", async (items) => items, silentLogger());
    const pushed = batcher.push(1);
    const taken = batcher.takeQueued(10);
    batcher.close();
    batcher.requeue(taken);
    await expect(pushed).rejects.toThrow(/closed/);
  });
});
