/**
 * Payloads and results: checking that a value is plain JSON data, serialising it with a size limit,
 * reading stored JSON back, and running a task's Standard Schema. Pure, no I/O.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { ValidationError } from "./errors.js";
import type { Json } from "./job.js";

/** Default limit on a serialised payload: 1 MiB of UTF-8 JSON. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** How many schema issues an error message lists (all of them stay on `error.issues`). */
const MAX_LISTED_ISSUES = 5;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

type Segment = string | number;

interface WalkState {
  /** Name of the root (`payload`). */
  root: string;
  /** Path from the root to the value being checked. */
  segments: Segment[];
  /** Objects and arrays on the current path, with the path length at which each was entered. */
  ancestors: Map<object, number>;
}

/**
 * Checks that `value` is plain JSON data and serialises it, enforcing a size limit.
 *
 * Accepted: `null`, booleans, finite numbers, strings, arrays and plain objects (prototype
 * `Object.prototype` or `null`), nested to any depth the stack allows. The same object may appear twice
 * (it is written twice); a cycle is rejected. Rejected, with the path of the offending value in the message
 * and in `error.field` (`payload.items[3].at`): `undefined` (top level, array element or property value),
 * functions, symbols, bigints, `NaN` and `±Infinity`, `Date`, `Map`, `Set`, binary data (`Buffer`, typed
 * arrays), any other class instance, and circular references. Symbol-keyed and non-enumerable properties
 * are ignored, as `JSON.stringify` ignores them.
 *
 * The check is one recursive walk that copies nothing, followed by one `JSON.stringify`.
 *
 * @param value the payload
 * @param maxBytes largest allowed size of the JSON text in UTF-8 bytes
 * @param field name of the root in error paths
 * @returns the JSON text
 * @throws ValidationError `INVALID_PAYLOAD` when the value is not JSON data; `PAYLOAD_TOO_LARGE` when the
 *   JSON text is longer than `maxBytes`
 */
export function serializePayload(value: unknown, maxBytes: number, field = "payload"): string {
  const state: WalkState = { root: field, segments: [], ancestors: new Map() };
  let text: string;
  try {
    walk(value, state);
    text = JSON.stringify(value);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new ValidationError(
        "INVALID_PAYLOAD",
        `${field} is nested too deeply to serialise (${error.message}); flatten the data`,
        { field, cause: error },
      );
    }
    throw error;
  }
  // UTF-8 never takes fewer bytes than UTF-16 code units, and never more than 3 per code unit.
  if (text.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(text, "utf8");
    if (bytes > maxBytes) {
      throw new ValidationError(
        "PAYLOAD_TOO_LARGE",
        `${field} is ${formatBytes(bytes)} (${bytes} bytes) as JSON, over the limit of ${formatBytes(maxBytes)} ` +
          `(${maxBytes} bytes): store the data elsewhere (object storage, a database row, a file) and pass a ` +
          "reference to it such as its id or URL, or raise the payload size limit",
        { field },
      );
    }
  }
  return text;
}

function walk(value: unknown, state: WalkState): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw failure(
          state,
          `is ${value}, which JSON cannot represent (it would be stored as null); pass a finite number or null`,
        );
      }
      return;
    case "undefined":
      throw undefinedFailure(state);
    case "function":
      throw failure(state, "is a function: payloads are data only; pass the data the function would produce");
    case "symbol":
      throw failure(state, "is a symbol, which JSON cannot represent; pass a string instead");
    case "bigint":
      throw failure(
        state,
        `is a bigint (${value}n), which JSON cannot represent; pass value.toString() and convert it back ` +
          "with BigInt(text) in the handler",
      );
    default:
      break;
  }
  if (value === null) return;
  const object = value as object;
  const seenAt = state.ancestors.get(object);
  if (seenAt !== undefined) {
    const target = formatPath(state.root, state.segments.slice(0, seenAt));
    throw failure(
      state,
      `refers back to ${target} (a circular reference), which JSON cannot represent; pass ids instead of ` +
        "links between objects",
    );
  }
  const segments = state.segments;
  if (Array.isArray(object)) {
    state.ancestors.set(object, segments.length);
    const items = object as unknown[];
    for (let index = 0; index < items.length; index++) {
      segments.push(index);
      walk(items[index], state);
      segments.pop();
    }
    state.ancestors.delete(object);
    return;
  }
  const proto: unknown = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null && !isForeignObjectPrototype(proto)) {
    throw failure(state, nonPlainMessage(object, proto));
  }
  state.ancestors.set(object, segments.length);
  const record = object as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    segments.push(key);
    walk(record[key], state);
    segments.pop();
  }
  state.ancestors.delete(object);
}

/** `Object.prototype` of another realm (a `vm` context, an iframe): plain objects from there are fine. */
function isForeignObjectPrototype(proto: unknown): boolean {
  if (typeof proto !== "object" || proto === null || Object.getPrototypeOf(proto) !== null) return false;
  const ctor = (proto as { constructor?: unknown }).constructor;
  return typeof ctor === "function" && ctor.name === "Object";
}

function undefinedFailure(state: WalkState): ValidationError {
  const { segments } = state;
  if (segments.length === 0) {
    throw failure(state, "is undefined: pass null or {} when the job needs no data");
  }
  if (typeof segments[segments.length - 1] === "number") {
    throw failure(state, "is undefined (an array element): use null instead");
  }
  throw failure(
    state,
    "is undefined: remove it or use null (JSON drops undefined properties, so the handler would not see it)",
  );
}

