/**
 * Parses a PostgreSQL store URL. Sluice's own options travel in the query string so that the whole
 * configuration is one string (SLUICE_URL, child processes, config files); they are stripped before the
 * URL reaches `pg`, which would otherwise pass unknown parameters to the server as startup options.
 *
 * - `schema` (default `sluice`): where the tables live; also the LISTEN/NOTIFY channel name.
 * - `pool` (default 10): connections in the pool (the LISTEN connection is extra).
 * - `connectTimeoutMs` (default 5000): how long a new connection may take before the call fails with
 *   StoreUnavailableError (a black-holed host would otherwise hang a producer for minutes).
 * - `queryTimeoutMs` (default 0, off): how long one statement may go unanswered before the call fails with
 *   StoreUnavailableError and its connection is discarded. Client-side: it catches a half-open connection
 *   (a peer that vanished without a FIN) in seconds instead of at the kernel's keepalive (minutes). Off by
 *   default because `pg`'s per-query timer halved single-statement throughput on the benchmarks.
 * - `listenCheckMs` (default 10000): how often the LISTEN connection, which otherwise only receives, proves
 *   it is alive with a `SELECT 1` (answered within 5 s, else it reconnects).
 * - `claimCommit` (default `sync`): how a claim (and the start of a job claimed ahead) commits. `async`
 *   commits without waiting for the WAL flush (`synchronous_commit = off` for that transaction only): a
 *   claim is then one round trip with no disk wait. Atomicity and visibility are unchanged, but a server
 *   crash (not a client crash) can lose the claims of the last few hundred milliseconds while their
 *   handlers already run: those jobs come back as waiting and run a second time. `sync`, the default,
 *   keeps the guarantee that a store restart never runs a job twice (test/chaos, restart-recovery).
 * - `vacuum` (default `auto`): the maintenance leader vacuums the jobs, events, logs and edges tables when
 *   their dead rows pass a threshold (vacuum.ts says why a queue needs it even with autovacuum on). `off`
 *   leaves vacuuming to autovacuum or the operator.
 */
import { ValidationError } from "../../core/errors.js";
import type { StoreTarget } from "../engine.js";
import { serverUrl } from "../engine.js";
import { redactUrl } from "../redact.js";

/** Lower-case identifiers only: they need no quoting rules of their own and are valid channel names. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PostgresConfig {
  /** The URL for `pg`, without Sluice's parameters. */
  connectionString: string;
  schema: string;
  poolSize: number;
  connectTimeoutMs: number;
  /** 0: no client-side statement timeout. */
  queryTimeoutMs: number;
  listenCheckMs: number;
  /** Claims and starts commit without waiting for the WAL flush (see `claimCommit` above). */
  asyncClaims: boolean;
  /** The maintenance leader vacuums the busy tables past a dead-row threshold (vacuum.ts). */
  vacuum: boolean;
  /** The URL with the password removed, for logs and error messages. */
  location: string;
}

/** True when `name` may be used as a schema name (and hence a channel name). */
export function isValidSchemaName(name: string): boolean {
  return IDENTIFIER.test(name);
}

export function parsePostgresUrl(url: string): PostgresConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // No cause: the parser's TypeError carries the whole URL (password included) as `input`.
    throw new ValidationError("INVALID_CONFIG", `PostgreSQL URL "${redactUrl(url)}" is not a valid URL`, {
      field: "url",
    });
  }
  const params = parsed.searchParams;
  const schema = params.get("schema") ?? "sluice";
  if (!isValidSchemaName(schema)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `PostgreSQL URL option schema="${schema}" is not a valid schema name: use lower-case letters, digits and _ ` +
        "(starting with a letter or _), at most 63 characters",
      { field: "url" },
    );
  }
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = params.get(name);
    if (raw === null) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `PostgreSQL URL option ${name}="${raw}" must be an integer from ${min} to ${max}`,
        { field: "url" },
      );
    }
    return value;
  };
  const poolSize = integer("pool", 10, 1, 1000);
  const connectTimeoutMs = integer("connectTimeoutMs", 5_000, 1, 600_000);
  const queryTimeoutMs = integer("queryTimeoutMs", 0, 0, 3_600_000);
  const listenCheckMs = integer("listenCheckMs", 10_000, 100, 600_000);
  const claimCommit = params.get("claimCommit") ?? "sync";
  if (claimCommit !== "async" && claimCommit !== "sync") {
    throw new ValidationError(
      "INVALID_CONFIG",
      `PostgreSQL URL option claimCommit="${claimCommit}" must be async or sync`,
      { field: "url" },
    );
  }
  const vacuum = params.get("vacuum") ?? "auto";
  if (vacuum !== "auto" && vacuum !== "off") {
    throw new ValidationError(
      "INVALID_CONFIG",
      `PostgreSQL URL option vacuum="${vacuum}" must be auto or off`,
      {
        field: "url",
      },
    );
  }
  const ours = [
    "schema",
    "pool",
    "connectTimeoutMs",
    "queryTimeoutMs",
    "listenCheckMs",
    "claimCommit",
    "vacuum",
  ];
  for (const name of ours) params.delete(name);
  const connectionString = parsed.toString();
  return {
    connectionString,
    schema,
    poolSize,
    connectTimeoutMs,
    queryTimeoutMs,
    listenCheckMs,
    asyncClaims: claimCommit === "async",
    vacuum: vacuum === "auto",
    location: redactUrl(connectionString),
  };
}

/** The server for `sluice doctor`'s commands (`pg_isready -h … -p …`); unparsable URLs keep no address. */
export function postgresTarget(url: string): StoreTarget {
  const server = serverUrl(url);
  if (!server) return { engine: "unknown" };
  const { parsed, host, user, hasPassword } = server;
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || null;
  return {
    engine: "postgres",
    host,
    port: Number(parsed.port || 5432),
    user,
    database,
    hasPassword,
  };
}
