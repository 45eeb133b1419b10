/**
 * The worker: claims jobs from the store under a lease, runs their handlers with bounded concurrency,
 * heartbeats, and writes outcomes in batches. Call chain (see docs/internals.md):
 *
 *   Worker.start → fetchLoop → store.claim → execute(job) → handler(payload, ctx)
 *                                             └→ outcome → Batcher → store.complete / fail / release
 *   heartbeat timer → store.extendLeases (aborts handlers whose lease was lost or that were cancelled)
 *   maintenance (leader only) → store.recover / store.prune
 *
 * Fetching is event driven: a store signal (new jobs), a finished job (a free slot) or a timer for the
 * next scheduled job triggers a claim; a jittered safety poll covers lost signals. Claims take as many
 * jobs as there are free slots in one call.
 */
import { hostname } from "node:os";
import { computeBackoff } from "../core/backoff.js";
import {
  CancelledError,
  DiscardError,
  describeError,
  matchesError,
  NoHandlerError,
  RateLimitedError,
  SluiceError,
  TimeoutError,
  ValidationError,
} from "../core/errors.js";
import { newWorkerTag } from "../core/ids.js";
import type { AttemptError, AttemptOutcome, JobRecord, Json } from "../core/job.js";
import type { Logger } from "../core/logger.js";
import type { JobOptions } from "../core/options.js";
import { serializePayload, serializeResult, validateWithSchema } from "../core/payload.js";
import { StatsAccumulator } from "../core/stats.js";
import type { RegisteredTask, TaskContext } from "../core/task.js";
import type {
  CompleteRequest,
  FailNext,
  FailRequest,
  LogRequest,
  ProgressRequest,
  ReleaseRequest,
  Store,
  WorkerInfo,
} from "../store/contract.js";
import { VERSION } from "../version.js";
import { Batcher } from "./batcher.js";
import type { SluiceEventEmitter } from "./events.js";
import { Maintenance } from "./maintenance.js";
import { QueueSelector, type QueueSpec } from "./queue-selector.js";

/** How often a worker adds its outcome counts to the store's hourly roll-up. */
const STATS_FLUSH_MS = 5_000;
/** Longest a partially filled claim goes without refreshing the timer for the next scheduled job. */
const DUE_REFRESH_MS = 250;
/** Fewest milliseconds between two cancel checks caused by store signals (a burst of cancels costs one). */
const CANCEL_CHECK_MS = 100;
/**
 * Longest `stop()` waits for the last outcome writes once handlers are done. Past it (the store is down)
 * the writes are given up: those jobs' leases expire and recovery runs them again (at-least-once).
 */
const FINAL_WRITES_MS = 10_000;

/** Options of `sluice.worker()`. */
export interface WorkerOptions {
  /** Queue names in strict order, or `[name, weight]` pairs for weighted random order. Default `["default"]`. */
  queues?: QueueSpec;
  /** Jobs run at once by this worker. Default 10. */
  concurrency?: number;
  /** Lease length; a job whose worker stops heartbeating for this long is recovered. Default 30 s. */
  leaseMs?: number;
  /** Heartbeat period. Default leaseMs / 3. */
  heartbeatMs?: number;
  /** Safety poll period when idle (jittered ±25%). Default 1 s; wake-ups normally arrive sooner. */
  pollMs?: number;
  /**
   * Jobs claimed ahead of free slots and held under lease, so a finishing job is replaced without waiting
   * a round trip. Default: equal to `concurrency` on PostgreSQL and Redis; 0 on SQLite, whose claims are
   * in-process calls. Held jobs can delay a newly enqueued higher-priority job by at most this many jobs.
   */
  prefetch?: number;
  /** Default grace for `stop()` before running handlers are aborted. Default 25 s. */
  shutdownGraceMs?: number;
  /** Run maintenance (lease recovery, retention, registry cleanup) in this worker under a leader lock. Default true. */
  maintenance?: boolean;
  /** Period of the maintenance pass. Default min(leaseMs / 2, 5 s). */
  maintenanceMs?: number;
}

/** What the worker needs from its Sluice instance. */
export interface WorkerHost {
  store(): Promise<Store>;
  readonly tasks: ReadonlyMap<string, RegisteredTask>;
  readonly events: SluiceEventEmitter;
  readonly logger: Logger;
  readonly maxPayloadBytes: number;
  enqueue(task: string, payload: unknown, options?: JobOptions): Promise<{ id: string; created: boolean }>;
}

