/**
 * The loop monitor: notices when the worker's event loop was blocked (a handler doing CPU-bound work or a
 * synchronous parse) long enough to endanger its leases, says so, counts it, and explains the jobs it cost.
 *
 * A blocked loop runs no heartbeat: past the lease, another worker's maintenance recovers the job (its
 * error reads "stopped heartbeating"), this worker's finished outcome is fenced off, and the job runs
 * again. The monitor makes that visible:
 * - it samples `perf_hooks.monitorEventLoopDelay` every `sampleMs` (the max since the last sample, then a
 *   reset), and its own timer's lateness, which catches a stall in the very sample that ends it;
 * - a stall over a third of the lease is logged as a warning naming the worker, the stall and the running
 *   tasks and jobs, emitted as the `stalled` event, and counted in the worker's registry entry
 *   (`WorkerInfo.stalls`, written by the heartbeats: `sluice info`, `admin.workers()`, `sluice doctor`);
 * - when the worker then learns that it lost a job's lease (the lease keeper) or that the job's outcome was
 *   fenced (the outcome writer), and a stall covered that job, the stall is written as a note on the error
 *   lease recovery stored for that attempt (`store.annotateAttempt`), so `sluice jobs show` explains it.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";
import { formatDuration } from "../core/duration.js";
import type { JobRecord } from "../core/job.js";
import type { Logger } from "../core/logger.js";
import { NO_STALLS, type StallRecord, type Store, type WorkerStalls } from "../store/contract.js";
import type { SluiceEventEmitter } from "./events.js";

/** Most job ids kept in one stall record (the registry entry stays small). */
const MAX_JOB_IDS = 20;
/** How long a stall is remembered per job, to explain a lease loss learned later. */
const REMEMBER_MS = 10 * 60_000;

/** A job as the monitor sees it. */
export interface MonitoredJob {
  id: string;
  task: string;
  attempt: number;
  startedAt: number;
}

export interface LoopMonitorOptions {
  workerId: string;
  /** `host/pid`, as operators find the process. */
  where: string;
  leaseMs: number;
  /** Jobs running now. */
  running(): Iterable<MonitoredJob>;
  /** A stall longer than this is reported (default: a third of the lease). */
  thresholdMs?: number;
  /** Sampling period (default: a tenth of the threshold, between 20 ms and 1 s). */
  sampleMs?: number;
}

/** The `stalled` note / warning text for a stall (`sluice jobs show` and the log say the same). */
export function stallText(stall: StallRecord, where: string): string {
  const during =
    stall.tasks.length === 0
      ? "while running no job"
      : `while running task${stall.tasks.length > 1 ? "s" : ""} ${stall.tasks.join(", ")}`;
  return `event loop blocked for ${formatDuration(stall.ms)} on ${where} ${during}: move it to a sandbox or raise leaseMs (lease ${formatDuration(stall.leaseMs)})`;
}

export class LoopMonitor {
  private readonly thresholdMs: number;
  private readonly sampleMs: number;
  private histogram: IntervalHistogram | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastSampleAt = 0;
  private lastStallAt = 0;
  /** Jobs that ended since the sample before last: a stall ending now may have covered them. */
  private ended: (MonitoredJob & { endedAt: number })[] = [];
  /** Job id → the latest stall that covered it (kept REMEMBER_MS). */
  private readonly byJob = new Map<string, StallRecord>();
  /** Jobs already annotated (lease loss and fenced outcome may both report one). */
  private readonly explained = new Set<string>();
  private stats: WorkerStalls = { ...NO_STALLS };

  constructor(
    private readonly store: Store,
    private readonly events: SluiceEventEmitter,
    private readonly logger: Logger,
    private readonly options: LoopMonitorOptions,
  ) {
    this.thresholdMs = options.thresholdMs ?? Math.max(Math.floor(options.leaseMs / 3), 1);
    this.sampleMs = options.sampleMs ?? Math.min(Math.max(Math.floor(this.thresholdMs / 10), 20), 1_000);
  }

