/**
 * WAL checkpoints off the hot path.
 *
 * By default SQLite checkpoints inside whichever commit pushes the WAL past 1,000 pages: that commit
 * copies pages into the database file and fsyncs it, and a job's claim or completion takes milliseconds
 * longer (measured: in-process enqueue → start p99 ~5.8 ms with it, ~1.2–1.8 ms without). So each
 * SQLite store runs PASSIVE checkpoints on its own connection in a worker thread every `intervalMs`,
 * and raises the in-commit threshold to a backstop (10,000 pages) that only matters if this thread
 * cannot keep up. PASSIVE never blocks writers or readers; if another process is checkpointing it
 * simply does less this round.
 *
 * The thread is a real CommonJS file next to this one (checkpoint-thread.cjs, emitted into dist by the
 * build), not inline eval code: eval code is read according to the flags the host process was started
 * with, and `node --input-type=module` made it fail.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** In-commit checkpoint threshold (pages) kept as a safety net behind the thread. */
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 10_000;

const THREAD = new URL("./checkpoint-thread.cjs", import.meta.url);

export class Checkpointer {
  private readonly thread: Worker;
  private readonly exited: Promise<void>;
  private closed = false;

  constructor(path: string, intervalMs: number, onError: (message: string) => void) {
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    this.thread = new Worker(THREAD, { workerData: { path, intervalMs, driver }, execArgv: [] });
    this.thread.unref(); // never keeps a process alive on its own
    this.exited = new Promise<void>((resolve) => this.thread.once("exit", () => resolve()));
    this.thread.on("message", (message: { type: string; message?: string }) => {
      if (message.type === "error") onError(message.message ?? "unknown error");
    });
    this.thread.on("error", (error) => onError(error.message));
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
