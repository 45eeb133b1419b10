/**
 * Job filters of the HTTP API, from a query string (`GET /jobs`) or a JSON body (bulk actions). They mean
 * what the CLI's filter flags mean (src/cli/filters.ts): `queue`, `state` (comma separated), `task`, `tag`,
 * `olderThan` (a duration: `30m`, `2h`, `7d`), plus `idPrefix` and one payload field equality
 * (`payload.<dotted.path>=<JSON scalar>`). Everything is validated before the store is called; a mistake is
 * a ValidationError `INVALID_OPTION` (400) naming the field.
 */
import { validateQueueName, validateTaskName } from "../core/options.js";
import {
  type AdminFilter,
  isJobState,
  JOB_STATES,
  type JobState,
  parseDuration,
  ValidationError,
} from "../index.js";

/** Most jobs on one page of `GET /jobs`, and the default. */
export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;
/** Most ids a bulk body may list. */
export const MAX_BULK_IDS = 10_000;

const MAX_TEXT = 256;
const MAX_PATH_SEGMENTS = 16;

function bad(field: string, message: string): ValidationError {
  return new ValidationError("INVALID_OPTION", message, { field });
}

function text(value: unknown, field: string, max = MAX_TEXT): string {
  if (typeof value !== "string" || value === "" || value.length > max) {
    throw bad(field, `${field} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

/** Parses states given as `a,b` or `["a","b"]`. */
export function parseStates(value: unknown, field = "state"): JobState[] {
  const items = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : null;
  if (items === null)
    throw bad(field, `${field} must be a state or a list of states (${JOB_STATES.join(", ")})`);
  const states = items.map((s) => (typeof s === "string" ? s.trim() : s)).filter((s) => s !== "");
  if (states.length === 0) throw bad(field, `${field} needs at least one of ${JOB_STATES.join(", ")}`);
  for (const s of states) {
    if (!isJobState(s)) {
      throw bad(field, `unknown state ${JSON.stringify(s)}: use ${JOB_STATES.join(", ")}`);
    }
  }
  return [...new Set(states as JobState[])];
}

/** Parses a payload filter key (`payload.user.name`) into its path (`["user", "name"]`). */
export function parsePayloadPath(key: string): string[] {
  const path = key.slice("payload.".length).split(".");
  if (path.length > MAX_PATH_SEGMENTS || path.some((s) => s === "" || s.length > 128)) {
    throw bad(
      key,
      `${JSON.stringify(key)}: write payload.<key>[.<key>…] with up to ${MAX_PATH_SEGMENTS} non-empty keys`,
    );
  }
  return path;
}

/** Parses the JSON scalar of a payload filter (`7`, `"7"`, `true`, `null`). */
export function parsePayloadValue(raw: string, field: string): string | number | boolean | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw bad(
      field,
      `${field}: the value must be JSON: 7 (a number), "7" (a string, with the quotes), true, false or null`,
    );
  }
  return checkScalar(value, field);
}

function checkScalar(value: unknown, field: string): string | number | boolean | null {
  if (
    value === null ||
    typeof value === "boolean" ||
    (typeof value === "string" && value.length <= 4096) ||
    (typeof value === "number" && Number.isFinite(value))
  ) {
    return value as string | number | boolean | null;
  }
  throw bad(
    field,
    `${field}: the value must be a JSON string, number, boolean or null (not an object or a list)`,
  );
}

/** Sets one filter field (shared by the query string and the body). */
function setField(filter: AdminFilter, key: string, value: unknown): void {
  switch (key) {
    case "queue":
      filter.queue = validateQueueName(value, "queue");
      return;
    case "task":
      filter.task = validateTaskName(value, "task");
      return;
    case "tag":
      filter.tag = text(value, "tag");
      return;
    case "idPrefix":
      filter.idPrefix = text(value, "idPrefix");
      return;
    case "batchId":
      filter.batchId = text(value, "batchId");
      return;
    case "parentId":
      filter.parentId = text(value, "parentId");
      return;
    case "state":
      filter.state = parseStates(value);
      return;
    case "olderThan":
      if (typeof value !== "string" && typeof value !== "number") {
        throw bad("olderThan", 'olderThan must be a duration such as "30m", "2h", "7d" or a number of ms');
      }
      filter.olderThanMs = parseDuration(value, "olderThan");
      return;
    default:
      throw bad(key, `unknown filter ${JSON.stringify(key)}`);
  }
}

/** The parameters of `GET /jobs`: its filter and page. */
export interface ListQuery {
  filter: AdminFilter;
  limit: number;
  cursor: string | null;
  order: "asc" | "desc";
}

const FILTER_KEYS = new Set([
  "queue",
  "task",
  "tag",
  "idPrefix",
  "batchId",
  "parentId",
  "state",
  "olderThan",
]);

/**
 * Parses `GET /jobs`'s query string. Every parameter may appear once; an unknown one is refused (a typo
 * would otherwise list every job).
 */
export function parseListQuery(params: URLSearchParams): ListQuery {
  const filter: AdminFilter = {};
  let limit = DEFAULT_PAGE_SIZE;
  let cursor: string | null = null;
  let order: "asc" | "desc" = "desc";
  const seen = new Set<string>();
  for (const [key, value] of params) {
    if (seen.has(key)) throw bad(key, `${key} is given twice; give it once (states: state=dead,cancelled)`);
    seen.add(key);
    if (FILTER_KEYS.has(key)) setField(filter, key, value);
    else if (key.startsWith("payload.")) {
      if (filter.payloadField) throw bad(key, "only one payload.<path> filter is supported per request");
      filter.payloadField = { path: parsePayloadPath(key), equals: parsePayloadValue(value, key) };
    } else if (key === "limit") limit = parseLimit(value);
    else if (key === "cursor") {
      if (value === "" || value.length > 512)
        throw bad("cursor", "cursor must be the nextCursor of the previous page");
      cursor = value;
    } else if (key === "order") {
      if (value !== "asc" && value !== "desc") throw bad("order", 'order must be "asc" or "desc"');
      order = value;
    } else {
      throw bad(
        key,
        `unknown parameter ${JSON.stringify(key)}: use queue, state, task, tag, idPrefix, batchId, parentId, olderThan, ` +
          "payload.<path>, limit, cursor, order",
      );
    }
  }
  return { filter, limit, cursor, order };
}

function parseLimit(value: string): number {
  const n = /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw bad(
      "limit",
      `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** A bulk action's target: a filter (or ids), and whether the caller asked for every job. */
export interface BulkTarget {
  filter: AdminFilter;
  /** True when neither a filter field nor ids were given (then `all: true` is required). */
  unfiltered: boolean;
}

/**
 * Parses a bulk body's `filter` (`{ queue, state, task, tag, idPrefix, olderThan, payload: { "a.b": 7 } }`)
 * and `ids`. Unknown fields are refused.
 */
export function parseBulkFilter(body: Record<string, unknown>): BulkTarget {
  const filter: AdminFilter = {};
  const raw = body.filter;
  if (raw !== undefined) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw bad("filter", 'filter must be an object such as { "queue": "rag", "state": "dead" }');
    }
    for (const [key, value] of Object.entries(raw)) {
      if (FILTER_KEYS.has(key)) setField(filter, key, value);
      else if (key === "payload") {
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw bad("filter.payload", 'filter.payload must be an object such as { "user.id": 7 }');
        }
        const entries = Object.entries(value);
        if (entries.length !== 1) throw bad("filter.payload", "filter.payload must hold exactly one path");
        const [path, equals] = entries[0] as [string, unknown];
        filter.payloadField = {
          path: parsePayloadPath(`payload.${path}`),
          equals: checkScalar(equals, `filter.payload.${path}`),
        };
      } else {
        throw bad(
          `filter.${key}`,
          `unknown filter ${JSON.stringify(key)}: use queue, state, task, tag, idPrefix, batchId, parentId, olderThan, payload`,
        );
      }
    }
  }
  if (body.ids !== undefined) {
    const ids = body.ids;
    if (
      !Array.isArray(ids) ||
      ids.length === 0 ||
      ids.length > MAX_BULK_IDS ||
      ids.some((id) => typeof id !== "string" || id === "" || id.length > 256)
    ) {
      throw bad("ids", `ids must be a list of 1 to ${MAX_BULK_IDS} job ids`);
    }
    filter.ids = [...new Set(ids as string[])];
  }
  return { filter, unfiltered: Object.keys(filter).length === 0 };
}
