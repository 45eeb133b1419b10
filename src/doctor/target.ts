/**
 * The store's address as the doctor's suggested commands need it (`redis-cli -h … -p …`, `pg_isready …`,
 * `ls -ld <dir>`): parsed from the URL, without its password — only whether there is one, so a command
 * can ask for it (`--askpass`) instead of printing it or a useless `***`.
 */
import { resolve } from "node:path";
import type { StoreTarget } from "./types.js";

/** Parses a store URL into a {@link StoreTarget}; unknown or unparsable URLs keep only the engine. */
export function storeTarget(url: string): StoreTarget {
  if (url.startsWith("sqlite:")) {
    const [raw = ""] = url.slice("sqlite:".length).split("?", 1);
    const path = raw.startsWith("//") ? raw.slice(2) : raw;
    if (path === ":memory:") return { engine: "sqlite", path, memory: true };
    return { engine: "sqlite", path: resolve(path || "."), memory: false };
  }
  const engine = /^postgres(ql)?:/.test(url) ? "postgres" : /^rediss?:/.test(url) ? "redis" : "unknown";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { engine: "unknown" };
  }
  const user = parsed.username === "" ? null : decodeURIComponent(parsed.username);
  const hasPassword = parsed.password !== "";
  const host = parsed.hostname.replace(/^\[|\]$/g, "") || "localhost";
  if (engine === "postgres") {
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || null;
    return {
      engine,
      host,
      port: Number(parsed.port || 5432),
      user,
      database,
      hasPassword,
    };
  }
  if (engine === "redis") {
    const db = Number(parsed.pathname.replace(/^\//, "") || 0);
    return {
      engine,
      host,
      port: Number(parsed.port || 6379),
      db: Number.isInteger(db) ? db : 0,
      user,
      tls: parsed.protocol === "rediss:",
      hasPassword,
    };
  }
  return { engine: "unknown" };
}

/** Quotes `text` for a POSIX shell when it needs it. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}

/** Always single-quoted (paths shown to `ls`, so a space or `$` in them is never a surprise). */
export function quotePath(path: string): string {
  return `'${path.replace(/'/g, "'\\''")}'`;
}

/** `redis-cli` connection arguments for the target (`-h H -p P [-n DB] [--tls] [--user U] [--askpass]`). */
export function redisCliArgs(target: StoreTarget): string | null {
  if (target.engine !== "redis") return null;
  const t = target;
  const args = [`-h ${shellQuote(t.host)}`, `-p ${t.port}`];
  if (t.db !== 0) args.push(`-n ${t.db}`);
  if (t.tls) args.push("--tls");
  if (t.user) args.push(`--user ${shellQuote(t.user)}`);
  if (t.hasPassword) args.push("--askpass");
  return args.join(" ");
}

/** `pg_isready` / `psql` connection arguments for the target (`-h H -p P [-U user] [-d db]`). */
export function pgArgs(target: StoreTarget): string | null {
  if (target.engine !== "postgres") return null;
  const t = target;
  const args = [`-h ${shellQuote(t.host)}`, `-p ${t.port}`];
  if (t.user) args.push(`-U ${shellQuote(t.user)}`);
  if (t.database) args.push(`-d ${shellQuote(t.database)}`);
  return args.join(" ");
}