/** Why the worker aborted a handler itself (as opposed to a timeout or a cancel). */
class ShutdownAbort extends SluiceError {
  constructor(graceMs: number) {
    super(
      "WORKER_STOPPING",
      `worker stopping: shutdown grace of ${graceMs} ms elapsed; the job goes back to waiting`,
    );
  }
}
class LeaseLostError extends SluiceError {
  constructor(id: string) {
    super(
      "LEASE_LOST",
      `lease on job ${id} was lost (expired and recovered, deleted, or re-claimed); outcome discarded`,
    );
  }
}

/**
 * A job this worker is running. Its AbortController is created only when the handler reads `ctx.signal`
 * (most never do, and one per job is measurable at tens of thousands of jobs/s); aborting also interrupts
 * the worker's own wait for the handler through `interrupt`, so an abort never depends on the signal.
 */
class Running {
  private controller: AbortController | null = null;
  aborted = false;
  abortReason: unknown = undefined;
  /** Rejects the worker's wait for the handler's promise; set while it waits. */
  interrupt: ((reason: unknown) => void) | null = null;
  done: Promise<void> = Promise.resolve();

  constructor(
    readonly job: JobRecord,
    readonly startedAt: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.interrupt?.(reason);
  }
}

/**
 * Runs the jobs of its queues: claims them under a lease, runs their handlers with bounded concurrency,
 * heartbeats, writes outcomes in batches, and runs maintenance (recovery, schedules, retention) under a
 * leader lease. Create it with `sluice.worker(options)`, then `start()`; `stop()` is graceful.
 */
export class Worker {
  /** `host/pid/tag`: how the registry, leases and logs name this worker. */
  readonly id: string;
  private readonly queues: QueueSelector;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollMs: number;
  private readonly shutdownGraceMs: number;
  private readonly running = new Map<string, Running>();
  /** Claimed (leased) jobs waiting for a free slot; see WorkerOptions.prefetch. */
  private readonly buffer: JobRecord[] = [];
  private prefetch = 0;
  private store!: Store;
  private state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  private fetching = false;
  /** The claim loop's current pass, awaited by `stop()` so a claim in flight is handed back before exit. */
  private fetchPass: Promise<void> = Promise.resolve();
  private fetchAgain = false;
  /** Whether the last fetch was held back by unwritten outcomes: each stored one then fetches again. */
  private writeBound = false;
  /** Whether the last claim found the queues empty with nothing running (see the `drained` event). */
  private drained = false;
  private fetchScheduled = false;
  private claimFailures = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private dueTimer: NodeJS.Timeout | null = null;
  private dueAt: number | null = null;
  private dueCheckedAt = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private lastCancelCheck = 0;
  private cancelCheckTimer: NodeJS.Timeout | null = null;
  private maintenance: Maintenance | null = null;
  private readonly startedAt = Date.now();
  private completions!: Batcher<CompleteRequest, boolean>;
  private failures!: Batcher<FailRequest, boolean>;
  private releases!: Batcher<ReleaseRequest, boolean>;
  private progressWrites!: Batcher<ProgressRequest, boolean>;
  private logWrites!: Batcher<LogRequest, undefined>;
  private stopping: Promise<void> | null = null;
  /** Outcomes since the last flush to the store's hourly roll-up. */
  private readonly stats = new StatsAccumulator();
  /** Outcome writes queued but not yet stored (see finishCompleted). */
  /**
   * Outcome writes queued but not yet stored, with the lease each belongs to. Their leases are still
   * extended by heartbeats: a write retried through a store outage must not see its job recovered and run
   * again because the lease ran out while the outcome waited.
   */
  private readonly pendingWrites = new Map<Promise<unknown>, { id: string; token: number }>();
  private statsTimer: NodeJS.Timeout | null = null;
  private readonly logger: Logger;

