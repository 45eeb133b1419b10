/**
 * WAL checkpoints off the hot path, and a WAL that stays short.
 *
 * By default SQLite checkpoints inside whichever commit pushes the WAL past 1,000 pages: that commit
 * copies pages into the database file and fsyncs it, and a job's claim or completion takes milliseconds
 * longer (measured: in-process enqueue → start p99 ~5.8 ms with it, ~1.2–1.8 ms without). So each
 * SQLite store runs checkpoints on its own connection in a worker thread, and raises the in-commit
 * threshold to a backstop (10,000 pages) that only matters if this thread cannot keep up.
 *
 * Copying frames is not enough to keep the backstop away: it counts the frames written since the WAL last
 * started over, and a commit starts it over only when, as its transaction began, every frame had been
 * copied. Under steady writes a PASSIVE round (which never blocks anyone) is nearly always overtaken by a
 * commit made while it copied, so the WAL never started over, grew to the backstop, and from then every
 * commit checkpointed inline (measured with 500,000 completed jobs retained, 200 jobs/s: enqueue → start
 * p99 15.8–16.2 ms). So each round is:
 *
 * 1. PASSIVE: copy what the WAL holds, blocking nobody.
 * 2. When the WAL held {@link RESTART_PAGES} or more: RESTART, which takes the write lock if it is free at
 *    that instant (the thread's connection has no busy timeout, so it never waits for it: if a commit is
 *    under way it does what PASSIVE does), copies the few frames committed since step 1 and syncs. The next
 *    commit then writes the WAL from its start. Writers wait for that short copy and sync (not timed alone)
 *    instead of a whole inline checkpoint.
 * 3. The next round runs when the WAL, growing as fast as it did since the last round, will hold twice
 *    {@link RESTART_PAGES} frames: between {@link EAGER_MS} and `intervalMs` (500 by default), the delay at
 *    most doubling from one round to the next. A drain writes ~20,000 frames a second, past the backstop in
 *    500 ms; a quiet store writes none. Aiming at twice the RESTART mark halves the RESTARTs writers wait
 *    for: with 500,000 completed jobs retained, p99 5.1–5.2 ms against 6.9–8.0 aiming at the mark itself.
 *
 * The thread is a real CommonJS file next to this one (checkpoint-thread.cjs, emitted into dist by the
 * build), not inline eval code: eval code is read according to the flags the host process was started
 * with, and `node --input-type=module` made it fail.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** In-commit checkpoint threshold (pages) kept as a safety net behind the thread. */
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 10_000;

/** WAL frames from which a round also runs a RESTART checkpoint: about 4 MiB of 4 KiB pages. */
export const RESTART_PAGES = 1_000;

/** The shortest delay between two rounds. */
export const EAGER_MS = 25;

const THREAD = new URL("./checkpoint-thread.cjs", import.meta.url);

/**
 * The thread's V8 heap, far below a worker thread's defaults: its JavaScript holds a few numbers per round
 * (SQLite's own memory is outside this heap). It takes ~2 MiB off every SQLite process's peak RSS
 * (`npm run bench:footprint -- --engine sqlite`: 81.6–82.3 → 79.2–80.8 MiB at concurrency 50). A thread
 * that ran out of it would end with an error, and the store would checkpoint inside commits instead.
 */
const THREAD_HEAP = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8, codeRangeSizeMb: 2 };

/** When the thread checkpoints; the defaults are the constants above, tests shrink them. */
export interface CheckpointSchedule {
  /** The longest delay between two rounds (a quiet store). */
  intervalMs: number;
  /** The shortest delay between two rounds (a WAL growing fast). */
  eagerMs?: number;
  /** WAL frames from which a round also runs RESTART. */
  restartPages?: number;
  /**
   * Called after each round with the WAL's frames (null: the round failed) and the delay chosen before the
   * next. Only when given does the thread post a message per round.
   */
  onRound?: (round: { log: number | null; delay: number }) => void;
}

type ThreadMessage =
  | { type: "error"; message: string }
  | { type: "round"; log: number | null; delay: number };

export class Checkpointer {
  private readonly thread: Worker;
  private readonly exited: Promise<void>;
  private closed = false;

  constructor(path: string, schedule: CheckpointSchedule, onError: (message: string) => void) {
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    const { intervalMs } = schedule;
    const eagerMs = Math.min(schedule.eagerMs ?? EAGER_MS, intervalMs);
    const restartPages = schedule.restartPages ?? RESTART_PAGES;
    this.thread = new Worker(THREAD, {
      workerData: {
        path,
        intervalMs,
        eagerMs,
        restartPages,
        driver,
        reportRounds: schedule.onRound !== undefined,
      },
      execArgv: [],
      resourceLimits: THREAD_HEAP,
    });
    this.thread.unref(); // never keeps a process alive on its own
    this.exited = new Promise<void>((resolve) => this.thread.once("exit", () => resolve()));
    this.thread.on("message", (message: ThreadMessage) => {
      if (message.type === "error") onError(message.message);
      else schedule.onRound?.({ log: message.log, delay: message.delay });
    });
    this.thread.on("error", (error) => onError(error.message));
  }

  /** The V8 heap limits the thread runs under (MiB), as Node reports them. */
  get heapLimits(): Worker["resourceLimits"] {
    return this.thread.resourceLimits;
  }

  /** Stops the thread and closes its connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.thread.postMessage("close");
    // A thread stuck in a long checkpoint is terminated rather than waited for. (`exited` is already
    // settled when the thread failed at start: close() must not wait for an exit that happened.)
    const timer = setTimeout(() => void this.thread.terminate(), 2_000);
    await this.exited;
    clearTimeout(timer);
  }
}
