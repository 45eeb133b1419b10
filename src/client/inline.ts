/**
 * Inline mode: `new Sluice({ url: "inline:" })`, or `SLUICE_URL=inline:` with no code change. Every
 * enqueue runs its job in this process before it returns, through the worker's executor
 * (runtime/inline-runner.ts), on an in-memory SQLite store of its own — the test suite's wish (Oban's
 * `testing: :inline`, Sidekiq's `Testing.inline!`) and an application's rollback switch (seed 001's
 * `USE_RQ_QUEUE=false`: no queue server, the work done in the web process).
 *
 * What is the same as with a worker: payload validation (schema, size), options, retries (attempts,
 * retryOn, discardOn, timeouts), in-process events (`sluice.on`), fleet-wide events, results, errors and
 * logs stored (`sluice.admin.getJob(id)`), flows (the store is the SQLite engine).
 * What differs, and why:
 * - **Time is collapsed.** `delayMs`, `runAt`, retry backoffs and rate-limit waits take no time: the job
 *   runs at once (as Oban and Sidekiq inline modes do). Keeping them would leave a delayed job, or a retry,
 *   with nothing to run it when it comes due (inline mode has no timers), and the enqueue could not resolve
 *   with its outcome. So a job that reschedules itself loops: `maxRunsPerDrive` stops it
 *   (InlineRunawayError). Do not use inline mode where a delay must really elapse.
 * - **One job at a time**, in enqueue order (queues in the order they were first used): a handler that
 *   waits for another job to finish waits forever.
 * - **No workers.** `sluice.worker()` returns a worker that takes no jobs and says so in a warning, so
 *   code that starts workers runs unchanged under the switch.
 * - **No shared transaction**: `withTransaction` is refused (TRANSACTION_UNSUPPORTED); the in-memory store
 *   cannot join the application's database transaction.
 * - **Schedules are stored, never fired**: nothing keeps time. Jobs `sluice.admin` makes runnable (retry,
 *   resume, runScheduleNow) run at the next enqueue: only an enqueue drives the runner.
 * - **Nothing survives the process**, and no other process (the CLI, another server) sees the store.
 */
import { SluiceError, ValidationError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { DEFAULT_MAX_RUNS_PER_DRIVE, InlineRunner } from "../runtime/inline-runner.js";
import { type StopReport, Worker, type WorkerHost, type WorkerOptions } from "../runtime/worker.js";
import type { EnqueueResult, NewJob, TransactionHandle } from "../store/contract.js";

/** The store inline mode runs on: an in-memory SQLite database private to this Sluice instance. */
export const INLINE_STORE_URL = "sqlite::memory:";

/** Options of an `inline:` URL (in its query string). */
export interface InlineConfig {
  /** Attempts one enqueue may run (its jobs and all they cause) before InlineRunawayError. Default 100,000. */
  maxRunsPerDrive: number;
}

/** True when `url` selects inline mode (`inline:`, options after `?`). */
export function isInlineUrl(url: string): boolean {
  return url.startsWith("inline:");
}

/** Parses `inline:` or `inline:?maxRunsPerDrive=1000`; throws INVALID_CONFIG for anything else. */
export function parseInlineUrl(url: string): InlineConfig {
  const rest = url.slice("inline:".length);
  const config: InlineConfig = { maxRunsPerDrive: DEFAULT_MAX_RUNS_PER_DRIVE };
  if (rest === "") return config;
  if (!rest.startsWith("?")) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `inline mode's URL is "inline:" (options after "?", e.g. inline:?maxRunsPerDrive=1000), got "${url}"`,
      { field: "url" },
    );
  }
  for (const [key, value] of new URLSearchParams(rest.slice(1))) {
    if (key !== "maxRunsPerDrive") {
      throw new ValidationError(
        "INVALID_CONFIG",
        `inline: URL option "${key}" is unknown; inline mode takes maxRunsPerDrive`,
        { field: `url.${key}` },
      );
    }
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `inline: URL option maxRunsPerDrive must be a positive integer, got "${value}"`,
        { field: "url.maxRunsPerDrive" },
      );
    }
    config.maxRunsPerDrive = n;
  }
  return config;
}

/** What a `Sluice` in inline mode does around each enqueue, and the workers it hands out. */
export class InlineMode {
  private readonly runner: InlineRunner;

  constructor(
    private readonly host: WorkerHost,
    config: InlineConfig,
  ) {
    this.runner = new InlineRunner(host, config.maxRunsPerDrive);
  }

  /**
   * Before the write: refuses a shared transaction, collapses delays (a job due later is due now), and
   * tells the runner which queues to claim from.
   */
  beforeEnqueue(jobs: readonly NewJob[], transaction: TransactionHandle | undefined): NewJob[] {
    if (transaction !== undefined) {
      throw new SluiceError(
        "TRANSACTION_UNSUPPORTED",
        "inline mode (inline:) cannot enqueue inside the application's transaction: its store is in memory " +
          "and the job would run before the transaction commits; enqueue after the commit, or use a " +
          "sqlite: or postgres:// store",
      );
    }
    this.runner.noteQueues(jobs.map((job) => job.queue));
    const now = Date.now();
    return jobs.map((job) => (job.runAt > now ? { ...job, runAt: now } : job));
  }

  /**
   * After the write: runs the jobs to idle and reports each job's state after its run. From inside a
   * running handler it returns at once: the drive in progress runs the new jobs after that handler.
   */
  async afterEnqueue<R extends EnqueueResult>(results: R[]): Promise<R[]> {
    if (this.runner.inJob || results.length === 0) return results;
    const outcomes = await this.runner.runToIdle();
    return results.map((r) => {
      const state = outcomes.get(r.id);
      return state === undefined ? r : { ...r, state };
    });
  }

  /** Resolves when no job runs (`Sluice.close` waits for it before closing the store). */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  /** A worker that takes no jobs: inline mode has run them already (see {@link InlineWorker}). */
  worker(options: WorkerOptions): Worker {
    return new InlineWorker(this.host, options);
  }
}

/**
 * What `sluice.worker()` returns in inline mode: it validates its options like any worker, then takes no
 * jobs (each enqueue ran its jobs already) and warns once at `start()`. A no-op rather than an error so an
 * application flips to inline mode with `SLUICE_URL=inline:` alone, whatever code starts its workers.
 */
export class InlineWorker extends Worker {
  private readonly warnTo: Logger;

  constructor(host: WorkerHost, options: WorkerOptions) {
    super(host, options);
    this.warnTo = host.logger;
  }

  override async start(): Promise<void> {
    this.warnTo.warn(
      { worker: this.id },
      "inline mode (inline:): jobs run when they are enqueued, in the enqueuing process; this worker takes no jobs",
    );
  }

  override async stop(): Promise<StopReport> {
    return { released: [], unsettled: [] };
  }
}
