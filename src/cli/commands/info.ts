/**
 * `sluice info`: queues (counts, latency, throughput, limits, pause and key holds) and workers (load, loop
 * stalls, failing health checks, clock skew), as tables or `--json`.
 */
import type { Command } from "commander";
import type { QueueLimits, QueueOverview, RateLimit, Sluice, WorkerOverview } from "../../index.js";
import { formatDuration } from "../../index.js";
import { withSluice } from "../context.js";
import { colourEnabled, type Palette, palette } from "../output/colour.js";
import { ago, durationCell } from "../output/format.js";
import { toJson } from "../output/json.js";
import { renderTable } from "../output/table.js";

/** One queue in `sluice info --json`. */
export interface QueueInfo {
  queue: string;
  waiting: number;
  active: number;
  scheduled: number;
  /** Scheduled jobs whose run time has passed: backlog, like waiting (a worker promotes them when it claims). */
  due: number;
  blocked: number;
  dead: number;
  completed: number;
  cancelled: number;
  /** Age of the oldest job ready to run (waiting, or scheduled and due), ms; 0 when none is. */
  latencyMs: number;
  paused: boolean;
  pausedUntil: number | null;
  /** Completed jobs per minute, averaged over the stats roll-up since the start of the previous hour. */
  throughputPerMin: number;
  /** The queue's fleet-wide limits (`sluice.limits`), or null when it has none. */
  limits: QueueLimits | null;
  /** Active jobs counting toward the limits (claimed-ahead included). */
  limitedActive: number;
  /** Limit keys held by a rate limit now. */
  heldKeys: number;
}

/** A worker's clock skew above this is shown in yellow (as `sluice doctor`'s clock-skew warns). */
const SKEW_WARN_MS = 2_000;

/** `sluice info --json`. */
export interface InfoReport {
  store: { engine: string; version: string; location: string };
  queues: QueueInfo[];
  workers: WorkerOverview[];
}

const HOUR = 3_600_000;

/** Gathers the info report. */
export async function gatherInfo(sluice: Sluice): Promise<InfoReport> {
  const admin = sluice.admin;
  const [info, queues, workers, stats] = await Promise.all([
    admin.storeInfo(),
    admin.queues(),
    admin.workers(),
    admin.stats({ sinceMs: HOUR }),
  ]);
  const now = Date.now();
  const since = Math.floor((now - HOUR) / HOUR) * HOUR;
  const minutes = Math.max((now - since) / 60_000, 1);
  const completed = new Map<string, number>();
  for (const row of stats) completed.set(row.queue, (completed.get(row.queue) ?? 0) + row.completed);
  return {
    store: { engine: info.engine, version: info.version, location: info.location },
    queues: queues.map((q: QueueOverview) => ({
      queue: q.queue,
      waiting: q.counts.waiting,
      active: q.counts.active,
      scheduled: q.counts.scheduled,
      due: q.due,
      blocked: q.counts.blocked,
      dead: q.counts.dead,
      completed: q.counts.completed,
      cancelled: q.counts.cancelled,
      latencyMs: q.latencyMs,
      paused: q.paused,
      pausedUntil: q.pausedUntil,
      throughputPerMin: Math.round(((completed.get(q.queue) ?? 0) / minutes) * 100) / 100,
      limits: q.limits,
      limitedActive: q.limitedActive,
      heldKeys: q.heldKeys,
    })),
    workers,
  };
}

