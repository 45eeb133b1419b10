/**
 * The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`. Written by hand, not derived
 * from the routes: test/http/openapi.test.ts compares it with the routes the app registers (paths and
 * methods, both ways), generates the auth matrix from its `x-sluice-role`s, and checks docs/http.md's
 * endpoint table against {@link renderEndpointTable}.
 */
import { VERSION } from "../version.js";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: "object",
  properties,
  ...(required.length > 0 ? { required } : {}),
});
const str = (description?: string): Schema => ({ type: "string", ...(description ? { description } : {}) });
const int = (description?: string): Schema => ({ type: "integer", ...(description ? { description } : {}) });
const json = (schema: Schema, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});
const body = (schema: Schema) => ({ required: false, content: { "application/json": { schema } } });
const queryParam = (name: string, description: string, schema: Schema = str()) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const pathParam = (name: string, description: string) => ({
  name,
  in: "path",
  required: true,
  description,
  schema: str(),
});

const ERRORS = {
  "400": { $ref: "#/components/responses/BadRequest" },
  "401": { $ref: "#/components/responses/Unauthorized" },
  "403": { $ref: "#/components/responses/Forbidden" },
  "503": { $ref: "#/components/responses/Unavailable" },
  "504": { $ref: "#/components/responses/Timeout" },
};
const MUTATION_ERRORS = {
  ...ERRORS,
  "413": { $ref: "#/components/responses/TooLarge" },
  "415": { $ref: "#/components/responses/UnsupportedMediaType" },
};

interface Operation {
  summary: string;
  "x-sluice-role": "read" | "admin";
  [key: string]: unknown;
}

const read = (summary: string, ok: Schema, extra: Record<string, unknown> = {}): Operation => ({
  summary,
  "x-sluice-role": "read",
  ...extra,
  responses: { "200": json(ok), ...ERRORS },
});

const admin = (
  summary: string,
  ok: Schema,
  extra: Record<string, unknown> = {},
  more: Record<string, unknown> = {},
): Operation => ({
  summary,
  "x-sluice-role": "admin",
  ...extra,
  responses: { "200": json(ok), ...MUTATION_ERRORS, ...more },
});

const FILTER_PARAMS = [
  queryParam("queue", "only jobs of this queue"),
  queryParam("state", "only jobs in these states, comma separated"),
  queryParam("task", "only jobs of this task"),
  queryParam("tag", "only jobs with this tag"),
  queryParam("idPrefix", "only jobs whose id starts with this text (taken literally)"),
  queryParam("batchId", "only members of this batch"),
  queryParam("parentId", "only children of this job"),
  queryParam("olderThan", "only jobs created more than this long ago (30m, 2h, 7d)"),
];

const BULK_FILTER = obj({
  queue: str(),
  state: { oneOf: [str("comma separated"), { type: "array", items: ref("JobState") }] },
  task: str(),
  tag: str(),
  idPrefix: str(),
  batchId: str(),
  parentId: str(),
  olderThan: { oneOf: [str("duration: 30m, 2h, 7d"), int("milliseconds")] },
  payload: {
    type: "object",
    description: 'exactly one dotted path and the JSON scalar it must equal: { "user.id": 7 }',
    maxProperties: 1,
    minProperties: 1,
  },
});

const bulkBody = (extra: Record<string, Schema> = {}, required: string[] = []): Schema =>
  obj(
    {
      filter: BULK_FILTER,
      ids: { type: "array", items: str(), maxItems: 10_000 },
      all: { type: "boolean", description: "required (true) to act with neither a filter nor ids" },
      ...extra,
    },
    required,
  );

const BULK_RESULT = obj(
  {
    action: str(),
    count: int("jobs changed"),
    requested: int("cancel: running jobs asked to stop"),
  },
  ["action", "count"],
);

const bulk = (summary: string, extra: Record<string, Schema> = {}, required: string[] = []): Operation =>
  admin(summary, BULK_RESULT, { requestBody: body(bulkBody(extra, required)) });

const single = (summary: string, ok: Schema, requestBody?: Schema): Operation =>
  admin(
    summary,
    ok,
    { parameters: [pathParam("id", "job id")], ...(requestBody ? { requestBody: body(requestBody) } : {}) },
    {
      "404": { $ref: "#/components/responses/NotFound" },
      "409": { $ref: "#/components/responses/Conflict" },
    },
  );

const errorResponse = (description: string) => json(ref("Error"), description);

