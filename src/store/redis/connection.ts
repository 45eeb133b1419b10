/**
 * ioredis connections for the Redis engine: fail-fast configuration, reconnect with logged backoff,
 * translation of driver errors into {@link StoreUnavailableError}, and the script runner (scripts are
 * loaded once per connection with SCRIPT LOAD and always called by SHA).
 */
import { createHash } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { SluiceError, StoreUnavailableError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { SCRIPTS, type ScriptName } from "./lua.js";

/** Connection role: the command connection or the pub/sub subscriber. */
export type ConnectionRole = "commands" | "subscriber";

/**
 * Creates a client that never queues commands while disconnected: a producer gets a clear error at once
 * instead of a promise that hangs until Redis comes back. Reconnection runs in the background with
 * exponential backoff (capped at 2 s), and each attempt is logged.
 */
export function createClient(
  connection: string,
  location: string,
  role: ConnectionRole,
  logger: Logger,
): Redis {
  let down = false;
  const options: RedisOptions = {
    lazyConnect: true,
    // RESP2 keeps reply shapes (WITHSCORES, HGETALL) plain arrays whatever the server version.
    protocol: 2,
    connectTimeout: 5_000,
    // Commands issued while disconnected fail at once (StoreUnavailableError) rather than wait.
    enableOfflineQueue: role === "subscriber",
    // A command in flight when the socket dies is rejected, never silently resent: a resent claim could
    // lease jobs nobody receives (they would only come back after their lease expired).
    // The subscriber's SUBSCRIBE waits for the connection instead (nothing else is sent on it).
    maxRetriesPerRequest: role === "subscriber" ? null : 0,
    autoResendUnfulfilledCommands: false,
    // A half-open socket (no RST after a server crash or partition) must not hang a command forever.
    commandTimeout: role === "commands" ? 30_000 : undefined,
    keepAlive: 10_000,
    connectionName: `sluice:${role}`,
    retryStrategy: (times) => {
      down = true;
      const delay = Math.min(50 * 2 ** Math.min(times, 6), 2_000) + Math.floor(Math.random() * 50);
      const log = times === 1 || times % 10 === 0 ? logger.warn.bind(logger) : logger.debug.bind(logger);
      log(
        { engine: "redis", role, location, attempt: times, retryInMs: delay },
        "redis connection lost; reconnecting",
      );
      return delay;
    },
  };
  const client = new Redis(connection, options);
  let lastError = "";
  client.on("error", (error: Error) => {
    // ioredis emits an error per failed reconnect; log each distinct message once per outage.
    if (error.message === lastError) return;
    lastError = error.message;
    logger.warn({ engine: "redis", role, location, err: error.message }, "redis connection error");
  });
  client.on("ready", () => {
    if (down) logger.info({ engine: "redis", role, location }, "redis connection restored");
    down = false;
    lastError = "";
  });
  return client;
}

const UNREACHABLE = [
  "Connection is closed",
  "Stream isn't writeable",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "Command timed out",
  "MaxRetriesPerRequest",
  "Reached the max retries",
  "connect ETIMEDOUT",
  "LOADING",
  "Socket closed",
];

/** True when `error` means the server could not be reached (as opposed to a command error). */
export function isUnreachable(error: unknown): boolean {
  const message = error instanceof Error ? `${error.name} ${error.message}` : String(error);
  return UNREACHABLE.some((m) => message.includes(m));
}

/** Wraps any driver error into a {@link StoreUnavailableError} that says what to check. */
export function toStoreError(error: unknown, location: string, action: string): Error {
  if (error instanceof SluiceError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (isUnreachable(error)) {
    return new StoreUnavailableError(
      `Redis at ${location} is unreachable (${message}) while trying to ${action}; nothing was written. ` +
        "Check that redis-server is running and reachable; Sluice reconnects by itself when it is back.",
      { cause: error },
    );
  }
  if (message.startsWith("OOM")) {
    return new StoreUnavailableError(
      `Redis at ${location} is out of memory (${message}) while trying to ${action}; nothing was written. ` +
        "Raise maxmemory, lower job retention, or delete old jobs (sluice purge).",
      { cause: error },
    );
  }
  if (message.startsWith("READONLY") || message.startsWith("MASTERDOWN")) {
    return new StoreUnavailableError(
      `Redis at ${location} does not accept writes (${message}) while trying to ${action}; point the URL at the primary.`,
      { cause: error },
    );
  }
  return new StoreUnavailableError(`Redis at ${location} failed to ${action}: ${message}`, {
    cause: error,
    rejected: true,
  });
}

/** SHA1 of each script, computed locally so calls never wait for SCRIPT LOAD's reply. */
export const SCRIPT_SHAS: Record<ScriptName, string> = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, s]) => [name, createHash("sha1").update(s.lua).digest("hex")]),
) as Record<ScriptName, string>;

/** Loads every script into the server's cache (idempotent; one pipelined round trip). */
export async function loadScripts(client: Redis): Promise<void> {
  const pipeline = client.pipeline();
  for (const s of Object.values(SCRIPTS)) pipeline.script("LOAD", s.lua);
  const results = (await pipeline.exec()) ?? [];
  for (const [error] of results) if (error) throw error;
}

/** Arguments of an EVALSHA call: the script, its keys, its arguments. */
export interface ScriptCall {
  name: ScriptName;
  keys: string[];
  args: (string | number)[];
}

/** EVALSHA arguments for a call. */
export function evalshaArgs(call: ScriptCall): [string, number, ...(string | number)[]] {
  return [SCRIPT_SHAS[call.name], call.keys.length, ...call.keys, ...call.args];
}

/** True for the server's "script not in cache" reply (after a restart without persistence of the cache, or SCRIPT FLUSH). */
export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}
