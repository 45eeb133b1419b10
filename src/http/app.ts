/**
 * `createHttpApi(sluice, options)`: the HTTP JSON API as a Hono app. It calls `Sluice` and `Admin` only
 * (CONTRIBUTING.md, "HTTP endpoint via Admin only"); the routes and their shapes are in `openapi.ts`, which
 * a test compares with the routes registered here, both ways.
 */
import { Hono } from "hono";
import { validateQueueName } from "../core/options.js";
import {
  CANCELLABLE_STATES,
  MOVABLE_STATES,
  REMOVABLE_STATES,
  REPRIORITIZABLE_STATES,
  RETRYABLE_STATES,
} from "../core/states.js";
import { buildReport, gatherDoctorInput, runChecks } from "../doctor/index.js";
import {
  type AdminFilter,
  type BulkRunOptions,
  batchPending,
  type JobRecord,
  type JobState,
  type Json,
  parseDuration,
  type Sluice,
  ValidationError,
} from "../index.js";
import {
  authenticate,
  type HttpRole,
  type HttpToken,
  parseTokens,
  tokenTable,
  validateTokens,
} from "./auth.js";
import { HttpError, toErrorResponse, withDeadline } from "./errors.js";
import { openEventStream, type SseStreamOptions } from "./event-stream.js";
import { parseBulkFilter, parseListQuery } from "./filters.js";
import { OPENAPI_DOCUMENT } from "./openapi.js";
import { compileRedaction, type RedactionRules, redactFields, redactLogMessage } from "./redaction.js";

