/**
 * The worker: one object per `sluice.worker()`, composed of the runtime's roles. It owns the running
 * jobs and the order of start and stop; each role lives in its own file:
 *
 *   FetchLoop    (fetch-loop.ts)      claims jobs for free slots, holds those claimed ahead
 *   execute      (executor.ts)        runs one job: schema check, handler, timeout, abort
 *   decideFailure (core/failure-policy.ts)  retry, discard, dead, rate-limited, cancelled
 *   OutcomeWriter (outcome-writer.ts) batched complete / fail / release / progress / logs, stats, events
 *   LeaseKeeper  (lease-keeper.ts)    heartbeats, lost leases, cancel requests
 *   Maintenance  (maintenance.ts)     recovery, schedules, retention, under a leader lease
 *
 * Call chain (see docs/internals.md): start → FetchLoop → store.claim → run(job) → execute → handler;
 * the result → decideFailure when it failed → OutcomeWriter → store.complete / fail / release.
 */
import { hostname } from "node:os";
import { CancelledError, LeaseLostError, SluiceError, WorkerStoppingError } from "../core/errors.js";
import { cancelledBeforeStart, decideFailure } from "../core/failure-policy.js";
import { newWorkerTag } from "../core/ids.js";
import type { JobRecord } from "../core/job.js";
import type { Logger } from "../core/logger.js";
import type { RegisteredTask } from "../core/task.js";
import type { LeaseRef, Store, WorkerInfo } from "../store/contract.js";
import { VERSION } from "../version.js";
import { type AttemptRunner, startAttempt } from "./attempt.js";
import { RunningJob } from "./executor.js";
import { FetchLoop } from "./fetch-loop.js";
import { HealthMonitor } from "./health.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { LoopMonitor } from "./loop-monitor.js";
import { Maintenance } from "./maintenance.js";
import { OutcomeWriter } from "./outcome-writer.js";
import type { SandboxPools } from "./sandbox/pool.js";
import { settlesWithin } from "./timing.js";
import {
  type ResolvedWorkerOptions,
  resolveWorkerOptions,
  type StopReport,
  type WorkerHost,
  type WorkerOptions,
} from "./worker-options.js";

export type { StopReport, WorkerHost, WorkerOptions };

const NONE: ReadonlySet<string> = new Set();

/** Completion linger: least, most, and share of the mean job run time (completionLingerMs). */
const COMPLETION_LINGER_MS = 5;
const COMPLETION_LINGER_MAX_MS = 20;
const COMPLETION_LINGER_SHARE = 1 / 10;

/**
 * How long a small batch of completions waits for more on a networked store: a tenth of this worker's mean
 * job run time, at least COMPLETION_LINGER_MS and at most COMPLETION_LINGER_MAX_MS. Long jobs end one at a
 * time at scattered moments; each completion written alone costs the worker a round trip (170–190 µs of
 * its CPU on the benchmark host: `npm run bench:round-trips`, first line). At 350 jobs/s of 50–500 ms jobs
 * a PostgreSQL worker holding them 5 ms still wrote 0.16 completion batches per job on their own, and 0.01
 * holding them 20 ms (the rest rode on the start writes of the next jobs): 0.48 → 0.33 store calls and
 * about a fifth less worker CPU per job (docs/benchmarks.md).
 * The cost: a completion is stored, and what waits on it (a flow's next step, a caller awaiting the result)
 * goes on, up to that much later, which stays within a tenth of the job's own run time; jobs shorter than
 * 50 ms keep the 5 ms.
 */
export function completionLingerMs(meanDurationMs: number): number {
  return Math.min(
    COMPLETION_LINGER_MAX_MS,
    Math.max(COMPLETION_LINGER_MS, meanDurationMs * COMPLETION_LINGER_SHARE),
  );
}

/**
 * Runs the jobs of its queues: claims them under a lease, runs their handlers with bounded concurrency,
 * heartbeats, writes outcomes in batches, and runs maintenance (recovery, schedules, retention) under a
 * leader lease. Create it with `sluice.worker(options)`, then `start()`; `stop()` is graceful.
 */
