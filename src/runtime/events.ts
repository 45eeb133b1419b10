/**
 * In-process job events. A `Sluice` instance emits them for everything its producers and workers do
 * (`sluice.on("completed", …)`).
 */
import { EventEmitter } from "node:events";
import type { AttemptError, JobState, Json } from "../core/job.js";
import type { EnqueueResult, NewJob } from "../store/contract.js";

interface JobEventBase {
  jobId: string;
  queue: string;
  task: string;
  /** Epoch ms when the event happened. */
  at: number;
}

/** Events by name, each with its payload (`sluice.on("completed", (e) => …)`). */
/** A `health` event: a queue's check on one worker changed state. */
export interface HealthEvent {
  workerId: string;
  queue: string;
  ok: boolean;
  /** Epoch ms since when it is in this state. */
  since: number;
  /** The failure (null when it passes). */
  error: string | null;
  at: number;
}

export interface SluiceEvents {
  /** A job was stored (`created: false`: an existing job was returned for its jobId or unique key). */
  enqueued: [JobEventBase & { state: JobState; created: boolean }];
  /** A worker of this instance started an attempt. */
  active: [JobEventBase & { attempt: number; workerId: string }];
  /** A handler reported progress (`ctx.progress`). */
  progress: [JobEventBase & { attempt: number; progress: Json }];
  /** An attempt succeeded and its completion is stored. */
  completed: [JobEventBase & { attempt: number; durationMs: number; result: Json | null }];
  /** Every failed attempt, whatever comes next (`retrying` or `dead`). */
  failed: [JobEventBase & { attempt: number; error: AttemptError }];
  /** A failed attempt will be tried again at `runAt` (backoff). */
  retrying: [JobEventBase & { attempt: number; runAt: number; error: AttemptError }];
  /** A job went to the dead letters: attempts exhausted, discarded, or its lease expired on the last try. */
  dead: [JobEventBase & { attempt: number; reason: string }];
  /** A running job of this instance's workers was cancelled by an operator. */
  cancelled: [JobEventBase & { reason: string }];
  /** A job returned to the queue without charging its attempt (graceful stop, rate limit). */
  released: [JobEventBase & { reason: string; runAt: number | null }];
  /** A job whose worker stopped heartbeating was taken back (automatic recovery or `admin.recover`). */
  recovered: [JobEventBase & { attempt: number; to: "waiting" | "dead" | "cancelled"; reason: string }];
  /**
   * A worker found nothing to claim with nothing running (BullMQ's `drained`): its queues are empty for it,
   * and it now waits for a wake-up. Emitted once per transition from busy to idle.
   */
  drained: [{ workerId: string; at: number }];
  /**
   * A worker's event loop was blocked longer than a third of its lease (runtime/loop-monitor.ts): its
   * heartbeats could not run, so its leases may have expired. `tasks` / `jobIds`: what was running.
   */
  stalled: [
    { workerId: string; at: number; stallMs: number; leaseMs: number; tasks: string[]; jobIds: string[] },
  ];
  /**
   * A queue's dependency health check changed state on a worker of this instance (runtime/health.ts):
   * `ok: false` = the worker stopped fetching the queue (`error` says why), `ok: true` = it fetches again.
   */
  health: [HealthEvent];
  /** Runtime trouble worth surfacing (store unreachable, handler misbehaving). */
  error: [Error];
}

export type SluiceEventName = keyof SluiceEvents;

/** A typed EventEmitter that never throws for an `error` event without listeners. */
export class SluiceEventEmitter extends EventEmitter<SluiceEvents> {
  /** True when someone listens; lets hot paths skip building event objects. */
  wants(event: SluiceEventName): boolean {
    return this.listenerCount(event) > 0;
  }

  override emit<K extends SluiceEventName>(event: K, ...args: SluiceEvents[K]): boolean {
    if (event === "error" && this.listenerCount("error") === 0) return false;
    return (super.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
  }
}

/** Emits `enqueued` for each stored job (results in the order of `jobs`), when anyone listens. */
export function emitEnqueued(
  events: SluiceEventEmitter,
  jobs: readonly NewJob[],
  results: readonly EnqueueResult[],
): void {
  if (!events.wants("enqueued")) return;
  const at = Date.now();
  results.forEach((result, i) => {
    const job = jobs[i] as NewJob;
    events.emit("enqueued", {
      jobId: result.id,
      queue: job.queue,
      task: job.task,
      at,
      state: result.state,
      created: result.created,
    });
  });
}
