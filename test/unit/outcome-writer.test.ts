/**
 * The outcome writer's start writes that carry queued completions along, and completion writes that carry
 * queued starts (Store.completeAndStart): one call where the store offers it, and when that call fails the
 * riders are written by their own batcher, before a flush returns, and the write's own items alone —
 * nothing is lost or held back.
 */
import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/core/job.js";
import { StoreUnavailableError, silentLogger } from "../../src/index.js";
import type { Linger } from "../../src/runtime/batcher.js";
import { SluiceEventEmitter } from "../../src/runtime/events.js";
import { OutcomeWriter } from "../../src/runtime/outcome-writer.js";
import type { CompleteRequest, LeaseRef, Store } from "../../src/store/contract.js";

const job = (id: string): JobRecord =>
  ({ id, queue: "q", task: "t", attempt: 1, leaseToken: 1, startedAt: null }) as unknown as JobRecord;

/**
 * A store that records its outcome writes; `combined` decides what completeAndStart does (absent: none;
 * "fence-completions": it applies the starts and refuses the completions, as for a lost lease).
 */
function fakeStore(
  combined?: "ok" | "refuse" | "fence-completions",
  linger: Linger | null = { ms: 1_000, below: 8 },
) {
  const calls: string[] = [];
  const fenced: string[] = [];
  const store = {
    async complete(requests: readonly CompleteRequest[]) {
      calls.push(`complete ${requests.map((r) => r.id).join(",")}`);
      return requests.map(() => true);
    },
    async start(leases: readonly LeaseRef[]) {
      calls.push(`start ${leases.map((l) => l.id).join(",")}`);
      return leases.map(() => true);
    },
    async addHourlyStats() {},
    ...(combined && {
      async completeAndStart(completions: readonly CompleteRequest[], starts: readonly LeaseRef[]) {
        calls.push(`both ${completions.map((r) => r.id).join(",")} ${starts.map((l) => l.id).join(",")}`);
        if (combined === "refuse") throw new StoreUnavailableError("refused", { rejected: true });
        const completed = completions.map(() => combined !== "fence-completions");
        return { completed, started: starts.map(() => true) };
      },
    }),
  } as unknown as Store;
  const writer = new OutcomeWriter(store, new SluiceEventEmitter(), silentLogger(), {
    lanes: 2,
    // By default held long enough that a start always finds the completion still queued.
    completionLinger: linger,
    onWriteSettled: () => {},
    onFenced: (fencedJob) => fenced.push(fencedJob.id),
  });
  return { calls, fenced, writer };
}

describe("outcome writer: completions riding on start writes", () => {
  it("writes a start and the completions waiting to be written in one call", async () => {
    const { calls, writer } = fakeStore("ok");
    writer.complete(job("a"), Date.now(), null);
    expect(await writer.markStarted(job("b"))).toBe(true);
    expect(calls).toEqual(["both a b"]);
    expect(writer.unwritten).toBe(0);
  });

  it("writes them separately on a store without the combined call", async () => {
    const { calls, writer } = fakeStore();
    writer.complete(job("a"), Date.now(), null);
    expect(await writer.markStarted(job("b"))).toBe(true);
    await writer.flush();
    expect(calls).toEqual(["start b", "complete a"]);
  });

  it("when the combined call fails, writes the start alone and the completion before flush returns", async () => {
    const { calls, writer } = fakeStore("refuse");
    writer.complete(job("a"), Date.now(), null);
    // flush while the start (and the completion it took along) is being written: the completion comes
    // back to its batcher after that batcher's own drain found it empty.
    const started = writer.markStarted(job("b"));
    await writer.flush();
    expect(await started).toBe(true);
    expect(calls).toEqual(["both a b", "start b", "complete a"]);
    expect(writer.unwritten).toBe(0);
  });

  it("a completion written first takes the starts queued in the same turn along", async () => {
    const { calls, writer } = fakeStore("ok", null);
    writer.complete(job("a"), Date.now(), null); // written on the next turn: no linger
    expect(await writer.markStarted(job("b"))).toBe(true);
    await writer.flush();
    expect(calls).toEqual(["both a b"]);
  });

  it("when that call fails, writes the completion alone and the start through its own batcher", async () => {
    const { calls, writer } = fakeStore("refuse", null);
    writer.complete(job("a"), Date.now(), null);
    const started = writer.markStarted(job("b"));
    // One turn: the completion's write goes first (it was queued first) and takes the start along.
    await new Promise((resolve) => setImmediate(resolve));
    await writer.flush();
    expect(await started).toBe(true);
    expect(calls).toEqual(["both a b", "complete a", "start b"]);
    expect(writer.unwritten).toBe(0);
  });

  it("gives each side its own result, whichever write carried the other", async () => {
    // A start write carrying a completion: the start applied, the completion refused.
    const first = fakeStore("fence-completions");
    first.writer.complete(job("a"), Date.now(), null);
    expect(await first.writer.markStarted(job("b"))).toBe(true);
    expect(first.fenced).toEqual(["a"]);
    // A completion write carrying a start: the same results, the other way round.
    const second = fakeStore("fence-completions", null);
    second.writer.complete(job("a"), Date.now(), null);
    expect(await second.writer.markStarted(job("b"))).toBe(true);
    await second.writer.flush();
    expect(second.calls).toEqual(["both a b"]);
    expect(second.fenced).toEqual(["a"]);
  });
});
