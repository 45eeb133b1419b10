/**
 * The chaos suite's engine-independent run: worker processes (chaos-worker.ts) process a steady stream of
 * jobs while they are SIGKILLed at random and (PostgreSQL, Redis) the PRIVATE store server is stopped
 * abruptly and started again; then everything drains, and the run files and the store are checked.
 *
 * A job "ran more than once" when its handler finished its work more than once (two `F` lines). Each such
 * job is put down to one cause: `kills` when an earlier run finished in a process that was SIGKILLed later
 * (its outcome may not have been written), `restarts` when a store outage came between the runs, `other`
 * otherwise. Bounds: kills × concurrency for kills, none for restarts or other causes.
 *
 * Every loop is bounded in count and time; only processes started here are signalled, by pid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { pino } from "pino";
import type { JobState } from "../../src/core/job.js";
import { Sluice } from "../../src/index.js";

const FIXTURE = fileURLToPath(new URL("./chaos-worker.ts", import.meta.url));
const QUEUE = "chaos";

export type ChaosEngine = "sqlite" | "postgres" | "redis";

export interface ChaosSize {
  jobs: number;
  workers: number;
  concurrency: number;
  leaseMs: number;
  kills: number;
  /** Between two kills. */
  killEveryMs: number;
  /** One store outage per entry, this long (ignored on SQLite, which has no server). */
  outagesMs: number[];
  /** Before each outage: the workers run normally this long. */
  outageGapMs: number;
  /** Longest the whole run may take before it fails. */
  deadlineMs: number;
}

export const BOUNDED: ChaosSize = {
  jobs: 1_500,
  workers: 3,
  concurrency: 8,
  leaseMs: 2_000,
  kills: 4,
  killEveryMs: 1_500,
  outagesMs: [5_000],
  outageGapMs: 3_000,
  deadlineMs: 150_000,
};

export const FULL: ChaosSize = {
  jobs: 12_000,
  workers: 3,
  concurrency: 8,
  leaseMs: 3_000,
  kills: 20,
  killEveryMs: 2_000,
  outagesMs: [6_000, 15_000, 30_000],
  outageGapMs: 8_000,
  deadlineMs: 600_000,
};

/** A store server the run can stop and start (none for SQLite). */
export interface ChaosStore {
  url: string;
  /** Stops the server abruptly (PostgreSQL immediate stop, Redis SIGKILL); absent for SQLite. */
  stop?: () => Promise<void>;
  start?: () => Promise<void>;
  /** A corruption check after the run: null when fine, else what is wrong. */
  integrity?: () => Promise<string | null>;
  destroy(): Promise<void>;
}

export interface ChaosReport {
  engine: ChaosEngine;
  size: ChaosSize;
  acknowledged: number;
  completed: number;
  lost: number;
  dead: number;
  /** Jobs whose handler finished more than once, per cause. */
  duplicates: { kills: number; restarts: number; other: number };
  /** Handler runs started, and jobs started more than once (a killed run counts). */
  runsStarted: number;
  restartedRuns: number;
  kills: number;
  restarts: number;
  /** From the end of the last fault until every job was completed or dead. */
  drainMs: number;
  /** Per outage: from the server answering again until the next completion was stored. */
  recoverMs: number[];
  /** "ok", or what the engine's corruption check found. */
  integrity: string;
  failures: string[];
  wallMs: number;
}

interface Fault {
  kind: "kill" | "restart";
  at: number;
  /** Restart: when the server answered again. */
  until?: number;
  pid?: number;
}

