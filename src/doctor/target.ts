/**
 * The store's address as the doctor's suggested commands need it (`redis-cli -h … -p …`, `pg_isready …`,
 * `ls -ld <dir>`): parsed from the URL, without its password — only whether there is one, so a command
 * can ask for it (`--askpass`) instead of printing it or a useless `***`.
 */
import { ENGINES } from "../store/index.js";
import type { StoreTarget } from "./types.js";

/**
 * Parses a store URL into a {@link StoreTarget}, by the descriptor of the engine it selects; unknown or
 * unparsable URLs keep only the engine.
 */
export function storeTarget(url: string): StoreTarget {
  return ENGINES.find((e) => e.matches(url))?.doctorTarget(url) ?? { engine: "unknown" };
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
