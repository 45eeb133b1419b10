/**
 * Key layout of the Redis engine (docs/redis.md has the full table).
 *
 * Two kinds of hash tag, so that the layout works on Redis Cluster:
 * - `{<prefix>}:…` — a few global keys (id → queue index, queue registry, workers, leader locks, the
 *   pub/sub channel). Small, touched by admin paths and by enqueue's index write.
 * - `{<prefix>:q:<queue>}:…` — everything about one queue: its jobs, their payloads and logs, and the
 *   per-state indexes. Every Lua script that changes a job touches only keys of one queue, hence one slot.
 */
import type { JobState } from "../../core/job.js";

/** Short names of the per-queue state indexes (suffixes after the queue's key prefix). */
export const STATE_SUFFIX: Record<JobState, string> = {
  waiting: "w", // ZSET, all scores 0, member = packed (priority, runAt, seq) + id: lexicographic claim order
  scheduled: "s", // ZSET id by runAt
  active: "a", // ZSET id by lease expiry (engine clock)
  completed: "c", // ZSET id by finishedAt
  dead: "d", // ZSET id by finishedAt
  cancelled: "x", // ZSET id by finishedAt
  blocked: "b", // ZSET id by seq
};

/**
 * Redis Cluster's hash slot of a key (CRC16/XMODEM of the key, or of its hash tag: the part between the
 * first `{` and the next `}` when that part is non-empty), as the server computes it.
 */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16_384;
}

/** Key builder for one store prefix. */
export class Keys {
  /** Global hash tag. */
  readonly global: string;
  /** HASH job id → queue name: lets by-id operations find the queue slot. */
  readonly ids: string;
  /** SET of queue names ever used (stats, recovery, listing). */
  readonly queues: string;
  /** HASH worker id → WorkerInfo JSON. */
  readonly workers: string;
  /** ZSET worker id by last heartbeat (prune). */
  readonly workerBeats: string;
  /** HASH worker id → busy slots at the last heartbeat. */
  readonly workerBusy: string;
  /** HASH worker id → WorkerStalls JSON (only workers that observed an event-loop stall). */
  readonly workerStalls: string;
  /** HASH worker id → QueueHealth[] JSON (only workers with a health check). */
  readonly workerHealth: string;
  /** HASH worker id → "<clock> <skew>": the worker's clock at its last beat and that minus the server's TIME. */
  readonly workerClock: string;
  /** Pub/sub channel for wake-ups. */
  readonly channel: string;
  /**
   * HASH schedule name → definition JSON. Its clock (next tick, last tick) lives in the queue's slot
   * (`<qp>schn`, `<qp>scht`), and so does its operator's pause (`<qp>schp`, name → 1), next to the jobs it
   * enqueues, so a firing (which checks the pause) is one script in one slot.
   */
  readonly schedules: string;
  /**
   * STREAM of fleet events (lua.ts, EVENTS): written by every queue script that makes a transition, so it
   * is the one key those scripts touch outside their queue's slot (docs/redis.md, "Limits").
   */
  readonly events: string;

  /**
   * HASH batch id → queue, on Redis Cluster only: a batch lives in its queue's slot there (`flow(queue)`), and
   * `getBatch(id)` finds it through this index (docs/redis.md, "Redis Cluster").
   */
  readonly batchQueues: string;

  /** `cluster`: the key layout of the Redis Cluster mode (events and flow keys per queue). */
  constructor(
    readonly prefix: string,
    readonly cluster = false,
  ) {
    this.global = `{${prefix}}`;
    this.ids = `${this.global}:ids`;
    this.queues = `${this.global}:queues`;
    this.workers = `${this.global}:workers`;
    this.workerBeats = `${this.global}:wb`;
    this.workerBusy = `${this.global}:wbusy`;
    this.workerStalls = `${this.global}:wstall`;
    this.workerHealth = `${this.global}:whealth`;
    this.workerClock = `${this.global}:wclock`;
    this.channel = `${this.global}:signal`;
    this.schedules = `${this.global}:schedules`;
    this.events = `${this.global}:events`;
    this.batchQueues = `${this.global}:bq`;
  }

  /**
   * The events stream that transitions of `queue` write: the one global stream on a single server; on a
   * cluster each queue's own (`<qp>ev`), in the queue's slot, so every transition stays a one-slot script.
   */
  eventsOf(queue: string): string {
    return this.cluster ? `${this.queue(queue)}ev` : this.events;
  }

  /**
   * Prefix of the flow keys (`fup:` `fdn:` `fch:` `bt:` `batches`) of jobs in `queue`: the global tag on a single
   * server (a flow may span queues); the queue's own tag on a cluster (a flow there stays in one queue).
   */
  flow(queue: string): string {
    return this.cluster ? this.queue(queue) : `${this.global}:`;
  }

  /** Leader lock key. */
  lead(name: string): string {
    return `${this.global}:lead:${name}`;
  }

  /** Key prefix (with hash tag) of every key of `queue`; Lua scripts append suffixes to it. */
  queue(queue: string): string {
    return `{${this.prefix}:q:${queue}}:`;
  }

  /** SCAN patterns covering every key of this prefix (test cleanup, `sluice purge`). */
  patterns(): string[] {
    const escaped = this.prefix.replace(/[*?[\]\\]/g, "\\$&");
    return [`{${escaped}}:*`, `{${escaped}:q:*`];
  }
}
