/**
 * The public entry point: `new Sluice({ url })` — define tasks, enqueue, run workers, administer.
 * Every surface (CLI, HTTP, dashboard) goes through this class and `Admin`; none touches a store directly.
 */

import { createHash } from "node:crypto";
import { validateBackoff } from "../core/backoff.js";
import { type MissedTicks, nextTick, validateMissed, validateTiming } from "../core/cron.js";
import { describeValue } from "../core/duration.js";
import { ClosedError, SluiceError, UnknownTaskError, ValidationError } from "../core/errors.js";
import {
  type EventRetention,
  type EventRetentionOption,
  resolveEventRetention,
} from "../core/fleet-events.js";
import { newJobId } from "../core/ids.js";
import type { JobRecord, JobState, Json } from "../core/job.js";
import { type QueueLimits, unlimited, validateQueueLimits } from "../core/limits.js";
import { defaultLogger, type Logger } from "../core/logger.js";
import {
  type JobOptions,
  LIMITS,
  resolveJobOptions,
  validateJobOptions,
  validateQueueName,
  validateTaskName,
} from "../core/options.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, serializePayload, validateWithSchema } from "../core/payload.js";
import type { FlowStep, RegisteredTask, TaskDefinition } from "../core/task.js";
import { emitEnqueued, SluiceEventEmitter, type SluiceEvents } from "../runtime/events.js";
import { createContext, execute, RunningJob } from "../runtime/executor.js";
import { inProcessHandler } from "../runtime/sandbox/in-process.js";
import { validateSandbox } from "../runtime/sandbox/options.js";
import { Worker, type WorkerHost, type WorkerOptions } from "../runtime/worker.js";
import type { NewBatch, NewJob, ScheduleRecord, Store, TransactionHandle } from "../store/contract.js";
import { createStore, engineOf, redactUrl } from "../store/index.js";
import { Admin } from "./admin.js";
import { EventFeed, type EventStreamOptions, type FleetStreamItem } from "./event-feed.js";
import { type BatchOptions, batchCallbacks, stepTask, validateBatchId, writeOrder } from "./flows.js";
import { INLINE_STORE_URL, InlineMode, isInlineUrl, parseInlineUrl } from "./inline.js";
import { Task } from "./task.js";

/** Options that make sense for one job only; a task definition that sets one is refused. */
const PER_JOB_ONLY = ["jobId", "uniqueKey", "runAt", "delayMs", "dependsOn"] as const;

/** Throws INVALID_OPTION (field `<fieldPrefix>.<key>`) when `options` sets a per-job-only option. */
function rejectPerJobOptions(
  options: object | undefined,
  fieldPrefix: string,
  why: (key: string) => string,
): void {
  for (const key of PER_JOB_ONLY) {
    if ((options as Record<string, unknown> | undefined)?.[key] !== undefined) {
      throw new ValidationError("INVALID_OPTION", why(key), { field: `${fieldPrefix}.${key}` });
    }
  }
}

export interface SluiceOptions {
  /**
   * Store URL: `sqlite:./sluice.db` (default, or `SLUICE_URL`), `postgres://…`, `redis://…`, or `inline:`
   * — inline mode: each enqueue runs its jobs in this process before it resolves, on an in-memory store
   * (tests, or a rollback switch; delays and backoffs take no time there: see README "Inline mode").
   */
  url?: string;
  /**
   * A pino logger (or anything with pino's `child`, `debug`, `info`, `warn`, `error`), e.g. the application's
   * own `logger.child({ lib: "sluice" })`. Default: pino's JSON lines on stdout at `SLUICE_LOG_LEVEL`, else
   * `warn` (warnings and errors only), written by a built-in logger so a worker does not load pino.
   */
  logger?: Logger;
  /** Largest payload accepted at enqueue, in bytes of JSON. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** Use this store instead of creating one from `url` (tests, custom engines). */
  store?: Store;
  /**
   * Fleet-wide events ({@link Sluice.events}, the HTTP API's `/events`): how long the store keeps them,
   * or `false` to write none (saves a write per transition on a store nobody follows). Every process of a
   * deployment should agree. Default: at most 100,000 events, at most 24 h.
   */
  events?: EventRetentionOption;
}

