/**
 * The Redis engine (ioredis): the store contract at the highest throughput.
 *
 * - Every state transition is one Lua script (lua.ts), loaded once per connection and called by SHA.
 * - Keys of one queue share a hash tag; every job transition is a script in one queue's slot. A few global
 *   keys (id → queue index, queue registry, workers, leader locks, schedules) live under the prefix's own
 *   tag (keys.ts); the steps that cross slots are listed in docs/redis.md ("Limits").
 * - Claims take up to `limit` jobs per script call; completions, failures, releases, lease extensions and
 *   progress are batched into one script call per queue, all queues pipelined in one round trip.
 * - Wake-ups: scripts PUBLISH on the prefix's channel; see signals.ts.
 * - Faults: commands never queue while disconnected; every driver error surfaces as StoreUnavailableError.
 */

import type { ChainableCommander } from "ioredis";
import {
  BatchExistsError,
  BatchFinishedError,
  BatchNotFoundError,
  DependencyNotFoundError,
  SluiceError,
  ValidationError,
} from "../../core/errors.js";
import { DEFAULT_EVENT_RETENTION, type FleetEvent, type FleetEventType } from "../../core/fleet-events.js";
import type { BatchRecord, FlowEdge, FlowJob, FlowView } from "../../core/flows.js";
import type { JobLogLine, JobRecord, JobState, Json } from "../../core/job.js";
import { type QueueLimits, unlimited } from "../../core/limits.js";
import {
  asSeen,
  CANCELLABLE_STATES,
  forcedRecoveryReason,
  leaseExpiredReason,
  MOVABLE_STATES,
  REMOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRYABLE_STATES,
} from "../../core/states.js";
import { HISTOGRAM_SIZE, STATS_RETENTION_MS, type StatsRow } from "../../core/stats.js";
import type {
  BlockRequest,
  BulkOptions,
  BulkResult,
  ClaimRequest,
  CompleteRequest,
  EnqueueResult,
  EventsPage,
  ExtendResult,
  FailRequest,
  FireRequest,
  JobFilter,
  JobPage,
  KeyHold,
  LeaseRef,
  ListRequest,
  LogRequest,
  MigrationStatus,
  NewBatch,
  NewJob,
  ProgressRequest,
  QueueStats,
  ReadEventsRequest,
  RecoveredJob,
  RecoverRequest,
  ReleaseRequest,
  ScheduleRecord,
  ScheduleUpsert,
  Store,
  StoreInfo,
  StoreSignal,
  StoreTraits,
  StuckBlockedJob,
  TransactionHandle,
  WorkerBeat,
  WorkerInfo,
  WorkerStalls,
} from "../contract.js";
import type { StoreOptions } from "../engine.js";
import { RecoveryGate } from "../outage.js";
import { redactUrl } from "../redact.js";
import { parseStalls, stallsText } from "../stalls.js";
import { healthText, parseHealth } from "../worker-health.js";
import {
  decodeBatch,
  decodeEdge,
  decodeEnqueued,
  decodeJob,
  decodeLimits,
  encodeDependencies,
  encodeFlowJobs,
  encodeLimits,
  encodeNewJobs,
  hasFlowFields,
  type JobReply,
  opt,
} from "./codec.js";
import { parseRedisUrl, type RedisUrl } from "./config.js";
import {
  createClient,
  evalshaArgs,
  isNoScript,
  loadScripts,
  type RedisClient,
  type ScriptCall,
  toStoreError,
} from "./connection.js";
import { redisEngine } from "./engine.js";
import { readHazards } from "./hazards.js";
import { Keys, STATE_SUFFIX } from "./keys.js";
import { decodeCursor, encodeCursor, mergePages, type QueuePage } from "./listing.js";
import { EVENT_SCRIPTS } from "./lua.js";
import { migrationStatus } from "./migrations.js";
import { Subscriber } from "./signals.js";

/** Most scheduled jobs one claim promotes (the rest wait for the next claim; keeps each script short). */
const PROMOTE_PER_CLAIM = 1_000;
/** Jobs per enqueue script call inside one MULTI. */
const ENQUEUE_CHUNK = 2_000;
/** Log lines kept per job. */
const LOG_LINES_KEPT = 1_000;
/** Entries one listing script call may walk before handing back a cursor. */
const LIST_SCAN_BUDGET = 2_000;
/** Events one filtered `readEvents` call may scan before handing back its cursor. */
const EVENT_SCAN_BUDGET = 2_000;
/**
 * An event id as this engine writes it: a stream id, `<ms>-<seq>`. At most 15 digits each, so Lua compares
 * them exactly as numbers (and no id the server could reject reaches a script).
 */
const EVENT_ID = /^\d{1,15}-\d{1,15}$/;

/**
 * Most completed jobs one prune script deletes. Redis serves no other client while a script runs: a script
 * deleting 5,000 expired jobs took 41 ms of server time (SLOWLOG), 8 µs a job; one of 250 takes about 2 ms,
 * and other clients' commands run between the scripts.
 */
export const PRUNE_JOBS_PER_SCRIPT = 250;

/** A schedule's definition as kept in the global hash (its clock lives in its queue's slot). */
type StoredSchedule = Omit<ScheduleRecord, "nextAt" | "lastTickAt" | "paused">;

/** The Redis engine. URL: `redis://[:password@]host:port/db?prefix=sluice` (also `rediss://`). */
export class RedisStore implements Store {
  readonly engine = "redis" as const;
  readonly traits: StoreTraits = redisEngine.traits;
  /** Where the store points, password removed. */
  readonly location: string;
  /** The key builder for this store's prefix (tests and tooling use it to find keys). */
  readonly keys: Keys;
  private readonly connection: RedisUrl;
  /** Redis Cluster (`redis+cluster://`): every script and MULTI in one slot (docs/redis.md, "Redis Cluster"). */
  readonly cluster: boolean;
  private client: RedisClient | null = null;
  private subscriber: Subscriber | null = null;
  private opening: Promise<void> | null = null;
  private version = "";
  /**
   * Jobs this store leased: their queue (by-id calls of the worker path skip the global index lookup) and
   * whether completing deletes them (retention false), under the token of the claim that leased them.
   */
  private readonly leased = new Map<string, { queue: string; drop: boolean; token: number }>();
  /** This process's command connection (lost / back) and the expired-lease recovery rule after outages. */
  private readonly gate: RecoveryGate;
  /** ARGV[3] of the scripts that write events: the stream's cap, or '' when events are off (lua.ts EVENTS). */
  private readonly eventCap: string;

