/**
 * Translation of `pg` failures into Sluice errors. Every failure of a store call surfaces as
 * StoreUnavailableError (the contract: callers branch on one code), but the message distinguishes
 * "cannot reach the server" from "the server refused the statement", because the fixes differ.
 * Messages carry the redacted location only: a URL with a password never reaches a log line.
 */
import { SluiceError, StoreUnavailableError } from "../../core/errors.js";

/** Node socket errors that mean the server cannot be reached or the connection broke. */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ENOENT", // Unix socket path missing: the server is not running
]);

/**
 * SQLSTATEs that mean the connection is unusable or the server is going away: class 08 (connection
 * exception), 57P01-57P05 (admin/crash shutdown, cannot connect now, idle session timeout), 53300
 * (too many connections).
 */
function isConnectionSqlState(code: string): boolean {
  return code.startsWith("08") || /^57P0[1-5]$/.test(code) || code === "53300";
}

/** True when `error` means the server is unreachable or the connection was lost (worth retrying later). */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (SOCKET_CODES.has(code) || isConnectionSqlState(code))) return true;
  // pg reports a dropped socket and pool checkout timeouts with plain Errors and these messages.
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|not queryable|Query read timeout/i.test(
    error.message,
  );
}

function isAuthError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "28P01" || code === "28000" || code === "3D000";
}

/**
 * Wraps `error` (from an operation described by `action`, e.g. "claim jobs") as a SluiceError.
 * Errors that already are SluiceErrors pass through.
 */
export function toStoreError(error: unknown, action: string, location: string): SluiceError {
  if (error instanceof SluiceError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const codeText = typeof code === "string" ? ` [${code}]` : "";
  if (isConnectionError(error)) {
    return new StoreUnavailableError(
      `cannot ${action}: PostgreSQL at ${location} is unreachable (${detail}${codeText}); check that the server is ` +
        "running and reachable from this host (host, port, firewall) and that it accepts connections",
      { cause: error },
    );
  }
  if (isAuthError(error)) {
    return new StoreUnavailableError(
      `cannot ${action}: PostgreSQL at ${location} refused the connection (${detail}${codeText}); check the user, ` +
        "password and database name in the URL and the server's pg_hba.conf",
      { cause: error },
    );
  }
  return new StoreUnavailableError(
    `cannot ${action}: PostgreSQL at ${location} rejected the statement (${detail}${codeText}); nothing was written`,
    { cause: error, rejected: true },
  );
}