class ChaosWorker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  /** When it printed `ready` (0 before). */
  readyAt = 0;
  /** Stopped or killed by the run (an exit before ready is then no failure). */
  signalled = false;

  constructor(url: string, dir: string, size: ChaosSize, n: number) {
    const logFd = openSync(join(dir, `worker-${n}.stderr`), "a");
    this.child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        FIXTURE,
        JSON.stringify({
          url,
          queue: QUEUE,
          concurrency: size.concurrency,
          leaseMs: size.leaseMs,
          runLog: join(dir, `runs-${n}.log`),
          logFile: join(dir, `worker-${n}.log`),
        }),
      ],
      { stdio: ["ignore", "pipe", logFd] },
    );
    closeSync(logFd);
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chaos worker ${n} not ready after 60 s`)), 60_000);
      this.child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`chaos worker ${n} exited before ready (${code ?? signal})`));
      });
      createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        if (line === "ready") {
          clearTimeout(timer);
          this.readyAt = Date.now();
          resolve();
        }
      });
    });
    this.ready.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

/** Runs one chaos round against `store`; `log` gets progress lines. Never throws for a failed check. */
export async function runChaos(
  engine: ChaosEngine,
  store: ChaosStore,
  size: ChaosSize,
  log: (line: string) => void = () => {},
): Promise<ChaosReport> {
  const began = Date.now();
  const deadline = began + size.deadlineMs;
  const dir = mkdtempSync(join(tmpdir(), `sluice-chaos-${engine}-`));
  const faults: Fault[] = [];
  const workers: ChaosWorker[] = [];
  let spawned = 0;
  let stopping = false;
  const failures: string[] = [];
  // A supervisor, as systemd or Kubernetes would be: a worker that exits by itself (e.g. it started during
  // an outage and could not reach the store) is started again, at most 3 × workers times in a run.
  let restartsLeft = size.workers * 3;
  const spawnWorker = (): ChaosWorker => {
    const w = new ChaosWorker(store.url, dir, size, spawned++);
    workers.push(w);
    void w.exited.then(async () => {
      if (w.signalled || stopping) return;
      workers.splice(workers.indexOf(w), 1);
      if (restartsLeft-- <= 0) {
        failures.push("workers kept exiting by themselves");
        return;
      }
      await sleep(500);
      if (!stopping) spawnWorker();
    });
    return w;
  };
  const producer = new Sluice({ url: store.url, logger: pino({ level: "silent" }) });
  const task = producer.task("chaos", { queue: QUEUE, attempts: 5 });
  let producing: Promise<number> | null = null;
  try {
    await Promise.all(Array.from({ length: size.workers }, () => spawnWorker().ready));
    log(`${engine}: ${size.workers} workers × ${size.concurrency} ready`);

    // The producer spreads the jobs over the planned fault timeline, retrying a batch (same ids:
    // idempotent) while the store is down, so every job is acknowledged once.
    const outages = store.stop ? size.outagesMs : [];
    const plannedMs =
      size.kills * size.killEveryMs + outages.reduce((sum, ms) => sum + ms + size.outageGapMs, 0) + 1_000;
    producing = produce(task, size.jobs, plannedMs, deadline);

    // Kill storm: one worker SIGKILLed every killEveryMs, replaced at once.
    for (let k = 0; k < size.kills; k++) {
      await sleep(size.killEveryMs);
      // Victims: workers that have been processing a while (a replacement still starting does not count).
      let live = workers.filter((w) => w.alive && w.readyAt > 0 && Date.now() - w.readyAt > 500);
      for (let wait = 0; live.length === 0 && wait < 300 && Date.now() < deadline; wait++) {
        await sleep(100);
        live = workers.filter((w) => w.alive && w.readyAt > 0 && Date.now() - w.readyAt > 500);
      }
      const victim = live[Math.floor(Math.random() * live.length)];
      if (!victim) throw new Error("no worker ready to kill");
      victim.signalled = true;
      victim.child.kill("SIGKILL");
      faults.push({ kind: "kill", at: Date.now(), pid: victim.pid });
      workers.splice(workers.indexOf(victim), 1);
      spawnWorker();
    }
    if (size.kills > 0) log(`${engine}: ${size.kills} workers SIGKILLed`);

    // Store outages.
    const recoverMs: number[] = [];
    for (const outageMs of outages) {
      await sleep(size.outageGapMs);
      const before = await completedCount(producer);
      const at = Date.now();
      await store.stop?.();
      await sleep(outageMs);
      await store.start?.();
      const up = Date.now();
      faults.push({ kind: "restart", at, until: up });
      // Time to recover: until one more completion is stored (bounded by the deadline).
      for (;;) {
        const done = await completedCount(producer).catch(() => before);
        if (done > before) break;
        if (Date.now() > deadline) throw new Error("the store did not recover before the deadline");
        await sleep(50);
      }
      recoverMs.push(Date.now() - up);
      log(`${engine}: store down ${outageMs} ms, completions again ${Date.now() - up} ms after it came back`);
    }
    const lastFault = Math.max(began, ...faults.map((f) => f.until ?? f.at));

    const acknowledged = await producing;
    producing = null;
    // Drain: every acknowledged job completed or dead, nothing waiting or active.
    let settled = false;
    while (Date.now() < deadline) {
      const counts = await stateCounts(producer).catch(() => null);
      if (counts && counts.completed + counts.dead >= acknowledged && counts.active + counts.waiting === 0) {
        settled = true;
        break;
      }
      await sleep(100);
    }
    const drainMs = Date.now() - lastFault;
    if (!settled) failures.push(`did not drain before the deadline (${size.deadlineMs} ms)`);
    log(`${engine}: drained ${drainMs} ms after the last fault`);

    // Stop the workers (graceful), then count.
    stopping = true;
    await stopAll(workers);
    const states = await allStates(producer);
    const runs = readRuns(dir);
    const report = analyse(engine, size, acknowledged, states, runs, faults, recoverMs, drainMs);
    report.integrity = (await store.integrity?.()) ?? "ok";
    report.failures.push(...failures);
    if (report.integrity !== "ok") report.failures.push(`integrity check failed: ${report.integrity}`);
    report.wallMs = Date.now() - began;
    return report;
  } finally {
    stopping = true;
    await stopAll(workers);
    await producing?.catch(() => undefined);
    await producer.close().catch(() => undefined);
    if (process.env.CHAOS_KEEP) log(`${engine}: run files kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** Enqueues `total` jobs spread over `overMs`, in batches every 100 ms; returns how many were acknowledged. */
