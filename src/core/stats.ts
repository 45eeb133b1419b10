/**
 * Hourly roll-up of job outcomes per queue, kept by the store so `sluice stats` never scans jobs.
 * Durations go into a fixed log-scale histogram so rows from many workers merge by addition.
 */

/** Upper bounds (ms) of the duration histogram buckets; the last bucket is everything above. */
export const DURATION_BUCKETS_MS: readonly number[] = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
  1_800_000, 3_600_000,
];
/** Number of histogram slots (one more than the bounds: the overflow bucket). */
export const HISTOGRAM_SIZE = DURATION_BUCKETS_MS.length + 1;

const HOUR = 3_600_000;

/** How long the roll-up keeps hourly rows. */
export const STATS_RETENTION_MS = 30 * 86_400_000;

/** Slot-wise sum of two histograms (either may be shorter, e.g. empty). */
export function addHistograms(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(Math.max(a.length, b.length, HISTOGRAM_SIZE)).fill(0);
  for (let i = 0; i < out.length; i++) out[i] = (a[i] ?? 0) + (b[i] ?? 0);
  return out;
}

/** One queue's outcomes in one hour. Increments and stored rows share the shape. */
export interface StatsRow {
  queue: string;
  /** Start of the hour, epoch ms. */
  hour: number;
  completed: number;
  /** Failed attempts (each retry counts). */
  failed: number;
  dead: number;
  /** Counts of completed-job durations per bucket of {@link DURATION_BUCKETS_MS} (length {@link HISTOGRAM_SIZE}). */
  durations: number[];
  /**
   * Epoch ms of the latest completion in this hour, or null when none. Merged by maximum, not by sum: it
   * lets `sluice doctor` see "no completion for 10 minutes" without waiting for the hour to turn.
   */
  lastCompletedAt: number | null;
}

export function hourOf(epochMs: number): number {
  return Math.floor(epochMs / HOUR) * HOUR;
}

export function bucketOf(durationMs: number): number {
  for (let i = 0; i < DURATION_BUCKETS_MS.length; i++) {
    if (durationMs <= (DURATION_BUCKETS_MS[i] as number)) return i;
  }
  return DURATION_BUCKETS_MS.length;
}

/** Duration percentile (0–100) from a histogram: the upper bound of the bucket holding it; null when empty. */
export function histogramPercentile(durations: readonly number[], p: number): number | null {
  const total = durations.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let i = 0; i < durations.length; i++) {
    seen += durations[i] ?? 0;
    if (seen >= rank) return DURATION_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

/** Accumulates increments in memory; `drain()` hands them to the store in one call. */
export class StatsAccumulator {
  private rows = new Map<string, StatsRow>();

  private row(queue: string, at: number): StatsRow {
    const hour = hourOf(at);
    const key = `${queue}\u0000${hour}`;
    let row = this.rows.get(key);
    if (!row) {
      row = {
        queue,
        hour,
        completed: 0,
        failed: 0,
        dead: 0,
        durations: new Array<number>(HISTOGRAM_SIZE).fill(0),
        lastCompletedAt: null,
      };
      this.rows.set(key, row);
    }
    return row;
  }

  completed(queue: string, at: number, durationMs: number): void {
    const row = this.row(queue, at);
    row.completed++;
    const bucket = bucketOf(durationMs);
    row.durations[bucket] = (row.durations[bucket] ?? 0) + 1;
    row.lastCompletedAt = latest(row.lastCompletedAt, at);
  }

  failed(queue: string, at: number): void {
    this.row(queue, at).failed++;
  }

  dead(queue: string, at: number): void {
    this.row(queue, at).dead++;
  }

  get size(): number {
    return this.rows.size;
  }

  /** Takes everything accumulated so far (and forgets it). */
  drain(): StatsRow[] {
    const rows = [...this.rows.values()];
    this.rows = new Map();
    return rows;
  }

  /** Puts rows back after a failed write so nothing is lost. */
  restore(rows: readonly StatsRow[]): void {
    for (const r of rows) {
      const row = this.row(r.queue, r.hour);
      row.completed += r.completed;
      row.failed += r.failed;
      row.dead += r.dead;
      r.durations.forEach((n, i) => {
        row.durations[i] = (row.durations[i] ?? 0) + n;
      });
      row.lastCompletedAt = latest(row.lastCompletedAt, r.lastCompletedAt);
    }
  }
}

/** The later of two optional times. */
export function latest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/**
 * Roll-up increments for jobs that lease recovery (automatic or by an operator) took back: each is a
 * failed attempt, and a dead job when it was out of attempts. Workers count their own outcomes; recovery
 * runs where no worker holds the job any more, so the maintenance pass and `Admin.recover` add these.
 */
export function recoveryStats(recovered: readonly { queue: string; to: string }[], at: number): StatsRow[] {
  const accumulator = new StatsAccumulator();
  for (const job of recovered) {
    if (job.to === "cancelled") continue;
    accumulator.failed(job.queue, at);
    if (job.to === "dead") accumulator.dead(job.queue, at);
  }
  return accumulator.drain();
}
