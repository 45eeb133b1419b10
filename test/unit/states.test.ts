/**
 * core/states.ts is the one home of what each state allows and of the reasons the system stores. Admin, the
 * CLI and the engines take them from there; where an engine keeps a literal (a `state <> 'active'` guard
 * matching a partial index, a shipped PostgreSQL migration), this test reads the engine's text and fails
 * when its list or reason differs from the constant. It reads the final Lua scripts and migration SQL,
 * and the TypeScript sources of the SQL statements (where a constant appears by name, it stands for its
 * value).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { JOB_STATES, PENDING_STATES } from "../../src/core/job.js";
import * as states from "../../src/core/states.js";
import {
  CANCEL_AT_ONCE_STATES,
  CANCELLABLE_STATES,
  CANCELLED_BEFORE_START_REASON,
  CANCELLED_REASON,
  CANCELLED_WHILE_ACTIVE_REASON,
  forcedRecoveryReason,
  leaseExpiredReason,
  MOVABLE_STATES,
  PURGEABLE_STATES,
  REMOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRIED_REASON,
  RETRYABLE_STATES,
  recoveryTarget,
} from "../../src/core/states.js";
import * as contract from "../../src/store/contract.js";
import { MIGRATIONS } from "../../src/store/postgres/migrations.js";
import { SCRIPTS } from "../../src/store/redis/lua.js";
import { sqlStateList, sqlString } from "../../src/store/sql-common.js";

const source = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

const STATE_NAMES = new Set<string>(JOB_STATES);
/** Every exported state list, by name (a name in an engine's text stands for its value). */
const LISTS: Record<string, readonly string[]> = {
  JOB_STATES,
  PENDING_STATES,
  ...Object.fromEntries(Object.entries(states).filter(([name]) => name.endsWith("_STATES"))),
} as Record<string, readonly string[]>;
/** Every exported reason text, by name. */
const REASONS: Record<string, string> = Object.fromEntries(
  Object.entries(states).filter(([name, value]) => name.endsWith("_REASON") && typeof value === "string"),
) as Record<string, string>;

const sorted = (list: readonly string[]) => [...new Set(list)].sort();

/**
 * The state lists in `text`, in order of appearance, each as a sorted set: constants named `*_STATES`,
 * literal lists of two or more quoted state names (SQL `IN (…)`, TypeScript arrays), Lua `s == 'a' or
 * s == 'b'` chains, Lua sets used as `NAME[s]` (resolved from `local NAME = { a = true, … }` in `text` or
 * `scope`), and `<> 'active'` / `!= 'active'` / `~= 'active'` guards (every state but active).
 */