async function produce(
  task: { enqueueMany(items: { payload: unknown; options?: { jobId: string } }[]): Promise<unknown[]> },
  total: number,
  overMs: number,
  deadline: number,
): Promise<number> {
  const ticks = Math.max(1, Math.floor(overMs / 100));
  const perTick = Math.ceil(total / ticks);
  let acknowledged = 0;
  while (acknowledged < total) {
    if (Date.now() > deadline)
      throw new Error("the producer could not enqueue every job before the deadline");
    const n = Math.min(perTick, total - acknowledged);
    const items = Array.from({ length: n }, (_, i) => ({
      payload: { n: acknowledged + i },
      options: { jobId: `chaos-${acknowledged + i}` },
    }));
    try {
      await task.enqueueMany(items);
      acknowledged += n;
    } catch {
      // The store is down: the same batch (same ids) again at the next tick.
    }
    await sleep(100);
  }
  return acknowledged;
}

interface Counts {
  completed: number;
  dead: number;
  active: number;
  waiting: number;
}

async function stateCounts(sluice: Sluice): Promise<Counts> {
  const stats = (await sluice.admin.queues()).find((q) => q.queue === QUEUE);
  const counts = (stats?.counts ?? {}) as Partial<Record<string, number>>;
  return {
    completed: counts.completed ?? 0,
    dead: counts.dead ?? 0,
    active: counts.active ?? 0,
    waiting: (counts.waiting ?? 0) + (counts.scheduled ?? 0),
  };
}

async function completedCount(sluice: Sluice): Promise<number> {
  return (await stateCounts(sluice)).completed;
}

/** Every job's state, by id (paged listing; bounded by the page count). */
async function allStates(sluice: Sluice): Promise<Map<string, JobState>> {
  const states = new Map<string, JobState>();
  const store = await sluice.store();
  let cursor: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const result = await store.listJobs({ filter: { queue: QUEUE }, limit: 1_000, cursor, order: "asc" });
    for (const job of result.jobs) states.set(job.id, job.state);
    cursor = result.nextCursor;
    if (cursor === null) break;
  }
  return states;
}

interface Run {
  kind: "S" | "F";
  id: string;
  attempt: number;
  pid: number;
  at: number;
}

function readRuns(dir: string): Run[] {
  const runs: Run[] = [];
  for (const file of readdirSync(dir).filter((f) => f.startsWith("runs-"))) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      const [kind, id, attempt, pid, at] = line.split(" ");
      if (!id || !at || (kind !== "S" && kind !== "F")) continue; // a line cut by SIGKILL
      runs.push({ kind, id, attempt: Number(attempt), pid: Number(pid), at: Number(at) });
    }
  }
  return runs;
}

