/**
 * Parses a Redis store URL: `redis://[user:password@]host:port/db?prefix=sluice` (also `rediss://` for
 * TLS), or, for Redis Cluster, `redis+cluster://[user:password@]host:port[,host:port…][/]?prefix=sluice`
 * (`rediss+cluster://` for TLS): the listed nodes are seeds, the client discovers the rest of the cluster from
 * them. Sluice's one option, `prefix` (default `sluice`), names the hash tag every key lives under; it is
 * stripped before the URL reaches ioredis.
 */
import { ValidationError } from "../../core/errors.js";
import type { StoreTarget } from "../engine.js";
import { serverUrl } from "../engine.js";
import { redactUrl } from "../redact.js";

/** A Redis Cluster target: its seed nodes and what every node connection needs. */
export interface RedisClusterTarget {
  nodes: { host: string; port: number }[];
  username: string | undefined;
  password: string | undefined;
  tls: boolean;
}

/** Connection settings parsed from `redis://host:port/db?prefix=sluice` or `redis+cluster://…`. */
export interface RedisUrl {
  /** The URL without Sluice's own query parameters (what ioredis gets); for a cluster, the URL as given. */
  connection: string;
  prefix: string;
  /** Set for `redis+cluster://` / `rediss+cluster://`: the engine opens an ioredis Cluster client. */
  cluster: RedisClusterTarget | null;
}

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//i;

/** True for a Redis Cluster URL (`redis+cluster://…`, `rediss+cluster://…`). */
export function isClusterUrl(url: string): boolean {
  return CLUSTER_SCHEME.test(url);
}

function prefixOf(params: URLSearchParams): string {
  const prefix = params.get("prefix") ?? "sluice";
  if (prefix === "" || /[{}\s]/.test(prefix)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `Redis URL option prefix must be non-empty without braces or spaces, got "${prefix}"`,
      { field: "url" },
    );
  }
  return prefix;
}

/** Splits the Sluice options (`prefix`) off a Redis URL. */
export function parseRedisUrl(url: string): RedisUrl {
  if (isClusterUrl(url)) return parseClusterUrl(url);
  if (!URL.canParse(url)) {
    // ioredis would throw the parser's TypeError, which carries the whole URL (password included).
    throw new ValidationError("INVALID_CONFIG", `Redis URL "${redactUrl(url)}" is not a valid URL`, {
      field: "url",
    });
  }
  const question = url.indexOf("?");
  if (question < 0) return { connection: url, prefix: "sluice", cluster: null };
  const params = new URLSearchParams(url.slice(question + 1));
  const prefix = prefixOf(params);
  params.delete("prefix");
  const rest = params.toString();
  return { connection: url.slice(0, question) + (rest ? `?${rest}` : ""), prefix, cluster: null };
}

/**
 * `redis+cluster://[user:password@]host:port[,host:port…][/][?prefix=…]`. A cluster has one database (0): a
 * path other than `/` or `/0` is refused, and so is any query option but `prefix` (ioredis takes no options
 * from a cluster URL, so one would be silently ignored).
 */
function parseClusterUrl(url: string): RedisUrl {
  const bad = (why: string) =>
    new ValidationError("INVALID_CONFIG", `Redis Cluster URL "${redactUrl(url)}" ${why}`, { field: "url" });
  const scheme = CLUSTER_SCHEME.exec(url)!;
  const rest = url.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  const tail = end < 0 ? "" : rest.slice(end);
  const at = authority.lastIndexOf("@");
  const userinfo = at < 0 ? "" : authority.slice(0, at);
  const hosts = at < 0 ? authority : authority.slice(at + 1);
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== "") {
    const colon = userinfo.indexOf(":");
    try {
      username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
      password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      throw bad("has a malformed user or password (percent-encode special characters)");
    }
  }
  const nodes = hosts.split(",").map((part) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(part);
    const port = Number(m?.[2] ?? 6379);
    if (!m || port < 1 || port > 65_535) throw bad(`has a malformed node "${part}" (expected host:port)`);
    return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
  });
  const hash = tail.indexOf("#");
  const beforeHash = hash < 0 ? tail : tail.slice(0, hash);
  const question = beforeHash.indexOf("?");
  const path = question < 0 ? beforeHash : beforeHash.slice(0, question);
  if (path !== "" && path !== "/" && path !== "/0") {
    throw bad("names a database: Redis Cluster has only database 0 (leave the path empty)");
  }
  const params = new URLSearchParams(question < 0 ? "" : beforeHash.slice(question + 1));
  const prefix = prefixOf(params);
  params.delete("prefix");
  const unknown = [...params.keys()];
  if (unknown.length > 0) throw bad(`has options Sluice does not pass to a cluster: ${unknown.join(", ")}`);
  return {
    connection: url,
    prefix,
    cluster: { nodes, username, password, tls: scheme[1]!.toLowerCase() === "rediss" },
  };
}

/** The server for `sluice doctor`'s commands (`redis-cli -h … -p …`); unparsable URLs keep no address. */
export function redisTarget(url: string): StoreTarget {
  if (isClusterUrl(url)) {
    // The first seed node, reached with `redis-cli -c` semantics by doctor's commands.
    try {
      const { cluster } = parseClusterUrl(url);
      const first = cluster!.nodes[0]!;
      return {
        engine: "redis",
        host: first.host,
        port: first.port,
        db: 0,
        user: cluster!.username ?? null,
        tls: cluster!.tls,
        hasPassword: cluster!.password !== undefined,
      };
    } catch {
      return { engine: "unknown" };
    }
  }
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