/** What enqueue returns: the job now in the store (new, or the existing one when deduplicated). */
export interface EnqueuedJob {
  id: string;
  state: JobState;
  /** False when an existing job was returned (same `jobId`, or a live job with the same `uniqueKey`). */
  created: boolean;
}

/** A recurring schedule (`sluice.schedule(name, definition)`): give `cron` or `every`. */
export interface ScheduleDefinition<P = unknown> {
  /** The task whose job is enqueued at each tick: its name or the Task. */
  task: string | Task<P>;
  /** The payload of every job. Default `{}`. Validated like an enqueue (JSON, size, the task's schema). */
  payload?: P;
  /** Cron expression: 5 fields (minute hour day month weekday) or 6 with seconds first. */
  cron?: string;
  /** IANA time zone of `cron`. Default `"UTC"`. */
  timezone?: string;
  /** Fixed interval instead of `cron` (ms or `"15m"`), aligned to the epoch: `"1h"` ticks on the hour. */
  every?: number | string;
  /** Ticks missed while no scheduler ran: `"once"` (default) fires the latest, `"all"` every one, `"skip"` none. */
  missed?: MissedTicks;
  /** Options of every job (queue, priority, attempts, backoff, timeoutMs, tags, retention). */
  options?: Omit<JobOptions, "jobId" | "uniqueKey" | "delayMs" | "runAt">;
}

const SCHEDULE_KEYS = ["task", "payload", "cron", "timezone", "every", "missed", "options"];

/** One item of `enqueueMany`. */
export interface BatchItem<P> {
  payload: P;
  options?: JobOptions;
}

/**
 * One Sluice installation as seen from this process: its store (chosen by URL, opened and migrated on
 * first use), the tasks defined here, their producers and workers, schedules, and the admin API.
 *
 * ```ts
 * const sluice = new Sluice({ url: "postgres://app@db/app" });
 * const embed = sluice.task("embed", { queue: "rag", run: async (p, ctx) => … });
 * await embed.enqueue({ docId: "d1" });
 * await sluice.worker({ queues: ["rag"] }).start();
 * ```
 */
export class Sluice {
  /** The logger of this instance and its workers (pino's JSON lines on stdout by default). */
  readonly logger: Logger;
  /**
   * In-process job events of this instance's producers and workers (see {@link SluiceEvents}); subscribe
   * with {@link Sluice.on}. Fleet-wide events of every process are {@link Sluice.events}.
   */
  readonly emitter = new SluiceEventEmitter();
  /** Operators' API: counts, listing, retry / cancel / delete / move, pause, recover, stats, schedules. */
  readonly admin: Admin;
  /** Largest payload (bytes of JSON) accepted at enqueue. */
  readonly maxPayloadBytes: number;
  /** The store URL as given (may hold a password: log {@link Sluice.safeUrl} instead). */
  readonly url: string;
  private readonly registry = new Map<string, RegisteredTask>();
  private readonly workers = new Set<Worker>();
  private storePromise: Promise<Store> | null = null;
  private readonly injected: Store | null;
  /** Resolved `options.events`: what the store writes and what maintenance prunes. */
  private readonly eventRetention: EventRetention;
  /** Created on the first `events()` call. */
  private feed: EventFeed | null = null;
  /** Set in inline mode (`inline:`): runs each enqueue's jobs before the enqueue resolves. */
  private readonly inline: InlineMode | null;
  private closed = false;

