/**
 * `sluice dev`: zero-config. Creates a SQLite file, starts a worker and the demo pipeline, and shows live
 * what happens — counts per state, throughput, latency, progress of running documents, notable events —
 * until Ctrl-C (or `--duration`). No server needed.
 */

import type { QueueOverview } from "../../client/admin.js";
import type { Sluice } from "../../client/sluice.js";
import { formatDuration } from "../../core/duration.js";
import { shellQuote } from "../../doctor/target.js";
import { DEMO_QUEUES, defineDemoPipeline, demoDocument } from "./demo-pipeline.js";

export interface DevOptions {
  /** Seconds to run; 0 = until Ctrl-C. */
  durationSec: number;
  concurrency: number;
  /** New document every N ms. */
  everyMs: number;
  /** Stop producing after this many documents (the loop is bounded). */
  maxDocuments: number;
  out: NodeJS.WritableStream & { isTTY?: boolean };
}

interface Activity {
  completed: number[];
  lines: string[];
  progress: Map<string, number>;
  latencies: number[];
}

const STATES = ["waiting", "scheduled", "active", "completed", "dead", "cancelled"] as const;

export async function runDev(
  sluice: Sluice,
  options: DevOptions,
): Promise<{ completed: number; dead: number }> {
  const ingest = defineDemoPipeline(sluice);
  const activity: Activity = { completed: [], lines: [], progress: new Map(), latencies: [] };
  const note = (line: string) => {
    activity.lines.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    if (activity.lines.length > 8) activity.lines.shift();
  };
  sluice.on("completed", (e) => {
    activity.completed.push(e.at);
    activity.progress.delete(e.jobId);
  });
  sluice.on("active", (e) => {
    if (e.task === "ingest-document") activity.progress.set(e.jobId, 0);
  });
  sluice.on("progress", (e) => {
    if (typeof e.progress === "number") activity.progress.set(e.jobId, e.progress);
  });
  sluice.on("retrying", (e) => {
    activity.progress.delete(e.jobId);
    note(`retry   ${e.task} ${e.jobId.slice(-6)} attempt ${e.attempt}: ${e.error.message}`);
  });
  sluice.on("dead", (e) => {
    activity.progress.delete(e.jobId);
    note(`DEAD    ${e.task} ${e.jobId.slice(-6)}: ${e.reason}`);
  });
  sluice.on("released", (e) => note(`paused  ${e.queue}: ${e.reason}`));
  sluice.on("recovered", (e) => note(`recover ${e.task} ${e.jobId.slice(-6)}: ${e.reason}`));

  const worker = sluice.worker({
    queues: [...DEMO_QUEUES],
    concurrency: options.concurrency,
    shutdownGraceMs: 5_000,
  });
  await worker.start();
  const startedAt = Date.now();
  let produced = 0;
  const produce = async () => {
    if (produced >= options.maxDocuments) return;
    const doc = demoDocument(produced++);
    await ingest.enqueue(doc);
  };
  await produce();
  const producer = setInterval(
    () => void produce().catch((e: unknown) => note(`enqueue failed: ${String(e)}`)),
    options.everyMs,
  );

  const tty = options.out.isTTY === true;
  let rendering = false;
  const render = async () => {
    if (rendering) return;
    rendering = true;
    try {
      const queues = (await sluice.admin.queues()).filter((q) =>
        (DEMO_QUEUES as readonly string[]).includes(q.queue),
      );
      options.out.write(
        tty ? screen(queues, activity, startedAt, produced, sluice.safeUrl) : line(queues, activity),
      );
    } finally {
      rendering = false;
    }
  };
  const display = setInterval(() => void render(), tty ? 500 : 1_000);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    if (options.durationSec > 0) setTimeout(stop, options.durationSec * 1_000).unref();
  });
  clearInterval(producer);
  clearInterval(display);
  options.out.write("\nstopping: letting running jobs finish (up to 5 s)…\n");
  await worker.stop();
  // Leave the store idle: the documents still in the pipeline are cancelled, so no job waits for a worker
  // that is gone and the `npx sluice doctor` a newcomer runs next is not red about the demo.
  let cancelled = 0;
  for (const queue of DEMO_QUEUES) {
    cancelled += (await sluice.admin.cancel({ queue, state: ["waiting", "scheduled", "blocked"] })).count;
  }
  const final = (await sluice.admin.queues()).filter((q) =>
    (DEMO_QUEUES as readonly string[]).includes(q.queue),
  );
  const completed = final.reduce((n, q) => n + q.counts.completed, 0);
  const dead = final.reduce((n, q) => n + q.counts.dead, 0);
  options.out.write(
    `${table(final)}\nsummary: ${produced} documents enqueued, ${completed} jobs completed, ${dead} dead\n`,
  );
  const { batches } = await sluice.admin.batches({ limit: 1_000 });
  const indexed = batches.filter((b) => b.callbacks.some((c) => c.event === "success" && c.firedAt !== null));
  const withDead = batches.filter((b) => b.dead > 0);
  options.out.write(
    `batches: ${batches.length} (one per document's chunks): ${indexed.length} fully embedded and indexed, ` +
      `${withDead.length} with a dead chunk (not indexed), ${batches.length - indexed.length - withDead.length} unfinished\n`,
  );
  if (cancelled > 0) {
    options.out.write(
      `cancelled ${cancelled} unfinished demo job(s): nothing is left waiting for a worker\n`,
    );
  }
  const url = ` --url ${shellQuote(sluice.safeUrl)}`;
  options.out.write(
    `inspect the dead job and every attempt's error: npx sluice jobs list --state dead${url}\n` +
      `then: npx sluice jobs show <id>${url}, and npx sluice retry <id>${url} to run it again\n` +
      `each document's chunks as a batch: npx sluice batches list${url}\n` +
      `check the store: npx sluice doctor${url}\n`,
  );
  return { completed, dead };
}