/** Options of {@link createHttpApi}. */
export interface HttpApiOptions {
  /**
   * Accepted tokens with their roles (`read`: the GET routes; `admin`: every route), as objects or as the
   * `SLUICE_HTTP_TOKENS` text (`admin:<token>,read:<token>`). Default: the `SLUICE_HTTP_TOKENS` environment
   * variable. With no token at all, `createHttpApi` throws INVALID_CONFIG unless `auth` is `"none"`.
   */
  tokens?: readonly HttpToken[] | string;
  /**
   * `"none"` answers every request as `admin` without credentials: only for an API the application already
   * protects (its own auth middleware in front), or a loopback-only server. Default `"tokens"`.
   */
  auth?: "tokens" | "none";
  /** Allow `POST /jobs` (enqueue any task with any payload). Default false: it answers 403 ENQUEUE_DISABLED. */
  allowEnqueue?: boolean;
  /**
   * Extra secret fields masked (as `"***"`) in payloads, results, progress and JSON log lines: names
   * (`ssn`, masked at any depth) or dotted paths from the root (`user.ssn`, `*.password`). Added to
   * {@link DEFAULT_REDACTED_FIELDS} unless `redactDefaults` is false.
   */
  redact?: readonly string[];
  /** Mask the default secret names (password, secret, token, apiKey, authorization, …). Default true. */
  redactDefaults?: boolean;
  /** Largest request body in bytes; a larger one answers 413 BODY_TOO_LARGE. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Deadline of each store call a request makes; past it the request answers 504 STORE_TIMEOUT. Default 10 s. */
  storeTimeoutMs?: number;
  /**
   * The `/events` stream: heartbeat period, buffer bound, slow-client cut-off, and `onClose` to observe each
   * stream's end (docs/events.md). Its store deadline is `storeTimeoutMs`; progress is redacted as job detail.
   */
  events?: Omit<SseStreamOptions, "transform" | "storeTimeoutMs">;
  /** Where `SLUICE_HTTP_TOKENS` is read from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** What a handler knows about its request. */
type Env = { Variables: { role: HttpRole } };

/** The routes' context: the instance, the compiled options. */
interface Context {
  sluice: Sluice;
  timeoutMs: number;
  rules: RedactionRules;
  allowEnqueue: boolean;
}

const BULK_BATCH = 500;

/**
 * Builds the HTTP API of `sluice` as a Hono app. Mount it with `app.fetch` (any Fetch-API server),
 * `getRequestListener(app.fetch)` from `@hono/node-server` (node:http, Express, Fastify), or
 * `parent.route("/sluice", app)` in a Hono application. Reference: docs/http.md.
 *
 * @throws ValidationError INVALID_CONFIG for a bad option or when no token is configured and `auth` is not `"none"`
 */
export function createHttpApi(sluice: Sluice, options: HttpApiOptions = {}): Hono<Env> {
  const env = options.env ?? process.env;
  const open = options.auth === "none";
  if (options.auth !== undefined && options.auth !== "none" && options.auth !== "tokens") {
    throw new ValidationError("INVALID_CONFIG", 'auth must be "tokens" or "none"', { field: "auth" });
  }
  const given = options.tokens ?? env.SLUICE_HTTP_TOKENS ?? "";
  const tokens =
    typeof given === "string"
      ? parseTokens(given, options.tokens === undefined ? "SLUICE_HTTP_TOKENS" : "tokens")
      : validateTokens(given, "tokens");
  if (!open && tokens.length === 0) {
    throw new ValidationError(
      "INVALID_CONFIG",
      'no API token: pass tokens (or set SLUICE_HTTP_TOKENS=admin:<token>,read:<token>), or auth: "none" ' +
        "when the application already authenticates the requests",
      { field: "tokens" },
    );
  }
  const maxBodyBytes = positive(options.maxBodyBytes ?? 1024 * 1024, "maxBodyBytes");
  const timeoutMs = positive(options.storeTimeoutMs ?? 10_000, "storeTimeoutMs");
  let rules: RedactionRules;
  try {
    rules = compileRedaction(options.redact ?? [], options.redactDefaults ?? true);
  } catch (error) {
    throw new ValidationError("INVALID_CONFIG", (error as Error).message, { field: "redact" });
  }
  const table = tokenTable(tokens);
  const secrets = [...tokens.map((t) => t.token), ...urlSecrets(sluice.url)];
  const ctx: Context = { sluice, timeoutMs, rules, allowEnqueue: options.allowEnqueue === true };

  const app = new Hono<Env>();

  app.onError((error, c) => {
    const { status, body, unexpected } = toErrorResponse(error, secrets);
    if (unexpected) {
      sluice.logger.error(
        { err: error, method: c.req.method, path: c.req.path },
        "http api: unexpected error",
      );
    }
    return c.json(body, status as 400);
  });
  app.notFound((c) =>
    c.json({ error: { code: "NOT_FOUND", message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  );

  // Authentication, then the role: GET needs read, anything else admin. Credentials come from the
  // Authorization header only (never a cookie or the query string).
  app.use("*", async (c, next) => {
    let role: HttpRole | null = open ? "admin" : authenticate(c.req.header("authorization"), table);
    if (role === null) {
      c.header("WWW-Authenticate", 'Bearer realm="sluice"');
      c.header("WWW-Authenticate", 'Basic realm="sluice", charset="UTF-8"', { append: true });
      throw new HttpError(401, "UNAUTHORIZED", "a token is required: send Authorization: Bearer <token>");
    }
    const reading = c.req.method === "GET" || c.req.method === "HEAD";
    if (!reading && role !== "admin") {
      throw new HttpError(403, "FORBIDDEN", "this token may only read: an admin token is required");
    }
    if (!reading) {
      // No form or text body can reach an action: a cross-site form post cannot set this content type,
      // and a fetch() that does needs a CORS preflight this API never grants.
      const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
      if (type !== "application/json") {
        throw new HttpError(
          415,
          "UNSUPPORTED_MEDIA_TYPE",
          "mutating requests must be sent with Content-Type: application/json (an empty body is {})",
        );
      }
    }
    role = role ?? "read";
    c.set("role", role);
    await next();
  });

  // Fleet-wide events over SSE (./event-stream.ts), behind the same authentication (a read token).
  app.get("/events", async (c) => {
    const queue = c.req.query("queue");
    if (queue !== undefined) validateQueueName(queue, "queue");
    const job = c.req.query("job");
    const header = c.req.header("last-event-id");
    const after = header !== undefined && header !== "" ? header : c.req.query("after");
    return openEventStream(
      sluice,
      {
        ...(queue !== undefined ? { queue } : {}),
        ...(job !== undefined && job !== "" ? { jobId: job } : {}),
        ...(after !== undefined ? { after: after === "" ? null : after } : {}),
        signal: c.req.raw.signal,
      },
      {
        ...options.events,
        // The probe read of `after` is a store call of this request: the same deadline as every route's.
        storeTimeoutMs: timeoutMs,
        onClose: (summary) => {
          // A cut client reconnects and resumes; the line says why its page kept reconnecting.
          if (summary.reason === "slow-client") {
            sluice.logger.info(
              summary,
              "http api: slow /events client disconnected (its buffer stayed full)",
            );
          }
          options.events?.onClose?.(summary);
        },
        // Progress is handler data: the same redaction as job detail.
        transform: (item) =>
          item.type === "progress" && item.data
            ? { ...item, data: { ...item.data, progress: redactFields(item.data.progress, rules) as Json } }
            : item,
      },
    );
  });

  app.get("/openapi.json", (c) => c.json(OPENAPI_DOCUMENT));

  app.get("/queues", async (c) => c.json({ queues: await timed(ctx, sluice.admin.queues()) }));

  app.post("/queues/:queue/pause", async (c) => {
    await readBody(c.req.raw, maxBodyBytes);
    const queue = validateQueueName(c.req.param("queue"), "queue");
    await timed(ctx, sluice.admin.pause(queue));
    return c.json({ queue, paused: true });
  });

  app.post("/queues/:queue/resume", async (c) => {
    await readBody(c.req.raw, maxBodyBytes);
    const queue = validateQueueName(c.req.param("queue"), "queue");
    await timed(ctx, sluice.admin.resume(queue));
    return c.json({ queue, paused: false });
  });

  app.get("/jobs", async (c) => {
    const query = parseListQuery(new URL(c.req.url).searchParams);
    const page = await timed(
      ctx,
      sluice.admin.listJobs(query.filter, { limit: query.limit, cursor: query.cursor, order: query.order }),
    );
    return c.json({ jobs: page.jobs.map((job) => listed(job, rules)), nextCursor: page.nextCursor });
  });

  app.post("/jobs", async (c) => {
    const body = await jsonBody(c.req.raw, maxBodyBytes);
    if (!ctx.allowEnqueue) {
      throw new HttpError(
        403,
        "ENQUEUE_DISABLED",
        "enqueueing over HTTP is off: start the API with allowEnqueue: true (sluice serve --allow-enqueue)",
      );
    }
    only(body, ["task", "payload", "options"]);
    if (typeof body.task !== "string") {
      throw new ValidationError("INVALID_OPTION", "task must be a task name", { field: "task" });
    }
    const job = await timed(
      ctx,
      sluice.enqueue(body.task, body.payload ?? {}, body.options as Parameters<Sluice["enqueue"]>[2]),
    );
    return c.json(job, job.created ? 201 : 200);
  });

  // Bulk actions by filter (before /jobs/:id so "retry" is never read as an id).
  for (const action of BULK_ACTIONS) {
    app.post(`/jobs/${action.name}`, async (c) => {
      const body = await jsonBody(c.req.raw, maxBodyBytes);
      only(body, ["filter", "ids", "all", ...action.extra]);
      const target = parseBulkFilter(body);
      if (body.all !== undefined && typeof body.all !== "boolean") {
        throw new ValidationError("INVALID_OPTION", "all must be true or false", { field: "all" });
      }
      if (target.unfiltered && body.all !== true) {
        throw new ValidationError(
          "INVALID_OPTION",
          `refusing to ${action.name} every job: give a filter (queue, state, task, tag, idPrefix, olderThan, ` +
            'payload) or ids, or "all": true to mean every job',
          { field: "filter" },
        );
      }
      const run = action.prepare(body, sluice);
      const states = narrow(action, target.filter);
      const result = await runBulk(ctx, target.filter, states, run);
      return c.json({ action: action.name, ...result });
    });
  }

  app.get("/jobs/:id", async (c) => {
    const logLimit = c.req.query("logLimit");
    const limit = logLimit === undefined ? 200 : Number(logLimit);
    if (!Number.isInteger(limit) || limit < 0 || limit > 1000) {
      throw new ValidationError("INVALID_OPTION", "logLimit must be a whole number from 0 to 1000", {
        field: "logLimit",
      });
    }
    const job = await timed(ctx, sluice.admin.getJob(jobId(c.req.param("id")), { logLimit: limit }));
    return c.json(detailed(job, rules));
  });

  app.get("/jobs/:id/flow", async (c) => {
    const flow = await timed(ctx, sluice.admin.flow(jobId(c.req.param("id"))));
    const redact = <J extends { result: Json | null }>(j: J): J => ({
      ...j,
      result: redactFields(j.result, rules) as Json,
    });
    return c.json({
      ...flow,
      dependencies: flow.dependencies.map(redact),
      dependents: flow.dependents.map(redact),
      children: flow.children.map(redact),
      parent: flow.parent && redact(flow.parent),
      batch: flow.batch && { ...flow.batch, pending: batchPending(flow.batch) },
    });
  });

  app.get("/batches", async (c) => {
    const params = new URL(c.req.url).searchParams;
    const finished = params.get("finished");
    if (finished !== null && finished !== "true" && finished !== "false") {
      throw new ValidationError("INVALID_OPTION", 'finished must be "true" or "false"', {
        field: "finished",
      });
    }
    const limitText = params.get("limit");
    const limit = limitText === null ? 50 : Number(limitText);
    const page = await timed(
      ctx,
      sluice.admin.batches({
        limit,
        cursor: params.get("cursor"),
        ...(finished === null ? {} : { finished: finished === "true" }),
      }),
    );
    return c.json(page);
  });

  app.get("/batches/:id", async (c) => c.json(await timed(ctx, sluice.admin.batch(c.req.param("id")))));

  app.delete("/jobs/:id", async (c) => {
    await readBody(c.req.raw, maxBodyBytes);
    const id = jobId(c.req.param("id"));
    const result = await timed(ctx, sluice.admin.delete(id));
    if (result.count === 0) await conflict(ctx, id, "delete", REMOVABLE_STATES);
    return c.json({ id, deleted: true });
  });

  app.post("/jobs/:id/retry", async (c) => {
    only(await jsonBody(c.req.raw, maxBodyBytes), []);
    const id = jobId(c.req.param("id"));
    const result = await timed(ctx, sluice.admin.retry(id));
    if (result.count === 0) await conflict(ctx, id, "retry", RETRYABLE_STATES);
    return c.json({ id, state: "waiting" });
  });

  app.post("/jobs/:id/cancel", async (c) => {
    only(await jsonBody(c.req.raw, maxBodyBytes), []);
    const id = jobId(c.req.param("id"));
    const result = await timed(ctx, sluice.admin.cancel(id));
    if (result.count === 0 && result.requested.length === 0)
      await conflict(ctx, id, "cancel", CANCELLABLE_STATES);
    // An active job is asked to stop (its handler's signal aborts); the others are cancelled at once.
    return c.json({ id, cancelled: result.count > 0, requested: result.requested.length > 0 });
  });

  app.post("/jobs/:id/move", async (c) => {
    const body = await jsonBody(c.req.raw, maxBodyBytes);
    only(body, ["queue"]);
    const id = jobId(c.req.param("id"));
    const queue = validateQueueName(body.queue, "queue");
    const result = await timed(ctx, sluice.admin.move(id, queue));
    if (result.count === 0) await conflict(ctx, id, "move", MOVABLE_STATES, true);
    return c.json({ id, queue });
  });

  app.post("/jobs/:id/reprioritize", async (c) => {
    const body = await jsonBody(c.req.raw, maxBodyBytes);
    only(body, ["priority"]);
    const id = jobId(c.req.param("id"));
    const priority = body.priority as number;
    const result = await timed(ctx, sluice.admin.reprioritize(id, priority));
    if (result.count === 0) await conflict(ctx, id, "reprioritize", REPRIORITIZABLE_STATES, true);
    return c.json({ id, priority });
  });

  app.post("/recover", async (c) => {
    const body = await jsonBody(c.req.raw, maxBodyBytes);
    only(body, ["olderThan", "dryRun", "limit"]);
    const dryRun = body.dryRun ?? false;
    if (typeof dryRun !== "boolean") {
      throw new ValidationError("INVALID_OPTION", "dryRun must be true or false", { field: "dryRun" });
    }
    const limit = body.limit ?? 1000;
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new ValidationError("INVALID_OPTION", "limit must be a whole number from 1 to 10000", {
        field: "limit",
      });
    }
    const olderThanMs =
      body.olderThan === undefined ? undefined : parseDuration(body.olderThan as string, "olderThan");
    const jobs = await timed(
      ctx,
      sluice.admin.recover({ dryRun, limit, ...(olderThanMs !== undefined ? { olderThanMs } : {}) }),
    );
    return c.json({ dryRun, count: jobs.length, jobs: jobs.slice(0, 100) });
  });

  app.get("/workers", async (c) => {
    const staleAfter = c.req.query("staleAfter");
    const staleAfterMs = staleAfter === undefined ? 60_000 : parseDuration(staleAfter, "staleAfter");
    return c.json({ workers: await timed(ctx, sluice.admin.workers({ staleAfterMs })) });
  });

  app.get("/schedules", async (c) => {
    const schedules = await timed(ctx, sluice.admin.schedules());
    return c.json({
      schedules: schedules.map((s) => ({
        ...s,
        template: { ...s.template, payload: redactPayloadText(s.template.payload, rules) },
      })),
    });
  });

  app.get("/doctor", async (c) => {
    const windowMs = parseDuration(c.req.query("window") ?? "10m", "window");
    const staleAfterMs = parseDuration(c.req.query("staleAfter") ?? "60s", "staleAfter");
    const input = await timed(
      ctx,
      gatherDoctorInput(sluice, { windowMs, staleAfterMs, connectTimeoutMs: timeoutMs }),
      3,
    );
    const report = buildReport(input, runChecks(input));
    return c.json(report);
  });

  app.get("/stats", async (c) => {
    const sinceMs = parseDuration(c.req.query("since") ?? "24h", "since");
    const hours = await timed(ctx, sluice.admin.stats({ sinceMs }));
    const totals = new Map<string, { queue: string; completed: number; failed: number; dead: number }>();
    for (const row of hours) {
      const t = totals.get(row.queue) ?? { queue: row.queue, completed: 0, failed: 0, dead: 0 };
      t.completed += row.completed;
      t.failed += row.failed;
      t.dead += row.dead;
      totals.set(row.queue, t);
    }
    return c.json({ sinceMs, queues: [...totals.values()], hours });
  });

  return app;
}

function positive(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ValidationError("INVALID_CONFIG", `${field} must be a positive whole number, got ${value}`, {
      field,
    });
  }
  return value;
}

/** Secrets of a store URL (its password, its secret query parameters) to keep out of messages. */
function urlSecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    const out: string[] = [];
    if (parsed.password) out.push(parsed.password, decodeURIComponent(parsed.password));
    for (const [key, value] of parsed.searchParams) {
      if (/pass|pwd|secret|token|auth|key|credential/i.test(key) && value) out.push(value);
    }
    return out;
  } catch {
    return [];
  }
}

