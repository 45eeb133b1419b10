/** `sluice pause QUEUE` and `sluice resume QUEUE`. */
import type { Command } from "commander";
import { withSluice } from "../context.js";
import { checkQueueName } from "../errors.js";
import { toJson } from "../output/json.js";

/** Registers `sluice pause` and `sluice resume`. */
export function registerPauseResume(program: Command): void {
  for (const verb of ["pause", "resume"] as const) {
    program
      .command(`${verb} <queue>`)
      .description(
        verb === "pause"
          ? "stop fetching from a queue (jobs keep arriving and wait; running jobs finish)"
          : "start fetching from a paused queue again (also lifts a rate-limit hold)",
      )
      .option("--json", "print JSON: { queue, paused, waiting }")
      .addHelpText("after", `\nExample:\n  $ sluice ${verb} rag_processing`)
      .action(async (queue: string, opts: { json?: boolean }, cmd: Command) => {
        checkQueueName(queue, "queue"); // exit 2 before connecting
        await withSluice(cmd, async (sluice) => {
          // Typo guard: a queue with no jobs that no worker serves is probably misspelt. Still done (an
          // operator may pause a queue before its first job), but said on stderr.
          const [before, workers] = await Promise.all([sluice.admin.queues(), sluice.admin.workers()]);
          const known = before.find((q) => q.queue === queue);
          const jobs = known ? Object.values(known.counts).reduce((a, n) => a + n, 0) : 0;
          if (jobs === 0 && !workers.some((w) => w.queues.includes(queue))) {
            const others = before
              .filter((q) => q.queue !== queue)
              .map((q) => q.queue)
              .slice(0, 20);
            process.stderr.write(
              `sluice: warning: queue ${queue} has no jobs and no worker serves it; ${verb === "pause" ? "paused" : "resumed"} it anyway. ` +
                `Check the spelling${others.length > 0 ? ` (known queues: ${others.join(", ")})` : ""}\n`,
            );
          }
          if (verb === "pause") await sluice.admin.pause(queue);
          else await sluice.admin.resume(queue);
          const q = (await sluice.admin.queues()).find((s) => s.queue === queue);
          const waiting = q?.counts.waiting ?? 0;
          if (opts.json) {
            process.stdout.write(toJson({ queue, paused: verb === "pause", waiting }));
          } else {
            process.stdout.write(
              `${verb === "pause" ? "paused" : "resumed"} queue ${queue} (${waiting} waiting)\n`,
            );
          }
        });
      });
  }
}
