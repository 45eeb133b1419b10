/**
 * The doctor's checks: pure functions from a {@link DoctorInput} snapshot to findings. Each check reports
 * one `ok` finding when it found nothing, so the output shows what was checked; when the store cannot be
 * reached, every check but `store-reachable` reports `skipped` (not checked), never `ok`.
 *
 * A queue's **backlog** is its jobs ready to run: `waiting` plus `due` (scheduled jobs whose run time has
 * passed — retries and delays that are over; with no live worker they stay `scheduled`, so counting only
 * `waiting` would hide them).
 */
import { formatDuration, type KeyHold, type QueueOverview, type WorkerOverview } from "../index.js";
import { pgArgs, quotePath, redisCliArgs } from "./target.js";
import { CHECK_IDS, type CheckId, type DoctorInput, type Finding } from "./types.js";

/** Worker clock skew above this is a warning (schedules and `runAt` are computed on worker clocks). */
export const CLOCK_SKEW_WARN_MS = 2_000;
/** Keys named per queue in a rate-held finding (the largest backlogs). */
export const TOP_HELD_KEYS = 5;

/** Round trip above this is a warning. */
export const SLOW_PING_MS = 100;
/** Slack before a job counts as running past its timeout (timers fire a little late under load). */
export const TIMEOUT_SLACK_MS = 1_000;
/** What the no-worker and stagnation fixes pass to `--tasks` (the layout of examples/ and the systemd unit). */
export const TASKS_HINT = "./dist/tasks.js";

const HOUR = 3_600_000;

const sluice = (input: DoctorInput, args: string) => `sluice ${args}${input.commandSuffix}`;

function okFinding(check: CheckId, message: string, evidence: Finding["evidence"] = {}): Finding {
  return { check, severity: "ok", subject: null, message, evidence, fix: null };
}

/** Jobs of the queue ready to run: waiting, plus scheduled jobs that fell due. */
export function backlogOf(q: QueueOverview): number {
  return q.counts.waiting + q.due;
}

function backlogText(q: QueueOverview): string {
  return q.due > 0
    ? `${backlogOf(q)} in backlog (${q.counts.waiting} waiting, ${q.due} due)`
    : `${q.counts.waiting} waiting`;
}

function backlogEvidence(q: QueueOverview): Finding["evidence"] {
  return { backlog: backlogOf(q), waiting: q.counts.waiting, due: q.due };
}

function rateHeld(input: DoctorInput, q: QueueOverview): boolean {
  return q.pausedUntil !== null && q.pausedUntil > input.now;
}

function workerFix(input: DoctorInput, queue: string): string {
  return sluice(input, `worker --queues ${queue} --tasks ${TASKS_HINT}`);
}

const utcTime = (at: number) => new Date(at).toISOString().slice(11, 16);