  constructor(
    private readonly host: WorkerHost,
    private readonly options: WorkerOptions = {},
  ) {
    this.id = `${hostname()}/${process.pid}/${newWorkerTag()}`;
    this.queues = new QueueSelector(options.queues ?? ["default"]);
    this.concurrency = positiveInt(options.concurrency ?? 10, "concurrency");
    this.leaseMs = positiveInt(options.leaseMs ?? 30_000, "leaseMs");
    this.heartbeatMs = positiveInt(
      options.heartbeatMs ?? Math.max(Math.floor(this.leaseMs / 3), 1),
      "heartbeatMs",
    );
    this.pollMs = positiveInt(options.pollMs ?? 1_000, "pollMs");
    this.shutdownGraceMs = nonNegativeInt(options.shutdownGraceMs ?? 25_000, "shutdownGraceMs");
    if (this.heartbeatMs >= this.leaseMs) {
      throw new ValidationError(
        "INVALID_OPTION",
        `heartbeatMs (${this.heartbeatMs}) must be shorter than leaseMs (${this.leaseMs}) or leases expire between heartbeats`,
        {
          field: "worker.heartbeatMs",
        },
      );
    }
    this.logger = host.logger.child({ worker: this.id });
  }

  /** Jobs running now. */
  get busy(): number {
    return this.running.size;
  }

  /** Connects, registers, and starts taking jobs. Resolves when the worker is ready. */
  async start(): Promise<void> {
    if (this.state !== "new")
      throw new SluiceError("CLOSED", `worker ${this.id} was already started; create a new one`);
    this.state = "starting";
    this.store = await this.host.store();
    const store = this.store;
    this.prefetch = nonNegativeInt(
      this.options.prefetch ?? (store.traits.inProcess ? 0 : this.concurrency),
      "prefetch",
    );
    const write = <I, R>(name: string, fn: (items: I[]) => Promise<R[]>, lanes = 1) =>
      new Batcher<I, R>(name, fn, this.logger, 500, lanes);
    // Outcomes of distinct jobs may be written side by side: a networked store works on the next batch
    // during one batch's round trip (SQLite writes are in-process, one lock: one lane). Progress and log
    // lines keep one lane, so they are stored in the order they were made.
    const lanes = store.traits.inProcess ? 1 : 2;
    this.completions = write("complete", (items) => store.complete(items), lanes);
    this.failures = write("fail", (items) => store.fail(items), lanes);
    this.releases = write("release", (items) => store.release(items), lanes);
    this.progressWrites = write("progress", (items) => store.saveProgress(items));
    this.logWrites = write("log", async (items) => {
      await store.appendLogs(items);
      return items.map(() => undefined);
    });
    await store.registerWorker(this.info());
    this.unsubscribe = store.subscribe((signal) => {
      if (signal.type === "jobs") {
        if (signal.queues === null || signal.queues.some((q) => this.queues.serves(q))) this.scheduleFetch();
      } else if (this.running.size + this.buffer.length > 0) {
        this.checkCancels();
      }
    });
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    this.statsTimer = setInterval(() => void this.flushStats(), STATS_FLUSH_MS);
    if (this.options.maintenance !== false) {
      this.maintenance = new Maintenance(store, this.host.events, this.logger, {
        owner: this.id,
        intervalMs: this.options.maintenanceMs ?? Math.min(Math.floor(this.leaseMs / 2), 5_000),
      });
      this.maintenance.start();
    }
    this.state = "running";
    this.logger.info(
      {
        queues: this.queues.names,
        concurrency: this.concurrency,
        leaseMs: this.leaseMs,
        engine: store.engine,
      },
      "worker started",
    );
    this.scheduleFetch();
  }