  constructor(options: SluiceOptions = {}) {
    this.url = options.url ?? process.env.SLUICE_URL ?? "sqlite:./sluice.db";
    const inline = isInlineUrl(this.url) ? parseInlineUrl(this.url) : null;
    if (!options.store && !inline) engineOf(this.url); // throws INVALID_CONFIG for an unknown scheme, before any I/O
    this.logger = options.logger ?? defaultLogger();
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!Number.isInteger(this.maxPayloadBytes) || this.maxPayloadBytes < 1) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `maxPayloadBytes must be a positive integer, got ${options.maxPayloadBytes}`,
        {
          field: "maxPayloadBytes",
        },
      );
    }
    this.eventRetention = resolveEventRetention(options.events);
    this.injected = options.store ?? null;
    this.admin = new Admin(() => this.store(), this.emitter);
    this.inline = inline ? new InlineMode(this.workerHost(), inline) : null;
  }

  /** Tasks defined in this process. */
  get tasks(): ReadonlyMap<string, RegisteredTask> {
    return this.registry;
  }

  /** Subscribes to in-process job events. */
  on<K extends keyof SluiceEvents>(event: K, listener: (...args: SluiceEvents[K]) => void): this {
    this.emitter.on(event, listener as never);
    return this;
  }

  /** Removes a listener added with {@link Sluice.on}. */
  off<K extends keyof SluiceEvents>(event: K, listener: (...args: SluiceEvents[K]) => void): this {
    this.emitter.off(event, listener as never);
    return this;
  }

  /** The opened store (connects and migrates on first use). */
  store(): Promise<Store> {
    if (this.closed) return Promise.reject(new ClosedError("this Sluice instance"));
    this.storePromise ??= (async () => {
      const store =
        this.injected ??
        (await createStore(this.inline ? INLINE_STORE_URL : this.url, {
          logger: this.logger,
          events: this.eventRetention,
        }));
      await store.open();
      return store;
    })().catch((error: unknown) => {
      this.storePromise = null; // let the next call try again (the store may come back)
      throw error;
    });
    return this.storePromise;
  }

  /**
   * Defines a task. With `run`, workers of this instance execute it; without, this process can still
   * enqueue it by name with its defaults and schema.
   */
  task<P = unknown, R = unknown>(name: string, definition: TaskDefinition<P, R> = {}): Task<P, R> {
    validateTaskName(name, "task");
    if (this.registry.has(name)) {
      throw new SluiceError(
        "DUPLICATE_TASK",
        `task "${name}" is already defined in this process; define each task once`,
      );
    }
    const { schema, retryOn, discardOn, run, backoff, progressEvents, limitKey, sandbox, ...jobOptions } =
      definition;
    if (progressEvents !== undefined && typeof progressEvents !== "boolean") {
      throw new ValidationError("INVALID_OPTION", `task "${name}": progressEvents must be true or false`, {
        field: "task.progressEvents",
      });
    }
    if (limitKey !== undefined && typeof limitKey !== "function") {
      validateJobOptions({ limitKey }, "task"); // a fixed key: the same rules as the job option
    }
    if (run !== undefined && typeof run !== "function") {
      throw new ValidationError("INVALID_OPTION", `task "${name}": run must be a function`, {
        field: "task.run",
      });
    }
    const sandboxed = sandbox === undefined ? null : validateSandbox(sandbox, "task.sandbox");
    if (sandboxed && run !== undefined) {
      throw new ValidationError(
        "INVALID_OPTION",
        `task "${name}": give run or sandbox, not both (a sandbox runs the handler exported by sandbox.module)`,
        { field: "task.run" },
      );
    }
    if (schema !== undefined && typeof (schema as { "~standard"?: unknown })["~standard"] !== "object") {
      throw new ValidationError(
        "INVALID_OPTION",
        `task "${name}": schema must be a Standard Schema (zod, valibot, arktype…)`,
        {
          field: "task.schema",
        },
      );
    }
    for (const [key, list] of [
      ["retryOn", retryOn],
      ["discardOn", discardOn],
    ] as const) {
      if (list !== undefined && (!Array.isArray(list) || list.some((m) => typeof m !== "function"))) {
        throw new ValidationError(
          "INVALID_OPTION",
          `task "${name}": ${key} must be an array of error classes or predicates`,
          {
            field: `task.${key}`,
          },
        );
      }
    }
    rejectPerJobOptions(
      jobOptions,
      "task",
      (key) =>
        `task "${name}": ${key} belongs to one job, not to a task (every job of the task would share it); ` +
        `pass it to enqueue(payload, { ${key} })`,
    );
    const defaults = validateJobOptions(jobOptions, "task");
    const validatedBackoff = backoff === undefined ? null : validateBackoff(backoff, "task.backoff");
    this.registry.set(name, {
      name,
      // A sandboxed task's worker runs it in a sandbox; inline mode and runNow() call its module here.
      definition: (sandboxed && "module" in sandboxed.source
        ? { ...definition, run: inProcessHandler(name, sandboxed.source) }
        : definition) as TaskDefinition<unknown, unknown>,
      defaults,
      backoff: validatedBackoff,
      limitKey: (limitKey ?? null) as RegisteredTask["limitKey"],
      sandbox: sandboxed,
    });
    return new Task<P, R>(this, name, definition);
  }

  /**
   * Enqueues a job by task name. The task must be defined here, or `options.queue` given.
   *
   * In inline mode (`inline:`) the promise resolves after the job has run here, and after every job that
   * became runnable meanwhile (jobs its handler enqueued, retries, dependents) has finished too, one at a
   * time; `state` is then the job's state after its run (`completed`, `dead`…). A handler that fails its
   * last attempt does not reject the enqueue: the job is `dead`, as under a worker (see the `dead` event and
   * `admin.getJob`). Called from a running handler, it returns at once and the job runs after that handler.
   */
  async enqueue(task: string, payload: unknown, options?: JobOptions): Promise<EnqueuedJob> {
    const [job] = await this.enqueueMany(task, [{ payload, ...(options ? { options } : {}) }]);
    return job as EnqueuedJob;
  }

  /**
   * Enqueues many jobs of one task in one transaction: all are stored, or none. In inline mode it resolves
   * once they (and every job that became runnable meanwhile) have run, as {@link Sluice.enqueue} does.
   */
  async enqueueMany(
    task: string,
    items: readonly BatchItem<unknown>[],
    transaction?: TransactionHandle,
  ): Promise<EnqueuedJob[]> {
    if (!Array.isArray(items)) {
      throw new ValidationError("INVALID_OPTION", "enqueueMany expects an array of { payload, options }", {
        field: "items",
      });
    }
    const jobs: NewJob[] = [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const field = items.length === 1 ? "" : `items[${i}].`;
      if (item === null || typeof item !== "object" || !("payload" in item)) {
        throw new ValidationError("INVALID_OPTION", `${field || "item"} must be { payload, options? }`, {
          field: `items[${i}]`,
        });
      }
      jobs.push(await this.buildJob(task, item.payload, item.options, field));
    }
    return this.write(jobs, transaction === undefined ? {} : { transaction });
  }

  /**
   * Enqueues jobs that run one after another, in one transaction: each step depends on the one before
   * (policy `fail`: a step that ends dead or cancelled takes the rest of the chain dead with its error).
   * A step reads the previous step's result with `ctx.dependencies()`. Steps may add their own `dependsOn`.
   *
   * ```ts
   * const [parsed, chunked, indexed] = await sluice.chain([
   *   { task: "parse", payload: { docId } },
   *   { task: "chunk", payload: { docId } },
   *   { task: "index", payload: { docId } },
   * ]);
   * ```
   */
  async chain(
    steps: readonly FlowStep[],
    options: { transaction?: TransactionHandle } = {},
  ): Promise<EnqueuedJob[]> {
    const jobs = await this.buildSteps(steps, "steps");
    for (let i = 1; i < jobs.length; i++) {
      const job = jobs[i] as NewJob;
      const previous = (jobs[i - 1] as NewJob).id;
      if (!job.dependsOn.some((d) => d.id === previous)) {
        job.dependsOn = [{ id: previous, onFailure: "fail" }, ...job.dependsOn];
      }
    }
    return this.write(jobs, options.transaction === undefined ? {} : { transaction: options.transaction });
  }

  /**
   * Enqueues jobs as a batch, in one transaction, with callbacks: `onComplete` once every member is final,
   * `onSuccess` once every member completed, `onDeath` at the first dead member. Each callback is a job of
   * the task named, enqueued exactly once (id `<batch id>:<event>`) with the payload
   * `{ batchId, event, total, completed, dead, cancelled, data }` (BatchCallbackPayload). Jobs a running
   * member enqueues with `ctx.enqueue` join the batch. Callback tasks must be defined in this process
   * (`sluice.task(name, …)`; a handler is not needed here). `sluice.admin.batch(id)` reads its status.
   *
   * An operator retrying a member after it was counted (dead or cancelled) runs it again but changes no
   * count, and fires no callback again: a batch counts each member's first final outcome.
   */
  async batch(
    steps: readonly FlowStep[],
    options: BatchOptions & { transaction?: TransactionHandle } = {},
  ): Promise<{ batchId: string; jobs: EnqueuedJob[] }> {
    const { transaction, ...batchOptions } = options;
    const callbacks = batchCallbacks(batchOptions);
    if (!Array.isArray(steps) || steps.length === 0) {
      throw new ValidationError(
        "INVALID_OPTION",
        "a batch needs at least one job: a batch of none would finish before it started",
        { field: "steps" },
      );
    }
    const batchId =
      batchOptions.id === undefined ? newJobId() : validateBatchId(batchOptions.id, "options.id");
    const templates = [];
    for (const callback of callbacks) {
      if (!this.registry.has(callback.task)) throw new UnknownTaskError(callback.task);
      const {
        id: _id,
        idempotent: _i,
        runAt: _r,
        ...template
      } = await this.buildJob(
        callback.task,
        null,
        callback.options,
        `options.on${callback.event[0]?.toUpperCase()}${callback.event.slice(1)}.`,
      );
      templates.push({ event: callback.event, template });
    }
    const dataJson = serializePayload(
      batchOptions.data === undefined ? null : batchOptions.data,
      this.maxPayloadBytes,
      "options.data",
    );
    const jobs = await this.buildSteps(steps, "steps");
    for (const job of jobs) job.batchId = batchId;
    const batch: NewBatch = {
      id: batchId,
      description: batchOptions.description ?? null,
      callbacks: templates,
      dataJson,
    };
    const results = await this.write(jobs, { batch, ...(transaction === undefined ? {} : { transaction }) });
    return { batchId, jobs: results };
  }

  /** @internal Enqueues children of a running job (ctx.enqueue): parentId and batch set, one transaction. */
  async enqueueChildren(steps: readonly FlowStep[], parent: JobRecord): Promise<EnqueuedJob[]> {
    const jobs = await this.buildSteps(steps, "steps");
    for (const job of jobs) {
      job.parentId = parent.id;
      job.batchId = parent.batchId;
    }
    return this.write(jobs, {});
  }

  /** Enqueues steps with no relation (runNow's children: its job is not stored, so none can point at it). */
  private async enqueueSteps(steps: readonly FlowStep[]): Promise<EnqueuedJob[]> {
    return this.write(await this.buildSteps(steps, "steps"), {});
  }

  /** Builds (validates) every step of a flow before anything is written. */
  private async buildSteps(steps: readonly FlowStep[], field: string): Promise<NewJob[]> {
    if (!Array.isArray(steps)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field} must be an array of { task, payload, options? }`,
        {
          field,
        },
      );
    }
    const jobs: NewJob[] = [];
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as FlowStep;
      const task = stepTask(step, `${field}[${i}]`);
      jobs.push(await this.buildJob(task, step.payload, step.options, `${field}[${i}].`));
    }
    return jobs;
  }

  /** Writes one call's jobs (dependencies first), emits their events; results in the caller's order. */
  private async write(
    jobs: NewJob[],
    options: { transaction?: TransactionHandle; batch?: NewBatch },
  ): Promise<EnqueuedJob[]> {
    if (jobs.length === 0) return [];
    const order = writeOrder(jobs);
    const ordered = order.map((i) => jobs[i] as NewJob);
    const store = await this.store();
    const toWrite = this.inline ? this.inline.beforeEnqueue(ordered, options.transaction) : ordered;
    const written = await store.enqueue(toWrite, options);
    emitEnqueued(this.emitter, toWrite, written);
    const results: EnqueuedJob[] = new Array(jobs.length);
    order.forEach((from, i) => {
      results[from] = written[i] as EnqueuedJob;
    });
    return this.inline ? this.inline.afterEnqueue(results) : results;
  }

  /**
   * Enqueues inside the application's own database transaction: the jobs exist if and only if that
   * transaction commits. PostgreSQL: `client` is the `pg` client (or anything with pg's `query`) holding the
   * transaction. SQLite: the application's better-sqlite3 `Database` on the store's file, inside
   * `BEGIN IMMEDIATE` … `COMMIT` (INVALID_TRANSACTION otherwise). Redis: TRANSACTION_UNSUPPORTED.
   */
  withTransaction(client: TransactionHandle): {
    enqueue(task: string, payload: unknown, options?: JobOptions): Promise<EnqueuedJob>;
    enqueueMany(task: string, items: readonly BatchItem<unknown>[]): Promise<EnqueuedJob[]>;
  } {
    if (client === null || typeof client !== "object") {
      throw new ValidationError(
        "INVALID_OPTION",
        "withTransaction needs the database client that holds the transaction",
        {
          field: "client",
        },
      );
    }
    return {
      enqueue: async (task, payload, options) =>
        (
          await this.enqueueMany(task, [{ payload, ...(options ? { options } : {}) }], client)
        )[0] as EnqueuedJob,
      enqueueMany: (task, items) => this.enqueueMany(task, items, client),
    };
  }

  /**
   * Declares a recurring schedule and saves it in the store, where any worker's maintenance (the fleet's
   * leader) fires it: each tick enqueues one job, once across every process, with the id
   * `schedule:<name>:<tick ms>`. Call it at every start: the same definition keeps its clock (no tick is
   * fired twice or skipped by a redeploy); a changed one starts from its next tick. Everything is validated
   * here (INVALID_CRON for a bad expression or time zone, and what enqueue checks for the payload).
   */
  async schedule<P>(name: string, definition: ScheduleDefinition<P>): Promise<ScheduleRecord> {
    validateTaskName(name, "schedule");
    const field = `schedule "${name}"`;
    if (definition === null || typeof definition !== "object") {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field} needs { task, cron | every, … }; got ${describeValue(definition)}`,
        {
          field: "schedule",
        },
      );
    }
    for (const key of Object.keys(definition)) {
      if (!SCHEDULE_KEYS.includes(key)) {
        throw new ValidationError(
          "INVALID_OPTION",
          `${field}: ${key} is not a schedule option; schedules take ${SCHEDULE_KEYS.join(", ")}`,
          { field: `schedule.${key}` },
        );
      }
    }
    const timing = validateTiming(definition, "schedule");
    const missed = validateMissed(definition.missed, "schedule.missed");
    const task = definition.task instanceof Task ? definition.task.name : definition.task;
    rejectPerJobOptions(
      definition.options,
      "schedule.options",
      (key) =>
        `${field}: ${key} cannot be set on a schedule's jobs (each tick's job has its own id and runs at its tick)`,
    );
    const {
      id: _id,
      idempotent: _idempotent,
      runAt: _runAt,
      ...template
    } = await this.buildJob(task, definition.payload ?? {}, definition.options, "schedule.");
    // Jobs of a schedule can be listed by it: sluice jobs list --tag schedule:<name>.
    const tag = `schedule:${name}`;
    if (template.tags.length < 32 && tag.length <= 128 && !template.tags.includes(tag)) {
      template.tags = [...template.tags, tag];
    }
    const fields = {
      cron: "cron" in timing ? timing.cron : null,
      timezone: "cron" in timing ? timing.timezone : null,
      everyMs: "everyMs" in timing ? timing.everyMs : null,
      missed,
      template,
    };
    const version = createHash("sha256").update(JSON.stringify(fields)).digest("hex").slice(0, 16);
    const store = await this.store();
    return store.upsertSchedule({
      name,
      task,
      queue: template.queue,
      ...fields,
      version,
      nextAt: nextTick(timing, Date.now()),
    });
  }

  /**
   * Declares a queue's fleet-wide limits, saved in the store so every worker's claims obey them at once
   * (core/limits.ts): `concurrency` (most active jobs of the queue across the fleet), `rate` (`{ max,
   * windowMs }`: most job starts per window), `keyConcurrency` and `keyRate` (the same per job `limitKey`:
   * a tenant, a user). Replaces the queue's earlier limits; `null` removes them. Call it at every start,
   * like `schedule`, or once from a deploy script.
   *
   * ```ts
   * await sluice.limits("embeddings", { rate: { max: 500, windowMs: 60_000 }, keyConcurrency: 1 });
   * ```
   */
  async limits(queue: string, limits: Partial<QueueLimits> | null): Promise<void> {
    validateQueueName(queue, "queue");
    const validated = limits === null ? null : validateQueueLimits(limits);
    await (await this.store()).setQueueLimits(
      queue,
      validated === null || unlimited(validated) ? null : validated,
    );
  }

  /** Deletes a schedule (jobs it already enqueued stay); false when there was none. */
  async unschedule(name: string): Promise<boolean> {
    validateTaskName(name, "schedule");
    return (await this.store()).removeSchedule(name);
  }

  /**
   * Creates a worker for this instance's tasks. Call `start()` on it. In inline mode the worker takes no
   * jobs (each enqueue has run its jobs already) and `start()` logs a warning saying so.
   */
  worker(options: WorkerOptions = {}): Worker {
    if (this.closed) throw new ClosedError("this Sluice instance");
    const worker = this.inline ? this.inline.worker(options) : new Worker(this.workerHost(), options);
    this.workers.add(worker);
    return worker;
  }

  /** What this instance's workers (and inline mode's runner) need from it. */
  private workerHost(): WorkerHost {
    return {
      store: () => this.store(),
      tasks: this.registry,
      events: this.emitter,
      logger: this.logger,
      maxPayloadBytes: this.maxPayloadBytes,
      eventRetention: this.eventRetention,
      enqueueChildren: (steps, parent) => this.enqueueChildren(steps, parent),
    };
  }

  /** Stops this instance's workers (with their default grace) and closes the store. */
  /**
   * Fleet-wide job events of every process on this store, as an async iterator: each transition (enqueued,
   * active, progress, completed, retrying, dead, cancelled, released, recovered, and operators' actions)
   * in commit order, filtered by `queue` or `jobId`. Resume with `after` (the last id seen): nothing is
   * missed or repeated while the store keeps that id (`SluiceOptions.events`); when it does not, a
   * `{ type: "reset" }` item says events were lost and reading goes on from the oldest kept. Without
   * `after`, events from now on. Ends when `signal` aborts, the loop breaks, or this instance closes.
   * All subscriptions of one instance share one store reader.
   *
   * @example
   * for await (const event of sluice.events({ jobId })) {
   *   if (event.type === "progress") console.log(event.data?.progress);
   *   if (event.type === "completed" || event.type === "dead") break;
   * }
   */
  events(options: EventStreamOptions = {}): AsyncGenerator<FleetStreamItem, void, undefined> {
    if (this.closed) throw new ClosedError("this Sluice instance");
    if (options.queue !== undefined) validateQueueName(options.queue, "queue");
    if (options.jobId !== undefined && (typeof options.jobId !== "string" || options.jobId === "")) {
      throw new ValidationError("INVALID_OPTION", "jobId must be a non-empty string", { field: "jobId" });
    }
    if (options.after !== undefined && options.after !== null && typeof options.after !== "string") {
      throw new ValidationError("INVALID_OPTION", "after must be an event id (a string) or null", {
        field: "after",
      });
    }
    this.feed ??= new EventFeed(() => this.store(), this.logger);
    return this.feed.subscribe(options);
  }

  /**
   * The newest fleet-wide event id now: pass it as `after` to follow what happens from this moment. Taken
   * before an enqueue, it lets a client follow the new job from its first event (no race with a fast
   * worker). Null when the store has no event yet (then `after: null` reads from the start).
   */
  async eventCursor(): Promise<string | null> {
    return (await this.store()).lastEventId();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.workers].map((w) => w.stop()));
    await this.inline?.idle();
    this.closed = true;
    this.feed?.close();
    const store = this.storePromise ? await this.storePromise.catch(() => null) : null;
    await store?.close();
  }

  /** @internal Used by Task.runNow. */
  async runInline(task: string, payload: unknown): Promise<unknown> {
    const registered = this.registry.get(task);
    if (!registered?.definition.run) {
      throw new SluiceError(
        "NO_HANDLER",
        `task "${task}" has no run() in this process, so it cannot run inline`,
      );
    }
    const { definition } = registered;
    const value = definition.schema
      ? await validateWithSchema(definition.schema, payload, "payload")
      : payload;
    const text = serializePayload(value, this.maxPayloadBytes);
    const now = Date.now();
    const options = resolveJobOptions(registered.defaults, undefined, now);
    const job: JobRecord = inlineRecord(
      task,
      options.queue,
      JSON.parse(text) as Json,
      options.maxAttempts,
      options.timeoutMs,
      now,
    );
    // The worker's executor, with a context that writes nothing: progress is checked and emitted, log lines
    // go to this instance's logger.
    const running = new RunningJob(job, now);
    const ctx = createContext(running, {
      events: this.emitter,
      maxPayloadBytes: this.maxPayloadBytes,
      saveProgress: async () => {},
      log: async (j, message) => this.logger.info({ jobId: j.id, task }, message),
      heartbeat: async () => {},
      enqueue: (steps) => this.enqueueSteps(steps),
      flow: async () => null,
      canWait: false,
    });
    const result = await execute(running, registered, ctx, "inline");
    if (!result.ok) throw result.error;
    return result.value;
  }

  /** Validates everything about one job and builds the store record; throws before any write. */
  private async buildJob(
    task: string,
    payload: unknown,
    options: JobOptions | undefined,
    fieldPrefix: string,
  ): Promise<NewJob> {
    if (typeof task !== "string") validateTaskName(task, "task");
    const registered = this.registry.get(task);
    const perCall = options === undefined ? undefined : validateJobOptions(options, `${fieldPrefix}options`);
    if (typeof perCall?.backoff === "function") {
      // A job's backoff is stored with it and read by whichever worker runs it: it must be data.
      throw new ValidationError(
        "INVALID_OPTION",
        `${fieldPrefix}options.backoff: a backoff function cannot be stored with a job; define it on the task ` +
          "(sluice.task(name, { backoff: (attempt, error) => ms })) or pass { type, delayMs, … } here",
        { field: `${fieldPrefix}options.backoff` },
      );
    }
    if (!registered) {
      validateTaskName(task, "task");
      if (perCall?.queue === undefined) throw new UnknownTaskError(task);
    }
    const resolved = resolveJobOptions(registered?.defaults ?? {}, perCall, Date.now());
    let value = payload;
    if (registered?.definition.schema) {
      value = await validateWithSchema(registered.definition.schema, payload, `${fieldPrefix}payload`);
    }
    const text = serializePayload(value, this.maxPayloadBytes, `${fieldPrefix}payload`);
    // A function backoff stays in the task definition (the worker applies it); the store keeps only data.
    const backoff =
      [resolved.backoff, registered?.backoff ?? null].find((b) => b !== null && typeof b === "object") ??
      null;
    return {
      id: resolved.jobId ?? newJobId(),
      idempotent: resolved.jobId !== null,
      task,
      queue: resolved.queue,
      payload: text,
      priority: resolved.priority,
      runAt: resolved.runAt,
      maxAttempts: resolved.maxAttempts,
      backoff: backoff as NewJob["backoff"],
      timeoutMs: resolved.timeoutMs,
      uniqueKey: resolved.uniqueKey,
      uniqueStates: resolved.uniqueStates,
      uniqueUntil: resolved.uniqueUntil,
      tags: resolved.tags,
      retention: resolved.retention,
      parentId: null,
      dependsOn: resolved.dependsOn,
      batchId: null,
      limitKey: perCall?.limitKey ?? taskLimitKey(registered, value, task),
    };
  }

  /** The URL with any password hidden (for logs and status output). */
  get safeUrl(): string {
    return redactUrl(this.url);
  }
}

