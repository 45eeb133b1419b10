/**
 * Who may call the HTTP API: bearer tokens (or HTTP Basic with the token as the password), each with a
 * role. `read` may call every GET route; `admin` may also call the mutating ones (POST, DELETE).
 *
 * Tokens come from `createHttpApi`'s `tokens` option, else the `SLUICE_HTTP_TOKENS` environment variable,
 * written `role:token` and comma separated: `SLUICE_HTTP_TOKENS="admin:3f9c…,read:a1b2…"`. A token is at
 * least 16 characters of `A-Z a-z 0-9 - _ . ~ + / =` (what `openssl rand -base64 32` or `-hex 32` prints).
 * Tokens are never read from a cookie or a query string, and they are compared in constant time.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { ValidationError } from "../index.js";

/** What a token allows: `read` the GET routes, `admin` every route. */
export type HttpRole = "read" | "admin";

/** One accepted token and its role. */
export interface HttpToken {
  role: HttpRole;
  token: string;
}

const TOKEN = /^[A-Za-z0-9\-_.~+/=]{16,512}$/;

/** Validates tokens given as objects; throws ValidationError INVALID_CONFIG naming the bad one (never its text). */
export function validateTokens(tokens: readonly HttpToken[], source: string): HttpToken[] {
  return tokens.map((t, i) => {
    if (t === null || typeof t !== "object" || (t.role !== "read" && t.role !== "admin")) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `${source}: token ${i + 1} needs a role "read" or "admin"`,
        {
          field: "tokens",
        },
      );
    }
    if (typeof t.token !== "string" || !TOKEN.test(t.token)) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `${source}: token ${i + 1} (${t.role}) must be 16 to 512 characters of A-Z a-z 0-9 - _ . ~ + / = ` +
          "(e.g. the output of: openssl rand -hex 32)",
        { field: "tokens" },
      );
    }
    return { role: t.role, token: t.token };
  });
}

/** Parses `role:token,role:token` (the `SLUICE_HTTP_TOKENS` format); throws INVALID_CONFIG. */
export function parseTokens(text: string, source = "SLUICE_HTTP_TOKENS"): HttpToken[] {
  const parts = text
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  return validateTokens(
    parts.map((part, i) => {
      const colon = part.indexOf(":");
      const role = colon < 0 ? "" : part.slice(0, colon).trim();
      if (role !== "read" && role !== "admin") {
        throw new ValidationError(
          "INVALID_CONFIG",
          `${source}: entry ${i + 1} must be written role:token with role read or admin (e.g. admin:3f9c…)`,
          { field: "tokens" },
        );
      }
      return { role, token: part.slice(colon + 1).trim() };
    }),
    source,
  );
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Tokens prepared for constant-time comparison. */
export interface TokenTable {
  readonly entries: readonly { role: HttpRole; digest: Buffer }[];
}

export function tokenTable(tokens: readonly HttpToken[]): TokenTable {
  return { entries: tokens.map((t) => ({ role: t.role, digest: digest(t.token) })) };
}

/**
 * The role of the credentials in an `Authorization` header (`Bearer <token>`, or `Basic` with the token as
 * the password and any user name), or null when there are none or they match no token. Every configured
 * token is compared (fixed-length digests, `timingSafeEqual`), so the time taken tells nothing about which
 * or how much of a token matched.
 */
export function authenticate(header: string | undefined, table: TokenTable): HttpRole | null {
  const presented = credentialsOf(header);
  if (presented === null) return null;
  const given = digest(presented);
  let role: HttpRole | null = null;
  for (const entry of table.entries) {
    if (timingSafeEqual(entry.digest, given) && role !== "admin") role = entry.role;
  }
  return role;
}

function credentialsOf(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
  if (!match) return null;
  const scheme = (match[1] ?? "").toLowerCase();
  const value = match[2] ?? "";
  if (scheme === "bearer") return value;
  const decoded = Buffer.from(value, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/** True for the loopback addresses `sluice serve` may listen on without a token. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}