  /**
   * Stops claiming, waits up to `graceMs` for running jobs, then aborts them and returns the unfinished ones
   * to `waiting` without charging an attempt. Safe to call more than once.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.stopNow(options.graceMs ?? this.shutdownGraceMs);
    return this.stopping;
  }

  private async stopNow(graceMs: number): Promise<void> {
    if (this.state === "new") {
      this.state = "stopped";
      return;
    }
    this.state = "stopping";
    this.logger.info({ running: this.running.size, graceMs }, "worker stopping");
    // The store subscription stays until running jobs are done: job signals are ignored from now on (no
    // claims while stopping), but a cancel must still reach a handler that is draining within its grace.
    this.clearTimer("poll");
    this.clearTimer("due");
    // A claim in flight returns jobs this worker now holds: fetch() hands them back when it sees the state.
    // Bounded like the last writes: a claim hung on a dead connection must not hold stop() forever.
    if (!(await settlesWithin(this.fetchPass, FINAL_WRITES_MS))) {
      this.logger.error(
        { waitedMs: FINAL_WRITES_MS },
        "claim still in flight at shutdown; its jobs are recovered when their leases expire",
      );
    }
    // Jobs held ahead never started: give them back at once (no attempt charged).
    await Promise.allSettled(
      this.buffer.splice(0).map((job) => this.releaseJob(job, "released: worker stopping")),
    );
    await this.maintenance?.stop();
    if (this.running.size > 0) {
      await settlesWithin(Promise.all([...this.running.values()].map((r) => r.done)), graceMs);
    }
    if (this.running.size > 0) {
      const reason = new ShutdownAbort(graceMs);
      const unfinished = [...this.running.values()];
      this.logger.warn(
        { jobs: unfinished.map((r) => r.job.id) },
        "shutdown grace elapsed; aborting and releasing jobs",
      );
      for (const r of unfinished) r.abort(reason);
      // Release at once: a handler that ignores its signal must not hold the job hostage. Its late outcome
      // is fenced off because the job is no longer active under its token.
      await Promise.allSettled(
        unfinished.map((r) => this.releaseJob(r.job, `released at shutdown: ${reason.message}`)),
      );
      this.running.clear();
    }
    this.unsubscribe?.();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.cancelCheckTimer) clearTimeout(this.cancelCheckTimer);
    await this.finalWrites();
    try {
      await this.store.unregisterWorker(this.id);
    } catch (error) {
      this.logger.warn({ err: error }, "could not unregister worker; its entry expires by itself");
    }
    this.state = "stopped";
    this.logger.info("worker stopped");
  }

  /**
   * Waits for queued outcome writes (and the stats flush) for at most FINAL_WRITES_MS, then gives up on
   * what is left, so `stop()` returns even when the store went away: a batcher retries an unreachable
   * store forever otherwise.
   */
  private async finalWrites(): Promise<void> {
    const batchers = [this.completions, this.failures, this.releases, this.progressWrites, this.logWrites];
    const written = (async () => {
      await Promise.allSettled(batchers.map((b) => b.drain()));
      await Promise.allSettled([...this.pendingWrites.keys()]);
      await this.flushStats();
    })();
    if (await settlesWithin(written, FINAL_WRITES_MS)) return;
    this.logger.error(
      { waitedMs: FINAL_WRITES_MS },
      "store unreachable at shutdown: unwritten outcomes are given up; those jobs are recovered when their leases expire",
    );
    for (const batcher of batchers) batcher.close();
  }

