/**
 * The checkpoint thread of checkpointer.ts: PASSIVE WAL checkpoints on its own connection every
 * `workerData.intervalMs`. A real CommonJS file (not eval code), so flags the host process was started
 * with (`--input-type=module`, `--experimental-default-type=module`) cannot change how it is read; it is
 * plain JavaScript so it runs the same from dist, tsx and vitest. It loads better-sqlite3 from the path the
 * main thread resolved.
 */
const { parentPort, workerData } = require("node:worker_threads");

let db = null;
try {
  const Database = require(workerData.driver);
  db = new Database(workerData.path, { timeout: 0, fileMustExist: true });
} catch (error) {
  parentPort.postMessage({ type: "error", message: String(error?.message || error) });
}
const timer =
  db &&
  setInterval(() => {
    try {
      db.pragma("wal_checkpoint(PASSIVE)");
    } catch {
      // Busy or locked: another connection is checkpointing or writing; the next round catches up.
    }
  }, workerData.intervalMs);
parentPort.on("message", (message) => {
  if (message === "close") {
    if (timer) clearInterval(timer);
    if (db) db.close();
    parentPort.close();
  }
});