function throughput(activity: Activity): number {
  const since = Date.now() - 5_000;
  while (activity.completed.length > 0 && (activity.completed[0] ?? 0) < since) activity.completed.shift();
  return activity.completed.length / 5;
}

function table(queues: QueueOverview[]): string {
  const header = ["queue".padEnd(12), ...STATES.map((s) => s.padStart(10)), "latency".padStart(9)].join(" ");
  const rows = queues.map((q) =>
    [
      q.queue.padEnd(12),
      ...STATES.map((s) => String(q.counts[s]).padStart(10)),
      formatDuration(q.latencyMs).padStart(9),
    ].join(" "),
  );
  return [header, ...rows].join("\n");
}

function bar(fraction: number, width = 20): string {
  const filled = Math.round(Math.min(Math.max(fraction, 0), 1) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%`;
}

function screen(
  queues: QueueOverview[],
  activity: Activity,
  startedAt: number,
  produced: number,
  url: string,
): string {
  const running = [...activity.progress.entries()]
    .slice(0, 6)
    .map(([id, p]) => `  ingest ${id.slice(-6)} ${bar(p)}`);
  return [
    "\x1b[2J\x1b[H",
    `sluice dev — ${url} — up ${formatDuration(Date.now() - startedAt)} — ${produced} documents enqueued — Ctrl-C to stop`,
    "",
    table(queues),
    "",
    `throughput: ${throughput(activity).toFixed(1)} jobs/s (last 5 s)`,
    "",
    "documents being parsed:",
    ...(running.length ? running : ["  (none)"]),
    "",
    "recent events:",
    ...(activity.lines.length ? activity.lines.map((l) => `  ${l}`) : ["  (none yet)"]),
    "",
  ].join("\n");
}

function line(queues: QueueOverview[], activity: Activity): string {
  const parts = queues.map(
    (q) =>
      `${q.queue} waiting=${q.counts.waiting} active=${q.counts.active} completed=${q.counts.completed} dead=${q.counts.dead}`,
  );
  return `${parts.join(" | ")} | ${throughput(activity).toFixed(1)} jobs/s\n`;
}