/** The document (OpenAPI 3.1). */
export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Sluice HTTP API",
    version: VERSION,
    description:
      "Read and operate a Sluice job store. Every route needs a token (Authorization: Bearer, or Basic " +
      "with the token as the password): GET routes a read or admin token, every other route an admin " +
      "token and Content-Type: application/json. Errors are { error: { code, message } }. Reference: docs/http.md.",
  },
  security: [{ bearer: [] }, { basic: [] }],
  paths: {
    "/openapi.json": {
      get: read("This document", { type: "object" }),
    },
    "/events": {
      get: {
        summary: "Fleet-wide job events as Server-Sent Events, resumable with Last-Event-ID (docs/events.md)",
        "x-sluice-role": "read",
        parameters: [
          queryParam("queue", "only events of this queue"),
          queryParam("job", "only events of this job"),
          queryParam("after", "resume after this event id (Last-Event-ID wins); empty: from the oldest kept"),
          {
            name: "Last-Event-ID",
            in: "header",
            required: false,
            description: "sent by EventSource on reconnect",
            schema: str(),
          },
        ],
        responses: {
          "200": { description: "an event stream", content: { "text/event-stream": { schema: str() } } },
          ...ERRORS,
        },
      },
    },
    "/queues": {
      get: read(
        "Queues: counts per state, due, latency, paused, limits",
        obj({ queues: { type: "array", items: ref("Queue") } }, ["queues"]),
      ),
    },
    "/queues/{queue}/pause": {
      post: admin(
        "Pause a queue (jobs keep arriving and wait)",
        obj({ queue: str(), paused: { type: "boolean" } }),
        {
          parameters: [pathParam("queue", "queue name")],
        },
      ),
    },
    "/queues/{queue}/resume": {
      post: admin("Resume a paused queue", obj({ queue: str(), paused: { type: "boolean" } }), {
        parameters: [pathParam("queue", "queue name")],
      }),
    },
    "/jobs": {
      get: read(
        "List jobs, newest first, one page at a time",
        obj({ jobs: { type: "array", items: ref("Job") }, nextCursor: { type: ["string", "null"] } }),
        {
          parameters: [
            ...FILTER_PARAMS,
            {
              name: "payload.{path}",
              in: "query",
              required: false,
              description:
                'one payload field equality: payload.user.id=7 (a number), payload.user.id="7" (a string), true, false or null',
              schema: str(),
            },
            queryParam("limit", "jobs per page, 1 to 500 (default 50)", int()),
            queryParam("cursor", "nextCursor of the previous page"),
            queryParam("order", "desc (newest first, default) or asc", {
              type: "string",
              enum: ["asc", "desc"],
            }),
          ],
        },
      ),
      post: admin(
        "Enqueue a job (only with allowEnqueue: true; else 403 ENQUEUE_DISABLED)",
        ref("Enqueued"),
        {
          requestBody: body(
            obj(
              {
                task: str(),
                payload: {},
                options: { type: "object", description: "job options (queue, priority, delayMs, jobId, …)" },
              },
              ["task"],
            ),
          ),
        },
        { "201": json(ref("Enqueued"), "Created") },
      ),
    },
    "/jobs/retry": { post: bulk("Retry matching jobs (dead, cancelled, completed, scheduled)") },
    "/jobs/requeue-dead": { post: bulk("Requeue matching dead jobs (the dead-letter requeue)") },
    "/jobs/cancel": { post: bulk("Cancel matching jobs; running ones are asked to stop") },
    "/jobs/delete": { post: bulk("Delete matching jobs that are not running") },
    "/jobs/move": { post: bulk("Move matching jobs to another queue", { queue: str() }, ["queue"]) },
    "/jobs/reprioritize": {
      post: bulk("Set the priority of matching jobs that have not started", { priority: int() }, [
        "priority",
      ]),
    },
    "/jobs/{id}": {
      get: read("One job: payload, result, progress, attempts and errors, logs", ref("JobDetail"), {
        parameters: [
          pathParam("id", "job id"),
          queryParam("logLimit", "log lines, 0 to 1000 (default 200)", int()),
        ],
      }),
      delete: single("Delete a job that is not running", obj({ id: str(), deleted: { type: "boolean" } })),
    },
    "/jobs/{id}/flow": {
      get: read(
        "A job's flow: parent, batch, dependencies and dependents (policy, applied), children (results redacted)",
        ref("Flow"),
        { parameters: [pathParam("id", "job id")] },
      ),
    },
    "/batches": {
      get: read(
        "Batches, newest first: counts, pending, callbacks and when they fired",
        obj({ batches: { type: "array", items: ref("Batch") }, nextCursor: { type: ["string", "null"] } }),
        {
          parameters: [
            queryParam("finished", "true: only finished batches; false: only open ones", { type: "boolean" }),
            queryParam("limit", "1 to 1000 (default 50)", int()),
            queryParam("cursor", "nextCursor of the previous page"),
          ],
        },
      ),
    },
    "/batches/{id}": {
      get: read("One batch: counts, pending, callbacks and when they fired", ref("Batch"), {
        parameters: [pathParam("id", "batch id")],
      }),
    },
    "/jobs/{id}/retry": { post: single("Retry a job", obj({ id: str(), state: str() })) },
    "/jobs/{id}/cancel": {
      post: single(
        "Cancel a job (a running one is asked to stop)",
        obj({ id: str(), cancelled: { type: "boolean" }, requested: { type: "boolean" } }),
      ),
    },
    "/jobs/{id}/move": {
      post: single(
        "Move a job to another queue",
        obj({ id: str(), queue: str() }),
        obj({ queue: str() }, ["queue"]),
      ),
    },
    "/jobs/{id}/reprioritize": {
      post: single(
        "Set a job's priority",
        obj({ id: str(), priority: int() }),
        obj({ priority: int() }, ["priority"]),
      ),
    },
    "/recover": {
      post: admin(
        "Recover orphaned active jobs (dryRun: list them, change nothing)",
        obj({
          dryRun: { type: "boolean" },
          count: int(),
          jobs: { type: "array", items: { type: "object" } },
        }),
        {
          requestBody: body(
            obj({
              olderThan: str("any active job started longer ago than this"),
              dryRun: { type: "boolean" },
              limit: int(),
            }),
          ),
        },
      ),
    },
    "/workers": {
      get: read(
        "Registered workers with liveness",
        obj({ workers: { type: "array", items: { type: "object" } } }),
        {
          parameters: [queryParam("staleAfter", "a worker silent this long is not alive (default 60s)")],
        },
      ),
    },
    "/schedules": {
      get: read(
        "Recurring schedules with their next and latest ticks",
        obj({ schedules: { type: "array", items: { type: "object" } } }),
      ),
    },
    "/doctor": {
      get: read(
        "Doctor findings (as sluice doctor --json)",
        { type: "object" },
        {
          parameters: [
            queryParam("window", "stagnation window (default 10m)"),
            queryParam("staleAfter", "late heartbeat threshold (default 60s)"),
          ],
        },
      ),
    },
    "/stats": {
      get: read(
        "Outcomes per queue (totals) and per queue and hour",
        obj({
          sinceMs: int(),
          queues: { type: "array", items: { type: "object" } },
          hours: { type: "array", items: { type: "object" } },
        }),
        { parameters: [queryParam("since", "how far back (default 24h)")] },
      ),
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer" },
      basic: { type: "http", scheme: "basic", description: "any user name; the token as the password" },
    },
    responses: {
      BadRequest: errorResponse("Bad input (INVALID_OPTION, …)"),
      Unauthorized: errorResponse("No valid token (UNAUTHORIZED); WWW-Authenticate names the schemes"),
      Forbidden: errorResponse("A read token on a mutating route (FORBIDDEN), or ENQUEUE_DISABLED"),
      NotFound: errorResponse("No such job (JOB_NOT_FOUND) or route (NOT_FOUND)"),
      Conflict: errorResponse("The job is in a state the action leaves alone (JOB_STATE_CONFLICT)"),
      TooLarge: errorResponse("Body over the limit (BODY_TOO_LARGE) or payload over maxPayloadBytes"),
      UnsupportedMediaType: errorResponse("Not Content-Type: application/json (UNSUPPORTED_MEDIA_TYPE)"),
      Unavailable: errorResponse("The store is unreachable (STORE_UNAVAILABLE)"),
      Timeout: errorResponse("A store call took longer than the timeout (STORE_TIMEOUT)"),
    },
    schemas: {
      Error: obj({ error: obj({ code: str(), message: str(), field: str() }, ["code", "message"]) }, [
        "error",
      ]),
      JobState: {
        type: "string",
        enum: ["scheduled", "waiting", "active", "completed", "dead", "cancelled", "blocked"],
      },
      Queue: obj(
        {
          queue: str(),
          counts: { type: "object", additionalProperties: int(), description: "jobs per state" },
          due: int("scheduled jobs whose run time has passed"),
          oldestWaitingAt: { type: ["integer", "null"] },
          latencyMs: int(),
          paused: { type: "boolean" },
          pausedUntil: { type: ["integer", "null"], description: "paused by a rate limit until then" },
          limits: {
            oneOf: [ref("QueueLimits"), { type: "null" }],
            description: "fleet-wide limits (sluice.limits), null when none",
          },
          limitedActive: int("active jobs as the limits count them, claimed-ahead included"),
          heldKeys: int("limit keys held by a rate limit now"),
        },
        ["queue", "counts", "latencyMs", "paused"],
      ),
      RateLimit: obj({ max: int(), windowMs: int() }, ["max", "windowMs"]),
      QueueLimits: obj({
        concurrency: { type: ["integer", "null"] },
        rate: { oneOf: [ref("RateLimit"), { type: "null" }] },
        keyConcurrency: { type: ["integer", "null"] },
        keyRate: { oneOf: [ref("RateLimit"), { type: "null" }] },
      }),
      AttemptError: obj(
        {
          attempt: int(),
          outcome: str("error, timeout, lease-expired, invalid-payload, no-handler, …"),
          name: str("error class name"),
          message: str(),
          stack: str("job detail only"),
          code: str(),
          at: int(),
          workerId: str(),
          note: str(),
        },
        ["attempt", "outcome", "message", "at"],
      ),
      Job: obj(
        {
          id: str(),
          seq: int("enqueue order within the store"),
          task: str(),
          queue: str(),
          state: ref("JobState"),
          payload: { description: "redacted" },
          result: { description: "redacted" },
          progress: { description: "redacted" },
          priority: int(),
          runAt: int(),
          createdAt: int(),
          startedAt: { type: ["integer", "null"] },
          finishedAt: { type: ["integer", "null"] },
          attempt: int(),
          maxAttempts: int(),
          backoff: { type: ["object", "null"] },
          timeoutMs: { type: ["integer", "null"] },
          uniqueKey: { type: ["string", "null"] },
          tags: { type: "array", items: str() },
          leaseToken: int(),
          leaseExpiresAt: { type: ["integer", "null"] },
          workerId: { type: ["string", "null"] },
          cancelRequested: { type: "boolean" },
          retention: {
            oneOf: [{ type: "boolean" }, obj({ ageMs: int() }, ["ageMs"]), obj({ count: int() }, ["count"])],
          },
          errors: { type: "array", items: ref("AttemptError") },
          reason: { type: ["string", "null"] },
          parentId: { type: ["string", "null"] },
          batchId: { type: ["string", "null"] },
          pendingDependencies: int(),
          limitKey: { type: ["string", "null"] },
          dataError: str("a stored field could not be parsed"),
        },
        ["id", "task", "queue", "state", "priority", "attempt", "maxAttempts", "createdAt", "runAt"],
      ),
      JobDetail: {
        allOf: [
          ref("Job"),
          obj({ logs: { type: "array", items: obj({ at: int(), attempt: int(), message: str() }) } }),
        ],
      },
      Enqueued: obj({ id: str(), state: ref("JobState"), created: { type: "boolean" } }),
      FlowJob: obj({
        id: str(),
        task: str(),
        queue: str(),
        state: { oneOf: [ref("JobState"), { type: "null" }], description: "null: the job no longer exists" },
        result: { description: "redacted" },
        error: { type: ["string", "null"] },
      }),
      FlowEdge: {
        allOf: [
          ref("FlowJob"),
          obj({ onFailure: { enum: ["fail", "continue", "ignore"] }, resolved: { type: "boolean" } }),
        ],
      },
      Batch: obj({
        id: str(),
        description: { type: ["string", "null"] },
        total: int(),
        completed: int(),
        dead: int(),
        cancelled: int(),
        pending: int(),
        createdAt: int(),
        finishedAt: { type: ["integer", "null"] },
        callbacks: {
          type: "array",
          items: obj({
            event: { enum: ["complete", "success", "death"] },
            task: str(),
            queue: str(),
            jobId: str(),
            firedAt: { type: ["integer", "null"] },
          }),
        },
      }),
      Flow: obj({
        dependencies: { type: "array", items: ref("FlowEdge") },
        dependents: { type: "array", items: ref("FlowEdge") },
        children: { type: "array", items: ref("FlowJob") },
        parent: { oneOf: [ref("FlowJob"), { type: "null" }] },
        batch: { oneOf: [ref("Batch"), { type: "null" }] },
      }),
    },
  },
} as const;

/** Every path and method of the document, as `METHOD /path` (OpenAPI `{param}` syntax). */
export function documentedRoutes(
  doc: { paths: Record<string, Record<string, unknown>> } = OPENAPI_DOCUMENT,
): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

/** The endpoint table of docs/http.md, rendered from the document. */
export function renderEndpointTable(doc: typeof OPENAPI_DOCUMENT = OPENAPI_DOCUMENT): string {
  const rows = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods as Record<string, Operation>).map(
      ([method, op]) =>
        `| \`${method.toUpperCase()}\` | \`${path}\` | ${op["x-sluice-role"]} | ${op.summary} |`,
    ),
  );
  return ["| method | path | role | what |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