  private info(): WorkerInfo {
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      queues: [...this.queues.names],
      concurrency: this.concurrency,
      busy: this.running.size,
      startedAt: this.startedAt,
      lastHeartbeatAt: Date.now(),
      version: VERSION,
    };
  }

  // ── fetching ───────────────────────────────────────────────────────────────────────────────────

  private scheduleFetch(): void {
    if (this.state !== "running" && this.state !== "starting") return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    if (this.fetchScheduled) return;
    this.fetchScheduled = true;
    setImmediate(() => {
      this.fetchScheduled = false;
      this.fetchPass = this.fetch();
    });
  }

  private async fetch(): Promise<void> {
    if (this.state !== "running" || this.fetching) return;
    // Backpressure: a finished job frees its slot before its outcome is stored, so the next claim overlaps
    // the write; but outcomes written slower than jobs finish must not pile up without bound (memory, and
    // leases to keep alive). Past one slot's worth of unwritten outcomes per slot, each one takes a slot.
    const unwritten = Math.max(0, this.pendingWrites.size - (this.concurrency + this.prefetch));
    const free = this.concurrency + this.prefetch - this.running.size - this.buffer.length - unwritten;
    this.writeBound = unwritten > 0;
    if (free <= 0) return;
    this.fetching = true;
    this.fetchAgain = false;
    let claimed: JobRecord[] = [];
    try {
      claimed = await this.store.claim({
        queues: this.queues.order(),
        limit: free,
        workerId: this.id,
        leaseMs: this.leaseMs,
      });
      this.claimFailures = 0;
    } catch (error) {
      this.claimFailures++;
      const delay = Math.min(100 * 2 ** this.claimFailures, 10_000);
      this.logger.error(
        { err: error, retryInMs: delay, failures: this.claimFailures },
        "claim failed; backing off",
      );
      this.host.events.emit("error", error instanceof Error ? error : new Error(String(error)));
      this.fetching = false;
      this.armPoll(delay);
      return;
    }
    this.fetching = false;
    if (this.state !== "running") {
      // Stopped while the claim was in flight: hand the jobs straight back.
      await Promise.allSettled(claimed.map((job) => this.releaseJob(job, "released: worker stopping")));
      return;
    }
    this.buffer.push(...claimed);
    this.startBuffered();
    if (claimed.length > 0) this.drained = false;
    else if (!this.drained && this.running.size === 0) {
      this.drained = true;
      this.host.events.emit("drained", { workerId: this.id, at: Date.now() });
    }
    if (claimed.length < free) {
      // Idle (or nearly): wait for a signal, the next due job, or the safety poll. The next due time costs
      // a round trip, so under light steady traffic it is looked up at most every DUE_REFRESH_MS; an empty
      // claim always looks (that is when a delayed job is the next thing to do).
      this.armPoll(this.pollMs);
      const now = Date.now();
      if (claimed.length === 0 || now - this.dueCheckedAt >= DUE_REFRESH_MS) {
        this.dueCheckedAt = now;
        void this.armDueTimer();
      }
    }
    if (this.fetchAgain) this.scheduleFetch();
  }

  private armPoll(delayMs: number): void {
    this.clearTimer("poll");
    const jittered = delayMs * (0.75 + Math.random() / 2);
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      this.scheduleFetch();
    }, jittered);
  }

  /** Sets a timer for the earliest scheduled job so delayed jobs start on time without polling. */
  private async armDueTimer(): Promise<void> {
    let next: number | null;
    try {
      next = await this.store.nextRunAt(this.queues.names);
    } catch {
      return; // the poll covers it
    }
    if (next === null || this.state !== "running") return;
    if (this.dueAt !== null && this.dueAt <= next && this.dueTimer) return;
    this.clearTimer("due");
    this.dueAt = next;
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = null;
        this.dueAt = null;
        this.scheduleFetch();
      },
      Math.max(next - Date.now(), 0),
    );
  }

  private clearTimer(which: "poll" | "due"): void {
    if (which === "poll" && this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.pollTimer = null;
    }
    if (which === "due" && this.dueTimer) {
      clearTimeout(this.dueTimer);
      this.dueTimer = null;
      this.dueAt = null;
    }
  }

  // ── running a job ──────────────────────────────────────────────────────────────────────────────

  /** Starts held jobs while slots are free, in claim order. */
  private startBuffered(): void {
    while (this.running.size < this.concurrency && this.buffer.length > 0 && this.state === "running") {
      this.execute(this.buffer.shift() as JobRecord);
    }
  }

  private execute(job: JobRecord): void {
    const entry = new Running(job, Date.now());
    this.running.set(job.id, entry);
    entry.done = this.runJob(entry).finally(() => {
      if (this.running.get(job.id) === entry) this.running.delete(job.id);
      this.startBuffered();
      this.scheduleFetch();
    });
  }

  private async runJob(entry: Running): Promise<void> {
    const { job } = entry;
    const events = this.host.events;
    if (events.wants("active")) {
      events.emit("active", {
        jobId: job.id,
        queue: job.queue,
        task: job.task,
        at: entry.startedAt,
        attempt: job.attempt,
        workerId: this.id,
      });
    }
    const task = this.host.tasks.get(job.task);
    let timer: NodeJS.Timeout | undefined;
    try {
      if (job.dataError) throw Object.assign(new DiscardError(job.dataError), { outcome: "invalid-payload" });
      if (!task?.definition.run) throw new NoHandlerError(job.task, this.id);
      let payload: unknown = job.payload;
      if (task.definition.schema) {
        try {
          payload = await validateWithSchema(task.definition.schema, payload, "payload");
        } catch (error) {
          throw Object.assign(
            new DiscardError(`stored payload fails the task schema: ${(error as Error).message}`, {
              cause: error,
            }),
            {
              outcome: "invalid-payload",
            },
          );
        }
      }
      const timeoutMs = job.timeoutMs;
      if (timeoutMs !== null) timer = setTimeout(() => entry.abort(new TimeoutError(timeoutMs)), timeoutMs);
      const outcome: unknown = task.definition.run(payload, this.context(entry));
      const result = isThenable(outcome)
        ? await new Promise<unknown>((resolve, reject) => {
            // An abort (timeout, cancel, lost lease, shutdown) ends the wait even if the handler ignores it.
            if (entry.aborted) reject(entry.abortReason);
            entry.interrupt = reject;
            outcome.then(resolve, reject);
          })
        : outcome;
      clearTimeout(timer);
      if (entry.aborted) throw entry.abortReason;
      await this.finishCompleted(entry, result);
    } catch (error) {
      clearTimeout(timer);
      await this.finishFailed(entry, task, error);
    }
  }

  private context(entry: Running): TaskContext {
    const { job } = entry;
    return {
      job,
      id: job.id,
      attempt: job.attempt,
      get signal() {
        return entry.signal;
      },
      progress: async (value: Json) => {
        const text = serializePayload(value, this.host.maxPayloadBytes, "progress");
        if (this.host.events.wants("progress")) {
          this.host.events.emit("progress", {
            jobId: job.id,
            queue: job.queue,
            task: job.task,
            at: Date.now(),
            attempt: job.attempt,
            progress: value,
          });
        }
        await this.progressWrites.push({ id: job.id, token: job.leaseToken, progress: text });
      },
      log: async (message: string) => {
        await this.logWrites.push({
          id: job.id,
          at: Date.now(),
          attempt: job.attempt,
          message: String(message).slice(0, 10_000),
        });
      },
      heartbeat: async () => {
        const result = await this.store.extendLeases([{ id: job.id, token: job.leaseToken }], this.leaseMs);
        this.applyExtendResult(result);
      },
      enqueue: (task, payload, options) => this.host.enqueue(task, payload, options),
    };
  }

  /**
   * Queues the completion for the next batch write and returns at once, so the slot frees and the next
   * claim overlaps the write (one round trip saved per cycle on networked stores). Stats and the
   * `completed` event follow the write; `stop()` waits for it.
   */
  private finishCompleted(entry: Running, value: unknown): void {
    const { job } = entry;
    const result = serializeResult(value);
    const finishedAt = Date.now();
    this.afterWrite(
      this.completions.push({ id: job.id, token: job.leaseToken, result }),
      job,
      "completion",
      () => {
        this.stats.completed(job.queue, finishedAt, finishedAt - entry.startedAt);
        const events = this.host.events;
        if (events.wants("completed")) {
          events.emit("completed", {
            jobId: job.id,
            queue: job.queue,
            task: job.task,
            at: finishedAt,
            attempt: job.attempt,
            durationMs: finishedAt - entry.startedAt,
            result: result === null ? null : (JSON.parse(result) as Json),
          });
        }
      },
    );
  }

  /** Runs `onApplied` once `write` is stored; a fenced or failed write is logged. Tracked for `stop()`. */
  private afterWrite(write: Promise<boolean>, job: JobRecord, what: string, onApplied: () => void): void {
    const settled = this.settle(write).then((applied) =>
      applied ? onApplied() : this.lostOutcome(job, what),
    );
    this.track(settled, job);
  }

  /** Remembers a pending outcome write of `job` until it settles (see pendingWrites). */
  private track(write: Promise<unknown>, job: JobRecord): void {
    this.pendingWrites.set(write, { id: job.id, token: job.leaseToken });
    void write.finally(() => {
      this.pendingWrites.delete(write);
      if (this.writeBound) this.scheduleFetch();
    });
  }

  private async finishFailed(
    entry: Running,
    task: RegisteredTask | undefined,
    error: unknown,
  ): Promise<void> {
    const { job } = entry;
    const reason = entry.aborted ? entry.abortReason : undefined;
    if (reason instanceof ShutdownAbort || reason instanceof LeaseLostError) return; // already released / lost
    if (error instanceof RateLimitedError) return this.rateLimited(job, error);

    const outcome = outcomeOf(error, reason);
    const described = describeError(
      reason instanceof TimeoutError || reason instanceof CancelledError ? reason : error,
    );
    const attemptError: AttemptError = {
      attempt: job.attempt,
      outcome,
      ...described,
      at: Date.now(),
      workerId: this.id,
    };
    let next: FailNext;
    if (outcome === "cancelled") {
      next = { state: "cancelled", reason: "cancelled by operator while active" };
    } else if (
      outcome === "invalid-payload" ||
      error instanceof DiscardError ||
      matchesError(error, task?.definition.discardOn) ||
      (task?.definition.retryOn !== undefined && !matchesError(reason ?? error, task.definition.retryOn))
    ) {
      next = { state: "dead", reason: `discarded: ${described.name}: ${described.message}` };
    } else if (job.attempt >= job.maxAttempts) {
      next = {
        state: "dead",
        reason: `attempts exhausted (${job.attempt}/${job.maxAttempts}): ${described.name}: ${described.message}`,
      };
    } else {
      const delay = computeBackoff(job.backoff ?? task?.backoff ?? null, job.attempt, error);
      next = { state: "scheduled", runAt: Date.now() + delay };
    }
    this.afterWrite(
      this.failures.push({ id: job.id, token: job.leaseToken, error: attemptError, next }),
      job,
      "failure",
      () => {
        if (next.state !== "cancelled") this.stats.failed(job.queue, attemptError.at);
        if (next.state === "dead") this.stats.dead(job.queue, attemptError.at);
        this.emitFailure(job, attemptError, next);
      },
    );
  }

  private emitFailure(job: JobRecord, error: AttemptError, next: FailNext): void {
    const events = this.host.events;
    const base = { jobId: job.id, queue: job.queue, task: job.task, at: Date.now() };
    if (next.state === "cancelled") {
      events.emit("cancelled", { ...base, reason: next.reason });
      return;
    }
    events.emit("failed", { ...base, attempt: job.attempt, error });
    if (next.state === "scheduled")
      events.emit("retrying", { ...base, attempt: job.attempt, runAt: next.runAt, error });
    else if (next.state === "waiting")
      events.emit("retrying", { ...base, attempt: job.attempt, runAt: Date.now(), error });
    else {
      events.emit("dead", { ...base, attempt: job.attempt, reason: next.reason });
      this.logger.warn({ jobId: job.id, queue: job.queue, task: job.task, reason: next.reason }, "job dead");
    }
  }

  private async rateLimited(job: JobRecord, error: RateLimitedError): Promise<void> {
    const until = Date.now() + Math.max(error.retryAfterMs, 0);
    try {
      await this.store.pauseQueue(job.queue, until);
    } catch (pauseError) {
      this.logger.warn({ err: pauseError, queue: job.queue }, "could not pause rate-limited queue");
    }
    this.logger.warn(
      { queue: job.queue, jobId: job.id, retryAfterMs: error.retryAfterMs },
      "rate limited; queue paused",
    );
    // Jobs of the same queue held ahead would meet the same limit: they go back too, without an attempt.
    const held = this.buffer.filter((b) => b.queue === job.queue);
    for (const b of held) this.takeBuffered(b.id);
    await Promise.allSettled(
      [job, ...held].map((j) => this.releaseJob(j, `rate limited: ${error.message}`, until)),
    );
  }

  private async releaseJob(job: JobRecord, reason: string, runAt?: number): Promise<void> {
    const write = this.settle(
      this.releases.push({
        id: job.id,
        token: job.leaseToken,
        reason,
        ...(runAt !== undefined ? { runAt } : {}),
      }),
    );
    this.track(write, job);
    const applied = await write;
    if (applied && this.host.events.wants("released")) {
      this.host.events.emit("released", {
        jobId: job.id,
        queue: job.queue,
        task: job.task,
        at: Date.now(),
        reason,
        runAt: runAt ?? null,
      });
    }
  }

  /** Awaits a batched write; a write that never succeeded counts as not applied (the lease will expire). */
  private async settle(write: Promise<boolean>): Promise<boolean> {
    try {
      return await write;
    } catch (error) {
      this.logger.error(
        { err: error },
        "outcome not stored; the job will be recovered when its lease expires",
      );
      return false;
    }
  }

  private lostOutcome(job: JobRecord, what: string): void {
    this.logger.warn(
      { jobId: job.id, queue: job.queue, token: job.leaseToken },
      `${what} refused: this worker no longer holds the job's lease (it expired and the job was recovered, cancelled or deleted)`,
    );
  }

  /** Writes accumulated outcome counts to the store's hourly roll-up; keeps them for next time on failure. */
  private async flushStats(): Promise<void> {
    if (this.stats.size === 0) return;
    const rows = this.stats.drain();
    try {
      await this.store.addHourlyStats(rows);
    } catch (error) {
      this.stats.restore(rows);
      this.logger.warn({ err: error }, "could not write stats roll-up; will retry");
    }
  }

  // ── heartbeats and cancellation ────────────────────────────────────────────────────────────────

  private async heartbeat(): Promise<void> {
    if (this.state !== "running" && this.state !== "stopping") return;
    try {
      if (this.running.size + this.buffer.length + this.pendingWrites.size > 0) {
        const leases = this.heldLeases();
        this.applyExtendResult(await this.store.extendLeases(leases, this.leaseMs));
      }
      if (!(await this.store.heartbeatWorker(this.id, this.running.size))) {
        // Pruned as silent (a long outage or a partition): register again so operators see this worker.
        await this.store.registerWorker(this.info());
        this.logger.warn(
          "worker entry was missing from the registry (pruned while unreachable); registered again",
        );
      }
    } catch (error) {
      this.logger.warn({ err: error }, "heartbeat failed; leases may expire if the store stays unreachable");
    }
  }

  /**
   * Looks for cancel requests when a store signal says one was made. Checks are throttled to one per
   * CANCEL_CHECK_MS, but a signal inside the window is never dropped: it leaves one trailing check, so a cancel
   * that lands just after a check still reaches its handler within milliseconds, not at the next heartbeat.
   */
  private checkCancels(): void {
    if (this.cancelCheckTimer) return; // a trailing check is already due and will see this request too
    const wait = this.lastCancelCheck + CANCEL_CHECK_MS - Date.now();
    if (wait > 0) {
      this.cancelCheckTimer = setTimeout(() => {
        this.cancelCheckTimer = null;
        this.checkCancels();
      }, wait);
      return;
    }
    this.lastCancelCheck = Date.now();
    const leases = this.heldLeases();
    if (leases.length === 0) return;
    this.store.extendLeases(leases, this.leaseMs).then(
      (result) => this.applyExtendResult(result),
      () => {
        // The heartbeat will try again.
      },
    );
  }

  /** Leases this worker holds: running jobs, jobs claimed ahead, and jobs whose outcome is being written. */
  private heldLeases(): { id: string; token: number }[] {
    const leases = [...this.running.values()].map((r) => ({ id: r.job.id, token: r.job.leaseToken }));
    for (const job of this.buffer) leases.push({ id: job.id, token: job.leaseToken });
    leases.push(...this.pendingWrites.values());
    return leases;
  }

  /** Removes a held (not started) job from the buffer; returns it when it was there. */
  private takeBuffered(id: string): JobRecord | undefined {
    const index = this.buffer.findIndex((job) => job.id === id);
    return index === -1 ? undefined : this.buffer.splice(index, 1)[0];
  }

  private applyExtendResult(result: { lost: string[]; cancelRequested: string[] }): void {
    for (const id of result.lost) {
      if (this.takeBuffered(id)) continue; // never started: nothing to abort
      const entry = this.running.get(id);
      if (!entry) continue;
      this.logger.warn({ jobId: id }, "lease lost; aborting handler");
      entry.abort(new LeaseLostError(id));
      this.running.delete(id);
      this.scheduleFetch();
    }
    for (const id of result.cancelRequested) {
      const held = this.takeBuffered(id);
      if (held) {
        const error = new CancelledError(id);
        const attemptError: AttemptError = {
          attempt: held.attempt,
          outcome: "cancelled",
          ...describeError(error),
          at: Date.now(),
          workerId: this.id,
        };
        const next: FailNext = { state: "cancelled", reason: "cancelled by operator before it started" };
        this.afterWrite(
          this.failures.push({ id, token: held.leaseToken, error: attemptError, next }),
          held,
          "cancel",
          () => this.emitFailure(held, attemptError, next),
        );
        continue;
      }
      const entry = this.running.get(id);
      if (entry && !entry.aborted) entry.abort(new CancelledError(id));
    }
  }
}

/** Waits for `promise` at most `ms`; true when it settled in time. The timer never outlives the call. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function outcomeOf(error: unknown, abortReason: unknown): AttemptOutcome {
  const tagged = (error as { outcome?: AttemptOutcome } | null)?.outcome;
  if (tagged) return tagged;
  if (abortReason instanceof TimeoutError) return "timeout";
  if (abortReason instanceof CancelledError) return "cancelled";
  if (error instanceof NoHandlerError) return "no-handler";
  return "error";
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ValidationError("INVALID_OPTION", `worker.${field} must be a positive integer, got ${value}`, {
      field: `worker.${field}`,
    });
  }
  return value;
}

function nonNegativeInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new ValidationError("INVALID_OPTION", `worker.${field} must be an integer >= 0, got ${value}`, {
      field: `worker.${field}`,
    });
  }
  return value;
}