function nonPlainMessage(object: object, proto: unknown): string {
  if (object instanceof Date) {
    return "is a Date: pass date.toISOString() and turn it back with new Date(text) in the handler";
  }
  if (object instanceof Map) {
    return "is a Map, which JSON would store as {} (losing its entries): pass Object.fromEntries(map) or [...map]";
  }
  if (object instanceof Set) {
    return "is a Set, which JSON would store as {} (losing its entries): pass [...set]";
  }
  const name = constructorName(proto);
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    return (
      `is binary data (${name}): store the bytes elsewhere and pass a reference to them, or pass ` +
      'buffer.toString("base64") for small data'
    );
  }
  const what = name === "Object" ? "an object with a custom prototype" : `an instance of ${name}`;
  return (
    `is ${what}: payloads take only plain objects, arrays, strings, finite numbers, booleans and null; ` +
    "convert it to a plain object first"
  );
}

function constructorName(proto: unknown): string {
  const ctor = (proto as { constructor?: { name?: unknown } } | null)?.constructor;
  const name = ctor?.name;
  return typeof name === "string" && name !== "" ? name : "an unnamed class";
}

function failure(state: WalkState, problem: string): ValidationError {
  const path = formatPath(state.root, state.segments);
  return new ValidationError("INVALID_PAYLOAD", `${path} ${problem}`, { field: path });
}

function formatPath(root: string, segments: readonly Segment[]): string {
  let path = root;
  for (const segment of segments) {
    if (typeof segment === "number") path += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) path += `.${segment}`;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${trimFixed(bytes / 1024)} KiB`;
  return `${trimFixed(bytes / (1024 * 1024))} MiB`;
}

function trimFixed(value: number): string {
  return value.toFixed(1).replace(/\.0$/, "");
}

/**
 * Serialises a handler's return value for storage. Never throws.
 *
 * `undefined` becomes `null` (no result). Anything else goes through `JSON.stringify` (so `toJSON` methods
 * apply, `NaN` becomes `null` and `Date` becomes an ISO string). When that fails (a bigint, a cycle, a
 * throwing getter or `toJSON`) or produces nothing (a function, a symbol), the stored result is a JSON
 * object explaining why: `{"unserializableResult":"<reason>"}`.
 *
 * @param value what the handler returned
 * @returns JSON text, or null for no result
 */
export function serializeResult(value: unknown): string | null {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    return unserializable(`the handler's result could not be converted to JSON: ${errorMessage(error)}`);
  }
  if (text === undefined) {
    return unserializable(`the handler returned a ${typeof value}, which is not JSON data`);
  }
  return text;
}

function unserializable(reason: string): string {
  return JSON.stringify({ unserializableResult: reason });
}

function errorMessage(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "unknown error";
  }
}

/**
 * Parses JSON text read from a store.
 *
 * @param text JSON text, or null (no value)
 * @returns the parsed value, or null when `text` is null
 * @throws Error when the text is not valid JSON. The message gives the text's length and the parser's
 *   position but none of the content (payloads may hold secrets and error messages get logged); the parser
 *   error is attached as `cause`.
 */
export function parseStoredJson(text: string | null): Json | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as Json;
  } catch (error) {
    const position = /position (\d+)/.exec(errorMessage(error))?.[1];
    throw new Error(
      `stored JSON is corrupt and cannot be read (${text.length} characters` +
        `${position !== undefined ? `, invalid at position ${position}` : ""}); the data was changed outside ` +
        "Sluice or truncated: inspect the job and fix or delete it",
      { cause: error },
    );
  }
}

/**
 * Validates a value against a Standard Schema (zod, valibot, arktype, …).
 *
 * @param schema any Standard Schema v1
 * @param value the value to check
 * @param field name of the value in errors (`payload`); issue paths are appended to it
 * @returns the schema's output value (which may differ from the input: defaults, coercions)
 * @throws ValidationError `SCHEMA_VALIDATION` with `field` and every issue on `issues`; the message lists
 *   the first 5 as `path: message`. `INVALID_OPTION` (field `schema`) when `schema` is not a Standard Schema.
 */
export async function validateWithSchema(
  schema: StandardSchemaV1,
  value: unknown,
  field: string,
): Promise<unknown> {
  const props = (schema as Partial<StandardSchemaV1> | null | undefined)?.["~standard"];
  if (typeof props?.validate !== "function") {
    throw new ValidationError(
      "INVALID_OPTION",
      "schema is not a Standard Schema (it has no ['~standard'].validate): pass a zod, valibot or arktype " +
        "schema, or any object implementing https://standardschema.dev",
      { field: "schema" },
    );
  }
  let result = props.validate(value);
  if (result instanceof Promise) result = await result;
  if (!result.issues) return result.value;

  const issues = result.issues.map((issue) => ({
    message: issue.message,
    ...(issue.path ? { path: issue.path.map(segmentKey) } : {}),
  }));
  const listed = issues
    .slice(0, MAX_LISTED_ISSUES)
    .map((issue) => `${formatIssuePath(field, issue.path)}: ${issue.message}`)
    .join("; ");
  const more = issues.length > MAX_LISTED_ISSUES ? ` (and ${issues.length - MAX_LISTED_ISSUES} more)` : "";
  const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
  throw new ValidationError(
    "SCHEMA_VALIDATION",
    `${field} does not match the task's schema (${count}): ${listed}${more}; fix the data or the schema`,
    { field, issues },
  );
}

function segmentKey(segment: PropertyKey | StandardSchemaV1.PathSegment): PropertyKey {
  return typeof segment === "object" && segment !== null ? segment.key : segment;
}

function formatIssuePath(root: string, path: readonly PropertyKey[] | undefined): string {
  if (!path || path.length === 0) return root;
  return formatPath(
    root,
    path.map((key) => (typeof key === "symbol" ? String(key) : key)),
  );
}