/** Runs one store call with the request's deadline (`factor` × the timeout for multi-call reads). */
function timed<T>(ctx: Context, promise: Promise<T>, factor = 1): Promise<T> {
  return withDeadline(promise, ctx.timeoutMs * factor);
}

/** Reads the request body, at most `max` bytes (413 beyond, before reading the rest). */
async function readBody(request: Request, max: number): Promise<string> {
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > max) throw tooLarge(max);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(max);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function tooLarge(max: number): HttpError {
  return new HttpError(413, "BODY_TOO_LARGE", `the request body is larger than ${max} bytes`);
}

/** The JSON object body of a request (`{}` when empty). */
async function jsonBody(request: Request, max: number): Promise<Record<string, unknown>> {
  const text = await readBody(request, max);
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError("INVALID_OPTION", "the body is not valid JSON", { field: "body" });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError("INVALID_OPTION", "the body must be a JSON object", { field: "body" });
  }
  return value as Record<string, unknown>;
}

/** Refuses fields other than `allowed` (a typo must not widen an action). */
function only(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `unknown field ${JSON.stringify(key)}${allowed.length > 0 ? `: use ${allowed.join(", ")}` : ": send {}"}`,
        { field: key },
      );
    }
  }
}

function jobId(id: string): string {
  if (id === "" || id.length > 256) {
    throw new ValidationError("INVALID_OPTION", "a job id is 1 to 256 characters", { field: "id" });
  }
  return id;
}

