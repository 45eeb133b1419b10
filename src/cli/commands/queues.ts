/** `sluice pause QUEUE` and `sluice resume QUEUE`. */
import type { Command } from "commander";
import { withSluice } from "../context.js";
import { toJson } from "../output/json.js";

/** Registers `sluice pause` and `sluice resume`. */
export function registerPauseResume(program: Command): void {
  for (const verb of ["pause", "resume"] as const) {
    program
      .command(`${verb} <queue>`)
      .description(
        verb === "pause"
          ? "stop fetching from a queue (jobs keep arriving and wait; running jobs finish)"
          : "start fetching from a paused queue again",
      )
      .option("--json", "print JSON: { queue, paused, waiting }")
      .addHelpText("after", `\nExample:\n  $ sluice ${verb} rag_processing`)
      .action(async (queue: string, opts: { json?: boolean }, cmd: Command) => {
        await withSluice(cmd, async (sluice) => {
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
