/**
 * The flow workload (issue 12): one batch of N no-op children with a completion callback, one in-process
 * worker at concurrency C, on the defaults a user gets (maintenance on, completed children kept 24 h),
 * next to the same N plain no-op jobs on the same defaults, so the ratio isolates what flows cost.
 *
 * Children rate = N / (worker start → last child's completion written, as the worker's `completed` event
 * reports it). Callback lag = callback handler start − that last completion.
 */
import { Sluice, silentLogger } from "../src/index.js";

export interface FlowFigures {
  /** Completed children (or plain jobs) per second. */
  rate: number;
  /** Callback handler start − last child's completion, ms (NaN for the plain run). */
  callbackLagMs: number;
}

const DEADLINE_MS = 180_000;

/** Runs one round on `url` (queues named after `round`, so rounds never share jobs). */
export async function flowRound(
  url: string,
  options: { count: number; concurrency: number; batch: boolean; round: number },
): Promise<FlowFigures> {
  const sluice = new Sluice({ url, logger: silentLogger() });
  const queue = `flow_${options.batch ? "batch" : "plain"}_${process.pid}_${options.round}`;
  let lastCompletion = 0;
  let completed = 0;
  let callbackAt = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`flow round did not finish in ${DEADLINE_MS} ms`)),
      DEADLINE_MS,
    );
    const check = () => {
      if (completed === options.count && (!options.batch || callbackAt > 0)) {
        clearTimeout(timer);
        resolve();
      }
    };
    sluice.on("completed", (e) => {
      if (e.task !== "child") return;
      completed++;
      lastCompletion = Math.max(lastCompletion, e.at);
      check();
    });
    sluice.task("child", { queue, run: () => {} });
    sluice.task("callback", {
      queue,
      run: () => {
        callbackAt = Date.now();
        queueMicrotask(check);
      },
    });
  });
  try {
    const steps = Array.from({ length: options.count }, (_, n) => ({ task: "child", payload: { n } }));
    if (options.batch) {
      await sluice.batch(steps, { onComplete: "callback" });
    } else {
      for (let at = 0; at < steps.length; at += 1_000) {
        await sluice.enqueueMany(
          "child",
          steps.slice(at, at + 1_000).map((s) => ({ payload: s.payload })),
        );
      }
    }
    const worker = sluice.worker({ queues: [queue], concurrency: options.concurrency });
    const begin = Date.now();
    await worker.start();
    await done;
    await worker.stop();
    return {
      rate: options.count / ((lastCompletion - begin) / 1_000),
      callbackLagMs: options.batch ? callbackAt - lastCompletion : Number.NaN,
    };
  } finally {
    await sluice.close();
  }
}
