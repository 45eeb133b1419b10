/**
 * What an operator must know about the Redis server (`sluice doctor`, `store.info()`).
 *
 * - `maxmemory-policy` other than `noeviction` lets Redis silently delete keys under memory pressure:
 *   jobs, their indexes and leases vanish, which breaks the at-least-once promise. Critical.
 * - Without AOF (`appendonly no`), a Redis restart loses every job written since the last RDB snapshot
 *   (or all of them with `save ""`). `appendfsync always|everysec` bounds the loss to at most ~1 s.
 *
 * Read from INFO (allowed on managed services that rename CONFIG); `appendfsync` needs CONFIG GET and is
 * skipped when that is not permitted.
 */
import { Cluster, type Redis } from "ioredis";
import type { StoreHazard } from "../contract.js";

/** Parses INFO text into key → value. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) out.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}

/**
 * The end of every fix: CONFIG SET lasts until a restart, CONFIG REWRITE writes the running settings to
 * the server's config file. Each fix is a shell command line that runs as printed (`#` starts a comment).
 */
const PERSIST =
  "redis-cli CONFIG REWRITE   # keeps it across restarts; without a redis.conf, add the setting to the server's command line";

/** Hazards for the given server settings (pure, for tests). */
export function hazardsOf(settings: {
  policy: string | undefined;
  aof: boolean;
  appendfsync: string | null;
}): StoreHazard[] {
  const hazards: StoreHazard[] = [];
  const { policy } = settings;
  if (policy === undefined) {
    hazards.push({
      severity: "warn",
      code: "REDIS_EVICTION_POLICY_UNKNOWN",
      message:
        "could not read maxmemory-policy: make sure it is noeviction, or Redis may delete jobs under memory pressure",
      fix: `redis-cli CONFIG SET maxmemory-policy noeviction && ${PERSIST}`,
    });
  } else if (policy !== "noeviction") {
    hazards.push({
      severity: "critical",
      code: "REDIS_EVICTION_POLICY",
      message:
        `Redis maxmemory-policy is ${policy}: under memory pressure Redis evicts keys, silently deleting jobs ` +
        "(at-least-once is broken). Sluice needs noeviction, so a full Redis rejects new jobs with an error instead.",
      fix: `redis-cli CONFIG SET maxmemory-policy noeviction && ${PERSIST}`,
    });
  } else {
    hazards.push({
      severity: "ok",
      code: "REDIS_EVICTION_POLICY",
      message: "maxmemory-policy is noeviction",
    });
  }
  if (!settings.aof) {
    hazards.push({
      severity: "warn",
      code: "REDIS_NO_AOF",
      message:
        "Redis append-only file is off: a Redis restart or crash loses jobs written since the last RDB snapshot. " +
        "At-least-once across Redis restarts needs AOF with appendfsync everysec (or always).",
      fix: `redis-cli CONFIG SET appendonly yes && redis-cli CONFIG SET appendfsync everysec && ${PERSIST}`,
    });
  } else if (settings.appendfsync === "no") {
    hazards.push({
      severity: "warn",
      code: "REDIS_AOF_FSYNC",
      message:
        "appendfsync is no: the OS decides when the AOF reaches disk; a host crash can lose ~30 s of jobs",
      fix: `redis-cli CONFIG SET appendfsync everysec && ${PERSIST}`,
    });
  } else {
    hazards.push({
      severity: "ok",
      code: "REDIS_AOF",
      message: `appendonly yes, appendfsync ${settings.appendfsync ?? "unknown"}`,
    });
  }
  return hazards;
}

/** Severity order: a cluster reports, per code, its worst node. */
const RANK: Record<StoreHazard["severity"], number> = { ok: 0, warn: 1, critical: 2 };

/**
 * Reads the server version and its hazards. On Redis Cluster, from every master (each keeps part of the
 * jobs, so each must be configured right): per hazard code the worst node's finding, its message naming
 * the node when it is not ok.
 */
export async function readHazards(
  client: Redis | Cluster,
): Promise<{ version: string; hazards: StoreHazard[] }> {
  if (!(client instanceof Cluster)) return readNode(client);
  const masters = client.nodes("master");
  const reads = await Promise.all(masters.map((node) => readNode(node)));
  const worst = new Map<string, StoreHazard>();
  reads.forEach((read, i) => {
    const where = `${masters[i]!.options.host}:${masters[i]!.options.port}`;
    for (const hazard of read.hazards) {
      const seen = worst.get(hazard.code);
      if (seen && RANK[seen.severity] >= RANK[hazard.severity]) continue;
      worst.set(
        hazard.code,
        hazard.severity === "ok"
          ? hazard
          : { ...hazard, message: `cluster node ${where}: ${hazard.message}` },
      );
    }
  });
  return { version: reads[0]?.version ?? "", hazards: [...worst.values()] };
}

async function readNode(client: Redis): Promise<{ version: string; hazards: StoreHazard[] }> {
  const info = parseInfo(await client.info());
  let appendfsync: string | null = null;
  try {
    const reply = (await client.config("GET", "appendfsync")) as string[];
    appendfsync = reply[1] ?? null;
  } catch {
    // CONFIG may be disabled (managed Redis); INFO alone still answers the important questions.
  }
  return {
    version: info.get("redis_version") ?? "",
    hazards: hazardsOf({
      policy: info.get("maxmemory_policy"),
      aof: info.get("aof_enabled") === "1",
      appendfsync,
    }),
  };
}