/**
 * Answers 409 JOB_STATE_CONFLICT (the job exists, in a state the action leaves alone) or 404. With
 * `alreadyDone`, a job in a state the action acts on changed nothing because it already had the value
 * asked for (moved to its own queue, given its own priority): that is a success, not a conflict.
 */
async function conflict(
  ctx: Context,
  id: string,
  action: string,
  states: readonly JobState[],
  alreadyDone = false,
): Promise<void> {
  const job = await timed(ctx, ctx.sluice.admin.getJob(id, { logLimit: 0 }));
  if (alreadyDone && states.includes(job.state)) return;
  throw new HttpError(
    409,
    "JOB_STATE_CONFLICT",
    `job "${id}" is ${job.state}: ${action} acts on ${states.join(", ")} jobs`,
  );
}

/** A bulk action: its route name, the states it changes, its extra body fields and its Admin call. */
interface BulkAction {
  name: string;
  states: readonly JobState[];
  /** The only state it acts on whatever the filter says (requeue-dead). */
  forced?: JobState;
  extra: readonly string[];
  /** Validates the action's own fields (before anything is read) and returns its Admin call. */
  prepare(
    body: Record<string, unknown>,
    sluice: Sluice,
  ): (filter: AdminFilter, options: BulkRunOptions) => Promise<BulkOutcome>;
}

