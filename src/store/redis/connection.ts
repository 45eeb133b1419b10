/**
 * ioredis connections for the Redis engine: fail-fast configuration, reconnect with logged backoff,
 * translation of driver errors into {@link StoreUnavailableError}, and the script runner (scripts are
 * loaded once per connection with SCRIPT LOAD and always called by SHA).
 */
import { createHash } from "node:crypto";
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { SluiceError, StoreUnavailableError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { RedisUrl } from "./config.js";
import { type ScriptName, scriptsFor } from "./lua.js";

/** Connection role: the command connection or the pub/sub subscriber. */
export type ConnectionRole = "commands" | "subscriber";

/** A single-server client or a Redis Cluster client: the engine issues the same commands on both. */
export type RedisClient = Redis | Cluster;

/** True for the Cluster client (the engine keeps each script and MULTI in one slot there). */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * Creates a client that never queues commands while disconnected: a producer gets a clear error at once
 * instead of a promise that hangs until Redis comes back. Reconnection runs in the background with
 * exponential backoff (capped at 2 s), and each attempt is logged.
 */
export function createClient(
  target: RedisUrl,
  location: string,
  role: ConnectionRole,
  logger: Logger,
): RedisClient {
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
  let client: RedisClient;
  if (target.cluster) {
    const { nodes, username, password, tls } = target.cluster;
    const { retryStrategy, enableOfflineQueue, ...perNode } = options;
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue,
      // ioredis's cluster ready check (CLUSTER INFO) is refused by that same offline-queue rule while the
      // node it picked is still connecting, and its connect() then never settles: skip it (a cluster that is
      // down answers CLUSTERDOWN, a StoreUnavailableError, instead). The store connects every master while
      // loading its scripts, before its first command.
      enableReadyCheck: enableOfflineQueue === true,
      // Commands to one node leave in one write (the cluster's answer to the pipelines the single-server
      // path builds; a pipeline on a Cluster client must stay in one slot).
      enableAutoPipelining: role === "commands",
      // Slot moves (MOVED / ASK) are followed a few times, then surface as an error.
      maxRedirections: 16,
      clusterRetryStrategy: retryStrategy,
      // Re-read the slot map every 10 s even without a redirection (a failover elsewhere).
      slotsRefreshInterval: 10_000,
      redisOptions: {
        ...perNode,
        lazyConnect: false,
        ...(username !== undefined ? { username } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(tls ? { tls: {} } : {}),
      },
    };
    client = new Cluster(nodes, clusterOptions);
  } else {
    client = new Redis(target.connection, options);
  }
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
  "CLUSTERDOWN",
  "Failed to refresh slots cache",
  "None of startup nodes is available",
  "Cluster isn't ready",
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

const shasOf = (cluster: boolean): Record<ScriptName, string> =>
  Object.fromEntries(
    Object.entries(scriptsFor(cluster)).map(([name, s]) => [
      name,
      createHash("sha1").update(s.lua).digest("hex"),
    ]),
  ) as Record<ScriptName, string>;

/**
 * SHA1 of each script, computed locally so calls never wait for SCRIPT LOAD's reply: the single-server set
 * and the cluster set (lua.ts `scriptsFor`: the same scripts, keeping flow keys in the queue's slot).
 */
export const SCRIPT_SHAS: Record<ScriptName, string> = shasOf(false);
export const CLUSTER_SCRIPT_SHAS: Record<ScriptName, string> = shasOf(true);

/**
 * Loads every script into the server's cache (idempotent; one pipelined round trip). On a cluster, into
 * every master's cache: SCRIPT LOAD goes to one node, and an EVALSHA runs on the node of its key's slot.
 */
export async function loadScripts(client: RedisClient): Promise<void> {
  const cluster = isCluster(client);
  const targets: Redis[] = cluster ? client.nodes("master") : [client];
  if (cluster && targets.length === 0) throw new Error("Cluster isn't ready: no master known yet");
  await Promise.all(
    targets.map(async (node) => {
      const pipeline = node.pipeline();
      for (const s of Object.values(scriptsFor(cluster))) pipeline.script("LOAD", s.lua);
      const results = (await pipeline.exec()) ?? [];
      for (const [error] of results) if (error) throw error;
    }),
  );
}

/** Arguments of an EVALSHA call: the script, its keys, its arguments. */
export interface ScriptCall {
  name: ScriptName;
  keys: string[];
  args: (string | number)[];
}

/** EVALSHA arguments for a call (`cluster`: the cluster set of scripts). */
export function evalshaArgs(call: ScriptCall, cluster = false): [string, number, ...(string | number)[]] {
  return [
    (cluster ? CLUSTER_SCRIPT_SHAS : SCRIPT_SHAS)[call.name],
    call.keys.length,
    ...call.keys,
    ...call.args,
  ];
}

/** True for the server's "script not in cache" reply (after a restart without persistence of the cache, or SCRIPT FLUSH). */
export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}
