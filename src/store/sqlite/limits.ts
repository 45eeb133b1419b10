/**
 * Limits on SQLite (core/limits.ts): what a claim may take from a queue that has limits or key holds, and
 * the counters a claim consumes. Every statement here runs inside the claim's write transaction, and
 * SQLite has one writer at a time across every process on the file: the counts read and the jobs taken
 * cannot be raced by another claim, so two claims never both take the last slot.
 *
 * - Queue concurrency and per-key concurrency are counted from the jobs themselves (indexes
 *   `jobs_queue_state` and `jobs_active_key`), never kept in counters: whatever moves a job out of `active`
 *   keeps the count exact by itself.
 * - Rates are fixed windows counted at claim: the queue's on its `queues` row, a key's in `key_rates`.
 * - A plain queue (no limits, no live key hold) is recognised by the statement that already reads pauses
 *   (`gates`), so its claim runs exactly the statements it ran before limits existed.
 */
import type Database from "better-sqlite3";
import { type QueueLimits, windowStart } from "../../core/limits.js";
import type { KeyHold } from "../contract.js";

type Statement = Database.Statement<unknown[], unknown>;

/** A queue the claim must not treat as plain: paused, limited or holding keys. */
export interface Gate {
  /** Paused by an operator or by a rate limit not yet over: nothing is claimed. */
  blocked: boolean;
  limits: QueueLimits | null;
  /** Some key of the queue is held now. */
  holding: boolean;
  rateWindowEnd: number | null;
  rateCount: number;
}

/** What a limited queue allows a claim: a count (the plain claim statement with that limit) or exact jobs. */
export type Allowance = { count: number } | { seqs: number[] };

/** A waiting job as the keyed scan reads it from the claim index. */
interface Candidate {
  seq: number;
  priority: number;
  run_at: number;
  limit_key: string | null;
}

/**
 * Jobs of keys that filled up during one claim are skipped in JS; after this many in a row the scan starts
 * again past the last row with those keys excluded in SQL, so a long run of one key's backlog is skipped
 * inside the index rather than row by row.
 */
const RESCAN_AFTER_SKIPS = 64;

export class SqliteLimits {
  constructor(private readonly stmt: (sql: string) => Statement) {}

  /**
   * Queues that are paused, limited or holding keys, in the one statement the claim reads pauses with. A
   * queue absent from the map is plain.
   */
  gates(now: number): Map<string, Gate> {
    const rows = this.stmt(
      `SELECT name, (paused = 1 OR COALESCE(paused_until > @now, 0)) AS blocked, limits,
         COALESCE(holds_until > @now, 0) AS holding, rate_window_end, rate_count
       FROM queues WHERE paused = 1 OR paused_until > @now OR limits IS NOT NULL OR holds_until > @now`,
    ).all({ now }) as {
      name: string;
      blocked: number;
      limits: string | null;
      holding: number;
      rate_window_end: number | null;
      rate_count: number;
    }[];
    return new Map(
      rows.map((r) => [
        r.name,
        {
          blocked: r.blocked === 1,
          limits: parseLimits(r.limits),
          holding: r.holding === 1,
          rateWindowEnd: r.rate_window_end,
          rateCount: r.rate_count,
        },
      ]),
    );
  }

  /**
   * How many jobs of `queue` a claim may take now (at most `want`), and which ones when keys matter: the
   * claim order (priority, runAt, seq) among the jobs whose key is not held and is under its limits. Keys
   * at a limit are skipped, never waited for.
   */
  allowance(queue: string, gate: Gate, now: number, want: number): Allowance {
    const limits = gate.limits;
    let n = want;
    if (limits?.concurrency != null) {
      const active = this.stmt("SELECT COUNT(*) AS n FROM jobs WHERE queue = ? AND state = 'active'").get(
        queue,
      ) as { n: number };
      n = Math.min(n, limits.concurrency - active.n);
    }
    if (limits?.rate != null) {
      const end = windowEnd(now, limits.rate.windowMs);
      n = Math.min(n, limits.rate.max - (gate.rateWindowEnd === end ? gate.rateCount : 0));
    }
    if (n <= 0) return { count: 0 };
    const keyed = gate.holding || limits?.keyConcurrency != null || limits?.keyRate != null;
    return keyed ? { seqs: this.pickKeyed(queue, limits, now, n) } : { count: n };
  }

