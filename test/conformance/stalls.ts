/**
 * A handler that blocks the event loop longer than its lease (CPU-bound or synchronous work): the worker
 * must say so (a warning and the `stalled` event), count it in its registry entry, and store the stall
 * with the job whose lease it cost, so the dead job explains itself.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { SluiceEvents } from "../../src/index.js";
import { capturingLogger } from "../support/fault-logs.js";
import { until } from "../support/wait.js";
import type { ConformanceContext } from "./context.js";

const JOB_STATE = fileURLToPath(new URL("../fixtures/job-state.ts", import.meta.url));

/** The job's state read synchronously (a child process): blocks this process's event loop meanwhile. */
function stateNow(url: string, id: string): string {
  return execFileSync(process.execPath, ["--import", "tsx", JOB_STATE, url, id], { encoding: "utf8" }).trim();
}

export function stallTests(ctx: ConformanceContext): void {
  describe("event-loop stalls", () => {
    it("a handler that blocks the event loop past its lease: warned, counted, and stored with the job it cost", async () => {
      const { logger, lines } = capturingLogger();
      const sluice = ctx.sluice({ logger });
      const queue = ctx.queue("stall");
      const stalled: SluiceEvents["stalled"][0][] = [];
      sluice.on("stalled", (e) => stalled.push(e));
      let finished = 0;
      const task = sluice.task("busy-parse", {
        queue,
        attempts: 1,
        run(_payload, job) {
          // Synchronous work that outlives the lease: it ends once another process's maintenance has
          // recovered the job (read synchronously, so the loop stays blocked), or after 60 s at most.
          const deadline = Date.now() + 60_000;
          while (Date.now() < deadline && stateNow(ctx.url(), job.id) === "active") {
            // each look is a synchronous child process: the loop stays blocked throughout
          }
          finished++;
          return "parsed";
        },
      });
      // The recovering process: a worker of another queue whose maintenance (every 300 ms) recovers
      // expired leases of every queue. Started first, so it leads maintenance.
      const other = ctx.spawnWorker({ queue: ctx.queue("other"), mode: "record", leaseMs: 600 });
      await other.waitFor("ready");
      const worker = sluice.worker({ queues: [queue], leaseMs: 600, heartbeatMs: 200, maintenance: false });
      await worker.start();
      const { id } = await task.enqueue({});

      // The job the stall cost: recovered as "stopped heartbeating" (dead: one attempt), the late result
      // fenced off, and the stall stored on the attempt's error.
      const job = await until(
        "the stall stored on the job's attempt",
        async () => {
          const j = await sluice.admin.getJob(id);
          return j.errors[0]?.note ? j : null;
        },
        60_000,
      ).catch(async (error: unknown) => {
        // Say what happened instead: the job as stored and the worker's warnings.
        const warnings = lines.filter((l) => l.level >= 40).map((l) => l.msg);
        throw new Error(
          `${String(error)}\njob: ${JSON.stringify(await sluice.admin.getJob(id))}\nwarnings: ${warnings.join("\n")}`,
        );
      });
      expect(finished).toBe(1);
      expect(job).toMatchObject({ state: "dead", result: null, attempt: 1 });
      expect(job.reason).toContain("stopped heartbeating");
      expect(job.errors).toHaveLength(1);
      expect(job.errors[0]).toMatchObject({ attempt: 1, outcome: "lease-expired" });
      expect(job.errors[0]?.note).toMatch(
        /^event loop blocked for \S+ on \S+\/\d+ while running task busy-parse: move it to a sandbox or raise leaseMs \(lease 600ms\); the lease expired during the stall/,
      );

      // The event and the warning name the task and the job; the stall exceeded a third of the lease.
      const event = stalled.find((e) => e.jobIds.includes(id));
      expect(event).toMatchObject({ workerId: worker.id, leaseMs: 600, tasks: ["busy-parse"] });
      expect(event?.stallMs).toBeGreaterThan(200);
      const warning = lines.find(
        (l) => l.msg.startsWith("event loop blocked for") && (l.jobs as string[] | undefined)?.includes(id),
      );
      expect(warning?.msg).toContain("while running task busy-parse: move it to a sandbox or raise leaseMs");
      expect(warning?.msg).toContain(worker.id);
      expect(warning).toMatchObject({ level: 40, leaseMs: 600, tasks: ["busy-parse"] });

      // The registry entry counts it, fleet-wide (admin.workers() reads the store).
      const entry = await until("the stall counted in the worker's registry entry", async () => {
        const w = (await sluice.admin.workers()).find((x) => x.id === worker.id);
        return w && w.stalls.count >= 1 && w.stalls.longestMs >= (event?.stallMs ?? 0) ? w : null;
      });
      expect(entry.stalls.last?.leaseMs).toBe(600);
      expect(entry.stalls.longestMs).toBeGreaterThan(200);
      await worker.stop({ graceMs: 1_000 });
    });
  });
}