function stateLists(text: string, scope = text): string[][] {
  const found: [number, string[]][] = [];
  for (const m of text.matchAll(/\b([A-Z_]+_STATES)\b/g)) {
    const list = LISTS[m[1] as string];
    if (!list) throw new Error(`unknown state list ${m[1]}`);
    found.push([m.index, sorted(list)]);
  }
  for (const m of text.matchAll(/(['"])[a-z]+\1(?:\s*,\s*(['"])[a-z]+\2)+/g)) {
    const names = [...m[0].matchAll(/[a-z]+/g)].map((n) => n[0]);
    if (names.every((n) => STATE_NAMES.has(n))) found.push([m.index, sorted(names)]);
  }
  for (const m of text.matchAll(/\bs == '[a-z]+'(?:\s+or\s+s == '[a-z]+')+/g)) {
    found.push([m.index, sorted([...m[0].matchAll(/'([a-z]+)'/g)].map((n) => n[1] as string))]);
  }
  for (const m of text.matchAll(/\b([A-Z_]+)\[s\]/g)) {
    // Sets of states (`{ dead = true, … }`); other tables indexed by state (the index names, SET) are not.
    const definition = new RegExp(`local ${m[1]} = \\{([^}]*)\\}`).exec(scope)?.[1] ?? "";
    const names = [...definition.matchAll(/([a-z]+) = true/g)].map((n) => n[1] as string);
    if (names.length > 0) found.push([m.index, sorted(names)]);
  }
  for (const m of text.matchAll(/(?:<>|!=|~=)\s*'active'/g)) {
    found.push([m.index, sorted(JOB_STATES.filter((s) => s !== "active"))]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, list]) => list);
}

/** The operator reasons in `text`, in order: constants named `*_REASON` and literal "… by operator …" texts. */
function reasons(text: string): string[] {
  const found: [number, string][] = [];
  for (const m of text.matchAll(/\b([A-Z_]+_REASON)\b/g)) {
    const reason = REASONS[m[1] as string];
    if (reason === undefined) throw new Error(`unknown reason ${m[1]}`);
    found.push([m.index, reason]);
  }
  for (const m of text.matchAll(/(['"`])((?:retried|cancelled|recovered) by operator[^'"`$]*)\1/g)) {
    found.push([m.index, m[2] as string]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, reason]) => reason);
}

/** The body of `async name(` in a class source (up to its closing brace at two spaces). */
function method(text: string, name: string): string {
  const start = text.indexOf(`\n  async ${name}(`);
  if (start < 0) throw new Error(`no method ${name}`);
  return text.slice(start, text.indexOf("\n  }\n", start));
}

/** The branches of the Redis bulk script, by action. */
function bulkBranches(lua: string): Record<string, string> {
  const parts = lua.split(/(?:if|elseif) action == '(\w+)' then/);
  const out: Record<string, string> = {};
  for (let i = 1; i < parts.length; i += 2) out[parts[i] as string] = parts[i + 1] as string;
  return out;
}

const L = (...lists: (readonly string[])[]) => lists.map(sorted);
/** States whose jobs wake workers (the NOTIFY filter of PostgreSQL's move). */
const WAKE = ["scheduled", "waiting"];

describe("the state lists", () => {
  it("are what the state machine says (docs/internals.md)", () => {
    expect(RETRYABLE_STATES).toEqual(["dead", "cancelled", "completed", "scheduled"]);
    expect(CANCEL_AT_ONCE_STATES).toEqual(["scheduled", "waiting", "blocked"]);
    expect(CANCELLABLE_STATES).toEqual(["scheduled", "waiting", "blocked", "active"]);
    expect(REMOVABLE_STATES).toEqual(["scheduled", "waiting", "blocked", "completed", "dead", "cancelled"]);
    expect(sorted(REMOVABLE_STATES)).toEqual(sorted(JOB_STATES.filter((s) => s !== "active")));
    expect(PURGEABLE_STATES).toEqual(["completed", "dead", "cancelled"]);
    expect(MOVABLE_STATES).toEqual(["scheduled", "waiting", "blocked", "dead", "cancelled"]);
    expect(REPRIORITIZABLE_STATES).toEqual(["scheduled", "waiting", "blocked"]);
    // Narrower actions stay inside wider ones.
    for (const s of PURGEABLE_STATES) expect(REMOVABLE_STATES).toContain(s);
    for (const s of REPRIORITIZABLE_STATES) expect(MOVABLE_STATES).toContain(s);
    expect(MOVABLE_STATES).not.toContain("active");
  });

  it("are re-exported by the store contract for code that imports them there", () => {
    expect(contract.MOVABLE_STATES).toBe(MOVABLE_STATES);
    expect(contract.REPRIORITIZABLE_STATES).toBe(REPRIORITIZABLE_STATES);
    expect(contract.leaseExpiredReason).toBe(leaseExpiredReason);
    expect(contract.forcedRecoveryReason).toBe(forcedRecoveryReason);
  });

  it("build SQL and Lua text equal to the literals they replace", () => {
    expect(sqlStateList(RETRYABLE_STATES)).toBe("'dead', 'cancelled', 'completed', 'scheduled'");
    expect(sqlString("it's")).toBe("'it''s'");
    expect(SCRIPTS.bulk.lua).toContain(
      "local RETRYABLE = { dead = true, cancelled = true, completed = true, scheduled = true }",
    );
  });
});

describe("each surface and engine uses the shared lists", () => {
  const sqlite = source("src/store/sqlite/sqlite-store.ts");
  const postgres = source("src/store/postgres/postgres-store.ts");
  const redis = source("src/store/redis/redis-store.ts");
  const bulk = bulkBranches(SCRIPTS.bulk.lua);

  const cases: [string, string, string[][]][] = [
    ["SQLite retry", method(sqlite, "retry"), L(RETRYABLE_STATES, RETRYABLE_STATES)],
    ["SQLite cancel", method(sqlite, "cancel"), L(CANCELLABLE_STATES, CANCEL_AT_ONCE_STATES)],
    ["SQLite remove", method(sqlite, "remove"), L(REMOVABLE_STATES, REMOVABLE_STATES)],
    // The third: the `moved` event, written first under the update's own guard.
    ["SQLite move", method(sqlite, "move"), L(MOVABLE_STATES, MOVABLE_STATES, MOVABLE_STATES)],
    [
      "SQLite reprioritize",
      method(sqlite, "reprioritize"),
      L(REPRIORITIZABLE_STATES, REPRIORITIZABLE_STATES, REPRIORITIZABLE_STATES),
    ],
    ["PostgreSQL retry", method(postgres, "retry"), L(RETRYABLE_STATES, RETRYABLE_STATES)],
    ["PostgreSQL cancel", method(postgres, "cancel"), L(CANCEL_AT_ONCE_STATES, CANCEL_AT_ONCE_STATES)],
    [
      "PostgreSQL remove",
      method(postgres, "remove"),
      L(REMOVABLE_STATES, REMOVABLE_STATES, REMOVABLE_STATES),
    ],
    ["PostgreSQL move", method(postgres, "move"), L(MOVABLE_STATES, MOVABLE_STATES, WAKE)],
    ["PostgreSQL reprioritize", method(postgres, "reprioritize"), L(REPRIORITIZABLE_STATES)],
    ["Redis retry", method(redis, "retry"), L(RETRYABLE_STATES)],
    ["Redis cancel", method(redis, "cancel"), L(CANCELLABLE_STATES)],
    ["Redis remove", method(redis, "remove"), L(REMOVABLE_STATES)],
    ["Redis move", method(redis, "move"), L(MOVABLE_STATES)],
    ["Redis reprioritize", method(redis, "reprioritize"), L(REPRIORITIZABLE_STATES)],
    ["Lua bulk retry", bulk.retry ?? "", L(RETRYABLE_STATES)],
    ["Lua bulk cancel", bulk.cancel ?? "", L(CANCEL_AT_ONCE_STATES)],
    // The first: a job deleted before it was final (its unfinished states) settles as "deleted" (flows).
    ["Lua bulk remove", bulk.remove ?? "", L(CANCEL_AT_ONCE_STATES, REMOVABLE_STATES)],
    ["Lua bulk move", bulk.move ?? "", L(MOVABLE_STATES)],
    ["Lua bulk reprioritize", bulk.reprioritize ?? "", L(REPRIORITIZABLE_STATES)],
  ];
  it.each(cases)("%s", (_site, text, expected) => {
    // A remove guard written as `<> 'active'` counts as every state but active (REMOVABLE_STATES).
    expect(stateLists(text, SCRIPTS.bulk.lua)).toEqual(expected);
  });

  it("Admin and the CLI take every bulk list from core/states.ts", () => {
    const admin = source("src/client/admin.ts");
    const table = admin.slice(admin.indexOf("const BULK_STATES"), admin.indexOf("} as const satisfies"));
    const adminLists = Object.fromEntries(
      [...table.matchAll(/^\s+(\w+): (.+),$/gm)].map((m) => [m[1], stateLists(m[2] as string)]),
    );
    expect(adminLists).toEqual({
      retry: L(RETRYABLE_STATES),
      cancel: L(CANCELLABLE_STATES),
      remove: L(REMOVABLE_STATES),
      move: L(MOVABLE_STATES),
      reprioritize: L(REPRIORITIZABLE_STATES),
    });
    const cli = source("src/cli/commands/bulk-commands.ts");
    const cliLists = Object.fromEntries(
      [...cli.matchAll(/name: "(\w+)",[^}]*?states: ([^,]+),/g)].map((m) => [
        m[1],
        stateLists(m[2] as string),
      ]),
    );
    expect(cliLists).toEqual({
      retry: L(RETRYABLE_STATES),
      cancel: L(CANCELLABLE_STATES),
      delete: L(REMOVABLE_STATES),
      purge: L(PURGEABLE_STATES),
      move: L(MOVABLE_STATES),
      reprioritize: L(REPRIORITIZABLE_STATES),
    });
  });
});

describe("each engine stores the shared reasons", () => {
  const sqlite = source("src/store/sqlite/sqlite-store.ts");
  const postgres = source("src/store/postgres/postgres-store.ts");
  const migrations = MIGRATIONS.map((m) => m.sql('"s"')).join("\n");
  const releaseFunction = migrations.slice(
    migrations.indexOf('FUNCTION "s".release_jobs'),
    migrations.indexOf("$fn$;", migrations.indexOf('FUNCTION "s".release_jobs')),
  );
  const bulk = bulkBranches(SCRIPTS.bulk.lua);

  const cases: [string, string, string[]][] = [
    ["SQLite retry", method(sqlite, "retry"), [RETRIED_REASON]],
    ["SQLite cancel", method(sqlite, "cancel"), [CANCELLED_REASON]],
    ["SQLite release", method(sqlite, "release"), [CANCELLED_WHILE_ACTIVE_REASON]],
    ["PostgreSQL retry", method(postgres, "retry"), [RETRIED_REASON]],
    // Twice: the stored reason and the `cancelled` event's.
    ["PostgreSQL cancel", method(postgres, "cancel"), [CANCELLED_REASON, CANCELLED_REASON]],
    // A shipped migration stays literal (changing its text would not change a migrated database).
    ["PostgreSQL release_jobs (migration 6)", releaseFunction, [CANCELLED_WHILE_ACTIVE_REASON]],
    ["Lua bulk retry", bulk.retry ?? "", [RETRIED_REASON]],
    ["Lua bulk cancel", bulk.cancel ?? "", [CANCELLED_REASON]],
    ["Lua release", SCRIPTS.release.lua, [CANCELLED_WHILE_ACTIVE_REASON]],
  ];
  it.each(cases)("%s", (_site, text, expected) => {
    expect(reasons(text)).toEqual(expected);
  });

  it("no other engine text writes an operator reason of its own", () => {
    const all = [sqlite, postgres, migrations, source("src/store/redis/redis-store.ts")]
      .concat(Object.values(SCRIPTS).map((s) => s.lua))
      .flatMap(reasons);
    for (const reason of all) expect(Object.values(REASONS)).toContain(reason);
  });

  it("recovery reasons come from leaseExpiredReason / forcedRecoveryReason, never engine literals", () => {
    for (const text of [sqlite, postgres, SCRIPTS.recover.lua, migrations]) {
      expect(text).not.toMatch(/lease expired:|held it past the cutoff/);
    }
    expect(method(sqlite, "recover")).toContain("recoveryTarget(");
    expect(method(postgres, "recover")).toContain("recoveryTarget(");
  });

  it("the runtime writes no reason of its own: the failure policy takes the shared ones", () => {
    expect(reasons(source("src/runtime/worker.ts"))).toEqual([]);
    const policy = source("src/core/failure-policy.ts");
    expect(policy).not.toMatch(/(['"`])(retried|cancelled|recovered) by operator/);
    expect(new Set(reasons(policy))).toEqual(
      new Set([CANCELLED_WHILE_ACTIVE_REASON, CANCELLED_BEFORE_START_REASON]),
    );
  });
});

describe("recoveryTarget", () => {
  const job = { cancelRequested: false, attempt: 1, maxAttempts: 3, workerId: "host/1/a", forced: false };

  it("sends a job with attempts left back to waiting", () => {
    expect(recoveryTarget(job)).toEqual({
      to: "waiting",
      reason: "lease expired: worker host/1/a stopped heartbeating",
    });
  });

  it("sends a job out of attempts to dead (attempt = maxAttempts, and past it)", () => {
    expect(recoveryTarget({ ...job, attempt: 3 }).to).toBe("dead");
    expect(recoveryTarget({ ...job, attempt: 4 }).to).toBe("dead");
    expect(recoveryTarget({ ...job, attempt: 2 }).to).toBe("waiting");
  });

  it("cancels a job whose cancel was requested, on its last attempt or with attempts left", () => {
    expect(recoveryTarget({ ...job, cancelRequested: true, attempt: 3 }).to).toBe("cancelled");
    expect(recoveryTarget({ ...job, cancelRequested: true, attempt: 1 }).to).toBe("cancelled");
  });

  it("says lease expired, or recovered by operator when forced", () => {
    expect(recoveryTarget({ ...job, attempt: 3 }).reason).toBe(
      "lease expired: worker host/1/a stopped heartbeating",
    );
    expect(recoveryTarget({ ...job, forced: true })).toEqual({
      to: "waiting",
      reason: "recovered by operator: worker host/1/a held it past the cutoff",
    });
    expect(recoveryTarget({ ...job, forced: true, cancelRequested: true }).reason).toBe(
      forcedRecoveryReason("host/1/a"),
    );
  });

  it("names an unknown worker", () => {
    expect(recoveryTarget({ ...job, workerId: null }).reason).toBe(
      "lease expired: worker unknown stopped heartbeating",
    );
    expect(recoveryTarget({ ...job, workerId: null, forced: true }).reason).toBe(
      "recovered by operator: worker unknown held it past the cutoff",
    );
  });
});