interface BulkOutcome {
  count: number;
  requested?: number;
}

const retry: BulkAction["prepare"] = (_body, sluice) => (filter, options) =>
  sluice.admin.retry(filter, options);

const BULK_ACTIONS: readonly BulkAction[] = [
  { name: "retry", states: RETRYABLE_STATES, extra: [], prepare: retry },
  { name: "requeue-dead", states: ["dead"], forced: "dead", extra: [], prepare: retry },
  {
    name: "cancel",
    states: CANCELLABLE_STATES,
    extra: [],
    prepare: (_body, sluice) => async (filter, options) => {
      const r = await sluice.admin.cancel(filter, options);
      return { count: r.count, requested: r.requested.length };
    },
  },
  {
    name: "delete",
    states: REMOVABLE_STATES,
    extra: [],
    prepare: (_body, sluice) => (filter, options) => sluice.admin.delete(filter, options),
  },
  {
    name: "move",
    states: MOVABLE_STATES,
    extra: ["queue"],
    prepare: (body, sluice) => {
      const queue = validateQueueName(body.queue, "queue");
      return (filter, options) => sluice.admin.move(filter, queue, options);
    },
  },
  {
    name: "reprioritize",
    states: REPRIORITIZABLE_STATES,
    extra: ["priority"],
    prepare: (body, sluice) => {
      const priority = body.priority;
      if (typeof priority !== "number" || !Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
        throw new ValidationError(
          "INVALID_OPTION",
          "priority must be a whole number from -1000000 to 1000000",
          {
            field: "priority",
          },
        );
      }
      return (filter, options) => sluice.admin.reprioritize(filter, priority, options);
    },
  },
];

