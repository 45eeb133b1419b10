/**
 * How many jobs a worker holds ahead of its free slots (claimed and leased; users see them waiting until
 * their start is written, which for the next few ms of them is ahead: START_BATCH_MS). A fixed `prefetch` is
 * used as given. On "auto" the worker holds what it will start in the next AHEAD_MS at the rate its slots
 * turn over (jobs ending, each freeing a slot for the next), at most AUTO_CAP:
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
 * The rate counts jobs that END, not jobs that start: the starts that fill idle slots (a worker starting, or
 * a burst reaching an idle one) say nothing of how soon a slot frees again. Fifty hour-long jobs starting at
 * once are no reason to hold fifty more behind them; fifty no-op jobs are, once they end.
 *
 * The rate goes up fast and down slowly. A probe that shows at least twice the rate known (PROBE_ENDS ends
 * over at least PROBE_MS; with no rate known, any) is taken as it stands,
 * so a burst that reaches an idle worker is held for within milliseconds instead of after WINDOW_MS, and a
 * rate held back by claiming too little (one job per claim's round trip while no rate is known) doubles per
 * few ms instead of per window (measured on PostgreSQL at concurrency 1: bursts of 300 no-op jobs to an idle
 * worker ran in about 260 ms with a claim per two or three jobs; docs/benchmarks.md). A rate that falls is
 * smoothed over WINDOW_MS windows, halving per empty one. Up fast can overshoot on ends that come together:
 * fifty one-second jobs that started at once end at once, fifty ends in a millisecond. So the rate is bounded
 * by what the slots can do: at most `concurrency` jobs per mean job duration (`ended`'s `durationMs`).
 *
 * A held job waits about AHEAD_MS of this worker's own work before it starts, far inside its lease (which
 * the worker extends for held jobs too). Behind a job that runs far longer than the recent ones the line
 * stands still: after HELD_STALE_MS (fetch-loop.ts) the held jobs go back to the queue for any worker, and
 * the rate is forgotten (`forget`), so nothing is held again until jobs end again.
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
/** A probe of the rate (`probeEnds`) is looked at once it holds this many ends over at least PROBE_MS. */
export const PROBE_ENDS = 8;
/** Shortest probe: a few ms of ends, not the first two or three, which may all land in one turn. */
export const PROBE_MS = 10;
/** The mean job duration (`ended`) weighs each new one by this much. */
const DURATION_WEIGHT = 1 / 8;
/**
 * Claims are big enough without holding ahead when this many slots free, on average, while one claim is in
 * flight (the observed rate of ends times the claim's round trip, at most the concurrency). "auto" then holds
 * only the start window (START_BATCH_MS), and holds its full look-ahead again once that falls below
 * CLAIMS_SMALL: the gap keeps a worker near the line from switching at every claim (both ways cost about
 * the same there).
 */
export const CLAIMS_BIG = 20;
export const CLAIMS_SMALL = 12;

export class ClaimAhead {
  /** Slot turnovers (jobs ended) per second, smoothed over windows; 0: none known. */
  private rate = 0;
  private windowStart: number;
  private windowEnds = 0;
  /** With no rate known: a first window is open (it opened at the first end since). */
  private firstOpen = false;
  /** Mean duration of the jobs that ended, ms (0: none yet, or too short for the clock). */
  private meanMs = 0;
  /**
   * The ends since `probeStart`, looked at once they are PROBE_ENDS over PROBE_MS: twice the rate (or
   * any, with none known) is taken at once; less starts a new probe. Its own count, not the window's: a
   * window that began at the old rate would take most of its length to show the new one.
   */
  private probeStart = 0;
  private probeEnds = 0;

  /** A claim's round trip, ms, smoothed. */
  private claimMs = 0;
  /** Claims are big without holding ahead (CLAIMS_BIG): "auto" holds only the start window. */
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

  /** Mean duration of the jobs that ended, ms (0: none yet). */
  get meanDurationMs(): number {
    return this.meanMs;
  }

  /** A job this worker ran ended after `durationMs`: its slot is free for the next one. */
  ended(now = Date.now(), durationMs = 0): void {
    this.meanMs = this.meanMs === 0 ? durationMs : this.meanMs + (durationMs - this.meanMs) * DURATION_WEIGHT;
    this.roll(now);
    if (this.rate === 0 && !this.firstOpen) {
      // The first end since no rate was known opens the first window: the time before it (idle, or the
      // first job running) is no part of the rate.
      this.firstOpen = true;
      this.restart(now);
      return;
    }
    this.windowEnds++;
    this.probeEnds++;
  }

  /**
   * Held jobs went back because the line stood still (fetch-loop.ts HELD_STALE_MS): the rate they were held
   * by no longer holds, so nothing is held until jobs end again.
   */
  forget(now = Date.now()): void {
    this.rate = 0;
    this.firstOpen = false;
    this.restart(now);
  }

  /** Jobs to hold ahead now. */
  target(now = Date.now()): number {
    if (this.fixed !== null) return this.fixed;
    this.roll(now);
    const perClaim = Math.min(this.concurrency, (this.turnover() * this.claimMs) / 1_000);
    this.claimsBig = perClaim >= (this.claimsBig ? CLAIMS_SMALL : CLAIMS_BIG);
    if (this.claimsBig) return this.window();
    return Math.min(AUTO_CAP, Math.floor((this.turnover() * AHEAD_MS) / 1_000));
  }

  /** Jobs ending per second: the rate observed, at most what the slots can do at the mean job duration. */
  private turnover(): number {
    if (this.meanMs <= 0) return this.rate;
    return Math.min(this.rate, (this.concurrency * 1_000) / this.meanMs);
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
    return Math.min(START_BATCH_CAP, Math.floor((this.turnover() * START_BATCH_MS) / 1_000));
  }

  /** Closes the windows that ended before `now`: the first carries the ends counted, the rest none. */
  private roll(now: number): void {
    if (this.rate === 0 && !this.firstOpen) return; // nothing to measure from until a job ends
    // Up fast: a probe showing at least twice the rate known (with none known, any) is taken as it stands.
    const probeMs = now - this.probeStart;
    if (this.probeEnds >= PROBE_ENDS && probeMs >= PROBE_MS) {
      const probeRate = (this.probeEnds * 1_000) / probeMs;
      if (probeRate >= 2 * this.rate) {
        this.take(probeRate, now);
        return;
      }
      this.probeStart = now;
      this.probeEnds = 0;
    }
    const elapsed = now - this.windowStart;
    if (elapsed < WINDOW_MS) return;
    if (this.rate === 0) {
      // A first window with fewer ends than a probe needs: slow jobs, a low rate (or none).
      this.take((this.windowEnds * 1_000) / elapsed, now);
      return;
    }
    const windows = Math.floor(elapsed / WINDOW_MS);
    // Smoothed: half the last window, half the history; each empty window after it halves the rate.
    this.rate = (this.rate + (this.windowEnds * 1_000) / WINDOW_MS) / 2 / 2 ** (windows - 1);
    if (this.rate < 0.5) this.rate = 0;
    this.windowStart += windows * WINDOW_MS;
    this.windowEnds = 0;
  }

  /** Takes `rate` as it stands and measures afresh from `now`. */
  private take(rate: number, now: number): void {
    this.rate = rate < 0.5 ? 0 : rate;
    this.firstOpen = false;
    this.restart(now);
  }

  private restart(now: number): void {
    this.windowStart = now;
    this.windowEnds = 0;
    this.probeStart = now;
    this.probeEnds = 0;
  }
}