/** The task's limit key for a payload (a fixed key, or its function's answer); null when none. */
function taskLimitKey(registered: RegisteredTask | undefined, payload: unknown, task: string): string | null {
  const key = registered?.limitKey ?? null;
  if (key === null || typeof key === "string") return key;
  let computed: unknown;
  try {
    computed = key(payload);
  } catch (error) {
    throw new ValidationError(
      "INVALID_OPTION",
      `task "${task}": its limitKey function threw (${(error as Error)?.message ?? String(error)}); nothing was enqueued`,
      { field: "task.limitKey", cause: error },
    );
  }
  if (computed === null || computed === undefined) return null;
  if (typeof computed !== "string" || computed.length === 0 || computed.length > LIMITS.uniqueKeyLength) {
    throw new ValidationError(
      "INVALID_OPTION",
      `task "${task}": its limitKey function must return a string of 1 to ${LIMITS.uniqueKeyLength} characters, or null for no key; ` +
        `got ${typeof computed === "string" ? `${computed.length} characters` : typeof computed}`,
      { field: "task.limitKey" },
    );
  }
  return computed;
}

function inlineRecord(
  task: string,
  queue: string,
  payload: Json,
  maxAttempts: number,
  timeoutMs: number | null,
  now: number,
): JobRecord {
  return {
    id: newJobId(),
    seq: 0,
    task,
    queue,
    state: "active",
    payload,
    result: null,
    priority: 0,
    runAt: now,
    createdAt: now,
    startedAt: now,
    finishedAt: null,
    attempt: 1,
    maxAttempts,
    backoff: null,
    timeoutMs,
    uniqueKey: null,
    tags: [],
    progress: null,
    leaseToken: 0,
    leaseExpiresAt: null,
    workerId: null,
    cancelRequested: false,
    retention: true,
    errors: [],
    reason: null,
    parentId: null,
    batchId: null,
    pendingDependencies: 0,
    limitKey: null,
  };
}
