/**
 * The fetch loop: claims jobs for free slots and holds the ones claimed ahead (prefetch) until a slot
 * frees. Its modes:
 *
 *   idle         nothing to claim: waits for a store signal, the timer of the next scheduled job
 *                (`store.nextRunAt`), or the jittered safety poll (`pollMs`), whichever comes first
 *   claiming     one claim in flight (never two); a wake-up meanwhile leaves one more claim to follow
 *   full         no free slot (running + held = concurrency + prefetch): a finished job wakes it
 *   write-bound  unwritten outcomes exceed one slot's worth per slot (at least UNWRITTEN_SLACK), so each
 *                takes a slot: every stored outcome wakes it (backpressure on a slow store)
 *   backing off  the last claim failed: the next try is after 200 ms, doubling to 10 s
 *   stopped      no more claims; a claim in flight when it stopped hands its jobs straight back
 *
 * Queues whose health check fails on this worker (runtime/health.ts) are left out of claims and of the
 * next-due lookup; with every queue failing the loop claims nothing until a check passes and wakes it.
 *
 * Claims take as many jobs as there are free slots in one call, queues ordered by the QueueSelector.
 */
import type { JobRecord } from "../core/job.js";
import type { Logger } from "../core/logger.js";
import type { LeaseRef, Store } from "../store/contract.js";
import { ClaimAhead } from "./claim-ahead.js";
import type { SluiceEventEmitter } from "./events.js";
import type { QueueSelector } from "./queue-selector.js";
import { settlesWithin } from "./timing.js";

/** Longest a partially filled claim goes without refreshing the timer for the next scheduled job. */
const DUE_REFRESH_MS = 250;
/**
 * After a claim that found fewer jobs than it asked for, the least time between the claims that completed
 * jobs' freed slots ask for (`slotFreed`). New work comes with a signal (an enqueue, a retry, a release, a
 * dependency settled, a slot of a limited queue freed), so under light traffic a claim after every
 * completion found nothing: it was a third of a worker's round trips per job. What no engine signals is a
 * rate-limit window reopening; freed slots still look for that, this often.
 */
export const DRY_CLAIM_MS = 100;
/**
 * Unwritten outcomes a worker may run ahead of its writes whatever its concurrency. The start's allowance
 * (twice the claim's) gets this many more before unwritten outcomes hold held jobs back: that is what bounds
 * how many finished-but-unwritten jobs a crash may run again. The claim's allowance (one per slot, plus a
 * fixed prefetch) is at least this before unwritten outcomes take claim slots. Outcomes pile up only while
 * jobs finish faster than one write returns, so these are jobs that all finished within one write's round
 * trip. On PostgreSQL a completion waits for the WAL flush and the writer batches what queued meanwhile:
 * with 8 on the start's allowance and the claim's at the concurrency, a worker at concurrency 1 ran about
 * 10 jobs per write and claimed only while one outcome or none was unwritten (docs/benchmarks.md).
 */
export const UNWRITTEN_SLACK = 32;
/** Longest claim back-off after repeated failures. */
const MAX_BACKOFF_MS = 10_000;
/**
 * Held jobs go back to the queue when the line has not moved for this long. They were held because, at the
 * rate this worker's jobs had been ending, they would start within the look-ahead (claim-ahead.ts, 100 ms);
 * a line that stands still ten times that long sits behind a job that runs far longer than the recent ones,
 * and another worker may be idle. The rate is then forgotten, so nothing more is held until jobs end again.
 * On "auto" only: a fixed prefetch is held as the user set it.
 */
export const HELD_STALE_MS = 1_000;

export interface FetchLoopOptions {
  workerId: string;
  concurrency: number;
  /** Jobs claimed ahead of free slots, or "auto" (see WorkerOptions.prefetch and claim-ahead.ts). */
  prefetch: number | "auto";
  leaseMs: number;
  pollMs: number;
}

/** What the loop asks of its worker. */
export interface FetchHost {
  /** Jobs running now. */
  running(): number;
  /** Outcome writes not yet stored. */
  unwritten(): number;
  /** New jobs are held: start what free slots allow. */
  claimed(): void;
  /** Gives back jobs claimed after the loop stopped (no attempt charged). */
  giveBack(jobs: JobRecord[]): Promise<void>;
  /** Queues not to claim from now (their health check fails on this worker). */
  excluded?(): ReadonlySet<string>;
  /** Gives back jobs of excluded queues that a claim in flight took (no attempt charged). */
  giveBackExcluded?(jobs: JobRecord[]): Promise<void>;
  /** Gives back held jobs whose line stood still for HELD_STALE_MS (no attempt charged). */
  giveBackStale?(jobs: JobRecord[]): Promise<void>;
}

