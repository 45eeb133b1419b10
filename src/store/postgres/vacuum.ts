/**
 * Vacuum on the store's own schedule, for servers where autovacuum is off or falls behind.
 *
 * Why Sluice needs it: every claim turns a `waiting` row into an `active` one, so the `waiting` entry it
 * leaves in the partial claim index (`jobs_claim`) is dead. New jobs go in at the index's right edge and
 * claims take from its left, so the pages that hold the dead entries never see an insert again: nothing
 * but VACUUM removes them. Until it runs, every claim walks every dead entry left since the last vacuum
 * (measured: 149 index and heap buffers to claim one job after 20,000 had been processed; the harness of
 * issue 14 saw 1,818 buffers and 118 ms for a 100-job claim after 300,000, with autovacuum off). The same
 * holds for the events table, whose pruned rows otherwise never give their space back.
 *
 * The maintenance leader asks the statistics collector after each prune pass (one cheap catalog read);
 * a table whose dead rows pass the threshold is vacuumed with `SKIP_LOCKED` (it never waits for a lock
 * and takes none that blocks reads or writes). With autovacuum keeping up, dead rows stay under the
 * threshold and this never runs.
 */

/** Fewest dead rows that make a table worth vacuuming (also: at least this fraction of its live rows). */
export const VACUUM_MIN_DEAD_ROWS = 20_000;
export const VACUUM_DEAD_FRACTION = 0.01;
/** Shortest time between two vacuums by one store (the statistics lag by about a second). */
export const VACUUM_MIN_INTERVAL_MS = 5_000;

/** The tables of the schema that take updates and deletes at the job rate. */
export const VACUUMED_TABLES = ["jobs", "events", "job_logs", "job_deps"] as const;

/**
 * Tables of schema `$1` (unquoted) due for a vacuum, from the statistics collector. Only tables this role
 * may vacuum (it owns them, or is a member of their owner): PostgreSQL skips the others with a warning the
 * client never sees, so asking would repeat a no-op every pass; those are left to autovacuum.
 */
export const DUE_FOR_VACUUM = `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
  WHERE s.schemaname = $1 AND s.relname = ANY ($2::text[])
    AND s.n_dead_tup >= greatest($3::bigint, s.n_live_tup * $4::float8)
    AND pg_has_role(c.relowner, 'USAGE')`;

/**
 * When a store checks for and runs vacuums. The interval separates vacuums, not checks: a check is one
 * catalog read per prune pass, and one that found nothing due must not keep the next pass, a moment later,
 * from vacuuming a table that has just become due.
 */
export class VacuumPacer {
  private lastVacuumAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly enabled: boolean) {}

  /** Whether a prune pass should look for due tables now: the URL allows it, the last vacuum was long ago. */
  mayCheck(now: number): boolean {
    return this.enabled && now - this.lastVacuumAt >= VACUUM_MIN_INTERVAL_MS;
  }

  /** A check found `due` tables: whether to vacuum them (the interval then counts from `now`). */
  found(due: number, now: number): boolean {
    if (due === 0) return false;
    this.lastVacuumAt = now;
    return true;
  }

  /** The vacuums of a check ended at `now` (a long one starts the interval at its end). */
  finished(now: number): void {
    this.lastVacuumAt = now;
  }
}
