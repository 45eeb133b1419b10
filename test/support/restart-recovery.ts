/**
 * The recovery rule after a store restart (src/store/outage.ts), checked the same way on every networked
 * engine against a PRIVATE server the caller restarts by pid:
 *
 * - before the restart, a worker holds two jobs under a short lease; the server goes down longer than the
 *   lease, so both leases run out during the outage;
 * - right after the restart, neither a store whose connection broke nor one opened after the restart
 *   (connection never broken, server just started) recovers anything with `waitAfterRestartMs`;
 * - the live worker extends one lease on reconnect (as its heartbeat does); once the store has been back
 *   one lease period, recovery takes exactly the other one (its worker really died), and the live worker
 *   then writes its outcome;
 * - without `waitAfterRestartMs` (an operator's `sluice recover`) recovery acts at once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";
import type { Store } from "../../src/store/contract.js";
import { newJob } from "./new-job.js";
import { until } from "./wait.js";

export interface RestartTarget {
  /** Opens a new store on the private server. */
  open(): Promise<Store>;
  /** Stops the server abruptly (immediate stop / SIGKILL). */
  stop(): Promise<void>;
  /** Starts it again on the same data; resolves once it answers. */
  start(): Promise<void>;
}

const LEASE_MS = 1_000;
const WAIT_MS = 5_000;

export async function checkRecoveryWaitsAfterRestart(target: RestartTarget): Promise<void> {
  const worker = await target.open();
  const leader = await target.open();
  const stores: Store[] = [worker, leader];
  try {
    const queue = `restart-${Date.now()}`;
    const [live, orphan] = await worker.enqueue([newJob({ queue }), newJob({ queue })]);
    const claimed = await worker.claim({ queues: [queue], limit: 2, workerId: "w1", leaseMs: LEASE_MS });
    expect(claimed).toHaveLength(2);
    const liveJob = claimed.find((j) => j.id === live?.id)!;
    const orphanJob = claimed.find((j) => j.id === orphan?.id)!;
    // Without an outage the rule changes nothing: the leader's connection never broke and the server is old.
    expect(
      await leader.recover({
        mode: { kind: "expired", waitAfterRestartMs: WAIT_MS },
        dryRun: true,
        limit: 10,
      }),
    ).toEqual([]); // leases not expired yet

    await target.stop();
    await sleep(LEASE_MS + 500); // both leases run out while the server is down
    await target.start();
    const upAt = Date.now();
    const fresh = await target.open(); // opened after the restart: only the server's start time tells
    stores.push(fresh);

    const expired = {
      mode: { kind: "expired" as const, waitAfterRestartMs: WAIT_MS },
      dryRun: false,
      limit: 10,
    };
    // Right after the restart: nothing is recovered, by either store (the leader's connection may need a
    // moment to come back, so failed calls are tried again).
    for (const store of [leader, fresh]) {
      const first = await until(
        "the store to answer after the restart",
        () => store.recover(expired),
        5_000,
        50,
      );
      expect(first).toEqual([]);
    }
    // The operator's recovery (no wait) would take both at once: a dry run shows it.
    expect(
      (await fresh.recover({ mode: { kind: "expired" }, dryRun: true, limit: 10 })).map((j) => j.id).sort(),
    ).toEqual([live?.id, orphan?.id].sort());
    // The live worker reconnects and extends its lease (its heartbeat, or the reconnect signal).
    await until(
      "the live worker's extend to succeed",
      async () => {
        const result = await worker.extendLeases([{ id: liveJob.id, token: liveJob.leaseToken }], 60_000);
        expect(result.lost).toEqual([]);
        return true;
      },
      5_000,
      50,
    );
    // Still within one lease period of the restart: nothing.
    expect(await leader.recover(expired)).toEqual([]);
    expect(Date.now() - upAt).toBeLessThan(WAIT_MS);

    // One lease period after the restart, the orphan (and only it) is recovered, by either store.
    const recovered = await until(
      "the orphan to be recovered once the store has been back one lease period",
      async () => {
        const r = await fresh.recover(expired);
        return r.length > 0 ? r : null;
      },
      WAIT_MS + 10_000,
      100,
    );
    expect(Date.now() - upAt).toBeGreaterThanOrEqual(WAIT_MS - 1_000); // Redis uptime is in whole seconds
    expect(recovered.map((j) => j.id)).toEqual([orphanJob.id]);
    expect(recovered[0]).toMatchObject({ to: "waiting", workerId: "w1" });
    expect(await leader.recover(expired)).toEqual([]);
    // The live worker's finished outcome is written: not fenced off, no second run.
    expect(await worker.complete([{ id: liveJob.id, token: liveJob.leaseToken, result: null }])).toEqual([
      true,
    ]);
    expect((await fresh.getJob(liveJob.id))?.state).toBe("completed");
    expect((await fresh.getJob(orphanJob.id))?.state).toBe("waiting");
  } finally {
    for (const store of stores) await store.close().catch(() => undefined);
  }
}