export class FetchLoop {
  /** Claimed (leased) jobs waiting for a free slot, in claim order. */
  private readonly held: JobRecord[] = [];
  private state: "new" | "on" | "stopped" = "new";
  private claiming = false;
  private again = false;
  private scheduled = false;
  /** Whether the last fetch was held back by unwritten outcomes: each stored one then fetches again. */
  private writeBound = false;
  /** Whether the last claim found the queues empty with nothing running (see the `drained` event). */
  private drained = false;
  private failures = 0;
  /** The current pass, awaited by `stop()` so a claim in flight is handed back before the worker exits. */
  private pass: Promise<void> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | null = null;
  private dueTimer: NodeJS.Timeout | null = null;
  private dueAt: number | null = null;
  private dueCheckedAt = 0;
  /**
   * Something may have changed in the store since the last claim began (a signal, the poll, a timer, a job
   * that did not complete: its retry may be scheduled): an empty claim then looks up the next due time. A
   * claim that only follows completed jobs learns nothing new about scheduled jobs.
   */
  private news = true;
  /** The last claim found fewer jobs than it asked for (see DRY_CLAIM_MS). */
  private dry = false;
  /** When the last claim was sent. */
  private claimedAt = 0;
  /** A claim for freed slots, put off by DRY_CLAIM_MS. */
  private dryTimer: NodeJS.Timeout | null = null;
  /** How many jobs to hold ahead (fixed, or sized by the observed rate of jobs ending). */
  private readonly ahead: ClaimAhead;
  /** When the held line last moved: a held job started, or the line filled from empty. */
  private lineMovedAt = 0;
  /** Looks at the held line once it may have stood still for HELD_STALE_MS. */
  private staleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly queues: QueueSelector,
    private readonly host: FetchHost,
    private readonly events: SluiceEventEmitter,
    private readonly logger: Logger,
    private readonly options: FetchLoopOptions,
  ) {
    // "auto" holds ahead only where holding pays (StoreTraits.claimAhead: networked stores).
    const auto = store.traits.claimAhead === true ? null : 0;
    this.ahead = new ClaimAhead(
      options.prefetch === "auto" ? auto : options.prefetch,
      Date.now(),
      options.concurrency,
    );
  }

  /** Starts claiming. */
  start(): void {
    this.state = "on";
    this.wake();
  }

  /** Jobs held ahead, not started. */
  get heldCount(): number {
    return this.held.length;
  }

  heldJobs(): readonly JobRecord[] {
    return this.held;
  }

  /** Held jobs (first in line) whose start to write ahead of their slot (claim-ahead.ts `startBatch`). */
  startBatch(): number {
    return this.ahead.startBatch();
  }

  /** The next held job to start, in claim order. */
  next(): JobRecord | undefined {
    const job = this.held.shift();
    if (job) this.lineMovedAt = Date.now();
    return job;
  }

  /**
   * A job this worker ran ended after `durationMs` and freed its slot: the turnover "auto" holds ahead by
   * (claim-ahead.ts).
   */
  ended(durationMs: number): void {
    this.ahead.ended(Date.now(), durationMs);
  }

  /** Mean run time of this worker's jobs, ms (0: none ended yet). */
  meanDurationMs(): number {
    return this.ahead.meanDurationMs;
  }

  /** Removes a held job by its lease (id and token); returns it when it was held under that token. */
  take(lease: LeaseRef): JobRecord | undefined {
    const index = this.held.findIndex((job) => job.id === lease.id && job.leaseToken === lease.token);
    return index === -1 ? undefined : this.held.splice(index, 1)[0];
  }

  /** Removes and returns every held job of `queue` (or of every queue). */
  takeAll(queue?: string, limitKey?: string): JobRecord[] {
    const taken = this.held.filter(
      (job) =>
        (queue === undefined || job.queue === queue) && (limitKey === undefined || job.limitKey === limitKey),
    );
    for (const job of taken) this.take({ id: job.id, token: job.leaseToken });
    return taken;
  }

  /**
   * Unwritten outcomes past the claim's allowance, each of which takes a slot: one slot's worth per slot
   * (`concurrency`), plus a fixed prefetch the user chose, and at least UNWRITTEN_SLACK. Jobs held ahead on
   * "auto" do not widen it: how many jobs a worker holds while its store lags is the user's concurrency
   * (plus a prefetch they chose), not a rate estimate.
   */
  unwrittenPastAllowance(): number {
    return Math.max(0, this.host.unwritten() - Math.max(this.allowance(), UNWRITTEN_SLACK));
  }

  /**
   * The same for starting a job already claimed (worker.ts `startHeld`), against twice the allowance plus
   * UNWRITTEN_SLACK. A store that keeps up never holds a start back for long: at concurrency 1 on
   * PostgreSQL the writer is nearly saturated (a completion waits for the WAL flush) and its batches grow
   * only while outcomes queue, so the claim's allowance cost about 15 % of the jobs/s. A store that lags
   * stops the started-but-unwritten jobs there, where before every held job (up to 100 on "auto") ran and
   * finished unwritten: running plus unwritten never exceeds concurrency + this allowance, which bounds how
   * many jobs a crash runs again (docs/reliability.md).
   */
  unwrittenPastStartAllowance(): number {
    return Math.max(0, this.host.unwritten() - (2 * this.allowance() + UNWRITTEN_SLACK));
  }

  private allowance(): number {
    return this.options.concurrency + (this.options.prefetch === "auto" ? 0 : this.ahead.target());
  }

  /** An outcome was stored: when the loop waits on unwritten outcomes, look for work again. */
  writeSettled(): void {
    if (this.writeBound) this.wake();
  }

  /** A job completed and freed its slot: a claim for it, which brings no news of scheduled jobs. */
  slotFreed(): void {
    const wait = this.dry ? this.claimedAt + DRY_CLAIM_MS - Date.now() : 0;
    if (wait <= 0) {
      this.wake(false);
      return;
    }
    if (this.dryTimer) return;
    this.dryTimer = setTimeout(() => {
      this.dryTimer = null;
      this.wake(false);
    }, wait);
  }

  /**
   * Asks for a claim on the next turn of the event loop (coalesced; one claim in flight at a time).
   * `news`: false only for a slot freed by a completed job (see `news`).
   */
  wake(news = true): void {
    if (news) this.news = true;
    if (this.state !== "on") return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pass = this.fetch();
    });
  }

  /**
   * Stops claiming and waits at most `boundMs` for a claim in flight (whose jobs are handed back); true
   * when it settled in time. Held jobs stay held: the caller gives them back.
   */
  async stop(boundMs: number): Promise<boolean> {
    this.state = "stopped";
    this.clearPoll();
    this.clearDue();
    if (this.dryTimer) clearTimeout(this.dryTimer);
    this.dryTimer = null;
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.staleTimer = null;
    return settlesWithin(this.pass, boundMs);
  }

  private async fetch(): Promise<void> {
    if (this.state !== "on" || this.claiming) return;
    const { concurrency } = this.options;
    const auto = this.options.prefetch === "auto";
    let prefetch = this.ahead.target();
    // A finished job frees its slot before its outcome is stored, so the next claim overlaps the write;
    // but outcomes written slower than jobs finish must not pile up without bound (memory, and leases to
    // keep alive): past the allowance, each unwritten outcome takes a slot.
    const unwritten = this.unwrittenPastAllowance();
    // While outcomes lag, "auto" holds nothing more ahead: the jobs it would hold would run (and finish)
    // before their outcomes could be stored.
    if (auto && unwritten > 0) prefetch = 0;
    const free = concurrency + prefetch - this.host.running() - this.held.length - unwritten;
    this.writeBound = unwritten > 0;
    if (free <= 0) return;
    // Held jobs are refilled in bulk, at half their number, not one claim per finished job: where jobs
    // are held ahead, a claim costs much more than a start (claim-ahead.ts). A free slot never waits.
    const startable = concurrency - this.host.running() - this.held.length;
    if (startable <= 0 && this.held.length > prefetch / 2) return;
    const excluded = this.host.excluded?.();
    const queues = this.fetchable(excluded);
    if (queues.length === 0) return; // every queue's health check fails: a passing check wakes the loop
    this.claiming = true;
    this.again = false;
    const news = this.news;
    this.news = false;
    this.claimedAt = Date.now();
    // This claim is the one a put-off freed slot was waiting for.
    if (this.dryTimer) clearTimeout(this.dryTimer);
    this.dryTimer = null;
    let claimed: JobRecord[];
    try {
      claimed = await this.store.claim({
        queues,
        limit: free,
        workerId: this.options.workerId,
        leaseMs: this.options.leaseMs,
        // Jobs for slots free now start at once, and so do those next in line that will start within the
        // start window anyway (claim-ahead.ts `startBatch`): their start rides on the claim instead of a
        // write of its own. The rest are held ahead (the store shows them waiting).
        start: Math.min(
          free,
          Math.max(0, concurrency - this.host.running() - this.held.length) +
            Math.max(0, this.ahead.startBatch() - this.held.length),
        ),
      });
      this.failures = 0;
      this.ahead.claimed(Date.now() - this.claimedAt);
    } catch (error) {
      this.failures++;
      const delay = Math.min(100 * 2 ** this.failures, MAX_BACKOFF_MS);
      this.logger.error(
        { err: error, retryInMs: delay, failures: this.failures },
        "claim failed; backing off",
      );
      this.events.emit("error", error instanceof Error ? error : new Error(String(error)));
      this.claiming = false;
      this.armPoll(delay);
      return;
    }
    this.claiming = false;
    if (this.state !== "on") {
      await this.host.giveBack(claimed); // stopped while the claim was in flight
      return;
    }
    // A check that started failing while the claim was in flight: those jobs go back, never started.
    const nowExcluded = this.host.excluded?.();
    if (nowExcluded && nowExcluded.size > 0 && claimed.some((job) => nowExcluded.has(job.queue))) {
      const back = claimed.filter((job) => nowExcluded.has(job.queue));
      claimed = claimed.filter((job) => !nowExcluded.has(job.queue));
      void this.host.giveBackExcluded?.(back);
    }
    this.dry = claimed.length < free;
    if (this.held.length === 0) this.lineMovedAt = Date.now();
    this.held.push(...claimed);
    this.host.claimed();
    this.armStaleCheck(HELD_STALE_MS);
    if (claimed.length > 0) this.drained = false;
    else if (!this.drained && this.host.running() === 0) {
      this.drained = true;
      this.events.emit("drained", { workerId: this.options.workerId, at: Date.now() });
    }
    if (claimed.length < free) {
      // Idle (or nearly): wait for a signal, the next due job, or the safety poll. The next due time costs
      // a round trip, so under light steady traffic it is looked up at most every DUE_REFRESH_MS; an empty
      // claim after news always looks (that is when a delayed job is the next thing to do). Under light
      // traffic each job's completion is followed by an empty claim, and that look was a third of the
      // worker's round trips per job.
      this.armPoll(this.options.pollMs);
      const now = Date.now();
      if ((claimed.length === 0 && news) || now - this.dueCheckedAt >= DUE_REFRESH_MS) {
        this.dueCheckedAt = now;
        void this.armDueTimer();
      }
    }
    if (this.again) this.wake();
  }

  /**
   * Once jobs are held, looks again when the line may have stood still for HELD_STALE_MS; gives the held
   * jobs back if it has (see HELD_STALE_MS), else looks again when it next may have.
   */
  private armStaleCheck(delayMs: number): void {
    // A fixed prefetch is the user's to hold; "auto" holds by a rate, which a long job makes wrong.
    if (this.options.prefetch !== "auto" || !this.host.giveBackStale) return;
    if (this.staleTimer || this.held.length === 0 || this.state !== "on") return;
    this.staleTimer = setTimeout(() => {
      this.staleTimer = null;
      if (this.state !== "on" || this.held.length === 0) return;
      const still = Date.now() - this.lineMovedAt;
      if (still < HELD_STALE_MS) {
        this.armStaleCheck(HELD_STALE_MS - still);
        return;
      }
      // A line held back by outcomes the store has not taken yet (worker.ts startHeld) stands still for the
      // store, not behind a long job: giving the jobs back would only add a write to a store that lags.
      if (this.unwrittenPastStartAllowance() > 0) {
        this.armStaleCheck(HELD_STALE_MS);
        return;
      }
      const stale = this.held.splice(0);
      this.ahead.forget();
      this.logger.debug(
        { jobs: stale.length, stillMs: still },
        "held jobs given back: the line stood still behind a long-running job",
      );
      void this.host.giveBackStale?.(stale);
    }, delayMs);
    this.staleTimer.unref();
  }

  /** The queues to claim from, in this claim's order, without the excluded ones. */
  private fetchable(excluded: ReadonlySet<string> | undefined): readonly string[] {
    const order = this.queues.order();
    return excluded && excluded.size > 0 ? order.filter((q) => !excluded.has(q)) : order;
  }

  private armPoll(delayMs: number): void {
    this.clearPoll();
    this.pollTimer = setTimeout(
      () => {
        this.pollTimer = null;
        this.wake();
      },
      delayMs * (0.75 + Math.random() / 2),
    );
  }

  /** Sets a timer for the earliest scheduled job so delayed jobs start on time without polling. */
  private async armDueTimer(): Promise<void> {
    let next: number | null;
    try {
      const names = this.fetchable(this.host.excluded?.());
      if (names.length === 0) return;
      next = await this.store.nextRunAt(names);
    } catch {
      return; // the poll covers it
    }
    if (next === null || this.state !== "on") return;
    if (this.dueAt !== null && this.dueAt <= next && this.dueTimer) return;
    this.clearDue();
    this.dueAt = next;
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = null;
        this.dueAt = null;
        this.wake();
      },
      Math.max(next - Date.now(), 0),
    );
  }

  private clearPoll(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  private clearDue(): void {
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueTimer = null;
    this.dueAt = null;
  }
}
