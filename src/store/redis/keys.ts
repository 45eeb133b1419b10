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

  constructor(readonly prefix: string) {
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