/** The action's states, narrowed by the filter's; refuses a filter that selects none of them. */
function narrow(action: BulkAction, filter: AdminFilter): JobState[] {
  const asked = filter.state === undefined ? null : [filter.state].flat();
  let states = action.forced ? [action.forced] : [...action.states];
  if (asked) states = states.filter((s) => asked.includes(s));
  if (states.length === 0) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${action.name} acts on ${(action.forced ? [action.forced] : action.states).join(", ")} jobs; ` +
        `state ${asked?.join(",")} selects none of them`,
      { field: "filter.state" },
    );
  }
  return states;
}

/**
 * Runs a bulk action the way `Admin`'s bulk methods do — the matching jobs walked once, oldest first, with
 * the listing cursor, each page acted on by id (the store checks filter and state again) — but with the
 * request's deadline on every store call.
 */
async function runBulk(
  ctx: Context,
  filter: AdminFilter,
  states: JobState[],
  run: (filter: AdminFilter, options: BulkRunOptions) => Promise<BulkOutcome>,
): Promise<{ count: number; requested?: number }> {
  const total = { count: 0, requested: 0 };
  const scoped: AdminFilter = { ...filter, state: states };
  const act = async (ids: string[]) => {
    const r = await timed(ctx, run({ ...scoped, ids }, { batchSize: ids.length }));
    total.count += r.count;
    total.requested += r.requested ?? 0;
  };
  if (filter.ids) {
    for (let at = 0; at < filter.ids.length; at += BULK_BATCH)
      await act(filter.ids.slice(at, at + BULK_BATCH));
  } else {
    let cursor: string | null = null;
    do {
      const page: { jobs: JobRecord[]; nextCursor: string | null } = await timed(
        ctx,
        ctx.sluice.admin.listJobs(scoped, { limit: BULK_BATCH, cursor, order: "asc" }),
      );
      if (page.jobs.length > 0) await act(page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
  }
  return total.requested > 0 ? total : { count: total.count };
}

/** A job as listed: redacted, attempt stacks left out (the job's own page has them). */
function listed(job: JobRecord, rules: RedactionRules): JobRecord {
  return {
    ...job,
    payload: redactFields(job.payload, rules) as JobRecord["payload"],
    result: redactFields(job.result, rules) as JobRecord["result"],
    progress: redactFields(job.progress, rules) as JobRecord["progress"],
    errors: job.errors.map(({ stack: _stack, ...rest }) => rest),
  };
}

function detailed<J extends JobRecord & { logs: { at: number; attempt: number; message: string }[] }>(
  job: J,
  rules: RedactionRules,
): J {
  return {
    ...job,
    payload: redactFields(job.payload, rules) as JobRecord["payload"],
    result: redactFields(job.result, rules) as JobRecord["result"],
    progress: redactFields(job.progress, rules) as JobRecord["progress"],
    logs: job.logs.map((line) => ({ ...line, message: redactLogMessage(line.message, rules) })),
  };
}

/** A schedule's stored payload (JSON text) redacted, as JSON. */
function redactPayloadText(text: string, rules: RedactionRules): unknown {
  try {
    return redactFields(JSON.parse(text), rules);
  } catch {
    return null;
  }
}