  start(): void {
    // The histogram's timer wakes the process every `resolution` ms, busy or idle (at 20 ms: 50 times a
    // second, ~3 ms of CPU a second on its own). A stall is measured to within one resolution, so a fiftieth
    // of the threshold (2 %) is precise enough: 200 ms on the default lease, 20 ms at most for short leases.
    const resolution = Math.min(this.sampleMs, Math.max(20, Math.floor(this.thresholdMs / 50)));
    this.histogram = monitorEventLoopDelay({ resolution });
    this.histogram.enable();
    this.lastSampleAt = Date.now();
    this.timer = setInterval(() => this.sample(), this.sampleMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.histogram?.disable();
    this.histogram = null;
  }

  /** The counters for the registry entry (undefined until a stall was seen: the heartbeat leaves it as stored). */
  current(): WorkerStalls | undefined {
    return this.stats.count === 0 ? undefined : this.stats;
  }

  /** Counters for a full registry entry. */
  snapshot(): WorkerStalls {
    return this.stats;
  }

  /**
   * A job left the running set (finished, lost, aborted); `startedAt` is when this worker started it. Only
   * a job that ran long enough to be covered by a stall is kept: a stall of `ms` (over the threshold) found
   * at `now` covers an ended job that started by `now - ms / 2`, and ended jobs are kept two sample periods,
   * so a covered one ran more than `threshold / 2 - 2 * sampleMs`. The rest (at thousands of short jobs a
   * second, nearly all) would be kept for nothing: two seconds of them held megabytes.
   */
  jobEnded(job: Omit<MonitoredJob, "startedAt">, startedAt: number): void {
    const endedAt = Date.now();
    if (endedAt - startedAt <= this.thresholdMs / 2 - 2 * this.sampleMs) return;
    this.ended.push({ id: job.id, task: job.task, attempt: job.attempt, startedAt, endedAt });
  }

  /**
   * The worker no longer owns `job` (lease lost, or its outcome was fenced off). When an event-loop stall
   * covered it, the stall is stored as a note on the attempt's error, which lease recovery wrote.
   */
  leaseLost(job: JobRecord): void {
    this.sample(); // a stall that ends just now is found before the loss is explained
    const stall = this.byJob.get(job.id);
    if (!stall) return;
    const key = `${job.id}#${job.attempt}`;
    if (this.explained.has(key)) return;
    this.explained.add(key);
    const note = `${stallText(stall, this.options.where)}; the lease expired during the stall, so this attempt's work was fenced off`;
    this.store.annotateAttempt(job.id, job.attempt, note).then(
      (applied) => {
        if (!applied)
          this.logger.debug(
            { jobId: job.id, attempt: job.attempt },
            "no stored error to annotate with the stall",
          );
      },
      (error: unknown) =>
        this.logger.warn({ err: error, jobId: job.id }, "could not store the stall on the job's attempt"),
    );
  }

  /** Reads the loop delay since the last sample; reports a stall over the threshold. Returns it, or null. */
  sample(): StallRecord | null {
    const now = Date.now();
    // The timer's own lateness: exact for the sample that ends a stall. The histogram: every stall in
    // between (also those shorter than a sample period, and a stall whose end another caller samples).
    const late = Math.max(now - this.lastSampleAt - this.sampleMs, 0);
    const histogramMax = this.histogram ? this.histogram.max / 1e6 : 0;
    this.histogram?.reset();
    this.lastSampleAt = now;
    const ms = Math.round(Math.max(late, histogramMax));
    // The histogram's own timer may record a stall after the sample that already reported it: the same
    // stall, seen again in the next sample or two, is not counted twice.
    const echo = late <= this.thresholdMs && now - this.lastStallAt <= 3 * this.sampleMs;
    let stall: StallRecord | null = null;
    if (ms > this.thresholdMs && !echo) {
      stall = this.record(now, ms);
      this.lastStallAt = now;
    }
    this.forget(now);
    return stall;
  }

  private record(now: number, ms: number): StallRecord {
    // Running during the stall: running now or ended since it began, and started before its middle. The
    // start is an estimate (up to a sample period early); a job started after the stall ended started
    // within the last few milliseconds, long after the middle of a stall over the threshold.
    const began = now - ms;
    const startedBy = now - ms / 2;
    const covered = new Map<string, MonitoredJob>();
    for (const job of this.options.running()) if (job.startedAt <= startedBy) covered.set(job.id, job);
    for (const job of this.ended)
      if (job.endedAt >= began && job.startedAt <= startedBy) covered.set(job.id, job);
    const jobs = [...covered.values()];
    const stall: StallRecord = {
      at: now,
      ms,
      leaseMs: this.options.leaseMs,
      tasks: [...new Set(jobs.map((j) => j.task))],
      jobIds: jobs.slice(0, MAX_JOB_IDS).map((j) => j.id),
    };
    for (const job of jobs) this.byJob.set(job.id, stall);
    this.stats = {
      count: this.stats.count + 1,
      longestMs: Math.max(this.stats.longestMs, ms),
      last: stall,
    };
    this.logger.warn(
      {
        stallMs: ms,
        leaseMs: this.options.leaseMs,
        tasks: stall.tasks,
        jobs: jobs.map((j) => j.id),
        stalls: this.stats.count,
      },
      `${stallText(stall, this.options.where)} — worker ${this.options.workerId}${jobs.length > 0 ? ` (jobs ${jobs.map((j) => j.id).join(", ")})` : ""}`,
    );
    if (this.events.wants("stalled")) {
      this.events.emit("stalled", {
        workerId: this.options.workerId,
        at: now,
        stallMs: ms,
        leaseMs: this.options.leaseMs,
        tasks: stall.tasks,
        jobIds: jobs.map((j) => j.id),
      });
    }
    return stall;
  }

  private forget(now: number): void {
    // Ended jobs older than two sample periods cannot be covered by a stall that ends later.
    this.ended = this.ended.filter((j) => j.endedAt >= now - 2 * this.sampleMs);
    if (this.byJob.size > 0) {
      for (const [id, stall] of this.byJob) if (stall.at < now - REMEMBER_MS) this.byJob.delete(id);
    }
    if (this.explained.size > 10_000) this.explained.clear();
  }
}