  /** Counts `taken` claims in the queue's rate window and each key's (the claim's own transaction). */
  consume(queue: string, gate: Gate, now: number, taken: readonly { limit_key: string | null }[]): void {
    if (taken.length === 0) return;
    const rate = gate.limits?.rate;
    if (rate) {
      const end = windowEnd(now, rate.windowMs);
      this.stmt(
        `UPDATE queues SET rate_count = CASE WHEN rate_window_end = @end THEN rate_count + @n ELSE @n END,
           rate_window_end = @end
         WHERE name = @queue`,
      ).run({ end, n: taken.length, queue });
      // Later queues of the same claim read the gate again only in the next claim: keep it current.
      gate.rateCount = gate.rateWindowEnd === end ? gate.rateCount + taken.length : taken.length;
      gate.rateWindowEnd = end;
    }
    const keyRate = gate.limits?.keyRate;
    if (keyRate) {
      const perKey = new Map<string, number>();
      for (const job of taken) {
        if (job.limit_key !== null) perKey.set(job.limit_key, (perKey.get(job.limit_key) ?? 0) + 1);
      }
      const end = windowEnd(now, keyRate.windowMs);
      const upsert = this.stmt(
        `INSERT INTO key_rates (queue, key, window_end, count) VALUES (?, ?, ?, ?)
         ON CONFLICT (queue, key) DO UPDATE SET
           count = CASE WHEN window_end = excluded.window_end THEN count + excluded.count ELSE excluded.count END,
           window_end = excluded.window_end`,
      );
      for (const [key, count] of perKey) upsert.run(queue, key, end, count);
    }
  }

  /**
   * The first `n` waiting jobs in claim order whose key may take one more job. Keys already at a limit
   * when the claim starts (held, at their concurrency, out of rate) are excluded in SQL on the claim index,
   * which carries `limit_key`: skipping their backlog reads index entries only.
   */
  private pickKeyed(queue: string, limits: QueueLimits | null, now: number, n: number): number[] {
    const excluded = new Set<string>();
    for (const row of this.stmt("SELECT key FROM key_holds WHERE queue = ? AND until > ?").all(
      queue,
      now,
    ) as { key: string }[]) {
      excluded.add(row.key);
    }
    const kc = limits?.keyConcurrency ?? null;
    const activeByKey = new Map<string, number>();
    if (kc !== null) {
      for (const row of this.stmt(
        `SELECT limit_key AS key, COUNT(*) AS n FROM jobs
         WHERE queue = ? AND state = 'active' AND limit_key IS NOT NULL GROUP BY limit_key`,
      ).all(queue) as { key: string; n: number }[]) {
        activeByKey.set(row.key, row.n);
        if (row.n >= kc) excluded.add(row.key);
      }
    }
    const keyRate = limits?.keyRate ?? null;
    const rateEnd = keyRate ? windowEnd(now, keyRate.windowMs) : 0;
    const rateUsed = this.stmt("SELECT count FROM key_rates WHERE queue = ? AND key = ? AND window_end = ?");
    /** What each key seen in this claim may still take; computed at its first job. */
    const budgets = new Map<string, number>();
    const budgetOf = (key: string): number => {
      let budget = budgets.get(key);
      if (budget === undefined) {
        budget = Number.POSITIVE_INFINITY;
        if (kc !== null) budget = kc - (activeByKey.get(key) ?? 0);
        if (keyRate) {
          const used = rateUsed.get(queue, key, rateEnd) as { count: number } | undefined;
          budget = Math.min(budget, keyRate.max - (used?.count ?? 0));
        }
        budgets.set(key, budget);
      }
      return budget;
    };
    const first = this.stmt(
      `SELECT seq, priority, run_at, limit_key FROM jobs
       WHERE queue = ? AND state = 'waiting'
         AND (limit_key IS NULL OR limit_key NOT IN (SELECT value FROM json_each(?)))
       ORDER BY priority, run_at, seq`,
    );
    const after = this.stmt(
      `SELECT seq, priority, run_at, limit_key FROM jobs
       WHERE queue = ? AND state = 'waiting' AND (priority, run_at, seq) > (?, ?, ?)
         AND (limit_key IS NULL OR limit_key NOT IN (SELECT value FROM json_each(?)))
       ORDER BY priority, run_at, seq`,
    );
    const picked: number[] = [];
    let last: Candidate | null = null;
    for (;;) {
      const keys = JSON.stringify([...excluded]);
      const rows = (
        last === null
          ? first.iterate(queue, keys)
          : after.iterate(queue, last.priority, last.run_at, last.seq, keys)
      ) as IterableIterator<Candidate>;
      let skipped = 0;
      let rescan = false;
      for (const row of rows) {
        last = row;
        const key = row.limit_key;
        if (key !== null) {
          const budget = budgetOf(key);
          if (budget <= 0) {
            excluded.add(key);
            if (++skipped >= RESCAN_AFTER_SKIPS) {
              rescan = true;
              break; // ends the iteration (the statement is reset)
            }
            continue;
          }
          budgets.set(key, budget - 1);
          if (budget - 1 <= 0) excluded.add(key);
        }
        skipped = 0;
        picked.push(row.seq);
        if (picked.length >= n) return picked;
      }
      if (!rescan) return picked;
    }
  }

