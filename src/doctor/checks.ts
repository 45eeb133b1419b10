/**
 * The doctor's checks: pure functions from a {@link DoctorInput} snapshot to findings. Each check reports
 * one `ok` finding when it found nothing, so the output shows what was checked.
 */
import { formatDuration } from "../index.js";
import type { DoctorInput, Finding } from "./types.js";

/** Round trip above this is a warning. */
export const SLOW_PING_MS = 100;
/** Slack before a job counts as running past its timeout (timers fire a little late under load). */
export const TIMEOUT_SLACK_MS = 1_000;

const sluice = (input: DoctorInput, args: string) => `sluice ${args}${input.commandSuffix}`;

function okFinding(check: string, message: string, evidence: Finding["evidence"] = {}): Finding {
  return { check, severity: "ok", subject: null, message, evidence, fix: null };
}

/** Store reachable, and its round-trip time. */
export function checkStoreReachable(input: DoctorInput): Finding[] {
  const s = input.store;
  if (!s.reachable) {
    const fix =
      s.engine === "redis"
        ? `redis-cli -u '${s.location}' ping   # then start Redis or fix the URL`
        : s.engine === "postgres"
          ? `pg_isready -d '${s.location}'   # then start PostgreSQL or fix the URL`
          : `ls -l ${s.location}   # check the path and its permissions`;
    return [
      {
        check: "store-reachable",
        severity: "critical",
        subject: null,
        message: `store unreachable: ${s.error}`,
        evidence: { location: s.location },
        fix,
      },
    ];
  }
  const pingMs = Math.round(s.pingMs * 100) / 100;
  if (s.pingMs > SLOW_PING_MS) {
    return [
      {
        check: "store-reachable",
        severity: "warn",
        subject: null,
        message: `store round trip is slow: ${pingMs} ms (over ${SLOW_PING_MS} ms); every claim and heartbeat pays it`,
        evidence: { pingMs, thresholdMs: SLOW_PING_MS },
        fix: "run workers close to the store (same region / VPC) and check the store's load",
      },
    ];
  }
  return [okFinding("store-reachable", `store reachable, round trip ${pingMs} ms`, { pingMs })];
}

/** What the store says about its own configuration (Redis eviction policy, SQLite journal mode, …). */
export function checkStoreHazards(input: DoctorInput): Finding[] {
  if (!input.store.reachable) return [];
  return input.store.info.hazards.map((h) => ({
    check: "store-hazard",
    severity: h.severity,
    subject: h.code,
    message: h.message,
    evidence: { engine: input.store.reachable ? input.store.info.engine : null, code: h.code },
    fix: h.severity === "ok" ? null : (h.fix ?? null),
  }));
}

function servedBy(input: DoctorInput, queue: string): number {
  return input.workers.filter((w) => w.alive && w.queues.includes(queue)).length;
}

/** Queues with waiting jobs and no live worker serving them. */
export function checkQueuesWithoutWorkers(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const q of input.queues) {
    if (q.counts.waiting === 0 || servedBy(input, q.queue) > 0) continue;
    const silent = input.workers.filter((w) => !w.alive && w.queues.includes(q.queue)).length;
    out.push({
      check: "no-worker",
      severity: "critical",
      subject: q.queue,
      message: `queue ${q.queue}: ${q.counts.waiting} waiting, oldest for ${formatDuration(q.latencyMs)}, and no live worker serves it${silent > 0 ? ` (${silent} registered worker(s) stopped heartbeating)` : ""}`,
      evidence: { waiting: q.counts.waiting, latencyMs: q.latencyMs, liveWorkers: 0, silentWorkers: silent },
      fix: sluice(input, `worker --queues ${q.queue} --tasks <your tasks module>`),
    });
  }
  return out.length > 0 ? out : [okFinding("no-worker", "every queue with waiting jobs has a live worker")];
}

function rollup(input: DoctorInput, queue: string): { completed: number; dead: number; failed: number } {
  const sum = { completed: 0, dead: 0, failed: 0 };
  for (const r of input.stats) {
    if (r.queue !== queue) continue;
    sum.completed += r.completed;
    sum.dead += r.dead;
    sum.failed += r.failed;
  }
  return sum;
}

/**
 * Stagnation: a queue whose oldest waiting job has waited longer than the window while nothing of that
 * queue completed within it (the roll-up is hourly, so the window is rounded out to whole hours).
 * Paused queues are left to the paused-backlog check.
 */
export function checkStagnation(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const q of input.queues) {
    if (q.paused || q.counts.waiting === 0 || q.latencyMs < input.windowMs) continue;
    const { completed } = rollup(input, q.queue);
    if (completed > 0) continue;
    const live = servedBy(input, q.queue);
    out.push({
      check: "stagnation",
      severity: "critical",
      subject: q.queue,
      message:
        `queue ${q.queue} is stagnant: ${q.counts.waiting} waiting (oldest ${formatDuration(q.latencyMs)}), ` +
        `no completion in the last ${formatDuration(input.windowMs)}` +
        (live > 0
          ? `, although ${live} live worker(s) serve it (${q.counts.active} active): handlers may hang`
          : ""),
      evidence: {
        waiting: q.counts.waiting,
        active: q.counts.active,
        latencyMs: q.latencyMs,
        completedInWindow: completed,
        windowMs: input.windowMs,
        liveWorkers: live,
      },
      fix:
        live > 0
          ? sluice(input, `recover --older-than ${formatFlag(input.windowMs)} --dry-run`)
          : sluice(input, `worker --queues ${q.queue} --tasks <your tasks module>`),
    });
  }
  return out.length > 0 ? out : [okFinding("stagnation", "no stagnant queue")];
}

