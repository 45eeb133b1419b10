/**
 * The checkpoint thread of checkpointer.ts. A real CommonJS file (not eval code), so flags the host process
 * was started with (`--input-type=module`, `--experimental-default-type=module`) cannot change how it is
 * read; it is plain JavaScript so it runs the same from dist, tsx and vitest. It loads better-sqlite3 from
 * the path the main thread resolved. What it does, and why, is in checkpointer.ts.
 */
const { parentPort, workerData } = require("node:worker_threads");

// reportRounds: post each round to the main thread (CheckpointSchedule.onRound, tests only).
const { intervalMs, eagerMs, restartPages, reportRounds } = workerData;
let db = null;
try {
  const Database = require(workerData.driver);
  db = new Database(workerData.path, { timeout: 0, fileMustExist: true });
} catch (error) {
  parentPort.postMessage({ type: "error", message: String(error?.message || error) });
}

/**
 * One round: PASSIVE, then RESTART when the WAL is long. Returns the frames the WAL held (since it last
 * started over) and whether RESTART left it to start over at the next commit; null if the round failed.
 */
function checkpoint() {
  try {
    const [passive] = db.pragma("wal_checkpoint(PASSIVE)");
    if (passive.log < 0) return null; // another connection was checkpointing: nothing learned
    if (passive.log < restartPages) return { log: passive.log, restarted: false };
    // With no busy handler (timeout 0), RESTART takes the write lock only if it is free right now (else it
    // does what PASSIVE does and reports busy), copies the few frames committed since the PASSIVE round, and
    // lets the next commit write the WAL from its start.
    const [restart] = db.pragma("wal_checkpoint(RESTART)");
    return { log: passive.log, restarted: restart.busy === 0 };
  } catch {
    // Busy or locked: another connection is checkpointing or writing; the next round catches up.
    return null;
  }
}

/**
 * When the next round runs: when the WAL, growing as fast as since the last round, will hold twice
 * `restartPages` frames; between `eagerMs` and `intervalMs`. A drain writes ~20,000 frames a second, an idle
 * store none. The delay at most doubles from one round to the next (a round that finds nothing written
 * doubles it), so a lull does not leave the next burst a whole `intervalMs` to fill the WAL.
 */
let last = { at: performance.now(), log: 0, restarted: false, delay: eagerMs };
function nextDelay(at, result) {
  if (result === null) return last.delay; // keep the pace
  // After a RESTART the WAL starts over at the next commit; until one comes it reports the same length.
  const idle = last.restarted && result.log === last.log;
  const startedOver = last.restarted || result.log < last.log;
  const written = idle ? 0 : startedOver ? result.log : result.log - last.log;
  const perMs = written / Math.max(1, at - last.at);
  // Aim at twice the RESTART mark: each RESTART makes writers wait, and half as many measured better.
  const target = 2 * restartPages;
  const left = result.restarted ? target : target - result.log;
  // Still long and RESTART found a commit under way (left <= 0): try again soon.
  const wanted = left <= 0 ? eagerMs : written === 0 ? intervalMs : Math.max(eagerMs, left / perMs);
  const delay = Math.min(intervalMs, last.delay * 2, wanted);
  last = { at, log: result.log, restarted: result.restarted, delay };
  return delay;
}

let timer = null;
function round() {
  const at = performance.now();
  const result = checkpoint();
  const delay = nextDelay(at, result);
  if (reportRounds) parentPort.postMessage({ type: "round", log: result?.log ?? null, delay });
  timer = setTimeout(round, delay);
}
// The first round comes early: a WAL left long by a process that stopped is copied soon after opening.
if (db) timer = setTimeout(round, eagerMs);

parentPort.on("message", (message) => {
  if (message === "close") {
    if (timer) clearTimeout(timer);
    if (db) db.close();
    parentPort.close();
  }
});