export class Worker {
  /** `host/pid/tag`: how the registry, leases and logs name this worker. */
  readonly id: string;
  /** The options with defaults applied (see worker-options.ts). */
  private readonly config: ResolvedWorkerOptions;
  private readonly running = new Map<string, RunningJob>();
  /** Start writes sent for held jobs ahead of their slot (`startAhead`), by the held record. */
  private readonly earlyStarts = new WeakMap<JobRecord, Promise<boolean>>();
  private readonly startedAt = Date.now();
  private readonly logger: Logger;
  private state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  private starting: Promise<void> | null = null;
  private stopping: Promise<StopReport> | null = null;
  private store!: Store;
  private fetcher!: FetchLoop;
  private writer!: OutcomeWriter;
  private leases!: LeaseKeeper;
  private loop!: LoopMonitor;
  private maintenance: Maintenance | null = null;
  private health: HealthMonitor | null = null;
  private unsubscribe: (() => void) | null = null;
  /**
   * Sandboxes of the tasks that run in one (task option `sandbox`), ended at stop. Made, and their code
   * loaded, when a sandboxed task first runs: a worker without one never loads child_process or the pool.
   */
  private sandboxes: Promise<SandboxPools> | null = null;
  /** What each attempt runs with (made once the store is open: one object for every job). */
  private runner!: AttemptRunner;
  /** Inside {@link startHeld}'s loop (see there). */
  private startingHeld = false;

  constructor(
    private readonly host: WorkerHost,
    private readonly options: WorkerOptions = {},
  ) {
    this.id = `${hostname()}/${process.pid}/${newWorkerTag()}`;
    this.config = resolveWorkerOptions(options);
    this.logger = host.logger.child({ worker: this.id });
  }

  /** Jobs running now. */
  get busy(): number {
    return this.running.size;
  }

  /** Connects, registers, and starts taking jobs. Resolves when the worker is ready. */
  async start(): Promise<void> {
    if (this.state !== "new") {
      throw new SluiceError("CLOSED", `worker ${this.id} was already started; create a new one`);
    }
    this.state = "starting";
    this.starting = this.startNow();
    try {
      await this.starting;
    } catch (error) {
      // Nothing runs yet (no claim; the health timers are stopped here); a later stop() has nothing to undo.
      this.health?.stop();
      this.unsubscribe?.();
      this.state = "stopped";
      throw error;
    }
  }