  constructor(
    url: string,
    private readonly options: StoreOptions,
  ) {
    const parsed = parseRedisUrl(url);
    this.connection = parsed;
    this.cluster = parsed.cluster !== null;
    this.keys = new Keys(parsed.prefix, this.cluster);
    this.location = redactUrl(url);
    this.gate = new RecoveryGate(options.logger, { engine: "redis", location: this.location });
    const events = options.events ?? DEFAULT_EVENT_RETENTION;
    this.eventCap = events.enabled ? String(Math.max(0, Math.floor(events.maxEvents))) : "";
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────────

  open(): Promise<void> {
    this.opening ??= this.openNow().catch((error: unknown) => {
      this.opening = null;
      throw error;
    });
    return this.opening;
  }

  private async openNow(): Promise<void> {
    const logger = this.options.logger;
    const client = createClient(this.connection, this.location, "commands", logger);
    // The script cache is empty after a server restart: reload on every (re)connect, before anything else
    // is written to the new socket (the handler runs synchronously on "ready").
    let loaded: Promise<void> = Promise.resolve();
    let connected = false;
    // The recovery rule after outages (../outage.ts) counts from the moment this connection is back.
    client.on("close", () => {
      if (connected) this.gate.connection.lost();
    });
    client.on("ready", () => {
      this.gate.connection.reached();
      loaded = loadScripts(client);
      loaded.catch((error: unknown) => {
        logger.warn(
          { engine: "redis", err: (error as Error).message },
          "could not load Lua scripts; will retry on demand",
        );
      });
      if (!connected) {
        connected = true;
        return;
      }
      // Back after an outage: a worker whose claims failed meanwhile is backing off; let it look now. And
      // the server may have come back configured differently (e.g. with allkeys-lru, which evicts jobs).
      void loaded
        .then(() => {
          this.subscriber?.emitMissed();
          return this.logHazards(client);
        })
        .catch(() => undefined);
    });
    try {
      await client.connect();
      await loaded;
      await this.logHazards(client);
    } catch (error) {
      client.disconnect();
      throw toStoreError(error, this.location, "connect");
    }
    this.client = client;
    this.subscriber = new Subscriber(this.connection, this.location, this.keys.channel, logger);
  }

  /** Reads the server's settings and logs each hazard (eviction policy, AOF) loudly. */
  private async logHazards(client: RedisClient): Promise<void> {
    const logger = this.options.logger;
    const info = await readHazards(client);
    this.version = info.version;
    for (const hazard of info.hazards) {
      const fields = { engine: "redis", location: this.location, code: hazard.code, fix: hazard.fix };
      if (hazard.severity === "critical") logger.error(fields, hazard.message);
      else if (hazard.severity === "warn") logger.warn(fields, hazard.message);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    const subscriber = this.subscriber;
    this.client = null;
    this.subscriber = null;
    this.opening = null;
    this.leased.clear();
    await subscriber?.close();
    if (client) {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    }
  }

  async ping(): Promise<void> {
    await this.call("ping", (c) => c.ping());
  }

  async info(): Promise<StoreInfo> {
    const info = await this.call("read server info", (c) => readHazards(c));
    return {
      engine: "redis",
      version: info.version || this.version,
      location: this.location,
      hazards: info.hazards,
    };
  }

  async migrations(): Promise<MigrationStatus> {
    return migrationStatus(); // no schema: see migrations.ts
  }

  // ── producing ──────────────────────────────────────────────────────────────────────────────────

  async enqueue(
    jobs: readonly NewJob[],
    options?: { transaction?: TransactionHandle; batch?: NewBatch },
  ): Promise<EnqueueResult[]> {
    if (options?.transaction !== undefined && options.transaction !== null) {
      throw new SluiceError(
        "TRANSACTION_UNSUPPORTED",
        "the Redis engine cannot enqueue inside another database's transaction: enqueue after your " +
          "transaction commits (with a jobId derived from your row, so enqueueing again after a crash " +
          "returns the same job), or use the PostgreSQL or SQLite engine, whose enqueue joins the transaction",
      );
    }
    if (jobs.length === 0 && options?.batch === undefined) return [];
    // Flow fields take one script for the whole call (lua.ts ENQUEUE_FLOW); plain calls pay nothing for flows.
    if (hasFlowFields(jobs, options?.batch)) return this.enqueueFlow(jobs, options?.batch);
    const results: (EnqueueResult | undefined)[] = new Array(jobs.length);
    // An idempotent id already stored under another queue returns that job (the per-queue script can only
    // see its own queue). Same-queue duplicates, including concurrent ones, are caught atomically there.
    const idempotent = jobs.map((j, i) => [j, i] as const).filter(([j]) => j.idempotent);
    if (idempotent.length > 0) {
      const queues = await this.call("look up job ids", (c) =>
        c.hmget(this.keys.ids, ...idempotent.map(([j]) => j.id)),
      );
      const elsewhere = new Map<string, string[]>();
      idempotent.forEach(([job], k) => {
        const queue = queues[k];
        if (queue && queue !== job.queue) elsewhere.set(queue, [...(elsewhere.get(queue) ?? []), job.id]);
      });
      for (const [queue, ids] of elsewhere) {
        for (const found of await this.getMany(queue, ids)) {
          jobs.forEach((job, i) => {
            if (job.id === found.id && job.idempotent)
              results[i] = { id: found.id, state: found.state, created: false };
          });
        }
      }
    }
    const byQueue = new Map<string, number[]>();
    jobs.forEach((job, i) => {
      if (results[i]) return;
      const indices = byQueue.get(job.queue);
      if (indices) indices.push(i);
      else byQueue.set(job.queue, [i]);
    });
    if (byQueue.size > 0) {
      const client = this.conn();
      const chunks: { queue: string; indices: number[] }[] = [];
      for (const [queue, indices] of byQueue) {
        for (let at = 0; at < indices.length; at += ENQUEUE_CHUNK)
          chunks.push({ queue, indices: indices.slice(at, at + ENQUEUE_CHUNK) });
      }
      const calls = chunks.map(({ queue, indices }) => {
        const call = this.queueCall("enqueue", queue, encodeNewJobs(indices.map((i) => jobs[i]!)));
        // One server: the script writes the id index and the registry itself. A cluster has them in another
        // slot: written just before the script instead (preIndex), so a job is never unfindable by id.
        if (!this.cluster) call.keys.push(this.keys.ids, this.keys.queues);
        return call;
      });
      if (this.cluster) {
        await this.refuseForeignParents(jobs.filter((_, i) => !results[i]));
        await this.preIndex(
          chunks.flatMap(({ queue, indices }) => indices.map((i) => [jobs[i]!.id, queue] as const)),
        );
      }
      const run = async (): Promise<[Error | null, unknown][]> => {
        // One script call (atomic) per queue chunk; several in one MULTI so a batch is all or nothing on a
        // single server. Each script writes the id index entries of the jobs it creates and the registry.
        let written: Promise<[Error | null, unknown][]>;
        if (calls.length === 1) {
          written = client.evalsha(...evalshaArgs(calls[0]!, this.cluster)).then(
            (reply) => [[null, reply]],
            (error: unknown) => {
              if (isNoScript(error)) return [[error as Error, null]];
              throw error;
            },
          );
        } else {
          // A cluster cannot MULTI across slots: one script per queue chunk, each atomic, sent together
          // (docs/redis.md, "Redis Cluster": a multi-queue enqueueMany is not all or nothing there).
          const multi = this.cluster ? this.pipe(client) : client.multi();
          for (const call of calls) multi.evalsha(...evalshaArgs(call, this.cluster));
          written = multi.exec().then((r) => (r ?? []) as [Error | null, unknown][]);
        }
        // In-process wake-up: a worker of this store claims at once, its claim queued on the same connection
        // right behind this write (so it runs after it), instead of waiting for the PUBLISH to come back over
        // the subscriber connection (that echo is then skipped). Other processes still wake through pub/sub.
        if (subscriber?.listening) {
          for (const chunk of chunks) subscriber.expectEcho(chunk.queue);
          echoed.push(...chunks);
          subscriber.emit({ type: "jobs", queues: [...byQueue.keys()] });
        }
        return written;
      };
      const subscriber = this.subscriber;
      // Chunks signalled in-process whose PUBLISH echo is still expected.
      const echoed: { queue: string; indices: number[] }[] = [];
      const noEcho = (list: readonly { queue: string }[]) => {
        for (const chunk of list) subscriber?.cancelEcho(chunk.queue);
      };
      let replies: [Error | null, unknown][];
      try {
        replies = await run();
        if (replies.some(([error]) => isNoScript(error))) {
          // Only possible if the script cache was flushed between load and use: no script of this call ran
          // (they all use the same cache), so running it again writes each job once.
          noEcho(echoed.splice(0));
          await loadScripts(client);
          replies = await run();
        }
      } catch (error) {
        noEcho(echoed);
        throw toStoreError(error, this.location, "enqueue");
      }
      const failed = replies.find(([error]) => error);
      if (failed) {
        noEcho(echoed);
        throw toStoreError(failed[0], this.location, "enqueue");
      }
      const unused: string[] = [];
      chunks.forEach(({ queue, indices }, r) => {
        const out = replies[r]![1] as string[];
        let created = false;
        indices.forEach((i, k) => {
          const result = decodeEnqueued(jobs[i]!.id, out[k]!);
          results[i] = result;
          created ||= result.created;
          if (result.id !== jobs[i]!.id) unused.push(jobs[i]!.id);
        });
        // Nothing created: the script published nothing, so no echo will come.
        if (!created && echoed.length > 0) noEcho([{ queue }]);
      });
      // Cluster: ids indexed ahead whose job was not written (a unique key returned another job).
      if (this.cluster && unused.length > 0)
        await this.call("clean the id index", (c) => c.hdel(this.keys.ids, ...unused));
    }
    return results as EnqueueResult[];
  }

  /**
   * An enqueue call with dependencies or batches: one script over every queue of the call, in input order
   * (atomic: it validates before it writes, and rejects with a typed error having written nothing).
   */
  private async enqueueFlow(jobs: readonly NewJob[], batch: NewBatch | undefined): Promise<EnqueueResult[]> {
    const call = this.queueCall("enqueueFlow", jobs[0]?.queue ?? "", encodeFlowJobs(jobs, batch));
    const undo = this.cluster ? await this.prepareClusterFlow(jobs, batch) : null;
    let reply: string[];
    try {
      reply = await this.script<string[]>(call, "enqueue");
    } catch (error) {
      await undo?.(null).catch(() => undefined);
      throw error;
    }
    await undo?.(reply);
    const head = reply[0];
    if (head?.startsWith("!")) {
      const [, a = "", b = ""] = reply;
      if (head === "!DEPENDENCY_NOT_FOUND") throw new DependencyNotFoundError(a, b);
      if (head === "!BATCH_NOT_FOUND") throw new BatchNotFoundError(a);
      if (head === "!BATCH_FINISHED") throw new BatchFinishedError(a);
      if (head === "!BATCH_EXISTS") throw new BatchExistsError(a);
      throw new SluiceError("STORE_UNAVAILABLE", `unexpected enqueue reply ${head}`);
    }
    return jobs.map((job, i) => decodeEnqueued(job.id, reply[i]!));
  }

  // ── Redis Cluster (docs/redis.md, "Redis Cluster") ────────────────────────────────────────────

  /** The typed refusal of a call that would need a script across hash slots. */
  private crossSlot(what: string): SluiceError {
    return new SluiceError(
      "CLUSTER_CROSS_SLOT",
      `Redis Cluster keeps each queue in its own hash slot and every Sluice script in one slot, so ${what}. ` +
        "Keep a flow's jobs, its children and its batch callbacks in one queue, or use a single Redis server " +
        "(redis://…), where flows and moves may span queues. Nothing was written.",
    );
  }

  /**
   * Cluster: the id index and queue registry entries of jobs about to be written, BEFORE their script (both
   * are in the global slot, which a queue's script cannot reach there). A script that then writes nothing
   * leaves an entry pointing at a queue without the job: by-id reads find nothing there, as for a deleted
   * job; the caller removes the entries it knows went unused.
   */
  private async preIndex(entries: readonly (readonly [string, string])[]): Promise<void> {
    if (entries.length === 0) return;
    const queues = [...new Set(entries.map(([, q]) => q))];
    await this.call("index jobs", (c) =>
      c
        .multi()
        .sadd(this.keys.queues, ...queues)
        .hset(this.keys.ids, ...entries.flat())
        .exec(),
    );
  }

  /** Cluster: a child must be in its parent's queue (the parent's children list is in that slot). */
  private async refuseForeignParents(jobs: readonly NewJob[]): Promise<void> {
    const children = jobs.filter((j) => j.parentId !== null);
    if (children.length === 0) return;
    const inCall = new Map(jobs.map((j) => [j.id, j.queue]));
    const parents = await this.indexOf(children.map((j) => j.parentId!));
    children.forEach((job, k) => {
      const queue = inCall.get(job.parentId!) ?? parents[k];
      if (queue && queue !== job.queue)
        throw this.crossSlot(
          `job ${job.id} (queue ${job.queue}) cannot be a child of ${job.parentId} (queue ${queue})`,
        );
    });
  }

  /**
   * Cluster: checks that a flow call stays in one queue's slot (its jobs, dependencies, parents, joined
   * batches, callbacks), then indexes its jobs, callbacks and new batch ahead of the script. Returns the
   * step to run after the script (with its reply, or null when it failed): removes what was indexed ahead
   * for jobs the script did not write.
   */
  private async prepareClusterFlow(
    jobs: readonly NewJob[],
    batch: NewBatch | undefined,
  ): Promise<(reply: string[] | null) => Promise<void>> {
    const queue = jobs[0]?.queue ?? batch?.callbacks[0]?.template.queue ?? "";
    for (const job of jobs) {
      if (job.queue !== queue)
        throw this.crossSlot(`one flow call cannot put jobs in queues ${queue} and ${job.queue}`);
    }
    for (const callback of batch?.callbacks ?? []) {
      if (callback.template.queue !== queue)
        throw this.crossSlot(
          `batch ${batch!.id}'s ${callback.event} callback (queue ${callback.template.queue}) cannot fire from queue ${queue}`,
        );
    }
    const inCall = new Set(jobs.map((j) => j.id));
    const lookups = [
      ...new Set(
        jobs.flatMap((j) => [
          ...j.dependsOn.map((d) => d.id).filter((id) => !inCall.has(id)),
          ...(j.parentId !== null && !inCall.has(j.parentId) ? [j.parentId] : []),
          ...(j.idempotent ? [j.id] : []),
        ]),
      ),
    ];
    const joined = [
      ...new Set(jobs.map((j) => j.batchId).filter((b): b is string => b !== null && b !== batch?.id)),
    ];
    const [found, batches] = await this.call("look up the flow", async (c) =>
      Promise.all([
        lookups.length > 0 ? c.hmget(this.keys.ids, ...lookups) : Promise.resolve([]),
        joined.length > 0 ? c.hmget(this.keys.batchQueues, ...joined) : Promise.resolve([]),
      ]),
    );
    const queueOf = new Map(lookups.map((id, i) => [id, found[i] ?? null]));
    for (const job of jobs) {
      for (const d of job.dependsOn) {
        const q = queueOf.get(d.id);
        if (q && q !== queue)
          throw this.crossSlot(`job ${job.id} (queue ${queue}) cannot depend on ${d.id} (queue ${q})`);
      }
      const parentQueue = job.parentId === null ? null : queueOf.get(job.parentId);
      if (parentQueue && parentQueue !== queue)
        throw this.crossSlot(
          `job ${job.id} (queue ${queue}) cannot be a child of ${job.parentId} (queue ${parentQueue})`,
        );
      const existing = job.idempotent ? queueOf.get(job.id) : null;
      if (existing && existing !== queue)
        throw this.crossSlot(`job ${job.id} already exists in queue ${existing}, not ${queue}`);
    }
    joined.forEach((bid, i) => {
      const q = batches[i];
      if (q && q !== queue)
        throw this.crossSlot(`a job of queue ${queue} cannot join batch ${bid} (queue ${q})`);
    });
    // Indexed ahead: the jobs (only those not indexed yet need undoing), the callbacks' ids, the new batch.
    const fresh = jobs.filter((j) => !queueOf.get(j.id)).map((j) => j.id);
    const callbackIds = batch ? batch.callbacks.map((c) => `${batch.id}:${c.event}`) : [];
    let batchIndexed = false;
    if (batch) {
      const [[, set], [, owner]] = (await this.call("index the batch", (c) =>
        c.multi().hsetnx(this.keys.batchQueues, batch.id, queue).hget(this.keys.batchQueues, batch.id).exec(),
      )) as [[Error | null, number], [Error | null, string | null]];
      if (set === 0 && owner !== queue) throw new BatchExistsError(batch.id);
      batchIndexed = set === 1;
      // Listed by the creating client's clock (the batch's own createdAt is the server's, in its slot).
      await this.call("index the batch", (c) =>
        c.zadd(`${this.keys.global}:batches`, "NX", Date.now(), batch.id),
      );
    }
    await this.preIndex([
      ...jobs.map((j) => [j.id, queue] as const),
      ...callbackIds.map((id) => [id, queue] as const),
    ]);
    return async (reply) => {
      const refused = reply === null || (reply[0]?.startsWith("!") ?? false);
      const unused = refused
        ? [...fresh, ...callbackIds]
        : jobs
            .filter((j, i) => decodeEnqueued(j.id, reply[i]!).id !== j.id && fresh.includes(j.id))
            .map((j) => j.id);
      if (unused.length > 0) await this.call("clean the id index", (c) => c.hdel(this.keys.ids, ...unused));
      if (refused && batchIndexed && batch)
        await this.call("clean the batch index", (c) => c.hdel(this.keys.batchQueues, batch.id));
      if (refused && batchIndexed && batch)
        await this.call("clean the batch index", (c) => c.zrem(`${this.keys.global}:batches`, batch.id));
    };
  }

  // ── consuming ──────────────────────────────────────────────────────────────────────────────────

  async claim(request: ClaimRequest): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    const starting = request.start ?? request.limit;
    for (const queue of request.queues) {
      const want = request.limit - out.length;
      if (want <= 0) break;
      const start = Math.max(0, starting - out.length);
      const text = await this.script<string>(
        this.queueCall("claim", queue, [want, request.workerId, request.leaseMs, PROMOTE_PER_CLAIM, start]),
        "claim jobs",
      );
      for (const reply of JSON.parse(text) as JobReply[]) {
        const job = decodeJob(queue, reply);
        this.leased.set(job.id, { queue, drop: job.retention === false, token: job.leaseToken });
        out.push(job);
      }
    }
    return out;
  }

  async start(leases: readonly LeaseRef[]): Promise<boolean[]> {
    return this.perQueue(leases, "start", (l) => [l.id, l.token], flags);
  }

  async complete(requests: readonly CompleteRequest[]): Promise<boolean[]> {
    const out: boolean[] = requests.map(() => false);
    if (requests.length === 0) return out;
    const groups = await this.groupByQueue(requests);
    const entries = [...groups.byQueue];
    // A job with retention false is deleted by its completion: drop its id index entry in the same round
    // trip (the index lives in another slot, so the script cannot). Fenced ones get it back below.
    const dropping = requests.filter((r) => this.leased.get(r.id)?.drop).map((r) => r.id);
    const replies = await this.scripts<[number[], string[]]>(
      entries.map(([queue, group]) =>
        this.queueCall(
          "complete",
          queue,
          group.flatMap(({ item }) => [item.id, item.token, item.result ?? ""]),
        ),
      ),
      "complete jobs",
      dropping.length > 0 ? [["hdel", this.keys.ids, ...dropping]] : [],
    );
    const deleted = new Set<string>();
    entries.forEach(([, group], k) => {
      const [applied, gone] = replies[k]!;
      for (const id of gone) deleted.add(id);
      applied.forEach((f, j) => {
        out[group[j]!.index] = f === 1;
      });
    });
    const restore = dropping.filter((id) => !deleted.has(id));
    const undropped = [...deleted].filter((id) => !dropping.includes(id));
    const queueOf = new Map(requests.map((r) => [r.id, this.leased.get(r.id)?.queue]));
    for (const r of requests) this.forget(r);
    if (undropped.length > 0)
      await this.call("clean the id index", (c) => c.hdel(this.keys.ids, ...undropped));
    for (const id of restore) {
      const queue = queueOf.get(id);
      if (queue && (await this.getMany(queue, [id])).length > 0) {
        await this.call("restore the id index", (c) => c.hset(this.keys.ids, id, queue));
      }
    }
    return out;
  }

  async fail(requests: readonly FailRequest[]): Promise<boolean[]> {
    const applied = await this.perQueue(
      requests,
      "fail",
      (r) => {
        const next = r.next;
        const arg =
          next.state === "scheduled" ? String(Math.round(next.runAt)) : "reason" in next ? next.reason : "";
        return [r.id, r.token, JSON.stringify(r.error), next.state, arg, r.error.message];
      },
      flags,
    );
    for (const r of requests) this.forget(r);
    return applied;
  }

  async release(requests: readonly ReleaseRequest[]): Promise<boolean[]> {
    const applied = await this.perQueue(
      requests,
      "release",
      (r) => [r.id, r.token, r.runAt === undefined ? "" : String(Math.round(r.runAt)), r.reason],
      flags,
    );
    for (const r of requests) this.forget(r);
    return applied;
  }

  async extendLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<ExtendResult> {
    const result: ExtendResult = { lost: [], cancelRequested: [], paused: [] };
    if (leases.length === 0) return result;
    const groups = await this.groupByQueue(leases);
    const calls = [...groups.byQueue].map(([queue, items]) =>
      this.queueCall("extend", queue, [leaseMs, ...items.flatMap(({ item }) => [item.id, item.token])]),
    );
    const replies = await this.scripts<[string[], string[], string[]]>(calls, "extend leases");
    for (const [lost, cancel, paused] of replies) {
      result.lost.push(...leaseRefs(lost));
      result.cancelRequested.push(...leaseRefs(cancel));
      result.paused.push(...leaseRefs(paused));
    }
    result.lost.push(...groups.unknown.map(({ item }) => ({ id: item.id, token: item.token })));
    for (const lease of result.lost) this.forget(lease);
    return result;
  }

  async saveProgress(requests: readonly ProgressRequest[]): Promise<boolean[]> {
    return this.perQueue(
      requests,
      "progress",
      (r) => [r.id, r.token, r.progress, r.event === false ? "0" : "1"],
      flags,
    );
  }

  async appendLogs(lines: readonly LogRequest[]): Promise<void> {
    if (lines.length === 0) return;
    const groups = await this.groupByQueue(lines);
    const calls = [...groups.byQueue].map(([queue, items]) =>
      this.queueCall("logs", queue, [
        LOG_LINES_KEPT,
        ...items.flatMap(({ item }) => [
          item.id,
          JSON.stringify({ at: item.at, attempt: item.attempt, message: item.message }),
        ]),
      ]),
    );
    await this.scripts(calls, "append job logs");
  }

  async annotateAttempt(id: string, attempt: number, note: string): Promise<boolean> {
    // By the id index, not the lease map: the job may have moved on since this store leased it.
    const queue = (await this.indexOf([id]))[0] ?? null;
    if (queue === null) return false;
    const set = await this.script<number>(
      this.queueCall("annotate", queue, [id, attempt, note]),
      "annotate the attempt",
    );
    return set === 1;
  }

  async nextRunAt(queues: readonly string[]): Promise<number | null> {
    if (queues.length === 0) return null;
    const replies = await this.call("read scheduled jobs", async (c) => {
      const pipeline = this.pipe(c);
      for (const q of queues) pipeline.zrange(`${this.keys.queue(q)}s`, "0", "0", "WITHSCORES");
      return (await pipeline.exec()) ?? [];
    });
    let next: number | null = null;
    for (const [error, reply] of replies) {
      if (error) throw toStoreError(error, this.location, "read scheduled jobs");
      const score = (reply as string[])[1];
      if (score !== undefined && (next === null || Number(score) < next)) next = Number(score);
    }
    return next;
  }

  subscribe(listener: (signal: StoreSignal) => void): () => void {
    if (!this.subscriber)
      throw new SluiceError("CLOSED", "Redis store is not open; call open() before subscribe()");
    return this.subscriber.add(listener);
  }

  // ── maintenance ────────────────────────────────────────────────────────────────────────────────

  async recover(request: RecoverRequest): Promise<RecoveredJob[]> {
    const mark = "\u0000";
    const expired = request.mode.kind === "expired";
    const reasonOf = expired ? leaseExpiredReason : forcedRecoveryReason;
    const [prefix = "", suffix = ""] = reasonOf(mark).split(mark);
    const out: RecoveredJob[] = [];
    const { queues, serverUpMs } = await this.queuesToRecover(expired);
    // After a restart (or this process's reconnect) leases that ran out during the outage may belong to
    // live workers holding finished outcomes: give them one lease period first (see ../outage.ts).
    if (request.mode.kind === "expired" && this.gate.defer(request.mode.waitAfterRestartMs, serverUpMs))
      return [];
    for (const queue of queues) {
      const want = request.limit - out.length;
      if (want <= 0) break;
      const rows = await this.script<
        [string, string, string | null, number, number, RecoveredJob["to"], string][]
      >(
        this.queueCall("recover", queue, [
          expired ? "expired" : "before",
          request.mode.kind === "startedBefore" ? request.mode.at : 0,
          request.dryRun ? "1" : "0",
          want,
          prefix,
          suffix,
          reasonOf(null),
        ]),
        "recover expired leases",
      );
      for (const [id, task, workerId, attempt, maxAttempts, to, reason] of rows) {
        out.push({
          id,
          queue,
          task,
          workerId,
          attempt: Number(attempt),
          maxAttempts: Number(maxAttempts),
          to,
          reason,
        });
      }
    }
    return out;
  }

  /**
   * Queues that have something to recover, found in one pipelined round trip (the server's TIME and each
   * queue's earliest lease expiry, or its count of active jobs for recovery by age). A maintenance pass then
   * costs one script call per queue with work, not one per queue ever used: a fleet with hundreds of queues
   * does not pay hundreds of round trips every few seconds, and a recovered job's event is emitted without
   * waiting for the rest of the queues.
   */
  private async queuesToRecover(expired: boolean): Promise<{ queues: string[]; serverUpMs: number }> {
    const queues = await this.queueNames();
    if (queues.length === 0) return { queues: [], serverUpMs: Number.POSITIVE_INFINITY };
    const active = (q: string) => `${this.keys.queue(q)}${STATE_SUFFIX.active}`;
    const replies = await this.call("find expired leases", async (c) => {
      // INFO server rides along (last): uptime_in_seconds says when the server (re)started. (On a cluster
      // TIME and INFO go to one node: the cluster's nodes are assumed to share a clock, docs/redis.md.)
      const pipeline = this.pipe(c).time();
      for (const q of queues) {
        if (expired) pipeline.zrange(active(q), "0", "0", "WITHSCORES");
        else pipeline.zcard(active(q));
      }
      pipeline.info("server");
      return (await pipeline.exec()) ?? [];
    });
    for (const [error] of replies) if (error) throw toStoreError(error, this.location, "find expired leases");
    const [seconds, micros] = replies[0]![1] as [string, string];
    const serverNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const uptime = /^uptime_in_seconds:(\d+)/m.exec(String(replies[queues.length + 1]?.[1] ?? ""));
    // Whole seconds: the server started at most a second before uptime × 1000 ms ago.
    const serverUpMs = uptime ? Number(uptime[1]) * 1000 : Number.POSITIVE_INFINITY;
    const found = queues.filter((_, i) => {
      const reply = replies[i + 1]![1];
      if (!expired) return Number(reply) > 0;
      const earliest = (reply as string[])[1];
      return earliest !== undefined && Number(earliest) < serverNow;
    });
    return { queues: found, serverUpMs };
  }

  async prune(options: {
    limit: number;
    workersSilentSince: number;
    eventsBefore?: number;
    maxEvents?: number;
  }): Promise<{ jobs: number; workers: number; events: number }> {
    let jobs = 0;
    for (const queue of await this.queueNames()) {
      // Several short scripts rather than one long one: Redis runs nothing else while a script runs.
      for (;;) {
        const want = Math.min(options.limit - jobs, PRUNE_JOBS_PER_SCRIPT);
        if (want <= 0) break;
        const deleted = await this.script<string[]>(
          this.queueCall("prune", queue, [want, STATS_RETENTION_MS]),
          "prune jobs",
        );
        if (deleted.length > 0)
          await this.call("clean the id index", (c) => c.hdel(this.keys.ids, ...deleted));
        jobs += deleted.length;
        if (deleted.length < want) break;
      }
    }
    const silent = await this.call("read workers", (c) =>
      c.zrangebyscore(this.keys.workerBeats, "-inf", `(${options.workersSilentSince}`),
    );
    if (silent.length > 0) await this.dropWorkers(silent);
    let events = 0;
    if (this.cluster && (options.eventsBefore !== undefined || options.maxEvents !== undefined)) {
      events = await this.pruneClusterEvents(options.eventsBefore, options.maxEvents, options.limit);
    } else if (options.eventsBefore !== undefined || options.maxEvents !== undefined) {
      events = await this.script<number>(
        {
          name: "pruneEvents",
          keys: [this.keys.events],
          args: [
            options.eventsBefore === undefined ? "" : Math.floor(options.eventsBefore),
            options.maxEvents === undefined ? "" : Math.max(0, Math.floor(options.maxEvents)),
            Math.max(0, Math.floor(options.limit)),
          ],
        },
        "prune events",
      );
    }
    return { jobs, workers: silent.length, events };
  }

  /**
   * Cluster: one events stream per queue. Age: each stream by the same rule. Count: `maxEvents` over the
   * whole store, as on one server: the oldest surplus across the streams (merged order) is found by reading
   * each stream's oldest entries, at most `limit` of them, then each stream drops its share, exactly.
   */
  private async pruneClusterEvents(
    before: number | undefined,
    maxEvents: number | undefined,
    limit: number,
  ): Promise<number> {
    const queues = await this.queueNames();
    let left = Math.max(0, Math.floor(limit));
    let deleted = 0;
    const trim = async (queue: string, args: (string | number)[]) =>
      this.script<number>({ name: "pruneEvents", keys: [this.keys.eventsOf(queue)], args }, "prune events");
    if (before !== undefined) {
      for (const queue of queues) {
        if (left <= 0) break;
        const n = await trim(queue, [Math.floor(before), "", left]);
        deleted += n;
        left -= n;
      }
    }
    if (maxEvents === undefined || left <= 0 || queues.length === 0) return deleted;
    const lengths = await this.call("count events", async (c) => {
      const pipeline = this.pipe(c);
      for (const q of queues) pipeline.xlen(this.keys.eventsOf(q));
      return ((await pipeline.exec()) ?? []).map(([error, n]) => {
        if (error) throw error;
        return Number(n);
      });
    });
    const surplus = Math.min(left, lengths.reduce((a, b) => a + b, 0) - Math.max(0, Math.floor(maxEvents)));
    if (surplus <= 0) return deleted;
    const oldest = await this.call("read the oldest events", async (c) => {
      const pipeline = this.pipe(c);
      for (const q of queues) pipeline.xrange(this.keys.eventsOf(q), "-", "+", "COUNT", surplus);
      return ((await pipeline.exec()) ?? []).map(([error, r]) => {
        if (error) throw error;
        return (r as [string, string[]][]).map(([id]) => id);
      });
    });
    const share = new Map<string, number>();
    for (const at of oldest
      .flatMap((ids, i) => ids.map((id) => ({ id, queue: queues[i]! })))
      .sort(compareClusterEvents)
      .slice(0, surplus))
      share.set(at.queue, (share.get(at.queue) ?? 0) + 1);
    for (const [queue, n] of share) deleted += await trim(queue, ["", 0, n]);
    return deleted;
  }

  async tryLead(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const held = await this.script<number>(
      { name: "lead", keys: [this.keys.lead(name)], args: [owner, ttlMs] },
      "take leadership",
    );
    return held === 1;
  }

  async resign(name: string, owner: string): Promise<void> {
    await this.script({ name: "resign", keys: [this.keys.lead(name)], args: [owner] }, "resign leadership");
  }

  // ── worker registry ────────────────────────────────────────────────────────────────────────────

  async registerWorker(worker: WorkerInfo): Promise<void> {
    const {
      busy: _busy,
      lastHeartbeatAt: _beat,
      stalls,
      health,
      clock,
      clockSkewMs: _skew,
      ...fixed
    } = worker;
    const stalled = stallsText(stalls);
    await this.call("register worker", (c) => {
      const tx = c
        .multi()
        .hset(this.keys.workers, worker.id, JSON.stringify(fixed))
        .zadd(this.keys.workerBeats, Date.now(), worker.id)
        .hset(this.keys.workerBusy, worker.id, worker.busy);
      if (stalled === null) tx.hdel(this.keys.workerStalls, worker.id);
      else tx.hset(this.keys.workerStalls, worker.id, stalled);
      return tx.exec();
    });
    // The skew needs the server's TIME, which only a script can compare before writing: the entry exists
    // now, so this beat records the clock (and the health checks) against it.
    await this.heartbeatWorker(worker.id, worker.busy, undefined, { health, clock });
  }

  async heartbeatWorker(
    id: string,
    busy: number,
    stalls?: WorkerStalls,
    beat?: WorkerBeat,
  ): Promise<boolean> {
    // XX CH: a worker pruned as silent is not brought back half-registered; the reply (0 = no entry) makes
    // the runtime register it again in full. Its busy count is written only when the entry exists.
    const updated = await this.script<number>(
      {
        name: "beat",
        keys: [
          this.keys.workerBeats,
          this.keys.workerBusy,
          this.keys.workerStalls,
          this.keys.workerHealth,
          this.keys.workerClock,
        ],
        args: [
          id,
          Date.now(),
          busy,
          (stalls && stallsText(stalls)) ?? "",
          beat?.health === undefined ? "" : (healthText(beat.health) ?? "[]"),
          beat?.clock === undefined ? "" : Math.round(beat.clock),
        ],
      },
      "heartbeat",
    );
    return updated === 1;
  }

  async unregisterWorker(id: string): Promise<void> {
    await this.dropWorkers([id]);
  }

  private async dropWorkers(ids: string[]): Promise<void> {
    await this.call("unregister worker", (c) =>
      c
        .multi()
        .hdel(this.keys.workers, ...ids)
        .zrem(this.keys.workerBeats, ...ids)
        .hdel(this.keys.workerBusy, ...ids)
        .hdel(this.keys.workerStalls, ...ids)
        .hdel(this.keys.workerHealth, ...ids)
        .hdel(this.keys.workerClock, ...ids)
        .exec(),
    );
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    const [fixed, beats, busy, stalls, health, clocks] = await this.call("list workers", async (c) => {
      const replies = (await c
        .multi()
        .hgetall(this.keys.workers)
        .zrange(this.keys.workerBeats, "0", "-1", "WITHSCORES")
        .hgetall(this.keys.workerBusy)
        .hgetall(this.keys.workerStalls)
        .hgetall(this.keys.workerHealth)
        .hgetall(this.keys.workerClock)
        .exec()) as [Error | null, unknown][];
      return replies.map(([, r]) => r) as [
        Record<string, string>,
        string[],
        Record<string, string>,
        Record<string, string>,
        Record<string, string>,
        Record<string, string>,
      ];
    });
    const beatOf = new Map<string, number>();
    for (let i = 0; i < beats.length; i += 2) beatOf.set(beats[i]!, Number(beats[i + 1]));
    return Object.entries(fixed)
      .map(([id, json]) => {
        const info = JSON.parse(json) as Omit<
          WorkerInfo,
          "busy" | "lastHeartbeatAt" | "stalls" | "health" | "clock" | "clockSkewMs"
        >;
        const lastHeartbeatAt = beatOf.get(id) ?? info.startedAt;
        const [clock, skew] = (clocks[id] ?? "").split(" ");
        return {
          ...info,
          id,
          busy: Number(busy[id] ?? 0),
          lastHeartbeatAt,
          stalls: parseStalls(stalls[id] ?? null),
          health: parseHealth(health[id] ?? null),
          clock: clock ? Number(clock) : lastHeartbeatAt,
          clockSkewMs: skew ? Number(skew) : 0,
        };
      })
      .sort((a, b) => a.startedAt - b.startedAt);
  }

  // ── admin ──────────────────────────────────────────────────────────────────────────────────────

  async queueStats(): Promise<QueueStats[]> {
    const queues = await this.queueNames();
    const replies = await this.scripts<string[]>(
      queues.map((q) => this.queueCall("stats", q, [])),
      "read queue stats",
    );
    const now = Date.now();
    return queues.map((queue, i) => {
      const r = replies[i]!;
      const counts: Record<JobState, number> = {
        scheduled: Number(r[0]),
        waiting: Number(r[1]),
        active: Number(r[2]),
        completed: Number(r[3]),
        dead: Number(r[4]),
        cancelled: Number(r[5]),
        blocked: Number(r[6]),
      };
      const until = r[8] ? Number(r[8]) : null;
      const oldest = [r[9], r[11]].filter((v): v is string => !!v).map(Number);
      return {
        queue,
        counts,
        due: Number(r[10] ?? 0),
        oldestWaitingAt: oldest.length > 0 ? Math.min(...oldest) : null,
        paused: r[7] === "1",
        pausedUntil: until !== null && until > now ? until : null,
        limits: r[12] ? decodeLimits(r[12]) : null,
        limitedActive: Number(r[13] ?? 0),
        heldKeys: Number(r[14] ?? 0),
      };
    });
  }

  async listJobs(request: ListRequest): Promise<JobPage> {
    const order = request.order ?? "desc";
    const cursor = decodeCursor(request.cursor);
    const filter = request.filter;
    if (filter.states && filter.states.length === 0) return { jobs: [], nextCursor: null };
    if (filter.ids) return this.listByIds(filter, request.limit, order, cursor);
    const queues = filter.queue !== undefined ? [filter.queue] : await this.queueNames();
    const states = filter.states ? [...new Set(filter.states)].join(",") : "";
    const fetch = async (queue: string, from: typeof cursor, limit: number): Promise<QueuePage> => {
      const [flat, done, fs, fid] = await this.script<[string[], string, string, string]>(
        this.queueCall("list", queue, [
          limit,
          order,
          from ? String(from.s) : "",
          from ? from.i : "",
          states,
          opt(filter.task),
          opt(filter.tag),
          opt(filter.createdBefore),
          LIST_SCAN_BUDGET,
          opt(filter.idPrefix),
          payloadFieldArg(filter),
          opt(filter.batchId),
          opt(filter.parentId),
        ]),
        "list jobs",
      );
      const items: { id: string; seq: number }[] = [];
      for (let i = 0; i < flat.length; i += 2) items.push({ id: flat[i]!, seq: Number(flat[i + 1]) });
      return { queue, items, done: done === "1", frontier: done === "1" ? null : { s: Number(fs), i: fid } };
    };
    const page = await mergePages(queues, request.limit, order, cursor, fetch);
    const byQueue = new Map<string, string[]>();
    for (const item of page.items) byQueue.set(item.queue, [...(byQueue.get(item.queue) ?? []), item.id]);
    const records = new Map<string, JobRecord>();
    for (const [queue, ids] of byQueue)
      for (const job of await this.getMany(queue, ids)) records.set(job.id, job);
    const jobs = page.items
      .map((item) => records.get(item.id))
      .filter((j): j is JobRecord => j !== undefined);
    return { jobs, nextCursor: page.next ? encodeCursor(page.next) : null };
  }

  /** Listing by explicit ids: read them all, filter and order in memory. */
  private async listByIds(
    filter: JobFilter,
    limit: number,
    order: "asc" | "desc",
    cursor: { s: number; i: string } | null,
  ): Promise<JobPage> {
    const jobs = (await this.getByIds(filter.ids ?? []))
      .filter((j) => jobMatches(j, filter))
      .sort((a, b) => compareSeq(a, b) * (order === "desc" ? -1 : 1))
      .filter(
        (j) => !cursor || compareSeq(j, { seq: cursor.s, id: cursor.i }) * (order === "desc" ? -1 : 1) > 0,
      );
    const page = jobs.slice(0, limit);
    const last = page[page.length - 1];
    return {
      jobs: page,
      nextCursor: jobs.length > limit && last ? encodeCursor({ s: last.seq, i: last.id }) : null,
    };
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const [job] = await this.getByIds([id]);
    return job ?? null;
  }

  // ── flows (core/flows.ts; keys and scripts: lua.ts FLOW, docs/redis.md "Flows") ──────────────────

  async block(requests: readonly BlockRequest[]): Promise<boolean[]> {
    if (this.cluster) {
      // The edges are written in the job's queue slot: its dependencies must be in that queue.
      const deps = [...new Set(requests.flatMap((r) => r.dependsOn.map((d) => d.id)))];
      const [own, found] = await Promise.all([
        this.groupByQueue(requests),
        deps.length > 0 ? this.indexOf(deps) : Promise.resolve([]),
      ]);
      const queueOf = new Map(deps.map((d, i) => [d, found[i] ?? null]));
      for (const [queue, group] of own.byQueue) {
        for (const { item } of group) {
          for (const d of item.dependsOn) {
            const q = queueOf.get(d.id);
            if (q && q !== queue)
              throw this.crossSlot(`job ${item.id} (queue ${queue}) cannot wait for ${d.id} (queue ${q})`);
          }
        }
      }
    }
    const applied = await this.perQueue(
      requests,
      "block",
      (r) => [r.id, r.token, encodeDependencies(r.dependsOn) || "[]"],
      flags,
    );
    for (const r of requests) this.forget(r);
    return applied;
  }

  async getFlow(id: string): Promise<FlowView | null> {
    const job = await this.getJob(id);
    if (job === null) return null;
    const g = this.keys.flow(job.queue);
    const [up, down, children] = await this.call("read the flow", async (c) => {
      const replies = (await c
        .multi()
        .hgetall(`${g}fup:${id}`)
        .hgetall(`${g}fdn:${id}`)
        .zrange(`${g}fch:${id}`, "0", String(FLOW_CHILDREN_MOST - 1))
        .exec()) as [Error | null, unknown][];
      for (const [error] of replies) if (error) throw error;
      return replies.map(([, r]) => r) as [Record<string, string>, Record<string, string>, string[]];
    });
    const dependents = Object.keys(down);
    // A dependent's edge (policy, resolved) is kept on its side: `{p}:fup:<dependent>`.
    const downEdges = await this.call("read the flow", async (c) => {
      if (dependents.length === 0) return [];
      const pipeline = this.pipe(c);
      // On a cluster a dependent is in this job's queue (flows stay in one queue there).
      for (const x of dependents) pipeline.hget(`${g}fup:${x}`, id);
      return ((await pipeline.exec()) ?? []).map(([error, reply]) => {
        if (error) throw error;
        return reply as string | null;
      });
    });
    const related = new Map<string, JobRecord>();
    const wanted = [...Object.keys(up), ...dependents, ...children];
    if (job.parentId) wanted.push(job.parentId);
    for (const j of await this.getByIds([...new Set(wanted)])) related.set(j.id, j);
    const view = (jobId: string): FlowJob => flowJob(jobId, related.get(jobId));
    return {
      dependencies: Object.entries(up).map(([d, text]) => ({ ...view(d), ...decodeEdge(text) })),
      dependents: dependents.map(
        (x, i): FlowEdge => ({
          ...view(x),
          ...decodeEdge(downEdges[i] ?? `${down[x]?.[0] ?? "f"}1`),
        }),
      ),
      children: children.map((c) => view(c)),
      parent: job.parentId ? view(job.parentId) : null,
      batch: job.batchId ? await this.getBatch(job.batchId) : null,
    };
  }

  async getBatch(id: string): Promise<BatchRecord | null> {
    const key = await this.batchKey(id);
    if (key === null) return null;
    const fields = await this.call("read the batch", (c) => c.hgetall(key));
    return Object.keys(fields).length === 0 ? null : decodeBatch(id, fields);
  }

  /** The batch's hash: global on one server; on a cluster in its queue's slot, found through `{p}:bq`. */
  private async batchKey(id: string): Promise<string | null> {
    if (!this.cluster) return `${this.keys.global}:bt:${id}`;
    const queue = await this.call("find the batch", (c) => c.hget(this.keys.batchQueues, id));
    return queue === null ? null : `${this.keys.flow(queue)}bt:${id}`;
  }

  async listBatches(request: {
    limit: number;
    cursor?: string | null;
    finished?: boolean;
  }): Promise<{ batches: BatchRecord[]; nextCursor: string | null }> {
    const limit = Math.max(0, Math.floor(request.limit));
    const cursor = decodeBatchCursor(request.cursor);
    const out: BatchRecord[] = [];
    const key = `${this.keys.global}:batches`;
    // Newest first: by createdAt (the score), then id, both descending (ZREVRANGEBYSCORE's order).
    let offset = 0;
    for (;;) {
      const chunk = await this.call("list batches", (c) =>
        c.zrevrangebyscore(key, cursor ? cursor.c : "+inf", "-inf", "WITHSCORES", "LIMIT", offset, 200),
      );
      offset += 200;
      const ids: string[] = [];
      for (let i = 0; i < chunk.length; i += 2) {
        const bid = chunk[i]!;
        const score = Number(chunk[i + 1]);
        if (cursor && score === cursor.c && bid >= cursor.i) continue;
        ids.push(bid);
      }
      const keys = await Promise.all(ids.map((bid) => this.batchKey(bid)));
      const records = await this.call("list batches", async (c) => {
        const pipeline = this.pipe(c);
        for (const key of keys) {
          // A batch indexed ahead whose enqueue never ran (cluster) has no hash: read as missing.
          if (key === null) pipeline.echo("");
          else pipeline.hgetall(key);
        }
        return ((await pipeline.exec()) ?? []).map(([error, reply], i) => {
          if (error) throw error;
          const fields = reply as Record<string, string> | string;
          return typeof fields === "string" || Object.keys(fields).length === 0
            ? null
            : decodeBatch(ids[i]!, fields);
        });
      });
      for (const batch of records) {
        if (batch === null) continue;
        if (request.finished !== undefined && (batch.finishedAt !== null) !== request.finished) continue;
        if (out.length === limit) {
          const last = out[out.length - 1];
          return { batches: out, nextCursor: last ? encodeBatchCursor(last) : null };
        }
        out.push(batch);
      }
      if (chunk.length < 400) return { batches: out, nextCursor: null };
    }
  }

  async stuckBlocked(limit: number): Promise<StuckBlockedJob[]> {
    const out: StuckBlockedJob[] = [];
    for (const queue of await this.queueNames()) {
      const g = this.keys.flow(queue);
      if (out.length >= limit) break;
      const ids = await this.call("read blocked jobs", (c) =>
        c.zrange(`${this.keys.queue(queue)}${STATE_SUFFIX.blocked}`, "0", "-1"),
      );
      for (const job of await this.getMany(queue, ids)) {
        if (out.length >= limit) break;
        if (job.state !== "blocked") continue;
        const edges = await this.call("read dependencies", (c) => c.hgetall(`${g}fup:${job.id}`));
        const open = Object.entries(edges)
          .filter(([, text]) => !decodeEdge(text).resolved)
          .map(([d]) => d);
        const states = new Map((await this.getByIds(open)).map((d) => [d.id, d.state]));
        const waitingFor = open.map((d) => ({ id: d, state: states.get(d) ?? null }));
        const hopeless = waitingFor.some((w) => w.state === null || FINISHED.has(w.state));
        if (job.pendingDependencies <= 0 || waitingFor.length === 0 || hopeless) {
          out.push({
            id: job.id,
            queue,
            task: job.task,
            createdAt: job.createdAt,
            pendingDependencies: job.pendingDependencies,
            waitingFor,
          });
        }
      }
    }
    return out;
  }

  // ── limits (core/limits.ts; docs/redis.md, "Limits") ──────────────────────────────────────────

  async setQueueLimits(queue: string, limits: QueueLimits | null): Promise<void> {
    const stored = limits === null || unlimited(limits) ? "" : encodeLimits(limits);
    // Registered too: a queue with limits is listed by queueStats before its first job.
    await this.scripts([this.queueCall("setLimits", queue, [stored])], "set queue limits", [
      ["sadd", this.keys.queues, queue],
    ]);
  }

  async holdKey(queue: string, key: string, until: number): Promise<void> {
    await this.scripts([this.queueCall("holdKey", queue, [key, Math.round(until)])], "hold a limit key", [
      ["sadd", this.keys.queues, queue],
    ]);
  }

  async keyHolds(limit: number): Promise<KeyHold[]> {
    if (limit <= 0) return [];
    const queues = await this.queueNames();
    const replies = await this.scripts<string[]>(
      queues.map((q) => this.queueCall("keyHolds", q, [limit])),
      "read key holds",
    );
    const holds: KeyHold[] = [];
    queues.forEach((queue, i) => {
      const r = replies[i] ?? [];
      for (let j = 0; j + 2 < r.length; j += 3) {
        holds.push({ queue, key: r[j]!, until: Number(r[j + 1]), backlog: Number(r[j + 2]) });
      }
    });
    holds.sort((a, b) => b.backlog - a.backlog || a.until - b.until);
    return holds.slice(0, limit);
  }

  async getLogs(id: string, limit: number): Promise<JobLogLine[]> {
    if (limit <= 0) return [];
    const queue = await this.queueOf(id);
    if (queue === null) return [];
    const lines = await this.call("read job logs", (c) =>
      c.lrange(`${this.keys.queue(queue)}l:${id}`, -limit, -1),
    );
    return lines.map((l) => JSON.parse(l) as JobLogLine);
  }

  async retry(filter: JobFilter, options: BulkOptions): Promise<BulkResult> {
    const { changed } = await this.bulk("retry", filter, options.limit, RETRYABLE_STATES);
    return { count: changed.length, ids: changed };
  }

  async cancel(filter: JobFilter, options: BulkOptions): Promise<BulkResult & { requested: string[] }> {
    const { changed, requested } = await this.bulk("cancel", filter, options.limit, CANCELLABLE_STATES);
    return { count: changed.length, ids: changed, requested };
  }

  async remove(filter: JobFilter, options: BulkOptions): Promise<BulkResult> {
    const { changed } = await this.bulk("remove", filter, options.limit, REMOVABLE_STATES);
    for (const id of changed) this.leased.delete(id);
    if (changed.length > 0) await this.call("clean the id index", (c) => c.hdel(this.keys.ids, ...changed));
    return { count: changed.length, ids: changed };
  }

  async move(filter: JobFilter, toQueue: string, options: BulkOptions): Promise<BulkResult> {
    if (this.cluster) {
      // A move is one script over two queues' slots (RENAME of the job's keys, both indexes): no cluster
      // node can run it. Refused before anything changes (docs/redis.md, "Redis Cluster").
      throw this.crossSlot(`jobs cannot move from one queue to another (to ${toQueue}) in one script`);
    }
    await this.call("register queue", (c) => c.sadd(this.keys.queues, toQueue));
    const { changed } = await this.bulk("move", filter, options.limit, MOVABLE_STATES, toQueue);
    // A job this store held ahead lives in another queue now: its cached queue is wrong.
    for (const id of changed) this.leased.delete(id);
    return { count: changed.length, ids: changed };
  }

  async reprioritize(filter: JobFilter, priority: number, options: BulkOptions): Promise<BulkResult> {
    const { changed } = await this.bulk(
      "reprioritize",
      filter,
      options.limit,
      REPRIORITIZABLE_STATES,
      String(priority),
    );
    return { count: changed.length, ids: changed };
  }

  /**
   * Runs a bulk action queue by queue until `limit` jobs changed or every queue was visited. `arg` is the
   * target queue of a move (whose own jobs are skipped) or the new priority.
   */
  private async bulk(
    action: "retry" | "cancel" | "remove" | "move" | "reprioritize",
    filter: JobFilter,
    limit: number,
    allowed: readonly JobState[],
    arg = "",
  ): Promise<{ changed: string[]; requested: string[] }> {
    const changed: string[] = [];
    const requested: string[] = [];
    const states = (filter.states ? allowed.filter((s) => filter.states!.includes(s)) : allowed).join(",");
    if (states === "" || limit <= 0) return { changed, requested };
    const rest = [
      opt(filter.task),
      opt(filter.tag),
      opt(filter.createdBefore),
      opt(filter.idPrefix),
      payloadFieldArg(filter),
      arg,
      opt(filter.batchId),
      opt(filter.parentId),
    ];
    let targets: [string, string[]][];
    if (filter.ids) {
      const index = await this.indexOf(filter.ids);
      const byQueue = new Map<string, string[]>();
      filter.ids.forEach((id, i) => {
        const queue = index[i];
        if (!queue || (filter.queue !== undefined && queue !== filter.queue)) return;
        byQueue.set(queue, [...(byQueue.get(queue) ?? []), id]);
      });
      targets = [...byQueue];
    } else {
      targets = (filter.queue !== undefined ? [filter.queue] : await this.queueNames()).map((q) => [q, []]);
    }
    for (const [queue, ids] of targets) {
      const want = limit - changed.length - requested.length;
      if (want <= 0) break;
      if (action === "move" && queue === arg) continue;
      const call = this.queueCall("bulk", queue, [action, want, states, ...rest, ...ids]);
      if (action === "move") call.keys.push(`${this.keys.queue(arg)}m`, this.keys.ids);
      const [c, r] = await this.script<[string[], string[]]>(call, `${action} jobs`);
      changed.push(...c);
      requested.push(...r);
    }
    return { changed, requested };
  }

  async pauseQueue(queue: string, until: number | null): Promise<void> {
    await this.scripts(
      [this.queueCall("pause", queue, [until === null ? "" : Math.round(until)])],
      "pause queue",
      [["sadd", this.keys.queues, queue]],
    );
  }

  async resumeQueue(queue: string): Promise<void> {
    const meta = `${this.keys.queue(queue)}m`;
    await this.call("resume queue", (c) => {
      // Key holds end with the pause (Store.resumeQueue).
      const tx = c
        .multi()
        .hset(meta, "paused", "0")
        .hdel(meta, "until", "khu")
        .del(`${this.keys.queue(queue)}kh`);
      // Its event in the same MULTI (the fields of lua.ts EVENTS; the next script write trims the stream).
      if (this.eventCap !== "")
        tx.xadd(
          this.keys.eventsOf(queue),
          "*",
          "t",
          "resumed",
          "q",
          queue,
          "j",
          "",
          "k",
          "",
          "a",
          "",
          "d",
          "",
        );
      return tx.publish(this.keys.channel, `j${queue}`).exec();
    });
  }

  // ── schedules ──────────────────────────────────────────────────────────────────────────────────

  async upsertSchedule(schedule: ScheduleUpsert): Promise<ScheduleRecord> {
    const stored = await this.readSchedules([schedule.name]);
    const existing = stored[0];
    if (existing && existing.version === schedule.version && existing.queue === schedule.queue)
      return existing;
    const { nextAt: _clock, ...fixed } = schedule;
    const definition: StoredSchedule = { ...fixed, updatedAt: Date.now() };
    const clock = (queue: string) => this.keys.queue(queue);
    await this.call("save the schedule", async (c) => {
      const pipeline = this.pipe(c);
      if (existing && existing.queue !== schedule.queue) {
        pipeline.hdel(`${clock(existing.queue)}schn`, schedule.name);
        pipeline.hdel(`${clock(existing.queue)}scht`, schedule.name);
        pipeline.hdel(`${clock(existing.queue)}schp`, schedule.name);
        if (existing.lastTickAt !== null) {
          pipeline.hset(`${clock(schedule.queue)}scht`, schedule.name, existing.lastTickAt);
        }
        // The operator's pause moves with the schedule: a redeploy never undoes it.
        if (existing.paused) pipeline.hset(`${clock(schedule.queue)}schp`, schedule.name, "1");
      }
      // A new schedule starts unpaused, even where a pause of an earlier one of that name was left behind.
      if (!existing) pipeline.hdel(`${clock(schedule.queue)}schp`, schedule.name);
      if (schedule.nextAt === null) pipeline.hdel(`${clock(schedule.queue)}schn`, schedule.name);
      else pipeline.hset(`${clock(schedule.queue)}schn`, schedule.name, schedule.nextAt);
      pipeline.hset(this.keys.schedules, schedule.name, JSON.stringify(definition));
      pipeline.sadd(this.keys.queues, schedule.queue);
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
    });
    return {
      ...schedule,
      lastTickAt: existing?.lastTickAt ?? null,
      paused: existing?.paused ?? false,
      updatedAt: definition.updatedAt,
    };
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.readSchedules(null);
  }

  /** Schedules by name (null = all), with their clocks read from their queues' slots. */
  private async readSchedules(names: readonly string[] | null): Promise<ScheduleRecord[]> {
    const definitions: StoredSchedule[] = await this.call("read schedules", async (c) => {
      const texts =
        names === null
          ? Object.values(await c.hgetall(this.keys.schedules))
          : (await c.hmget(this.keys.schedules, ...names)).filter((t): t is string => t !== null);
      return texts.map((t) => JSON.parse(t) as StoredSchedule);
    });
    if (definitions.length === 0) return [];
    const clocks = await this.call("read schedule clocks", async (c) => {
      const pipeline = this.pipe(c);
      for (const d of definitions) {
        pipeline.hget(`${this.keys.queue(d.queue)}schn`, d.name);
        pipeline.hget(`${this.keys.queue(d.queue)}scht`, d.name);
        pipeline.hget(`${this.keys.queue(d.queue)}schp`, d.name);
      }
      return ((await pipeline.exec()) ?? []).map(([error, reply]) => {
        if (error) throw error;
        return reply === null ? null : Number(reply);
      });
    });
    return definitions
      .map((d, i) => ({
        ...d,
        nextAt: clocks[3 * i] ?? null,
        lastTickAt: clocks[3 * i + 1] ?? null,
        paused: clocks[3 * i + 2] === 1,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async removeSchedule(name: string): Promise<boolean> {
    const [existing] = await this.readSchedules([name]);
    if (!existing) return false;
    await this.call("remove the schedule", (c) =>
      this.pipe(c)
        .hdel(this.keys.schedules, name)
        .hdel(`${this.keys.queue(existing.queue)}schn`, name)
        .hdel(`${this.keys.queue(existing.queue)}scht`, name)
        .hdel(`${this.keys.queue(existing.queue)}schp`, name)
        .exec(),
    );
    return true;
  }

  async pauseSchedule(name: string): Promise<ScheduleRecord | null> {
    return this.setSchedulePaused(name, true, null);
  }

  async resumeSchedule(name: string, nextAt: number | null): Promise<ScheduleRecord | null> {
    return this.setSchedulePaused(name, false, nextAt);
  }

  /** Sets or clears the pause flag in the schedule's queue slot, where firings check it; the schedule after. */
  private async setSchedulePaused(
    name: string,
    paused: boolean,
    nextAt: number | null,
  ): Promise<ScheduleRecord | null> {
    const [existing] = await this.readSchedules([name]);
    if (!existing) return null;
    await this.script<number>(
      this.queueCall("schedulePause", existing.queue, [name, paused ? "1" : "0", nextAt ?? ""]),
      paused ? "pause the schedule" : "resume the schedule",
    );
    const [after] = await this.readSchedules([name]);
    return after ?? null;
  }

  async fireSchedule(request: FireRequest): Promise<EnqueueResult[] | null> {
    const call = this.queueCall("fire", request.queue, [
      ...encodeNewJobs(request.jobs),
      request.name,
      request.dueAt,
      request.nextAt ?? "",
      request.lastTickAt,
    ]);
    if (!this.cluster) call.keys.push(this.keys.ids, this.keys.queues);
    // Cluster: indexed ahead (see preIndex); the entries of jobs the firing did not write are removed after.
    else await this.preIndex(request.jobs.map((job) => [job.id, request.queue] as const));
    let reply: string[] | null;
    try {
      reply = await this.script<string[] | null>(call, "fire the schedule");
    } catch (error) {
      if (this.cluster) await this.unindex(request.jobs.map((j) => j.id)).catch(() => undefined);
      throw error;
    }
    const results =
      reply === null ? null : request.jobs.map((job, i) => decodeEnqueued(job.id, reply[i] as string));
    if (this.cluster) {
      const unused = request.jobs.filter((job, i) => !results || results[i]!.id !== job.id).map((j) => j.id);
      await this.unindex(unused);
    }
    return results;
  }

  /** Cluster: removes id index entries written ahead for jobs that were not written. */
  private async unindex(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.call("clean the id index", (c) => c.hdel(this.keys.ids, ...ids));
  }

  // ── stats roll-up ──────────────────────────────────────────────────────────────────────────────

  async addHourlyStats(rows: readonly StatsRow[]): Promise<void> {
    if (rows.length === 0) return;
    const byQueue = new Map<string, (string | number)[]>();
    for (const row of rows) {
      let args = byQueue.get(row.queue);
      if (!args) {
        args = [HISTOGRAM_SIZE];
        byQueue.set(row.queue, args);
      }
      args.push(row.hour, row.completed, row.failed, row.dead, row.lastCompletedAt ?? "");
      for (let i = 0; i < HISTOGRAM_SIZE; i++) args.push(row.durations[i] ?? 0);
    }
    // One round trip: one script per queue (atomic upsert-add in the queue's slot) and the queue registry.
    await this.scripts(
      [...byQueue].map(([queue, args]) => this.queueCall("addHourlyStats", queue, args)),
      "add stats",
      [["sadd", this.keys.queues, ...byQueue.keys()]],
    );
  }

  // ── fleet-wide events ──────────────────────────────────────────────────────────────────────────

  async readEvents(request: ReadEventsRequest): Promise<EventsPage> {
    if (this.cluster) return this.readClusterEvents(request);
    const after = request.after;
    if (after !== null && !EVENT_ID.test(after)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `event id ${JSON.stringify(after)} is not one this store wrote: Redis event ids look like ` +
          '"1733000000000-0" (milliseconds, a dash, a sequence number; at most 15 digits each), or pass null to ' +
          "read from the oldest event kept",
        { field: "after" },
      );
    }
    const [entries, cursor, reset] = await this.script<[EventEntry[], string, number]>(
      {
        name: "readEvents",
        keys: [this.keys.events],
        args: [
          after ?? "",
          Math.max(1, Math.floor(request.limit)),
          request.queue ?? "",
          request.jobId ?? "",
          EVENT_SCAN_BUDGET,
        ],
      },
      "read events",
    );
    return { events: entries.map(decodeEvent), cursor: cursor === "" ? null : cursor, reset: reset === 1 };
  }

  async lastEventId(): Promise<string | null> {
    if (this.cluster) return this.lastClusterEventId();
    const newest = await this.call("read the last event id", (c) =>
      c.xrevrange(this.keys.events, "+", "-", "COUNT", 1),
    );
    return newest[0]?.[0] ?? null;
  }

  /**
   * Cluster: the queues' streams read together (docs/redis.md, "Redis Cluster"). Events are merged in
   * (stream id, queue) order and an event id is `<stream id>@<queue>`. Each stream's read also returns its
   * node's TIME; every entry written to that stream later has an id at or above it, so a merged read stops
   * below the lowest of them (the horizon): an event committed on one node after a newer one was read on
   * another is still ahead of the cursor, never behind it.
   */
  private async readClusterEvents(request: ReadEventsRequest): Promise<EventsPage> {
    const after = request.after === null ? null : parseClusterEventId(request.after);
    const queues = request.queue !== undefined ? [request.queue] : await this.queueNames();
    const limit = Math.max(1, Math.floor(request.limit));
    const page = request.jobId !== undefined ? 500 : limit;
    const read = (from: ClusterEventPosition | null, count: number) =>
      this.scripts<QueueEventsReply>(
        queues.map((q) => ({
          name: "readQueueEvents",
          keys: [this.keys.eventsOf(q)],
          args: [streamStart(q, from), count],
        })),
        "read events",
      );
    let position = after;
    let replies = await read(position, page);
    let reset = false;
    if (after !== null) {
      const newest = replies.reduce((m, r) => (streamIdLess(m, r[2]) ? r[2] : m), "0-0");
      // Ahead of the store: past every id its streams assigned (all of them are read when unfiltered), or,
      // for a read of one queue, past the server's clock (another queue's newer ids are not read).
      const ahead =
        request.queue === undefined
          ? streamIdLess(newest, after.id)
          : streamMs(after.id) > Math.max(...replies.map((r) => Number(r[1])));
      reset = replies.some((r) => streamIdLess(after.id, r[3])) || ahead;
      if (reset) {
        position = null;
        replies = await read(null, page);
      }
    }
    const events: FleetEvent[] = [];
    let scanned = 0;
    for (let round = 0; round < 1_000; round++) {
      // Where each stream's next entry can land at the earliest: past its newest id, and at or past its
      // node's clock (TIME, read in the same script). An entry is handed out only when it sorts before all
      // of them, so no entry written later can sort before a cursor already handed out.
      const bounds = replies.map((r, i) => ({ id: nextStreamId(r[2], Number(r[1])), queue: queues[i]! }));
      const safe = (at: ClusterEventPosition) => bounds.every((b) => compareClusterEvents(at, b) < 0);
      // A stream that filled its page may have more: nothing past its last entry is known yet.
      let frontier: ClusterEventPosition | null = null;
      replies.forEach(([entries], i) => {
        const last = entries[entries.length - 1];
        if (entries.length < page || !last) return;
        const at = { id: last[0], queue: queues[i]! };
        if (frontier === null || compareClusterEvents(at, frontier) < 0) frontier = at;
      });
      const merged = replies
        .flatMap(([entries], i) =>
          entries.map((entry) => ({ entry, at: { id: entry[0], queue: queues[i]! } })),
        )
        .filter(({ at }) => safe(at) && (frontier === null || compareClusterEvents(at, frontier) <= 0))
        .sort((a, b) => compareClusterEvents(a.at, b.at));
      for (const { entry, at } of merged) {
        position = at;
        scanned++;
        const event = decodeEvent([`${at.id}@${at.queue}`, entry[1]]);
        if (request.jobId === undefined || event.jobId === request.jobId) events.push(event);
        if (events.length >= limit) return { events, cursor: encodeClusterEventId(at), reset };
      }
      const bounded = frontier !== null && safe(frontier);
      if (!bounded || merged.length === 0 || scanned >= EVENT_SCAN_BUDGET) break;
      replies = await read(position, page);
    }
    let cursor: string | null = position === null ? null : encodeClusterEventId(position);
    if (scanned === 0) {
      cursor = request.after;
      if (!reset && request.queue !== undefined) {
        // A read of one queue that finds nothing moves past the other queues' events, as a server's filtered
        // read moves past the entries it skipped — but only up to where this queue's stream can still write:
        // below its next possible id (its newest id and its node's TIME, read in the same script as the
        // XRANGE that found nothing), so no event of this queue is skipped. The store's newest event is read
        // after that, so it can be an event of this queue written since: hence the lower of the two. Once
        // the store is idle that is its newest event, so an idle follower's cursor stops moving.
        const [, time, last] = replies[0] as QueueEventsReply;
        const ceiling = { id: streamIdBelow(nextStreamId(last, Number(time))), queue: request.queue };
        const { newest } = await this.newestClusterEvent();
        if (newest !== null) {
          const to = compareClusterEvents(newest, ceiling) < 0 ? newest : ceiling;
          // From the start (null) too: a server's read from the start moves past every entry it skipped.
          if (after === null || compareClusterEvents(after, to) < 0) cursor = encodeClusterEventId(to);
        }
      }
      if (reset) {
        // Nothing readable after a reset: the newest id any stream assigned (or null), as on one server.
        let newest: ClusterEventPosition | null = null;
        replies.forEach((r, i) => {
          if (r[2] !== "0-0" && (newest === null || streamIdLess(newest.id, r[2])))
            newest = { id: r[2], queue: queues[i]! };
        });
        cursor = newest === null ? null : encodeClusterEventId(newest);
      }
    }
    return { events, cursor, reset };
  }

  /**
   * Cluster: the newest id any queue's stream assigned, once it is below every node's clock (so no later
   * event can sort before it; on nodes of one host that is within a millisecond; bounded to a second).
   */
  private async lastClusterEventId(): Promise<string | null> {
    const deadline = Date.now() + 1_000;
    for (;;) {
      const { newest, safe } = await this.newestClusterEvent();
      if (newest === null) return null;
      if (safe || Date.now() > deadline) return encodeClusterEventId(newest);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /**
   * Cluster: the newest id any queue's stream assigned, and whether it is safe as a cursor: below every
   * node's clock, so that no event written later (at or past its node's clock) can sort before it.
   */
  private async newestClusterEvent(): Promise<{ newest: ClusterEventPosition | null; safe: boolean }> {
    const queues = await this.queueNames();
    if (queues.length === 0) return { newest: null, safe: true };
    const replies = await this.scripts<QueueEventsReply>(
      queues.map((q) => ({ name: "readQueueEvents", keys: [this.keys.eventsOf(q)], args: ["-", 0] })),
      "read the last event id",
    );
    let newest: ClusterEventPosition | null = null;
    replies.forEach((r, i) => {
      const at = { id: r[2], queue: queues[i]! };
      if (r[2] !== "0-0" && (newest === null || compareClusterEvents(newest, at) < 0)) newest = at;
    });
    const nowMs = Math.min(...replies.map((r) => Number(r[1])));
    return { newest, safe: newest === null || streamMs((newest as ClusterEventPosition).id) < nowMs };
  }

  async readHourlyStats(since: number): Promise<StatsRow[]> {
    const queues = await this.queueNames();
    const replies = await this.scripts<[string, string[]][]>(
      queues.map((q) => this.queueCall("readHourlyStats", q, [Math.round(since)])),
      "read stats",
    );
    const rows: StatsRow[] = [];
    queues.forEach((queue, k) => {
      for (const [hour, flat] of replies[k] ?? []) {
        const f = new Map<string, number>();
        for (let i = 0; i < flat.length; i += 2) f.set(flat[i]!, Number(flat[i + 1]));
        rows.push({
          queue,
          hour: Number(hour),
          completed: f.get("c") ?? 0,
          failed: f.get("f") ?? 0,
          dead: f.get("d") ?? 0,
          durations: Array.from({ length: HISTOGRAM_SIZE }, (_, i) => f.get(`h${i}`) ?? 0),
          lastCompletedAt: f.get("lc") ?? null,
        });
      }
    });
    return rows.sort((a, b) => a.hour - b.hour || (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
  }

  // ── plumbing ───────────────────────────────────────────────────────────────────────────────────

  private conn(): RedisClient {
    if (!this.client)
      throw new SluiceError("CLOSED", "Redis store is not open; call open() first (or it was closed)");
    return this.client;
  }

  /**
   * A pipeline. On one server, ioredis's own: the commands leave in one write and come back in one round
   * trip. A Cluster client's pipeline must stay in one slot, so there each command is sent on its own (the
   * client's auto-pipelining still groups the commands for one node into one write) and `exec` answers
   * like a pipeline's: `[error, reply]` per command, in order.
   */
  private pipe(c: RedisClient): ChainableCommander {
    if (!this.cluster) return c.pipeline();
    const sent: Promise<unknown>[] = [];
    const commands = c as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const proxy: ChainableCommander = new Proxy({} as ChainableCommander, {
      get: (_, name) => {
        if (name === "exec")
          return async () =>
            (await Promise.allSettled(sent)).map((r) =>
              r.status === "fulfilled" ? [null, r.value] : [r.reason as Error, null],
            );
        if (name === "length") return sent.length;
        if (name === "then") return undefined;
        return (...args: unknown[]) => {
          const sending = commands[name as string]!.apply(c, args);
          // Handled in exec; without this a reply that fails before exec runs would count as unhandled.
          sending.catch(() => undefined);
          sent.push(sending);
          return proxy;
        };
      },
    });
    return proxy;
  }

  /** Runs driver calls, turning every failure into StoreUnavailableError. */
  private async call<T>(action: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    const client = this.conn();
    try {
      return await fn(client);
    } catch (error) {
      throw toStoreError(error, this.location, action);
    }
  }

  private queueCall(name: ScriptCall["name"], queue: string, args: (string | number)[]): ScriptCall {
    const meta = `${this.keys.queue(queue)}m`;
    // Scripts that write events also get the stream (KEYS[2]) and its cap (ARGV[3]); see lua.ts EVENTS.
    if (EVENT_SCRIPTS.has(name))
      return {
        name,
        keys: [meta, this.keys.eventsOf(queue)],
        args: [this.keys.channel, queue, this.eventCap, ...args],
      };
    return { name, keys: [meta], args: [this.keys.channel, queue, ...args] };
  }

  /** One EVALSHA (reloading the cache once if the server lost it). */
  private async script<T>(call: ScriptCall, action: string): Promise<T> {
    return this.call(action, async (c) => {
      try {
        return (await c.evalsha(...evalshaArgs(call, this.cluster))) as T;
      } catch (error) {
        if (!isNoScript(error)) throw error;
        await loadScripts(c);
        return (await c.evalsha(...evalshaArgs(call, this.cluster))) as T;
      }
    });
  }

  /**
   * Several independent script calls in one pipelined round trip; results in call order. `extra` plain
   * commands ride along in the same round trip (their replies are checked for errors, not returned).
   */
  private async scripts<T>(
    calls: readonly ScriptCall[],
    action: string,
    extra: readonly [string, ...(string | number)[]][] = [],
  ): Promise<T[]> {
    if (calls.length === 0 && extra.length === 0) return [];
    if (calls.length === 1 && extra.length === 0) return [await this.script<T>(calls[0]!, action)];
    return this.call(action, async (c) => {
      const runAll = async (batch: readonly ScriptCall[], commands: typeof extra) => {
        const pipeline = this.pipe(c);
        for (const call of batch) pipeline.evalsha(...evalshaArgs(call, this.cluster));
        for (const [command, ...args] of commands) pipeline.call(command, ...args);
        return ((await pipeline.exec()) ?? []) as [Error | null, unknown][];
      };
      const replies = await runAll(calls, extra);
      for (const [error] of replies.slice(calls.length)) if (error) throw error;
      replies.length = calls.length;
      const missing = replies.map(([e], i) => (isNoScript(e) ? i : -1)).filter((i) => i >= 0);
      if (missing.length > 0) {
        await loadScripts(c);
        const again = await runAll(
          missing.map((i) => calls[i]!),
          [],
        );
        missing.forEach((i, k) => {
          replies[i] = again[k]!;
        });
      }
      return replies.map(([error, reply]) => {
        if (error) throw error;
        return reply as T;
      });
    });
  }

  /**
   * Runs a fenced per-item script (complete, fail, …): items grouped by queue, one script call per queue,
   * all pipelined. Items whose job is unknown are reported as not applied.
   */
  private async perQueue<I extends { id: string }>(
    items: readonly I[],
    name: ScriptCall["name"],
    encode: (item: I) => (string | number)[],
    decode: (reply: unknown) => boolean[],
  ): Promise<boolean[]> {
    const out: boolean[] = items.map(() => false);
    if (items.length === 0) return out;
    const groups = await this.groupByQueue(items);
    const entries = [...groups.byQueue];
    const replies = await this.scripts<unknown>(
      entries.map(([queue, group]) =>
        this.queueCall(
          name,
          queue,
          group.flatMap(({ item }) => encode(item)),
        ),
      ),
      `${name} jobs`,
    );
    entries.forEach(([, group], k) => {
      decode(replies[k]).forEach((ok, j) => {
        out[group[j]!.index] = ok;
      });
    });
    return out;
  }

  /** Drops a lease from the leased cache, unless the job was leased again since (a newer token). */
  private forget(lease: LeaseRef): void {
    if (this.leased.get(lease.id)?.token === lease.token) this.leased.delete(lease.id);
  }

  /** Groups items by their job's queue (leased cache first, then the global index). */
  private async groupByQueue<I extends { id: string }>(
    items: readonly I[],
  ): Promise<{ byQueue: Map<string, { item: I; index: number }[]>; unknown: { item: I; index: number }[] }> {
    const byQueue = new Map<string, { item: I; index: number }[]>();
    const unknown: { item: I; index: number }[] = [];
    const lookup: number[] = [];
    const queueOf: (string | null)[] = items.map((item, i) => {
      const queue = this.leased.get(item.id)?.queue;
      if (queue === undefined) lookup.push(i);
      return queue ?? null;
    });
    if (lookup.length > 0) {
      const found = await this.indexOf(lookup.map((i) => items[i]!.id));
      lookup.forEach((i, k) => {
        queueOf[i] = found[k] ?? null;
      });
    }
    items.forEach((item, index) => {
      const queue = queueOf[index];
      if (queue === null || queue === undefined) unknown.push({ item, index });
      else {
        const group = byQueue.get(queue);
        if (group) group.push({ item, index });
        else byQueue.set(queue, [{ item, index }]);
      }
    });
    return { byQueue, unknown };
  }

  private async indexOf(ids: readonly string[]): Promise<(string | null)[]> {
    if (ids.length === 0) return [];
    return this.call("look up job ids", (c) => c.hmget(this.keys.ids, ...ids));
  }

  private async queueOf(id: string): Promise<string | null> {
    return this.leased.get(id)?.queue ?? (await this.indexOf([id]))[0] ?? null;
  }

  private async queueNames(): Promise<string[]> {
    const names = await this.call("list queues", (c) => c.smembers(this.keys.queues));
    return names.sort();
  }

  /** Reads jobs of one queue (missing ones are skipped). */
  private async getMany(queue: string, ids: readonly string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const replies = await this.script<(JobReply | null)[]>(
      this.queueCall("get", queue, [...ids]),
      "read jobs",
    );
    // As users see them: a held job (claimed ahead, not started) is waiting.
    return replies.filter((r): r is JobReply => !!r).map((r) => asSeen(decodeJob(queue, r)));
  }

  /** Reads jobs by id across queues, in input order (missing ones are skipped). */
  private async getByIds(ids: readonly string[]): Promise<JobRecord[]> {
    const groups = await this.groupByQueue(ids.map((id) => ({ id })));
    const found = new Map<string, JobRecord>();
    for (const [queue, items] of groups.byQueue) {
      for (const job of await this.getMany(
        queue,
        items.map(({ item }) => item.id),
      )) {
        found.set(job.id, job);
      }
    }
    return ids.map((id) => found.get(id)).filter((j): j is JobRecord => j !== undefined);
  }
}

/** Final states: a dependency in one of them can no longer resolve its edge by itself. */
const FINISHED: ReadonlySet<JobState> = new Set(["completed", "dead", "cancelled"]);

/** Most children a flow view lists (core/flows.ts FlowView.children). */
const FLOW_CHILDREN_MOST = 10_000;

/** A job as a flow view shows it: state as seen, result when completed, error when dead or cancelled. */
function flowJob(id: string, job: JobRecord | undefined): FlowJob {
  if (!job) return { id, task: "", queue: "", state: null, result: null, error: null };
  const failed = job.state === "dead" || job.state === "cancelled";
  return {
    id,
    task: job.task,
    queue: job.queue,
    state: job.state,
    result: job.state === "completed" ? job.result : null,
    error: failed ? (job.errors[job.errors.length - 1]?.message ?? job.reason) : null,
  };
}

/** listBatches' opaque cursor: the last batch's createdAt and id. */
function encodeBatchCursor(batch: BatchRecord): string {
  return Buffer.from(JSON.stringify({ c: batch.createdAt, i: batch.id })).toString("base64url");
}

function decodeBatchCursor(cursor: string | null | undefined): { c: number; i: string } | null {
  if (!cursor) return null;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { c: unknown; i: unknown };
    if (typeof value.c === "number" && typeof value.i === "string") return { c: value.c, i: value.i };
  } catch {
    // falls through to the error below
  }
  throw new ValidationError(
    "INVALID_OPTION",
    "the batches cursor is not one this store returned: pass the nextCursor of the previous page, or null",
    { field: "cursor" },
  );
}

/** A script's flat list of id, token pairs as leases. */
function leaseRefs(flat: readonly string[]): LeaseRef[] {
  const out: LeaseRef[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ id: flat[i]!, token: Number(flat[i + 1]) });
  return out;
}

function flags(reply: unknown): boolean[] {
  return (reply as number[]).map((f) => f === 1);
}

function compareSeq(a: { seq: number; id: string }, b: { seq: number; id: string }): number {
  return a.seq - b.seq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function jobMatches(job: JobRecord, filter: JobFilter): boolean {
  if (filter.queue !== undefined && job.queue !== filter.queue) return false;
  if (filter.states && !filter.states.includes(job.state)) return false;
  if (filter.task !== undefined && job.task !== filter.task) return false;
  if (filter.createdBefore !== undefined && job.createdAt >= filter.createdBefore) return false;
  if (filter.tag !== undefined && !job.tags.includes(filter.tag)) return false;
  if (filter.idPrefix !== undefined && !job.id.startsWith(filter.idPrefix)) return false;
  if (filter.batchId !== undefined && job.batchId !== filter.batchId) return false;
  if (filter.parentId !== undefined && job.parentId !== filter.parentId) return false;
  if (filter.payloadField !== undefined) {
    let value: Json | undefined = job.payload;
    for (const key of filter.payloadField.path) {
      if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, key))
        return false;
      value = (value as { [key: string]: Json })[key];
    }
    if (value !== filter.payloadField.equals) return false;
  }
  return true;
}

/** The payloadField filter as a script argument: '=' .. JSON [path, equals], or '-' for none (lua.ts). */
function payloadFieldArg(filter: JobFilter): string {
  const field = filter.payloadField;
  return field === undefined ? "-" : `=${JSON.stringify([field.path, field.equals])}`;
}

/** One stream entry as the readEvents script returns it: id, then flat field / value pairs. */
type EventEntry = [string, string[]];

/** A stream entry as a fleet event (fields: lua.ts EVENTS); its time is its id's ms. */
function decodeEvent([id, flat]: EventEntry): FleetEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  const data = f.d ? (JSON.parse(f.d) as Record<string, Json>) : null;
  return {
    id,
    type: f.t as FleetEventType,
    at: Number(id.slice(0, id.indexOf("-"))),
    queue: f.q ?? "",
    jobId: f.j ? f.j : null,
    task: f.k ? f.k : null,
    attempt: f.a ? Number(f.a) : null,
    data,
  };
}

/** A position in a cluster's merged events: a stream id and the queue whose stream it is in. */
interface ClusterEventPosition {
  id: string;
  queue: string;
}

/** The readQueueEvents script's reply (lua.ts): entries, node TIME ms, last-generated-id, max-deleted-entry-id. */
type QueueEventsReply = [EventEntry[], string, string, string];

/** A cluster event id: `<ms>-<seq>@<queue>` (at most 15 digits each side of the dash). */
const CLUSTER_EVENT_ID = /^(\d{1,15}-\d{1,15})@(.+)$/s;

function parseClusterEventId(text: string): ClusterEventPosition {
  const m = CLUSTER_EVENT_ID.exec(text);
  if (!m) {
    throw new ValidationError(
      "INVALID_OPTION",
      `event id ${JSON.stringify(text)} is not one this store wrote: Redis Cluster event ids look like ` +
        '"1733000000000-0@emails" (milliseconds, a dash, a sequence number, then @ and the queue), or pass null ' +
        "to read from the oldest event kept",
      { field: "after" },
    );
  }
  return { id: m[1]!, queue: m[2]! };
}

function encodeClusterEventId(at: ClusterEventPosition): string {
  return `${at.id}@${at.queue}`;
}

/** The lowest id a stream whose newest id is `last` can assign next on a node whose clock reads `nowMs`. */
function nextStreamId(last: string, nowMs: number): string {
  const [ms = 0, seq = 0] = last.split("-").map(Number);
  return ms >= nowMs ? `${ms}-${seq + 1}` : `${nowMs}-0`;
}

/** The greatest stream id below `id` (a sequence number fits 15 digits, as event ids allow). */
function streamIdBelow(id: string): string {
  const [ms = 0, seq = 0] = id.split("-").map(Number);
  return seq > 0 ? `${ms}-${seq - 1}` : `${ms - 1}-999999999999999`;
}

function streamMs(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}

/** a < b for stream ids `<ms>-<seq>` (as numbers). */
function streamIdLess(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am < bm || (am === bm && as < bs);
}

/** Merged order: stream id, then queue name. */
function compareClusterEvents(a: ClusterEventPosition, b: ClusterEventPosition): number {
  if (streamIdLess(a.id, b.id)) return -1;
  if (streamIdLess(b.id, a.id)) return 1;
  return a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0;
}

/** Where queue `q`'s stream is read from to continue after `from` in merged order (XRANGE start). */
function streamStart(q: string, from: ClusterEventPosition | null): string {
  if (from === null) return "-";
  // The same stream id in a queue ordered after `from`'s comes after it: inclusive there, exclusive else.
  return q > from.queue ? from.id : `(${from.id}`;
}