/** Renders the info report for people. */
export function renderInfo(report: InfoReport, colour: boolean): string {
  const c = palette(colour);
  const now = Date.now();
  const n = (v: number, paint?: (s: string) => string) => (v > 0 && paint ? paint(String(v)) : String(v));
  let text = `${c.bold("store")}  ${report.store.engine} ${report.store.version}  ${report.store.location}\n\n`;
  text += `${c.bold("queues")}\n`;
  text += renderTable(
    [
      { header: "queue", value: (q: QueueInfo) => q.queue },
      { header: "waiting", value: (q) => String(q.waiting), align: "right" },
      { header: "active", value: (q) => String(q.active), align: "right" },
      { header: "scheduled", value: (q) => String(q.scheduled), align: "right" },
      { header: "due", value: (q) => n(q.due, c.yellow), align: "right" },
      { header: "dead", value: (q) => n(q.dead, c.red), align: "right" },
      { header: "completed", value: (q) => String(q.completed), align: "right" },
      {
        header: "latency",
        value: (q) => (q.waiting + q.due > 0 ? durationCell(q.latencyMs) : "-"),
        align: "right",
      },
      { header: "done/min", value: (q) => String(q.throughputPerMin), align: "right" },
      { header: "limits", value: (q) => limitsCell(q) },
      {
        header: "status",
        value: (q) => {
          const status = q.paused
            ? c.yellow("paused")
            : q.pausedUntil !== null && q.pausedUntil > now
              ? c.yellow(`rate-limited ${durationCell(q.pausedUntil - now)}`)
              : c.green("running");
          return q.heldKeys > 0
            ? `${status} ${c.yellow(`(${q.heldKeys} key${q.heldKeys === 1 ? "" : "s"} held)`)}`
            : status;
        },
      },
    ],
    report.queues,
    "(no queues yet)",
  );
  text += `\n${c.bold("workers")}\n`;
  text += renderTable(
    [
      { header: "id", value: (w: WorkerOverview) => w.id },
      { header: "queues", value: (w) => w.queues.join(",") },
      { header: "busy", value: (w) => `${w.busy}/${w.concurrency}`, align: "right" },
      { header: "started", value: (w) => ago(w.startedAt, now) },
      { header: "heartbeat", value: (w) => ago(w.lastHeartbeatAt, now) },
      { header: "loop stalls", value: (w) => stallsCell(w, now, c) },
      { header: "health", value: (w) => healthCell(w, now, c) },
      {
        header: "clock",
        value: (w) => {
          const text = `${w.clockSkewMs >= 0 ? "+" : "-"}${formatDuration(Math.abs(w.clockSkewMs))}`;
          return Math.abs(w.clockSkewMs) > SKEW_WARN_MS ? c.yellow(text) : text;
        },
        align: "right",
      },
      { header: "status", value: (w) => (w.alive ? c.green("alive") : c.red("silent")) },
    ],
    report.workers,
    "(no workers registered)",
  );
  return text;
}

/**
 * Event-loop stalls of a worker: `-`, or how many, the longest and the latest (when, how long, during which
 * tasks), in yellow — red when the latest outlasted the lease.
 */
function stallsCell(w: WorkerOverview, now: number, c: Palette): string {
  const { count, longestMs, last } = w.stalls;
  if (count === 0 || last === null) return "-";
  const tasks = last.tasks.length > 0 ? ` during ${last.tasks.join(",")}` : "";
  const text = `${count} (longest ${durationCell(longestMs)}; last ${durationCell(last.ms)} ${ago(last.at, now)}${tasks})`;
  return last.ms > last.leaseMs ? c.red(text) : c.yellow(text);
}

/**
 * A queue's limits and how full they are: `5/10 active, 500/1m; per key 1 active, 10/1s`, or `-`. The rate
 * is the limit, not the current window's count (that lives in the store's counters).
 */
function limitsCell(q: QueueInfo): string {
  const l = q.limits;
  if (!l) return "-";
  const rate = (r: RateLimit) => `${r.max}/${formatDuration(r.windowMs)}`;
  const queue: string[] = [];
  if (l.concurrency !== null) queue.push(`${q.limitedActive}/${l.concurrency} active`);
  if (l.rate !== null) queue.push(rate(l.rate));
  const key: string[] = [];
  if (l.keyConcurrency !== null) key.push(`${l.keyConcurrency} active`);
  if (l.keyRate !== null) key.push(rate(l.keyRate));
  const parts = [queue.join(", "), key.length > 0 ? `per key ${key.join(", ")}` : ""].filter((p) => p !== "");
  return parts.length > 0 ? parts.join("; ") : "-";
}

/** A worker's health checks: `-` (none), `ok (2)`, or each failing queue with how long and why, in red. */
function healthCell(w: WorkerOverview, now: number, c: Palette): string {
  if (w.health.length === 0) return "-";
  const failing = w.health.filter((h) => !h.ok);
  if (failing.length === 0) return c.green(`ok (${w.health.length})`);
  return c.red(
    failing
      .map(
        (h) =>
          `${h.queue} failing ${formatDuration(Math.max(now - h.since, 0))}: ${truncate(h.lastError ?? "?", 60)}`,
      )
      .join("; "),
  );
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Registers `sluice info`. */
export function registerInfo(program: Command): void {
  program
    .command("info")
    .description("queues (waiting, active, scheduled, due, dead, completed, latency, throughput) and workers")
    .option("--json", "print JSON (shape in docs/cli.md)")
    .addHelpText(
      "after",
      "\nExample:\n  $ sluice info --url redis://localhost:6379/5\n  $ sluice info --json | jq '.queues[] | select(.waiting > 50)'",
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withSluice(cmd, async (sluice) => {
        const report = await gatherInfo(sluice);
        process.stdout.write(opts.json ? toJson(report) : renderInfo(report, colourEnabled(process.stdout)));
      });
    });
}