/** Store reachable, and its round-trip time. */
export function checkStoreReachable(input: DoctorInput): Finding[] {
  const s = input.store;
  if (!s.reachable) {
    const t = input.target;
    let fix: string | null = null;
    if (t.engine === "redis") fix = `redis-cli ${redisCliArgs(t)} ping   # then start Redis or fix the URL`;
    else if (t.engine === "postgres")
      fix = `pg_isready ${pgArgs(t)}   # then start PostgreSQL or fix the URL`;
    else if (t.engine === "sqlite" && !t.memory) {
      const dir = t.path.slice(0, Math.max(t.path.lastIndexOf("/"), 1));
      fix =
        `ls -ld ${quotePath(dir)}   # the directory must exist and be writable by this user; ` +
        `then: ls -l ${quotePath(t.path)}`;
    }
    return [
      {
        check: "store-reachable",
        severity: "critical",
        subject: null,
        message: `store unreachable: ${s.error}`,
        evidence: { engine: s.engine, location: s.location },
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

/** The store's own fix, made to target this store (`redis-cli -h … -p …`, `sluice migrate --url …`). */
function hazardFix(input: DoctorInput, fix: string | undefined): string | null {
  if (fix === undefined) return null;
  const args = redisCliArgs(input.target);
  let out = args ? fix.replace(/\bredis-cli /g, `redis-cli ${args} `) : fix;
  if (/^sluice \S+$/.test(out)) out = `${out}${input.commandSuffix}`;
  return out;
}

/** What the store says about its own configuration (Redis eviction policy, SQLite journal mode, …). */
export function checkStoreHazards(input: DoctorInput): Finding[] {
  const store = input.store;
  if (!store.reachable) return [];
  return store.info.hazards.map((h) => ({
    check: "store-hazard" as const,
    severity: h.severity,
    subject: h.code,
    message: h.message,
    evidence: { engine: store.info.engine, code: h.code },
    fix: h.severity === "ok" ? null : hazardFix(input, h.fix),
  }));
}

function servedBy(input: DoctorInput, queue: string): number {
  return input.workers.filter((w) => w.alive && w.queues.includes(queue)).length;
}

/** Queues with a backlog (waiting or due) and no live worker serving them. */
export function checkQueuesWithoutWorkers(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const q of input.queues) {
    if (backlogOf(q) === 0 || servedBy(input, q.queue) > 0) continue;
    const silent = input.workers.filter((w) => !w.alive && w.queues.includes(q.queue)).length;
    out.push({
      check: "no-worker",
      severity: "critical",
      subject: q.queue,
      message:
        `queue ${q.queue}: ${backlogText(q)}, oldest ready for ${formatDuration(q.latencyMs)}, and no live worker serves it` +
        (silent > 0 ? ` (${silent} registered worker(s) stopped heartbeating)` : ""),
      evidence: { ...backlogEvidence(q), latencyMs: q.latencyMs, liveWorkers: 0, silentWorkers: silent },
      fix: workerFix(input, q.queue),
    });
  }
  return out.length > 0
    ? out
    : [okFinding("no-worker", "every queue with a backlog (waiting or due jobs) has a live worker")];
}

/**
 * Stagnation: a queue whose oldest ready job (waiting or due) has waited longer than the window while no
 * job of that queue completed within the window — the seed's `queue_length > 0 and
 * increase(completed[10m]) == 0`. The last completion comes from the roll-up's `lastCompletedAt` (as of the
 * workers' last stats flush, every few seconds), compared with the real window, not whole hours.
 * Paused and rate-limited queues, and queues whose health check fails on every live worker serving them,
 * are left to their own checks.
 */
export function checkStagnation(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const since = input.now - input.windowMs;
  for (const q of input.queues) {
    if (q.paused || rateHeld(input, q) || healthHolds(input, q.queue)) continue;
    if (backlogOf(q) === 0 || q.latencyMs < input.windowMs) continue;
    const last = input.lastCompletions.get(q.queue) ?? null;
    if (last !== null && last >= since) continue;
    const live = servedBy(input, q.queue);
    const active = q.counts.active;
    const sinceLast = last === null ? null : input.now - last;
    const completion =
      sinceLast === null
        ? `no completion in the last ${formatDuration(input.completionsLookbackMs)}`
        : `last completion ${formatDuration(sinceLast)} ago`;
    let cause: string;
    let fix: string;
    if (live === 0) {
      cause = "no live worker serves it";
      fix = workerFix(input, q.queue);
    } else if (active > 0) {
      cause = `${live} live worker(s) serve it with ${active} of its jobs active: handlers may hang`;
      fix = sluice(input, `recover --older-than ${formatFlag(input.windowMs)} --dry-run`);
    } else {
      cause = `${live} live worker(s) serve it but run none of its jobs: they may be frozen or failing to claim`;
      fix = `${sluice(input, "info")}   # find the workers serving ${q.queue}, then restart them`;
    }
    out.push({
      check: "stagnation",
      severity: "critical",
      subject: q.queue,
      message:
        `queue ${q.queue} is stagnant: ${backlogText(q)}, oldest ready for ${formatDuration(q.latencyMs)}, ` +
        `${completion} (window ${formatDuration(input.windowMs)}); ${cause}`,
      evidence: {
        ...backlogEvidence(q),
        active,
        latencyMs: q.latencyMs,
        lastCompletedAt: last,
        sinceLastCompletionMs: sinceLast,
        minutesSinceLastCompletion: sinceLast === null ? null : Math.round(sinceLast / 6_000) / 10,
        windowMs: input.windowMs,
        liveWorkers: live,
      },
      fix,
    });
  }
  return out.length > 0
    ? out
    : [
        okFinding(
          "stagnation",
          `no stagnant queue: every backlog older than ${formatDuration(input.windowMs)} had a completion within it`,
        ),
      ];
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
 * Jobs that went dead recently. The roll-up counts whole hours, so the numbers cover the hours that
 * contain the window — from `rollupSince` (the start of the hour of `now - window`) until now — and the
 * message says exactly that instead of pretending to count the window itself.
 */
export function checkDeadLetterGrowth(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const coveredMs = input.now - input.rollupSince;
  const span = `since ${utcTime(input.rollupSince)} UTC (the last ${formatDuration(coveredMs)}: the stats roll-up counts whole hours)`;
  const queues = new Set(input.stats.map((r) => r.queue));
  for (const queue of [...queues].sort()) {
    const { dead, failed, completed } = rollup(input, queue);
    if (dead === 0) continue;
    const total = input.queues.find((q) => q.queue === queue)?.counts.dead ?? 0;
    out.push({
      check: "dead-letter-growth",
      severity: "warn",
      subject: queue,
      message: `queue ${queue}: ${dead} job(s) went dead ${span}, with ${failed} failed attempt(s) and ${completed} completed; ${total} dead now`,
      evidence: {
        dead,
        failed,
        completed,
        since: new Date(input.rollupSince).toISOString(),
        coveredMs,
        deadTotal: total,
      },
      fix: `${sluice(input, `jobs list --queue ${queue} --state dead`)}   # find the cause, then: ${sluice(input, `retry --state dead --queue ${queue} --yes`)}`,
    });
  }
  return out.length > 0 ? out : [okFinding("dead-letter-growth", `no job went dead ${span}`)];
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

/**
 * Workers whose event loop was blocked recently (their last stall is within the window): a handler doing
 * CPU-bound or synchronous work holds off every heartbeat. Warn when the stall was over a third of the lease
 * (what the worker reports); critical when it outlasted the lease, so leases expired, finished work was
 * fenced off and jobs ran again (or went dead "stopped heartbeating").
 */
export function checkEventLoopStalls(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const since = input.now - input.windowMs;
  for (const w of input.workers) {
    const last = w.stalls.last;
    if (last === null || last.at < since) continue;
    const during =
      last.tasks.length === 0
        ? "while running no job"
        : `while running task${last.tasks.length > 1 ? "s" : ""} ${last.tasks.join(", ")}`;
    const overLease = last.ms > last.leaseMs;
    const what = last.tasks.length === 0 ? "the blocking work" : last.tasks.join(", ");
    out.push({
      check: "event-loop-stalls",
      severity: overLease ? "critical" : "warn",
      subject: w.id,
      message:
        `event loop blocked for ${formatDuration(last.ms)} on ${w.host}/${w.pid} ${during}: move it to a sandbox or raise leaseMs ` +
        `(lease ${formatDuration(last.leaseMs)}; ${formatDuration(input.now - last.at)} ago; ${w.stalls.count} stall(s) since the worker started, longest ${formatDuration(w.stalls.longestMs)})` +
        (overLease
          ? ": the stall outlasted the lease, so its jobs were recovered and their work fenced off"
          : ""),
      evidence: {
        stallMs: last.ms,
        leaseMs: last.leaseMs,
        at: new Date(last.at).toISOString(),
        tasks: last.tasks.join(","),
        jobIds: last.jobIds.join(","),
        stalls: w.stalls.count,
        longestMs: w.stalls.longestMs,
        host: w.host,
        pid: w.pid,
      },
      // Not a command to paste: restarting the worker needs its own tasks and config, which the doctor cannot know.
      fix: `run ${what} off the event loop (a worker thread or child process), or give its worker a lease well above ${formatDuration(w.stalls.longestMs)}: set lease: ${formatFlag(Math.max(w.stalls.longestMs * 3, 30_000))} in its config file, or add --lease ${formatFlag(Math.max(w.stalls.longestMs * 3, 30_000))} to its sluice worker command, and restart it`,
    });
  }
  return out.length > 0
    ? out
    : [
        okFinding(
          "event-loop-stalls",
          `no worker's event loop was blocked for over a third of its lease in the last ${formatDuration(input.windowMs)}`,
        ),
      ];
}

/** Paused queues with a backlog (waiting or due jobs). */
export function checkPausedBacklog(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const q of input.queues) {
    if (!q.paused || backlogOf(q) === 0) continue;
    out.push({
      check: "paused-backlog",
      severity: "warn",
      subject: q.queue,
      message: `queue ${q.queue} is paused with ${backlogOf(q)} in backlog (${q.counts.waiting} waiting, ${q.due} due), oldest ready for ${formatDuration(q.latencyMs)}`,
      evidence: { ...backlogEvidence(q), latencyMs: q.latencyMs },
      fix: sluice(input, `resume ${q.queue}`),
    });
  }
  return out.length > 0 ? out : [okFinding("paused-backlog", "no paused queue has a backlog")];
}

/**
 * Queues paused by a rate limit (a handler threw RateLimitedError: an upstream answered 429) while jobs
 * are ready to run. The hold lifts by itself at `pausedUntil`.
 */
export function checkRateLimited(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const held: string[] = [];
  for (const q of input.queues) {
    if (!rateHeld(input, q)) continue;
    const until = q.pausedUntil as number;
    if (backlogOf(q) === 0) {
      held.push(q.queue);
      continue;
    }
    const forMs = until - input.now;
    out.push({
      check: "rate-limited",
      severity: "warn",
      subject: q.queue,
      message:
        `queue ${q.queue} is held by a rate limit (a handler threw RateLimitedError: its upstream answered 429) ` +
        `for ${formatDuration(forMs)} more, with ${backlogText(q)} and ${q.counts.scheduled} scheduled; ` +
        `it resumes by itself at ${new Date(until).toISOString().slice(11, 19)} UTC — lift it early only once the upstream accepts requests again`,
      evidence: {
        ...backlogEvidence(q),
        scheduled: q.counts.scheduled,
        pausedForMs: forMs,
        pausedUntil: new Date(until).toISOString(),
      },
      fix: sluice(input, `resume ${q.queue}`),
    });
  }
  if (out.length > 0) return out;
  return [
    okFinding(
      "rate-limited",
      held.length === 0
        ? "no queue is held by a rate limit"
        : `no rate-limited queue has a backlog (held without one: ${held.join(", ")})`,
      { held: held.length },
    ),
  ];
}

/**
 * Blocked jobs nothing will release: every dependency they wait for is final or gone, yet the edge was
 * never applied (core/flows.ts). Correct engines never leave one; a store edited by hand, restored from an
 * older backup than its jobs, or an engine bug can. Deciding for the job is the operator's call.
 */
export function checkStuckBlocked(input: DoctorInput): Finding[] {
  const out = input.stuckBlocked.map(
    (job): Finding => ({
      check: "stuck-blocked",
      severity: "warn",
      subject: job.id,
      message:
        `job ${job.id} (${job.task}, queue ${job.queue}) is blocked and nothing will release it: ` +
        (job.waitingFor.length === 0
          ? "it waits for no unfinished dependency"
          : `it waits for ${job.waitingFor
              .slice(0, 5)
              .map((d) => `${d.id} (${d.state ?? "gone"})`)
              .join(
                ", ",
              )}${job.waitingFor.length > 5 ? ` and ${job.waitingFor.length - 5} more` : ""}, which can no longer finish`) +
        "; cancel it (its dependents follow their failure policy) or enqueue its work again",
      evidence: {
        pendingDependencies: job.pendingDependencies,
        waitingFor: job.waitingFor.length,
        blockedForMs: input.now - job.createdAt,
      },
      fix: sluice(input, `cancel ${job.id}`),
    }),
  );
  return out.length > 0
    ? out
    : [okFinding("stuck-blocked", "every blocked job waits for a dependency that can still finish")];
}

/** Live workers serving `queue`, split by their health check of it (no check = passing). */
function healthOf(input: DoctorInput, queue: string): { passing: number; failing: WorkerOverview[] } {
  const out = { passing: 0, failing: [] as WorkerOverview[] };
  for (const w of input.workers) {
    if (!w.alive || !w.queues.includes(queue)) continue;
    const h = w.health.find((x) => x.queue === queue);
    if (h && !h.ok) out.failing.push(w);
    else out.passing++;
  }
  return out;
}

/** True when the queue's health check fails on every live worker serving it (and some serve it). */
function healthHolds(input: DoctorInput, queue: string): boolean {
  const { passing, failing } = healthOf(input, queue);
  return passing === 0 && failing.length > 0;
}

/**
 * Dependency health checks failing on live workers (runtime/health.ts): those workers do not fetch the
 * queue. Critical when no live worker of the queue passes (nothing runs it), warn otherwise (the others do;
 * the failing host may have a network problem of its own). A silent worker's last state is stale: skipped.
 */
export function checkFailingHealthChecks(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  let checked = 0;
  for (const w of input.workers) {
    if (!w.alive) continue;
    for (const h of w.health) {
      checked++;
      if (h.ok) continue;
      const { passing } = healthOf(input, h.queue);
      const backlog = input.queues.find((q) => q.queue === h.queue);
      const waiting = backlog ? backlogOf(backlog) : 0;
      const failingFor = input.now - h.since;
      out.push({
        check: "failing-health-check",
        severity: passing === 0 ? "critical" : "warn",
        subject: `${h.queue}@${w.id}`,
        message:
          `queue ${h.queue}: the health check fails on worker ${w.id} (${w.host}) since ${new Date(h.since).toISOString()} ` +
          `(${formatDuration(failingFor)}): ${h.lastError ?? "no error recorded"}; that worker does not fetch the queue` +
          (passing === 0
            ? `, and no live worker of the queue passes its check: nothing runs its ${waiting} ready job(s)`
            : ` (${passing} other live worker(s) do)`),
        evidence: {
          queue: h.queue,
          workerId: w.id,
          host: w.host,
          lastError: h.lastError,
          since: new Date(h.since).toISOString(),
          failingForMs: failingFor,
          checkedAt: h.checkedAt === null ? null : new Date(h.checkedAt).toISOString(),
          passingWorkers: passing,
          backlog: waiting,
        },
        fix: `check that ${w.host} reaches the dependency of queue ${h.queue} (${h.lastError ?? "see the worker's logs"}); the worker resumes the queue by itself once its check passes`,
      });
    }
  }
  return out.length > 0
    ? out
    : [
        okFinding(
          "failing-health-check",
          checked === 0
            ? "no live worker declares a health check"
            : `every health check passes (${checked} on live workers)`,
          { checks: checked },
        ),
      ];
}

/**
 * Limit keys held by a rate limit (a keyed job's handler threw RateLimitedError) while their jobs wait:
 * one finding per queue, its top offenders (largest backlogs) named. Queue-wide holds are `rate-limited`.
 */
export function checkRateHeldKeys(input: DoctorInput): Finding[] {
  if (!Array.isArray(input.keyHolds)) {
    return [
      {
        check: "rate-held",
        severity: "skipped",
        subject: null,
        message: `not checked: the store could not list held keys (${input.keyHolds.error})`,
        evidence: {},
        fix: null,
      },
    ];
  }
  const byQueue = new Map<string, KeyHold[]>();
  let idle = 0;
  for (const hold of input.keyHolds) {
    if (hold.until <= input.now) continue;
    if (hold.backlog === 0) {
      idle++;
      continue;
    }
    const list = byQueue.get(hold.queue) ?? [];
    list.push(hold);
    byQueue.set(hold.queue, list);
  }
  const out: Finding[] = [];
  for (const [queue, holds] of [...byQueue].sort(([a], [b]) => a.localeCompare(b))) {
    holds.sort((a, b) => b.backlog - a.backlog || a.key.localeCompare(b.key));
    const top = holds.slice(0, TOP_HELD_KEYS);
    const backlog = holds.reduce((sum, h) => sum + h.backlog, 0);
    const longest = Math.max(...holds.map((h) => h.until)) - input.now;
    out.push({
      check: "rate-held",
      severity: "warn",
      subject: queue,
      message:
        `queue ${queue}: ${holds.length} limit key(s) held by a rate limit (their upstream answered 429) with ${backlog} job(s) ready; ` +
        `top: ${top.map((h) => `${h.key} (${h.backlog} ready, ${formatDuration(h.until - input.now)} left)`).join(", ")}` +
        `${holds.length > top.length ? ` and ${holds.length - top.length} more` : ""}; other keys of the queue keep flowing, and each hold lifts by itself`,
      evidence: {
        heldKeys: holds.length,
        backlog,
        top: top.map((h) => `${h.key}:${h.backlog}`).join(","),
        longestHoldMs: longest,
      },
      fix: `${sluice(input, `resume ${queue}`)}   # lifts every hold of the queue: only once the upstream accepts requests again`,
    });
  }
  return out.length > 0
    ? out
    : [
        okFinding(
          "rate-held",
          idle === 0
            ? "no limit key is held by a rate limit"
            : `no held limit key has a backlog (${idle} held without one)`,
          { held: idle },
        ),
      ];
}

/**
 * Workers whose clock differs from the store's by more than CLOCK_SKEW_WARN_MS: schedules fire and delayed
 * jobs (`runAt`, backoffs) fall due by the enqueuing host's clock, so a skewed host runs them early or late.
 * Leases are safe (the store's clock decides them).
 */
export function checkClockSkew(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const w of input.workers) {
    if (!w.alive || Math.abs(w.clockSkewMs) <= CLOCK_SKEW_WARN_MS) continue;
    const ahead = w.clockSkewMs > 0;
    out.push({
      check: "clock-skew",
      severity: "warn",
      subject: w.id,
      message:
        `worker ${w.id} on ${w.host}: its clock is ${formatDuration(Math.abs(w.clockSkewMs))} ${ahead ? "ahead of" : "behind"} the store's ` +
        `(over ${formatDuration(CLOCK_SKEW_WARN_MS)}): jobs it delays or retries, and schedules it fires, fall due ${ahead ? "late" : "early"} by that much`,
      evidence: { skewMs: w.clockSkewMs, thresholdMs: CLOCK_SKEW_WARN_MS, host: w.host, pid: w.pid },
      fix: `sync ${w.host}'s clock: timedatectl status (NTP synchronized: yes), or chronyc tracking`,
    });
  }
  const live = input.workers.filter((w) => w.alive);
  return out.length > 0
    ? out
    : [
        okFinding(
          "clock-skew",
          live.length === 0
            ? "no live worker to compare clocks with"
            : `every live worker's clock is within ${formatDuration(CLOCK_SKEW_WARN_MS)} of the store's (largest ${formatDuration(Math.max(...live.map((w) => Math.abs(w.clockSkewMs))))})`,
          { workers: live.length },
        ),
      ];
}

/** Every check, in report order. */
export const CHECKS: readonly { id: CheckId; run: (input: DoctorInput) => Finding[] }[] = [
  { id: "store-reachable", run: checkStoreReachable },
  { id: "store-hazard", run: checkStoreHazards },
  { id: "no-worker", run: checkQueuesWithoutWorkers },
  { id: "stagnation", run: checkStagnation },
  { id: "dead-letter-growth", run: checkDeadLetterGrowth },
  { id: "past-timeout", run: checkPastTimeout },
  { id: "late-heartbeat", run: checkLateHeartbeats },
  { id: "event-loop-stalls", run: checkEventLoopStalls },
  { id: "paused-backlog", run: checkPausedBacklog },
  { id: "rate-limited", run: checkRateLimited },
  { id: "rate-held", run: checkRateHeldKeys },
  { id: "stuck-blocked", run: checkStuckBlocked },
  { id: "failing-health-check", run: checkFailingHealthChecks },
  { id: "clock-skew", run: checkClockSkew },
];

/** A check that could not run because the store is unreachable: said so, never reported as ok. */
export function skipped(check: CheckId): Finding {
  return {
    check,
    severity: "skipped",
    subject: null,
    message: "not checked: the store is unreachable",
    evidence: {},
    fix: null,
  };
}

export { CHECK_IDS };

/** A duration as a CLI flag value: whole seconds, minutes or hours (`90s`, `10m`, `2h`). */
export function formatFlag(ms: number): string {
  const s = Math.max(Math.floor(ms / 1000), 1);
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** Start of the hour containing `at` (how the roll-up buckets time). */
export function hourStart(at: number): number {
  return Math.floor(at / HOUR) * HOUR;
}
