/**
 * The HTTP JSON API of Sluice (`import { createHttpApi } from "sluice/http"`): a Hono app over
 * `sluice.admin`, mountable in node:http, Express, Fastify and Hono, and `openEventStream`, the Server-Sent
 * Events stream of its `GET /events` for an application's own route. A subpath of its own so that
 * `import "sluice"` never loads Hono. Reference: docs/http.md.
 */
export { createHttpApi, type HttpApiOptions } from "./app.js";
export { type HttpRole, type HttpToken, isLoopbackHost, parseTokens } from "./auth.js";
export {
  openEventStream,
  type SseStreamOptions,
  type SseStreamRequest,
  type SseStreamSummary,
} from "./event-stream.js";
export { OPENAPI_DOCUMENT } from "./openapi.js";
export {
  compileRedaction,
  DEFAULT_REDACTED_FIELDS,
  REDACTED,
  type RedactionRules,
  redactFields,
  redactLogMessage,
} from "./redaction.js";