  setLimits(queue: string, limits: QueueLimits | null): void {
    // The rate windows counted so far stay: replacing limits must not hand out a fresh window mid-window.
    this.stmt(
      `INSERT INTO queues (name, limits) VALUES (@queue, @limits)
       ON CONFLICT (name) DO UPDATE SET limits = excluded.limits`,
    ).run({ queue, limits: limits === null ? null : JSON.stringify(limits) });
  }

  /** Holds `key` of `queue` until `until`; only ever extends. */
  holdKey(queue: string, key: string, until: number): void {
    this.stmt(
      `INSERT INTO key_holds (queue, key, until) VALUES (?, ?, ?)
       ON CONFLICT (queue, key) DO UPDATE SET until = MAX(until, excluded.until)`,
    ).run(queue, key, until);
    this.stmt(
      `INSERT INTO queues (name, holds_until) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET holds_until = MAX(COALESCE(holds_until, 0), excluded.holds_until)`,
    ).run(queue, until);
  }

  /** Clears every key hold of `queue` (resumeQueue). */
  clearHolds(queue: string): void {
    this.stmt("DELETE FROM key_holds WHERE queue = ?").run(queue);
    this.stmt("UPDATE queues SET holds_until = NULL WHERE name = ?").run(queue);
  }

  /** Holds not yet over, with their backlog (waiting + due scheduled jobs of the key), largest first. */
  keyHolds(now: number, limit: number): KeyHold[] {
    const rows = this.stmt(
      `SELECT h.queue, h.key, h.until,
         (SELECT COUNT(*) FROM jobs j WHERE j.queue = h.queue AND j.state = 'waiting' AND j.limit_key = h.key)
         + (SELECT COUNT(*) FROM jobs j WHERE j.queue = h.queue AND j.state = 'scheduled' AND j.run_at <= @now
              AND j.limit_key = h.key) AS backlog
       FROM key_holds h WHERE h.until > @now
       ORDER BY backlog DESC, h.queue, h.key LIMIT (@limit + 0)`,
    ).all({ now, limit }) as { queue: string; key: string; until: number; backlog: number }[];
    return rows.map((r) => ({ queue: r.queue, key: r.key, until: r.until, backlog: r.backlog }));
  }

  /** Per queue: active jobs (held-ahead included) and keys held now, for queueStats. */
  statsParts(now: number): { active: Map<string, number>; held: Map<string, number> } {
    const active = new Map<string, number>();
    for (const row of this.stmt(
      "SELECT queue, COUNT(*) AS n FROM jobs WHERE state = 'active' GROUP BY queue",
    ).all() as { queue: string; n: number }[]) {
      active.set(row.queue, row.n);
    }
    const held = new Map<string, number>();
    for (const row of this.stmt(
      "SELECT queue, COUNT(*) AS n FROM key_holds WHERE until > ? GROUP BY queue",
    ).all(now) as { queue: string; n: number }[]) {
      held.set(row.queue, row.n);
    }
    return { active, held };
  }

  /** Deletes key holds and key rate windows that are over (maintenance), at most `limit` of each. */
  prune(now: number, limit: number): void {
    this.stmt(
      "DELETE FROM key_holds WHERE (queue, key) IN (SELECT queue, key FROM key_holds WHERE until <= ? LIMIT (? + 0))",
    ).run(now, limit);
    this.stmt(
      "DELETE FROM key_rates WHERE (queue, key) IN (SELECT queue, key FROM key_rates WHERE window_end <= ? LIMIT (? + 0))",
    ).run(now, limit);
  }
}

/** The end of the fixed window holding `now` (its identity in the counters). */
function windowEnd(now: number, windowMs: number): number {
  return windowStart(now, windowMs) + windowMs;
}

/** The stored limits JSON; null when none. */
export function parseLimits(text: string | null): QueueLimits | null {
  if (text === null) return null;
  const parsed = JSON.parse(text) as Partial<QueueLimits>;
  return {
    concurrency: parsed.concurrency ?? null,
    rate: parsed.rate ?? null,
    keyConcurrency: parsed.keyConcurrency ?? null,
    keyRate: parsed.keyRate ?? null,
  };
}
