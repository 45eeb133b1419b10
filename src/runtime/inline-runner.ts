/**
 * The inline runner: inline mode's worker (`new Sluice({ url: "inline:" })`, see client/inline.ts). After
 * each enqueue it drives the store to idle in the enqueuing process: it claims runnable jobs one at a time
 * and runs each through the worker's own pieces — `execute` (schema check, handler, timeout, abort),
 * `decideFailure` (retryOn / discardOn / attempts) and the `OutcomeWriter` (fenced writes, events, stats) —
 * so an inline job is validated, retried, stored and announced as a worker's would be. It has no timers:
 * no polling (it is driven by enqueue), no heartbeats (nothing recovers an inline job), no maintenance
 * beyond an occasional prune at the end of a drive.
 *
 * Time is collapsed: a retry's backoff and a rate limit's wait take no time (the job runs again at once);
 * delays at enqueue are collapsed by client/inline.ts before the write. The mirror of `Worker.run` and
 * `Worker.failed` here must follow theirs (runtime/worker.ts): what a handler's context offers, and where
 * each outcome goes.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { hostname } from "node:os";
import { CancelledError, InlineRunawayError } from "../core/errors.js";
import { decideFailure } from "../core/failure-policy.js";
import { newWorkerTag } from "../core/ids.js";
import type { JobRecord, JobState } from "../core/job.js";
import type { RegisteredTask } from "../core/task.js";
import type { Store } from "../store/contract.js";
import { type AttemptEnd, runAttempt } from "./attempt.js";
import { RunningJob } from "./executor.js";
import { OutcomeWriter } from "./outcome-writer.js";
import type { WorkerHost } from "./worker-options.js";

/**
 * Lease of an inline claim. Nothing recovers inline jobs (no maintenance runs), so its length matters only
 * to a process that opened the same store some other way: a day keeps such a process's hands off.
 */
const LEASE_MS = 24 * 60 * 60 * 1000;
/** Completed jobs past retention and old fleet events are pruned at the end of a drive, at most this often. */
const PRUNE_EVERY_MS = 60_000;
/** Rows of each kind one prune deletes at most (the next drive goes on). */
const PRUNE_BATCH = 1_000;

/** Default of `inline:?maxRunsPerDrive=`: attempts one drive may run before it gives up (InlineRunawayError). */
export const DEFAULT_MAX_RUNS_PER_DRIVE = 100_000;

/** What a drive did: the state each job it ran was left in (the last attempt's outcome). */
export type DriveOutcomes = ReadonlyMap<string, JobState>;

export class InlineRunner {
  /** `inline/host/pid/tag`: the worker id stored with inline attempts (errors, events). */
  readonly id = `inline/${hostname()}/${process.pid}/${newWorkerTag()}`;
  /** Set while a handler of this runner runs, so its enqueues do not wait for the drive they are part of. */
  private readonly insideJob = new AsyncLocalStorage<true>();
  /** Queues jobs were enqueued to through this instance: what the runner claims from, in first-seen order. */
  private readonly queues = new Set<string>();
  private drive: Promise<DriveOutcomes> | null = null;
  /** An enqueue asked for a drive since the current one last found nothing to claim. */
  private more = false;
  private ready: { store: Store; writer: OutcomeWriter } | null = null;
  private running: RunningJob | null = null;
  private lastPruneAt = Date.now();

  constructor(
    private readonly host: WorkerHost,
    private readonly maxRunsPerDrive: number = DEFAULT_MAX_RUNS_PER_DRIVE,
  ) {}

  /** True when called from a handler this runner is running (directly or through its async calls). */
  get inJob(): boolean {
    return this.insideJob.getStore() === true;
  }

  /** Claims from these queues from now on (every enqueue names its jobs' queues here before writing). */
  noteQueues(queues: Iterable<string>): void {
    for (const queue of queues) this.queues.add(queue);
  }

  /**
   * Runs every job that is runnable now, and those they make runnable (children, dependents, retries), one
   * at a time, until none is left; resolves with the state each job run was left in. A call made while a
   * drive runs joins it (and that drive goes on until the caller's jobs are done too).
   */
  runToIdle(): Promise<DriveOutcomes> {
    this.more = true;
    this.drive ??= this.driveToIdle();
    return this.drive;
  }

  /** Resolves when no drive runs (never rejects): what `Sluice.close` waits for before closing the store. */
  async idle(): Promise<void> {
    await this.drive?.catch(() => {});
  }