/** Jobs that went dead within the window. */
export function checkDeadLetterGrowth(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const queues = new Set(input.stats.map((r) => r.queue));
  for (const queue of [...queues].sort()) {
    const { dead, failed, completed } = rollup(input, queue);
    if (dead === 0) continue;
    const total = input.queues.find((q) => q.queue === queue)?.counts.dead ?? 0;
    out.push({
      check: "dead-letter-growth",
      severity: "warn",
      subject: queue,
      message: `queue ${queue}: ${dead} job(s) went dead in the last ${formatDuration(input.windowMs)} (${failed} failed attempts, ${completed} completed); ${total} dead in total`,
      evidence: {
        deadInWindow: dead,
        failedInWindow: failed,
        completedInWindow: completed,
        deadTotal: total,
        windowMs: input.windowMs,
      },
      fix: `${sluice(input, `jobs list --queue ${queue} --state dead`)}   # find the cause, then: ${sluice(input, `retry --state dead --queue ${queue} --yes`)}`,
    });
  }
  return out.length > 0 ? out : [okFinding("dead-letter-growth", "no job went dead in the window")];
}

/** Active jobs running longer than their own timeout: their worker is hung, frozen or blocked. */
export function checkPastTimeout(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const job of input.active) {
    if (job.timeoutMs === null || job.startedAt === null) continue;
    const runningMs = input.now - job.startedAt;
    if (runningMs <= job.timeoutMs + TIMEOUT_SLACK_MS) continue;
    out.push({
      check: "past-timeout",
      severity: "critical",
      subject: job.id,
      message: `job ${job.id} (${job.task} on ${job.queue}) has run ${formatDuration(runningMs)}, past its timeout of ${formatDuration(job.timeoutMs)}; worker ${job.workerId ?? "unknown"} is hung or its event loop is blocked`,
      evidence: { runningMs, timeoutMs: job.timeoutMs, workerId: job.workerId, queue: job.queue },
      fix: sluice(input, `recover --older-than ${formatFlag(Math.floor(runningMs / 1000) * 1000)}`),
    });
  }
  return out.length > 0 ? out : [okFinding("past-timeout", "no active job is past its timeout")];
}

/** Registered workers whose heartbeat is late (crashed, killed, frozen or partitioned). */
export function checkLateHeartbeats(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const w of input.workers) {
    if (w.alive) continue;
    const silentMs = input.now - w.lastHeartbeatAt;
    out.push({
      check: "late-heartbeat",
      severity: "warn",
      subject: w.id,
      message: `worker ${w.id} (queues ${w.queues.join(",")}) last heartbeat ${formatDuration(silentMs)} ago: crashed, killed or frozen; its jobs are recovered when their leases expire`,
      evidence: { silentMs, staleAfterMs: input.staleAfterMs, busy: w.busy, host: w.host, pid: w.pid },
      fix: sluice(input, "recover --dry-run"),
    });
  }
  return out.length > 0
    ? out
    : [
        okFinding(
          "late-heartbeat",
          `every registered worker heartbeat within ${formatDuration(input.staleAfterMs)}`,
        ),
      ];
}

/** Paused queues with a backlog. */
export function checkPausedBacklog(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const q of input.queues) {
    if (!q.paused || q.counts.waiting === 0) continue;
    out.push({
      check: "paused-backlog",
      severity: "warn",
      subject: q.queue,
      message: `queue ${q.queue} is paused with ${q.counts.waiting} waiting (oldest ${formatDuration(q.latencyMs)})`,
      evidence: { waiting: q.counts.waiting, latencyMs: q.latencyMs },
      fix: sluice(input, `resume ${q.queue}`),
    });
  }
  return out.length > 0 ? out : [okFinding("paused-backlog", "no paused queue has a backlog")];
}

/** Queues paused by a rate limit right now (an upstream 429 storm). */
export function checkRateLimited(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const q of input.queues) {
    if (q.pausedUntil === null || q.pausedUntil <= input.now) continue;
    out.push({
      check: "rate-limited",
      severity: "warn",
      subject: q.queue,
      message: `queue ${q.queue} is held by a rate limit for ${formatDuration(q.pausedUntil - input.now)} more (${q.counts.waiting} waiting)`,
      evidence: { pausedForMs: q.pausedUntil - input.now, waiting: q.counts.waiting },
      fix: null,
    });
  }
  return out;
}

/** Every check, in report order. */
export const CHECKS: readonly ((input: DoctorInput) => Finding[])[] = [
  checkStoreReachable,
  checkStoreHazards,
  checkQueuesWithoutWorkers,
  checkStagnation,
  checkDeadLetterGrowth,
  checkPastTimeout,
  checkLateHeartbeats,
  checkPausedBacklog,
  checkRateLimited,
];

/** A duration as a CLI flag value: whole seconds, minutes or hours (`90s`, `10m`, `2h`). */
export function formatFlag(ms: number): string {
  const s = Math.max(Math.floor(ms / 1000), 1);
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
