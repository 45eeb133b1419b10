/**
 * How many jobs a worker holds ahead of its free slots (claimed and leased; users see them waiting until
 * their start is written, which for the next few ms of them is ahead: START_BATCH_MS). A fixed `prefetch` is used as given. On "auto" the worker holds what it will start in the next
 * AHEAD_MS at the rate it has been starting jobs, at most AUTO_CAP:
 *
 * - short jobs at a high rate (a PostgreSQL worker at concurrency 1 starts a no-op job every ~0.15 ms): one
 *   claim, which waits for the WAL flush, serves up to a hundred jobs, and starts those due within
 *   START_BATCH_MS (at such a rate, all of them: see START_BATCH_MS);
 * - long jobs (seconds or more): the rate is below 1 / AHEAD_MS per slot, so nothing is held and an idle
 *   worker elsewhere takes the next job at once — holding ahead would make it wait behind a busy worker;
 * - a rate that stops (an empty queue, a slow dependency) decays by half per empty window, so held jobs do
 *   not outlive the burst that justified them;
 * - claims that are big without it (many slots free during one claim's round trip: a PostgreSQL worker at
 *   concurrency 50 on short jobs claims 50 at a time anyway): only the jobs the claim itself starts are
 *   held (those due within START_BATCH_MS), since a held job started by a write of its own costs that
 *   write, which a job started by its claim does not. When held jobs all cost a start write, holding
 *   none was better at concurrency 30 and 50 (14–18 % more jobs/s; docs/internals.md, CLAIMS_BIG); since
 *   claims start the jobs of the window, holding those made claims and completions twice as big and ran
 *   16–39 % more jobs/s at concurrency 25 and 50 (docs/benchmarks.md).
 *
 * A held job waits about AHEAD_MS of this worker's own work before it starts, far inside its lease (which
 * the worker extends for held jobs too). Behind a job that runs far longer than the recent ones the line
 * stands still: after HELD_STALE_MS (fetch-loop.ts) the held jobs go back to the queue for any worker, and
 * the rate is forgotten (`forget`), so nothing is held again until jobs start again.
 */

/** The look-ahead: hold what will start within this time at the observed rate. */
export const AHEAD_MS = 100;
/** Most jobs held ahead on "auto". */
export const AUTO_CAP = 100;
/**
 * Starts written ahead of their slot: the jobs this worker will start within this time at the observed rate
 * are started by the claim that takes them (when they fall that early in line) or by one `start` write for
 * the batch, so at concurrency 1 a PostgreSQL worker makes no start round trip per job, and mostly no start
 * write at all: a job started by its claim is one row update fewer (measured on PostgreSQL, no-op jobs:
 * 12 % less WAL per job, 15–30 % more jobs/s at concurrency 1 and 10; docs/benchmarks.md). Those jobs show
 * as `active` for at most about this long before their handler runs (longer only behind a job that runs far
 * longer than the recent ones, which the jobs held behind it wait for just the same).
 */
export const START_BATCH_MS = 20;
/**
 * Most jobs started ahead of their slot: as many as "auto" holds (AUTO_CAP), so that at a high rate the
 * claims that refill the line start every job they take.
 */
export const START_BATCH_CAP = AUTO_CAP;
/** The rate is measured over windows of this length. */
const WINDOW_MS = 200;
/**
 * Claims are big enough without holding ahead when this many slots free, on average, while one claim is in
 * flight (the observed start rate times the claim's round trip, at most the concurrency). "auto" then holds
 * only the start window (START_BATCH_MS), and holds its full look-ahead again once that falls below
 * CLAIMS_SMALL: the gap keeps a worker near the line from switching at every claim (both ways cost about
 * the same there).
 */
export const CLAIMS_BIG = 20;
export const CLAIMS_SMALL = 12;

export class ClaimAhead {
  /** Starts per second, smoothed over windows. */
  private rate = 0;
  private windowStart: number;
  private windowStarts = 0;

  /** A claim's round trip, ms, smoothed. */
  private claimMs = 0;
  /** Claims are big without holding ahead (CLAIMS_BIG): "auto" holds none. */
  private claimsBig = false;

  /**
   * @param fixed the worker's `prefetch` when a number; null for "auto".
   * @param concurrency the worker's slots: at most this many free during a claim.
   */
  constructor(
    private readonly fixed: number | null,
    now = Date.now(),
    private readonly concurrency = Number.POSITIVE_INFINITY,
  ) {
    this.windowStart = now;
  }

  /** A claim came back after `ms`. */
  claimed(ms: number): void {
    this.claimMs = this.claimMs === 0 ? ms : (this.claimMs * 3 + ms) / 4;
  }

  /** A held or claimed job started. */
  started(now = Date.now()): void {
    this.roll(now);
    this.windowStarts++;
  }

  /**
   * Held jobs went back because the line stood still (fetch-loop.ts HELD_STALE_MS): the rate they were held
   * by no longer holds, so nothing is held until jobs start again.
   */
  forget(now = Date.now()): void {
    this.rate = 0;
    this.windowStart = now;
    this.windowStarts = 0;
  }

  /** Jobs to hold ahead now. */
  target(now = Date.now()): number {
    if (this.fixed !== null) return this.fixed;
    this.roll(now);
    const perClaim = Math.min(this.concurrency, (this.rate * this.claimMs) / 1_000);
    this.claimsBig = perClaim >= (this.claimsBig ? CLAIMS_SMALL : CLAIMS_BIG);
    if (this.claimsBig) return this.window();
    return Math.min(AUTO_CAP, Math.floor((this.rate * AHEAD_MS) / 1_000));
  }

  /**
   * Held jobs whose start to write ahead of their slot, with the start of the job taking a slot now: those
   * that will start within START_BATCH_MS at the observed rate, at most START_BATCH_CAP. Zero while the rate
   * is below one job per START_BATCH_MS (slow or long jobs): each then starts with its own write.
   */
  startBatch(now = Date.now()): number {
    this.roll(now);
    return this.window();
  }

  /** The jobs due to start within START_BATCH_MS at the observed rate, at most START_BATCH_CAP. */
  private window(): number {
    return Math.min(START_BATCH_CAP, Math.floor((this.rate * START_BATCH_MS) / 1_000));
  }

  /** Closes the windows that ended before `now`: the first carries the starts counted, the rest none. */
  private roll(now: number): void {
    const elapsed = now - this.windowStart;
    if (elapsed < WINDOW_MS) return;
    const windows = Math.floor(elapsed / WINDOW_MS);
    const windowRate = (this.windowStarts * 1_000) / WINDOW_MS;
    // Smoothed: half the last window, half the history; each empty window after it halves the rate.
    this.rate = (this.rate + windowRate) / 2 / 2 ** (windows - 1);
    if (this.rate < 0.5) this.rate = 0;
    this.windowStart += windows * WINDOW_MS;
    this.windowStarts = 0;
  }
}