  private async startNow(): Promise<void> {
    const store = await this.host.store();
    this.store = store;
    // Held ahead by the observed rate where claims cost more than starts (WorkerOptions.prefetch).
    const prefetch = this.options.prefetch ?? "auto";
    this.writer = new OutcomeWriter(store, this.host.events, this.logger, {
      // One write lock in process: one lane. A networked store works on a batch during another's round trip.
      lanes: store.traits.inProcess ? 1 : 2,
      // A networked store: long jobs finishing one at a time share completion writes (completionLingerMs).
      // Fewer than min(8, concurrency) held at once: far under the unwritten allowance, and none at
      // concurrency 1, where the next job may wait for these writes.
      completionLinger: store.traits.inProcess
        ? null
        : {
            ms: () => completionLingerMs(this.fetcher.meanDurationMs()),
            below: Math.min(8, this.config.concurrency),
          },
      onWriteSettled: () => {
        this.fetcher.writeSettled();
        // A stored outcome may free a slot that unwritten outcomes held (startHeld).
        this.startHeld();
      },
      onFenced: (job) => this.loop.leaseLost(job),
    });
    this.fetcher = new FetchLoop(
      store,
      this.config.queues,
      {
        running: () => this.running.size,
        unwritten: () => this.writer.unwritten,
        claimed: () => this.startHeld(),
        giveBack: (jobs) => this.giveBack(jobs, "released: worker stopping"),
        excluded: () => this.health?.failingQueues() ?? NONE,
        giveBackExcluded: (jobs) => this.giveBack(jobs, "released: health check failing"),
        giveBackStale: (jobs) => this.giveBack(jobs, "released: held behind a long-running job"),
      },
      this.host.events,
      this.logger,
      {
        workerId: this.id,
        concurrency: this.config.concurrency,
        prefetch,
        leaseMs: this.config.leaseMs,
        pollMs: this.config.pollMs,
      },
    );
    this.leases = new LeaseKeeper(
      store,
      {
        id: this.id,
        heldLeases: () => this.heldLeases(),
        busy: () => this.running.size,
        info: () => this.info(),
        leaseLost: (lease) => this.leaseLost(lease),
        cancelRequested: (lease) => this.cancelRequested(lease),
        queuePaused: (lease) => this.queuePaused(lease),
        stalls: () => this.loop.current(),
        beat: () => ({ health: this.health?.snapshot() ?? [], clock: Date.now() }),
      },
      this.logger,
      this.config.leaseMs,
      this.config.heartbeatMs,
    );
    this.loop = new LoopMonitor(store, this.host.events, this.logger, {
      workerId: this.id,
      where: `${hostname()}/${process.pid}`,
      leaseMs: this.config.leaseMs,
      running: () => [...this.running.values()].map((r) => ({ ...r.job, startedAt: r.startedAt })),
    });
    this.health = new HealthMonitor(
      this.config.health,
      {
        failing: (queue) => {
          // Claimed ahead, never started: back to the queue uncharged. Running jobs finish normally.
          const held = this.fetcher.takeAll(queue);
          if (held.length > 0) void this.giveBack(held, "released: health check failing");
        },
        passing: () => this.fetcher.wake(),
        // Operators see the change at once rather than at the next heartbeat.
        changed: () => {
          if (this.state === "running") void this.leases.heartbeat();
        },
      },
      this.host.events,
      this.logger,
      this.id,
    );
    // The first run of every check before anything is claimed (each bounded by its timeout): a worker never
    // starts a job of a queue whose dependency is down at start.
    await this.health.start();
    await store.registerWorker(this.info());
    this.unsubscribe = store.subscribe((signal) => {
      if (signal.type === "jobs") {
        if (signal.queues === null || signal.queues.some((q) => this.config.queues.serves(q)))
          this.fetcher.wake();
      } else if (this.running.size + this.fetcher.heldCount + this.writer.unwritten > 0) {
        this.leases.checkCancels();
      }
    });
    this.runner = {
      id: this.id,
      host: this.host,
      store,
      writer: this.writer,
      heartbeat: (j) => this.leases.extend([{ id: j.id, token: j.leaseToken }]),
      sandboxes: () => {
        this.sandboxes ??= import("./sandbox/pool.js").then(({ SandboxPools }) => new SandboxPools());
        return this.sandboxes;
      },
    };
    this.leases.start();
    this.loop.start();
    this.writer.start();
    if (this.options.maintenance !== false) {
      this.maintenance = new Maintenance(store, this.host.events, this.logger, {
        owner: this.id,
        intervalMs: this.options.maintenanceMs ?? Math.min(Math.floor(this.config.leaseMs / 2), 5_000),
        leaseMs: this.config.leaseMs,
        events: this.host.eventRetention,
      });
      this.maintenance.start();
    }
    this.state = "running";
    this.logger.info(
      {
        queues: this.config.queues.names,
        concurrency: this.config.concurrency,
        leaseMs: this.config.leaseMs,
        engine: store.engine,
      },
      "worker started",
    );
    this.fetcher.start();
  }

  /**
   * Stops the worker. What it guarantees when the returned promise resolves:
   * - no claim is made any more, and the jobs of a claim still in flight went back (bounded by storeGraceMs);
   * - jobs claimed ahead and never started went back to `waiting` at once, without charging an attempt;
   * - running jobs had `graceMs` to finish; the rest were aborted (`ctx.signal` with WorkerStoppingError)
   *   and released to `waiting` without charging an attempt: whatever their handlers do later is fenced off;
   * - outcomes were written, or given up after storeGraceMs (their jobs are recovered when leases expire);
   * - the worker left the registry.
   * Handlers that ignored their signal may still be running: the report lists them (`unsettled`). They
   * hold no job, but they keep the event loop alive; a process that is shutting down should exit.
   * Safe to call more than once (every call gets the same report).
   */
  stop(options: { graceMs?: number } = {}): Promise<StopReport> {
    this.stopping ??= this.stopNow(options.graceMs ?? this.config.shutdownGraceMs);
    return this.stopping;
  }

