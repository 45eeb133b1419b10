/**
 * `npm run bench:event-prune -- [--events 3000000] [--keep 100000] [--deadline 120]`: what the maintenance
 * pass's event pruning costs on PostgreSQL when the events table is far past its cap, as after a burst (a
 * 1M-job drain writes about 3M events against the default cap of 100,000). Fills a fresh store's events
 * table with `events` rows (one INSERT … generate_series, ids from its sequence as transitions take them),
 * then calls `store.prune` the way the maintenance leader does (batches of 5,000, `maxEvents` = `keep`)
 * until a call deletes fewer than a batch, or `deadline` seconds pass; prints the events pruned, the calls
 * and their time (median and slowest). PostgreSQL only: SQLite and Redis delete from the oldest id by
 * their own indexes. Asserts nothing.
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { createStore, silentLogger } from "../src/index.js";
import { engineUrl, PG_URL, wholeArg } from "./engines.js";
import { fmt } from "./stats.js";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "3000000" },
    keep: { type: "string", default: "100000" },
    deadline: { type: "string", default: "120" },
  },
});
const total = wholeArg("events", values.events, 1, 50_000_000);
const keep = wholeArg("keep", values.keep, 0, 50_000_000);
const deadlineMs = wholeArg("deadline", values.deadline, 1, 3_600) * 1_000;
/** The maintenance pass's batch (runtime/maintenance.ts PRUNE_BATCH). */
const BATCH = 5_000;

const { url, cleanup } = engineUrl("postgres");
const schema = new URL(url).searchParams.get("schema");
const store = await createStore(url, { logger: silentLogger() });
const admin = new pg.Client({ connectionString: PG_URL });
try {
  await store.open();
  await admin.connect();
  const t0 = performance.now();
  await admin.query(
    `INSERT INTO "${schema}".events (at, type, queue, job_id, task, attempt)
     SELECT $1::bigint, 'completed', 'bench', 'job-' || g, 'noop', 1 FROM generate_series(1, $2::int) g`,
    [Date.now(), total],
  );
  await admin.query(`VACUUM ANALYZE "${schema}".events`);
  console.log(
    `event prune — postgres — ${fmt(total)} events, keep the newest ${fmt(keep)}, batches of ${fmt(BATCH)} ` +
      `(filled in ${fmt((performance.now() - t0) / 1_000, 1)} s) — node ${process.version}`,
  );
  const times: number[] = [];
  let pruned = 0;
  const start = performance.now();
  for (;;) {
    const t = performance.now();
    const { events } = await store.prune({ limit: BATCH, workersSilentSince: 0, maxEvents: keep });
    times.push(performance.now() - t);
    pruned += events;
    if (events < BATCH || performance.now() - start > deadlineMs) break;
  }
  const wall = performance.now() - start;
  const sorted = [...times].sort((a, b) => a - b);
  const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".events`);
  console.log(
    `pruned ${fmt(pruned)} events in ${fmt(times.length)} calls, ${fmt(wall / 1_000, 1)} s` +
      `${wall > deadlineMs ? " (deadline reached)" : ""}; per call: median ${fmt(sorted[Math.floor(sorted.length / 2)] ?? 0, 1)} ms, ` +
      `slowest ${fmt(sorted.at(-1) ?? 0, 1)} ms; ${fmt(rows[0]?.n ?? 0)} events left`,
  );
} finally {
  await admin.end().catch(() => undefined);
  await store.close();
  await cleanup();
}
