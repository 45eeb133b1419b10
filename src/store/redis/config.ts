/**
 * Parses a Redis store URL: `redis://[user:password@]host:port/db?prefix=sluice` (also `rediss://` for
 * TLS). Sluice's one option, `prefix` (default `sluice`), names the hash tag every key lives under; it is
 * stripped before the URL reaches ioredis.
 */
import { ValidationError } from "../../core/errors.js";
import type { StoreTarget } from "../engine.js";
import { serverUrl } from "../engine.js";
import { redactUrl } from "../redact.js";

/** Connection settings parsed from `redis://host:port/db?prefix=sluice`. */
export interface RedisUrl {
  /** The URL without Sluice's own query parameters (what ioredis gets). */
  connection: string;
  prefix: string;
}

/** Splits the Sluice options (`prefix`) off a Redis URL. */
export function parseRedisUrl(url: string): RedisUrl {
  if (!URL.canParse(url)) {
    // ioredis would throw the parser's TypeError, which carries the whole URL (password included).
    throw new ValidationError("INVALID_CONFIG", `Redis URL "${redactUrl(url)}" is not a valid URL`, {
      field: "url",
    });
  }
  const question = url.indexOf("?");
  if (question < 0) return { connection: url, prefix: "sluice" };
  const params = new URLSearchParams(url.slice(question + 1));
  const prefix = params.get("prefix") ?? "sluice";
  if (prefix === "" || /[{}\s]/.test(prefix)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `Redis URL option prefix must be non-empty without braces or spaces, got "${prefix}"`,
      { field: "url" },
    );
  }
  params.delete("prefix");
  const rest = params.toString();
  return { connection: url.slice(0, question) + (rest ? `?${rest}` : ""), prefix };
}

/** The server for `sluice doctor`'s commands (`redis-cli -h … -p …`); unparsable URLs keep no address. */
export function redisTarget(url: string): StoreTarget {
  const server = serverUrl(url);
  if (!server) return { engine: "unknown" };
  const { parsed, host, user, hasPassword } = server;
  const db = Number(parsed.pathname.replace(/^\//, "") || 0);
  return {
    engine: "redis",
    host,
    port: Number(parsed.port || 6379),
    db: Number.isInteger(db) ? db : 0,
    user,
    tls: parsed.protocol === "rediss:",
    hasPassword,
  };
}