  private async stopNow(graceMs: number): Promise<StopReport> {
    const report: StopReport = { released: [], unsettled: [] };
    if (this.state === "starting") await this.starting?.catch(() => {});
    if (this.state === "new" || this.state === "stopped") {
      this.state = "stopped";
      return report;
    }
    this.state = "stopping";
    this.logger.info({ running: this.running.size, graceMs }, "worker stopping");
    // The store subscription stays until running jobs are done: job signals are ignored from now on (no
    // claims while stopping), but a cancel must still reach a handler that is draining within its grace.
    if (!(await this.fetcher.stop(this.config.storeGraceMs))) {
      this.logger.error(
        { waitedMs: this.config.storeGraceMs },
        "claim still in flight at shutdown; its jobs are recovered when their leases expire",
      );
    }
    this.health?.stop();
    // Jobs held ahead never started: give them back at once (no attempt charged).
    const held = this.fetcher.takeAll();
    report.released.push(...held.map((job) => job.id));
    await this.giveBack(held, "released: worker stopping");
    await this.maintenance?.stop();
    if (this.running.size > 0) {
      await settlesWithin(Promise.all([...this.running.values()].map((r) => r.done())), graceMs);
    }
    const unfinished = [...this.running.values()];
    if (unfinished.length > 0) {
      const reason = new WorkerStoppingError(graceMs);
      this.logger.warn(
        { jobs: unfinished.map((r) => r.job.id) },
        "shutdown grace elapsed; aborting and releasing jobs",
      );
      for (const r of unfinished) r.abort(reason);
      // Release at once: a handler that ignores its signal must not hold the job hostage. Its late outcome
      // is fenced off because the job is no longer active under its token.
      report.released.push(...unfinished.map((r) => r.job.id));
      await this.giveBack(
        unfinished.map((r) => r.job),
        `released at shutdown: ${reason.message}`,
      );
      this.running.clear();
    }
    await this.stopSandboxes(); // a sandboxed handler that ignored its signal is killed here, not left running
    this.unsubscribe?.();
    this.leases.stop();
    this.loop.stop();
    await this.writer.close(this.config.storeGraceMs);
    try {
      await this.store.unregisterWorker(this.id);
    } catch (error) {
      this.logger.warn({ err: error }, "could not unregister worker; its entry expires by itself");
    }
    // Handlers that heard the abort have returned by now (the release and the last writes took a turn of
    // the event loop at least); those still inside are the ones that ignore their signal.
    const now = Date.now();
    for (const r of unfinished) {
      if (!r.inHandler) continue;
      report.unsettled.push({
        jobId: r.job.id,
        task: r.job.task,
        queue: r.job.queue,
        runningMs: now - r.startedAt,
      });
    }
    this.state = "stopped";
    if (report.unsettled.length > 0) {
      this.logger.warn(
        { unsettled: report.unsettled },
        "handlers still running that ignore their abort signal: their jobs went back to the queue and their outcomes will be refused",
      );
    }
    this.logger.info({ released: report.released.length }, "worker stopped");
    return report;
  }

  /** Ends the sandboxes; none can start after (a sandboxed job that asks later gets CLOSED). */
  private async stopSandboxes(): Promise<void> {
    const pools = this.sandboxes;
    if (pools) {
      await (await pools.catch(() => null))?.stop();
      return;
    }
    const closed = Promise.reject(new SluiceError("CLOSED", "the worker's sandboxes are stopped"));
    closed.catch(() => {}); // handled where a job asks for it
    this.sandboxes = closed;
  }

