/**
 * Dependency health checks, per queue, per worker (`sluice.worker({ health: { rag: { check } } })`).
 *
 * Each check runs in this worker every `everyMs` (the next run starts when the previous one settled or
 * timed out, never two at once). While a queue's check fails, this worker does not claim from that queue
 * (no attempt is burned on a dependency that is down), gives back the jobs of that queue it claimed ahead
 * (uncharged), and lets the ones already running finish. When the check passes again, fetching resumes by
 * itself.
 *
 * Why per worker and not shared through the store: a check is about what *this host* can reach. A worker
 * whose network path to the vector database is broken must not stop the fleet, and a fleet-wide flag set
 * by one host would need another host to clear it. Operators still see every worker's checks fleet-wide:
 * the states travel with the registry heartbeat (WorkerInfo.health → `sluice info`, `sluice doctor`).
 *
 * Failing means: the check rejects, throws synchronously, resolves `false`, or does not settle within
 * `timeoutMs` (its signal is then aborted with HealthCheckTimeoutError and its late answer is ignored).
 * One result flips the state; the first run happens before the worker claims anything, so a worker never
 * starts a job of a queue whose dependency was down at start.
 */
import { HealthCheckTimeoutError, ValidationError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { QueueHealth } from "../store/contract.js";
import type { SluiceEventEmitter } from "./events.js";

/** A queue's dependency health check (`WorkerOptions.health`). */
export interface HealthCheck {
  /**
   * Resolves when the dependency is usable; rejects (or resolves `false`) when it is not. `signal` aborts
   * when the check times out or the worker stops: pass it to the client call so nothing lingers.
   */
  check: (signal: AbortSignal) => Promise<unknown> | unknown;
  /** Period between the end of one run and the start of the next. Default 10 s. */
  everyMs?: number;
  /** A run that has not settled by then fails with HealthCheckTimeoutError. Default 5 s. */
  timeoutMs?: number;
}

/** Health checks by queue name. */
export type HealthChecks = Readonly<Record<string, HealthCheck>>;

interface ResolvedCheck {
  queue: string;
  check: HealthCheck["check"];
  everyMs: number;
  timeoutMs: number;
}

/** Validates `worker.health` against the worker's queues; throws INVALID_OPTION naming the field. */
export function resolveHealthChecks(value: unknown, queues: readonly string[]): ResolvedCheck[] {
  if (value === undefined) return [];
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      "worker.health must map queue names to { check, everyMs?, timeoutMs? }",
      { field: "worker.health" },
    );
  }
  return Object.entries(value as Record<string, unknown>).map(([queue, spec]) => {
    const field = `worker.health.${queue}`;
    if (!queues.includes(queue)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}: this worker does not serve queue ${queue} (its queues: ${queues.join(", ")}); a check only stops the queues of its worker`,
        { field },
      );
    }
    if (spec === null || typeof spec !== "object" || typeof (spec as HealthCheck).check !== "function") {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field} must be { check: async (signal) => { … }, everyMs?, timeoutMs? }`,
        { field },
      );
    }
    const { check, everyMs, timeoutMs, ...rest } = spec as HealthCheck & Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}.${extra} is not a health check option; they are check, everyMs, timeoutMs`,
        { field: `${field}.${extra}` },
      );
    }
    return {
      queue,
      check,
      everyMs: period(everyMs ?? 10_000, `${field}.everyMs`),
      timeoutMs: period(timeoutMs ?? 5_000, `${field}.timeoutMs`),
    };
  });
}

/** 10 ms to 1 day: shorter is a busy loop against the dependency, longer a unit mistake. */
function period(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 10 || value > 86_400_000) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be a whole number of milliseconds from 10 to 86400000, got ${String(value)}`,
      { field },
    );
  }
  return value;
}

/** What the monitor tells its worker. */
export interface HealthHost {
  /** A queue's check started failing: stop claiming from it, give back what was claimed ahead. */
  failing(queue: string): void;
  /** A queue's check passes again: fetch. */
  passing(queue: string): void;
  /** Some state changed: publish it (registry heartbeat). */
  changed(): void;
}

/** Runs the checks of one worker and keeps their states. */
export class HealthMonitor {
  private readonly states = new Map<string, QueueHealth>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  private stopped = false;

  constructor(
    private readonly checks: readonly ResolvedCheck[],
    private readonly host: HealthHost,
    private readonly events: SluiceEventEmitter,
    private readonly logger: Logger,
    private readonly workerId: string,
  ) {
    const now = Date.now();
    for (const c of checks) {
      this.states.set(c.queue, { queue: c.queue, ok: true, since: now, lastError: null, checkedAt: null });
    }
  }

  /** Queues whose check fails now (this worker does not claim from them). */
  failingQueues(): ReadonlySet<string> {
    const out = new Set<string>();
    for (const s of this.states.values()) if (!s.ok) out.add(s.queue);
    return out;
  }

  /** The states for the registry. */
  snapshot(): QueueHealth[] {
    return [...this.states.values()].map((s) => ({ ...s }));
  }

  /** Runs every check once (bounded by its timeout), then keeps running them on their periods. */
  async start(): Promise<void> {
    await Promise.all(this.checks.map((c) => this.runAndSchedule(c)));
  }

  /** Stops the timers and aborts the checks in flight. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const controller of this.inFlight) controller.abort(new Error("worker stopping"));
    this.inFlight.clear();
  }

  private async runAndSchedule(c: ResolvedCheck): Promise<void> {
    if (this.stopped) return;
    const error = await this.runOnce(c);
    if (this.stopped) return;
    this.record(c.queue, error);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.runAndSchedule(c);
    }, c.everyMs);
    this.timers.add(timer);
  }

  /** One run: null when it passed, else the reason it failed. Never throws, never waits past the timeout. */
  private async runOnce(c: ResolvedCheck): Promise<string | null> {
    const controller = new AbortController();
    this.inFlight.add(controller);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        const error = new HealthCheckTimeoutError(c.queue, c.timeoutMs);
        controller.abort(error);
        resolve(error.message);
      }, c.timeoutMs);
    });
    const ran = (async (): Promise<string | null> => {
      try {
        // Called inside the async function: a check that throws synchronously rejects here, like any failure.
        const result = await c.check(controller.signal);
        return result === false ? "health check returned false" : null;
      } catch (error) {
        return describe(error);
      }
    })();
    try {
      return await Promise.race([ran, timedOut]);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }

  private record(queue: string, error: string | null): void {
    const state = this.states.get(queue);
    if (!state) return;
    const now = Date.now();
    const ok = error === null;
    state.checkedAt = now;
    if (!ok) state.lastError = error;
    if (state.ok === ok) return;
    state.ok = ok;
    state.since = now;
    if (ok) {
      this.logger.info({ queue }, "health check passes again; fetching the queue");
      this.host.passing(queue);
    } else {
      this.logger.warn(
        { queue, error },
        "health check failing; not fetching the queue until it passes (running jobs finish)",
      );
      this.host.failing(queue);
    }
    this.events.emit("health", { workerId: this.workerId, queue, ok, since: now, error, at: now });
    this.host.changed();
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === "string" ? error : `health check failed: ${JSON.stringify(error) ?? String(error)}`;
}