function analyse(
  engine: ChaosEngine,
  size: ChaosSize,
  acknowledged: number,
  states: Map<string, JobState>,
  runs: Run[],
  faults: Fault[],
  recoverMs: number[],
  drainMs: number,
): ChaosReport {
  const killedAt = new Map(faults.filter((f) => f.kind === "kill").map((f) => [f.pid as number, f.at]));
  const restarts = faults.filter((f) => f.kind === "restart");
  const finishes = new Map<string, Run[]>();
  const starts = new Map<string, number>();
  for (const run of runs) {
    if (run.kind === "S") starts.set(run.id, (starts.get(run.id) ?? 0) + 1);
    else finishes.set(run.id, [...(finishes.get(run.id) ?? []), run]);
  }
  const duplicates = { kills: 0, restarts: 0, other: 0 };
  for (const list of finishes.values()) {
    if (list.length < 2) continue;
    list.sort((a, b) => a.at - b.at);
    const earlier = list.slice(0, -1);
    const last = list[list.length - 1] as Run;
    if (earlier.some((r) => (killedAt.get(r.pid) ?? Number.POSITIVE_INFINITY) >= r.at)) duplicates.kills++;
    else if (
      restarts.some((f) => f.at <= last.at && (f.until ?? f.at) >= (earlier[0] as Run).at - size.leaseMs)
    )
      duplicates.restarts++;
    else duplicates.other++;
  }
  let completed = 0;
  let dead = 0;
  let lost = 0;
  for (let n = 0; n < acknowledged; n++) {
    const state = states.get(`chaos-${n}`);
    if (state === "completed") completed++;
    else if (state === "dead") dead++;
    else lost++;
  }
  const kills = killedAt.size;
  const failures: string[] = [];
  if (lost > 0) failures.push(`${lost} acknowledged jobs lost (not completed or dead)`);
  if (dead > 0) failures.push(`${dead} jobs dead`);
  if (states.size !== acknowledged)
    failures.push(`${states.size} jobs in the store, ${acknowledged} enqueued`);
  if (duplicates.kills > kills * size.concurrency)
    failures.push(
      `${duplicates.kills} jobs ran twice after ${kills} kills (bound ${kills * size.concurrency})`,
    );
  if (duplicates.restarts > 0)
    failures.push(`${duplicates.restarts} jobs ran twice because of store restarts`);
  if (duplicates.other > 0)
    failures.push(`${duplicates.other} jobs ran twice with no worker killed and no outage`);
  return {
    engine,
    size,
    acknowledged,
    completed,
    lost,
    dead,
    duplicates,
    runsStarted: runs.filter((r) => r.kind === "S").length,
    restartedRuns: [...starts.values()].filter((n) => n > 1).length,
    kills,
    restarts: restarts.length,
    drainMs,
    recoverMs,
    integrity: "ok",
    failures,
    wallMs: 0,
  };
}

/** SIGTERM (graceful) to every live worker, SIGKILL after 15 s; bounded. */
async function stopAll(workers: ChaosWorker[]): Promise<void> {
  const live = workers.filter((w) => w.alive);
  for (const w of live) {
    w.signalled = true;
    w.child.kill("SIGTERM");
  }
  const timeout = sleep(15_000).then(() => "timeout");
  if ((await Promise.race([Promise.all(live.map((w) => w.exited)), timeout])) === "timeout") {
    for (const w of live) if (w.alive) w.child.kill("SIGKILL");
    await Promise.all(live.map((w) => w.exited));
  }
}

/** One line per engine, for the test output and docs/reliability.md. */
export function formatReport(r: ChaosReport): string {
  const d = r.duplicates;
  return [
    `${r.engine.padEnd(8)} jobs acknowledged ${r.acknowledged}, completed ${r.completed}, lost ${r.lost}, dead ${r.dead}`,
    `         ran more than once: ${d.kills} after ${r.kills} kills (bound ${r.kills * r.size.concurrency}), ` +
      `${d.restarts} after ${r.restarts} store restarts, ${d.other} other; runs started ${r.runsStarted}, jobs started twice ${r.restartedRuns}`,
    `         drain ${(r.drainMs / 1000).toFixed(1)} s after the last fault; recover after restart ${
      r.recoverMs.length ? r.recoverMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(", ") : "n/a"
    }; integrity ${r.integrity}; wall ${(r.wallMs / 1000).toFixed(0)} s`,
    ...(r.failures.length ? [`         FAILED: ${r.failures.join("; ")}`] : []),
  ].join("\n");
}

/** SQLite's corruption check: PRAGMA integrity_check on the file the workers wrote. */
export function sqliteIntegrity(file: string): string | null {
  if (!existsSync(file)) return "database file missing";
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.pragma("integrity_check") as { integrity_check: string }[];
    const result = rows.map((r) => r.integrity_check).join("; ");
    return result === "ok" ? null : result;
  } finally {
    db.close();
  }
}