  private info(): WorkerInfo {
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      queues: [...this.config.queues.names],
      concurrency: this.config.concurrency,
      busy: this.running.size,
      startedAt: this.startedAt,
      lastHeartbeatAt: Date.now(),
      version: VERSION,
      stalls: this.loop.snapshot(),
      health: this.health?.snapshot() ?? [],
      clock: Date.now(),
      clockSkewMs: 0, // the store measures it
    };
  }

  // ── running jobs ───────────────────────────────────────────────────────────────────────────────

  /** Starts held jobs while slots are free, in claim order. */
  private startHeld(): void {
    // A job that ends synchronously (a handler returning a plain value) ends inside this loop: the loop
    // itself then starts the next one, rather than a nested call per job.
    if (this.startingHeld) return;
    this.startingHeld = true;
    try {
      // Unwritten outcomes past the start allowance take slots: while the store lags, held jobs wait (and
      // start when a write settles) rather than run and finish unwritten.
      while (
        this.running.size + this.fetcher.unwrittenPastStartAllowance() < this.config.concurrency &&
        this.state === "running"
      ) {
        const claimed = this.fetcher.next();
        if (!claimed) return;
        // Claimed ahead (held, startedAt null): the store learns of the start before the handler runs.
        const held = claimed.startedAt === null;
        const job = held ? { ...claimed, startedAt: Date.now() } : claimed;
        // This worker claimed the job again while an older claim of it still runs here: that claim's lease
        // is lost (the job was recovered since), whether or not a heartbeat has said so yet.
        const older = this.running.get(job.id);
        if (older && older.job.leaseToken !== job.leaseToken) {
          this.logger.warn({ jobId: job.id, token: older.job.leaseToken }, "lease lost; aborting handler");
          older.abort(new LeaseLostError(job.id));
        }
        const running = new RunningJob(job, Date.now());
        this.running.set(job.id, running);
        if (held)
          this.startWritten(running, this.earlyStarts.get(claimed) ?? this.writer.markStarted(claimed));
        else this.attempt(running);
      }
    } finally {
      if (this.state === "running") this.startAhead();
      this.startingHeld = false;
    }
  }

  /**
   * Writes the starts of the held jobs next in line with the start being written now (one batch), so they
   * take their slots without a round trip each: those due within START_BATCH_MS at the observed rate
   * (claim-ahead.ts), refilled once half of them have started. A start refused or unanswered is met when
   * its job takes a slot (`startWritten`); until then the job is handled like any held job: a cancel, a
   * pause, a lost lease or a stop takes it out of line, and `release` / `fail` are fenced by its lease.
   */
  private startAhead(): void {
    const batch = this.fetcher.startBatch();
    if (batch === 0) return;
    // Runs after every start (a hot path at concurrency 1): counts in place rather than copying the line.
    const held = this.fetcher.heldJobs();
    const end = Math.min(batch, held.length);
    let written = 0;
    for (let i = 0; i < end; i++) if (this.startWrittenAhead(held[i] as JobRecord)) written++;
    if (written > batch / 2) return;
    for (let i = 0; i < end; i++) {
      const job = held[i] as JobRecord;
      if (!this.startWrittenAhead(job)) this.earlyStarts.set(job, this.writer.markStarted(job));
    }
  }

  /** Whether a held job's start is written or being written: by its claim (startedAt set) or ahead. */
  private startWrittenAhead(job: JobRecord): boolean {
    return job.startedAt !== null || this.earlyStarts.has(job);
  }

  /** A job claimed ahead: its start is written first; refused, it goes back and never runs. */
  private startWritten(running: RunningJob, started: Promise<boolean>): void {
    const { job } = running;
    void started.then((started) => {
      if (started) return this.attempt(running);
      // Refused: an operator deleted, moved or cancelled it, it was recovered, or its queue is paused. Give
      // it back (fenced: only the paused one goes back to waiting, uncharged) and never run it.
      void this.giveBack([job], "released: queue paused").finally(() => this.ended(running));
    });
  }

  /** Runs one attempt of a started job; `ended` follows once its outcome is handed off. */
  private attempt(running: RunningJob): void {
    const task = this.host.tasks.get(running.job.task);
    // Aborted while its start was being written (cancel, lost lease, shutdown): the handler never runs.
    if (running.aborted) {
      void this.failed(running, task, running.abortReason).finally(() => this.ended(running));
      return;
    }
    startAttempt(this.runner, running, task, (end) => {
      if (end.kind === "completed") return this.ended(running, true);
      const after = end.kind === "blocked" ? end.written : this.failed(running, task, end.error);
      void after.finally(() => this.ended(running));
    });
  }

  /** The run is over (its outcome handed to the writer, or given back): free its slot, start the next. */
  private ended(running: RunningJob, completed = false): void {
    const { job } = running;
    this.loop.jobEnded(job, running.startedAt);
    if (this.running.get(job.id) === running) this.running.delete(job.id);
    running.end();
    this.fetcher.ended(Date.now() - running.startedAt);
    this.startHeld();
    // Any other end (a failure, a retry scheduled, a job given back) may have changed the queue's schedule.
    if (completed) this.fetcher.slotFreed();
    else this.fetcher.wake();
  }

  private async failed(running: RunningJob, task: RegisteredTask | undefined, error: unknown): Promise<void> {
    const { job } = running;
    const decision = decideFailure({
      job,
      error,
      abortReason: running.aborted ? running.abortReason : undefined,
      rules: task && { ...task.definition, backoff: task.backoff },
      workerId: this.id,
      now: Date.now(),
    });
    if (decision.kind === "none") return; // already released (shutdown) or no longer ours (lease lost)
    if (decision.kind === "fail") return this.writer.fail(job, decision.error, decision.next);
    // Rate limited: hold the job's limit key (only that key's jobs wait) or, without one, the queue; give
    // back this job and those of the same key / queue held ahead (they would meet the same limit), without
    // charging an attempt.
    const key = job.limitKey;
    try {
      if (key !== null) await this.store.holdKey(job.queue, key, decision.until);
      else await this.store.pauseQueue(job.queue, decision.until);
    } catch (holdError) {
      this.logger.warn(
        { err: holdError, queue: job.queue, limitKey: key },
        "could not hold the rate-limited queue or key",
      );
    }
    this.logger.warn(
      { queue: job.queue, limitKey: key, jobId: job.id, retryAfterMs: decision.error.retryAfterMs },
      key !== null ? "rate limited; key held" : "rate limited; queue paused",
    );
    const jobs = [job, ...this.fetcher.takeAll(job.queue, key ?? undefined)];
    await this.giveBack(jobs, `rate limited: ${decision.error.message}`, decision.until);
  }

  private async giveBack(jobs: readonly JobRecord[], reason: string, runAt?: number): Promise<void> {
    await Promise.allSettled(jobs.map((job) => this.writer.release(job, reason, runAt)));
  }

  // ── what the lease keeper reports ──────────────────────────────────────────────────────────────

  /** Leases this worker holds: running jobs, jobs claimed ahead, and jobs whose outcome is being written. */
  private heldLeases(): LeaseRef[] {
    const leases: LeaseRef[] = [...this.running.values()].map((r) => ({
      id: r.job.id,
      token: r.job.leaseToken,
    }));
    for (const job of this.fetcher.heldJobs()) leases.push({ id: job.id, token: job.leaseToken });
    leases.push(...this.writer.pendingLeases());
    return leases;
  }

  /** The running job of `lease`: only when it runs under that very token (not an older or newer claim). */
  private runningUnder(lease: LeaseRef): RunningJob | undefined {
    const running = this.running.get(lease.id);
    return running?.job.leaseToken === lease.token ? running : undefined;
  }

  private leaseLost(lease: LeaseRef): void {
    if (this.fetcher.take(lease)) return; // never started: nothing to abort
    const running = this.runningUnder(lease);
    if (!running) return; // a report about a claim this worker no longer runs (it may run a newer one)
    this.logger.warn({ jobId: lease.id, token: lease.token }, "lease lost; aborting handler");
    this.loop.leaseLost(running.job);
    running.abort(new LeaseLostError(lease.id));
    this.running.delete(lease.id);
    this.fetcher.wake();
  }

  private cancelRequested(lease: LeaseRef): void {
    const held = this.fetcher.take(lease);
    if (held) {
      const { error, next } = cancelledBeforeStart(held, this.id, Date.now());
      this.writer.fail(held, error, next);
      return;
    }
    const running = this.runningUnder(lease);
    if (running && !running.aborted) running.abort(new CancelledError(lease.id));
  }

  /** A job claimed ahead in a queue paused since goes back at once (no attempt charged); a running one finishes. */
  private queuePaused(lease: LeaseRef): void {
    const held = this.fetcher.take(lease);
    if (held) void this.giveBack([held], "released: queue paused");
  }
}
