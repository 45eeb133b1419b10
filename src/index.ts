/**
 * Sluice: durable background jobs for TypeScript and Node.js on SQLite (embedded default), PostgreSQL or Redis.
 *
 * ```ts
 * import { Sluice } from "sluice";
 * import { z } from "zod";
 *
 * const sluice = new Sluice({ url: process.env.SLUICE_URL ?? "sqlite:./sluice.db" });
 * const embed = sluice.task("embed-document", {
 *   queue: "rag",
 *   attempts: 5,
 *   schema: z.object({ docId: z.string() }), // any Standard Schema: types the payload (else `unknown`)
 *   async run({ docId }, ctx) {
 *     await ctx.progress(1);
 *     return { docId };
 *   },
 * });
 * await embed.enqueue({ docId: "d1" });
 * await sluice.worker({ queues: ["rag"], concurrency: 10 }).start();
 * ```
 */
export type { StandardSchemaV1 } from "@standard-schema/spec";
export type {
  AdminFilter,
  BulkRunOptions,
  HourlyStats,
  JobDetail,
  QueueOverview,
  ScheduleRun,
  WorkerOverview,
} from "./client/admin.js";
export { Admin } from "./client/admin.js";
export type { EventStreamOptions, FleetReset, FleetStreamItem } from "./client/event-feed.js";
export type { BatchCallback, BatchOptions } from "./client/flows.js";
export type { BatchItem, EnqueuedJob, ScheduleDefinition, SluiceOptions } from "./client/sluice.js";
export { Sluice } from "./client/sluice.js";
export { Task } from "./client/task.js";
export type { BackoffFunction, BackoffOption } from "./core/backoff.js";
export { computeBackoff, DEFAULT_BACKOFF } from "./core/backoff.js";
export type { MissedTicks } from "./core/cron.js";
export { nextTick, validateTiming } from "./core/cron.js";
export { formatDuration, parseDuration } from "./core/duration.js";
export * from "./core/errors.js";
export type {
  EventRetention,
  EventRetentionOption,
  FleetEvent,
  FleetEventType,
} from "./core/fleet-events.js";
export { DEFAULT_EVENT_RETENTION, FLEET_EVENT_TYPES } from "./core/fleet-events.js";
export type {
  BatchCallbackPayload,
  BatchCallbackRecord,
  BatchCounts,
  BatchEvent,
  BatchRecord,
  ChildOptions,
  Dependency,
  DependencyPolicy,
  FlowEdge,
  FlowJob,
  FlowView,
} from "./core/flows.js";
export { BATCH_EVENTS, batchPending, DEPENDENCY_POLICIES, MAX_QUOTED_ERROR } from "./core/flows.js";
export * from "./core/job.js";
export type { QueueLimits, RateLimit } from "./core/limits.js";
export type { LogFn, Logger } from "./core/logger.js";
export { silentLogger } from "./core/logger.js";
export type { JobOptions } from "./core/options.js";
export { DEFAULT_MAX_PAYLOAD_BYTES } from "./core/payload.js";
export type { StatsRow } from "./core/stats.js";
export type { FlowStep, SandboxOptions, TaskContext, TaskDefinition } from "./core/task.js";
/** The HTTP API's options; `createHttpApi` itself is imported from `sluice/http` (so `sluice` never loads Hono). */
export type { HttpApiOptions, HttpRole, HttpToken } from "./http/index.js";
export type { HealthEvent, SluiceEventName, SluiceEvents } from "./runtime/events.js";
export type { HealthCheck, HealthChecks } from "./runtime/health.js";
export type { QueueSpec } from "./runtime/queue-selector.js";
export type { StopReport, WorkerOptions } from "./runtime/worker.js";
export { Worker } from "./runtime/worker.js";
export type * from "./store/contract.js";
export { createStore, engineOf, redactUrl } from "./store/index.js";
export { VERSION } from "./version.js";