  private async driveToIdle(): Promise<DriveOutcomes> {
    const outcomes = new Map<string, JobState>();
    try {
      const { store, writer } = await this.prepare();
      // Jobs can reach the store by other paths than an enqueue of this instance (flow callbacks written by
      // a transition, jobs an operator moved): every queue a task of this process names is claimed from.
      for (const task of this.host.tasks.values()) this.queues.add(task.defaults.queue ?? "default");
      let runs = 0;
      for (;;) {
        this.more = false;
        for (;;) {
          if (this.queues.size === 0) break;
          const [job] = await store.claim({
            queues: [...this.queues],
            limit: 1,
            workerId: this.id,
            leaseMs: LEASE_MS,
          });
          if (!job) break;
          if (++runs > this.maxRunsPerDrive) {
            // Give the claimed job back uncharged: it stays runnable for the next drive.
            await writer.release(job, "released: inline drive stopped (runaway)");
            throw new InlineRunawayError(this.maxRunsPerDrive);
          }
          outcomes.set(job.id, await this.runOne(job, store, writer));
        }
        if (this.more) continue;
        await writer.flushStats();
        await this.pruneNowAndThen(store);
        if (runs > 0 && this.host.events.wants("drained")) {
          this.host.events.emit("drained", { workerId: this.id, at: Date.now() });
        }
        // An enqueue that joined during the last awaits has jobs to run still.
        if (!this.more) break;
      }
      return outcomes;
    } finally {
      // Synchronously with the last check of `more`: an enqueue after this point starts a new drive.
      this.drive = null;
    }
  }

  private async prepare(): Promise<{ store: Store; writer: OutcomeWriter }> {
    if (this.ready) return this.ready;
    const store = await this.host.store();
    if (this.ready) return this.ready;
    const writer = new OutcomeWriter(store, this.host.events, this.host.logger, {
      lanes: 1,
      onWriteSettled: () => {},
    });
    // An operator's cancel (admin.cancel on a running inline job) arrives as a store signal; the worker's
    // lease keeper learns it the same way, through extendLeases.
    store.subscribe((signal) => {
      if (signal.type === "cancel" && this.running) void this.checkCancel(store, this.running);
    });
    this.ready = { store, writer };
    return this.ready;
  }

  /** One attempt of `job`, as `Worker.run` does it; resolves with the state its outcome left the job in. */
  private async runOne(job: JobRecord, store: Store, writer: OutcomeWriter): Promise<JobState> {
    const running = new RunningJob(job, Date.now());
    const task = this.host.tasks.get(job.task);
    this.running = running;
    let end: AttemptEnd;
    try {
      end = await runAttempt(
        {
          id: this.id,
          host: this.host,
          store,
          writer,
          heartbeat: async () => {}, // no lease to keep alive: nothing recovers an inline job
          around: (run) => this.insideJob.run(true, run),
        },
        running,
        task,
      );
    } finally {
      this.running = null;
    }
    if (end.kind === "blocked") {
      // It waits for its children: this drive runs them first, then the job again.
      await end.written;
      await writer.flush();
      return "blocked";
    }
    if (end.kind === "completed") {
      await writer.flush();
      return "completed";
    }
    const error = end.error;
    const state = await this.failed(running, task, error, writer);
    await writer.flush();
    return state;
  }

  /** A failed attempt, as `Worker.failed` decides it, with time collapsed. */
  private async failed(
    running: RunningJob,
    task: RegisteredTask | undefined,
    error: unknown,
    writer: OutcomeWriter,
  ): Promise<JobState> {
    const { job } = running;
    const decision = decideFailure({
      job,
      error,
      abortReason: running.aborted ? running.abortReason : undefined,
      rules: task && { ...task.definition, backoff: task.backoff },
      workerId: this.id,
      now: Date.now(),
    });
    // No shutdown or lost lease aborts an inline job; should one appear, the job stays as it is.
    if (decision.kind === "none") return "active";
    if (decision.kind === "rate-limited") {
      // The worker pauses the queue for the wait; here the wait takes no time, so the job goes back
      // uncharged and is claimed again at once (a handler that is always limited meets maxRunsPerDrive).
      await writer.release(job, `rate limited: ${decision.error.message}`);
      return "waiting";
    }
    // A backoff takes no time: the retry is waiting at once (the `retrying` event says runAt = now).
    const next = decision.next.state === "scheduled" ? { state: "waiting" as const } : decision.next;
    writer.fail(job, decision.error, next);
    return next.state;
  }

  private async checkCancel(store: Store, running: RunningJob): Promise<void> {
    const lease = { id: running.job.id, token: running.job.leaseToken };
    try {
      const { cancelRequested } = await store.extendLeases([lease], LEASE_MS);
      if (cancelRequested.some((l) => l.id === lease.id && l.token === lease.token)) {
        running.abort(new CancelledError(lease.id));
      }
    } catch (error) {
      this.host.logger.warn({ err: error, jobId: lease.id }, "inline mode: could not check a cancel request");
    }
  }

  /** What maintenance prunes (completed jobs past retention, old events), at most once a minute. */
  private async pruneNowAndThen(store: Store): Promise<void> {
    const now = Date.now();
    if (now - this.lastPruneAt < PRUNE_EVERY_MS) return;
    this.lastPruneAt = now;
    const events = this.host.eventRetention;
    try {
      await store.prune({
        limit: PRUNE_BATCH,
        workersSilentSince: now - PRUNE_EVERY_MS,
        eventsBefore: now - events.retentionMs,
        maxEvents: events.maxEvents,
      });
    } catch (error) {
      this.host.logger.warn({ err: error }, "inline mode: could not prune; will try again");
    }
  }
}
