/**
 * Job options: validation of what callers pass to `task()` and `enqueue()`, and resolution of task
 * defaults plus per-call options into the values a job is stored with. Pure, no I/O.
 */

import { type BackoffOption, validateBackoff } from "./backoff.js";
import { describeValue, parseDuration } from "./duration.js";
import { ValidationError } from "./errors.js";
import { DEPENDENCY_POLICIES, type Dependency, type DependencyPolicy } from "./flows.js";
import { isJobState, JOB_STATES, type JobState, PENDING_STATES, type Retention } from "./job.js";

/** Options of a job, as given to `task()` (defaults) and `enqueue()` (per call). */
export interface JobOptions {
  /** Queue to put the job in. Default `"default"`. */
  queue?: string;
  /** Lower runs first. Integer in [-1 000 000, 1 000 000]. Default 0. */
  priority?: number;
  /** Run no earlier than this long from now: ms, or a duration string (`"30s"`). Not with `runAt`. */
  delayMs?: number | string;
  /** Run no earlier than this time: a Date or epoch ms. Not with `delayMs`. */
  runAt?: Date | number;
  /** Most attempts, the first included. Integer 1..1000. Default 3. */
  attempts?: number;
  /** Delay between attempts. Default {@link DEFAULT_BACKOFF} (exponential from 1 s, capped at 1 h, jittered). */
  backoff?: BackoffOption;
  /** Abort an attempt after this long (ms or duration string), or null for no timeout. Default null. */
  timeoutMs?: number | string | null;
  /** Idempotency id: a job with this id is enqueued once; later enqueues return the existing job. */
  jobId?: string;
  /**
   * Deduplication key: while a job with this key is in one of `states` (default: the pending states
   * `scheduled`, `waiting`, `active`, `blocked`) and within `windowMs` of its enqueue, enqueue returns it.
   */
  uniqueKey?: string | { key: string; windowMs?: number | string; states?: JobState[] };
  /** Labels to filter by (`sluice jobs list --tag`). At most 32, each 1..128 characters. */
  tags?: string[];
  /**
   * How long to keep the job once completed: `true` forever, `false` delete at once, `{ ageMs }` for a
   * duration, `{ count }` to keep the newest N per queue. Default `{ ageMs: 86_400_000 }` (one day).
   */
  retention?: Retention;
  /**
   * Jobs this one waits for: it stays `blocked` until each is final, then runs (core/flows.ts). A job id, or
   * `{ id, onFailure }` where `onFailure` says what happens when that job ends dead or cancelled: `"fail"`
   * (default: this job goes dead with its error), `"continue"` (runs and sees the failure in
   * `ctx.dependencies()`), `"ignore"` (runs as if it had not been declared). Each job must exist, or be
   * enqueued in the same call (`sluice.chain`, `sluice.batch`, `enqueueMany`). At most 10,000.
   */
  dependsOn?: readonly (string | { id: string; onFailure?: DependencyPolicy })[];
  /**
   * The job's limit key for its queue's per-key limits (`sluice.limits(queue, { keyConcurrency, keyRate })`)
   * and holds: a tenant, a user, an API key. 1 to 512 characters. Default: the task's `limitKey`, or none.
   * Operators see it (`sluice doctor`, the worker's rate-limit log line): use an identifier, never a secret —
   * for a per-API-key limit, pass a hash or the key's id, not the key.
   */
  limitKey?: string;
}

/** Options after validation and merging, ready to build a `NewJob`. */
export interface ResolvedJobOptions {
  queue: string;
  priority: number;
  /** Epoch ms. */
  runAt: number;
  maxAttempts: number;
  /** Null means the default backoff. */
  backoff: BackoffOption | null;
  timeoutMs: number | null;
  jobId: string | null;
  uniqueKey: string | null;
  /** States the unique key covers; empty when there is no unique key. */
  uniqueStates: JobState[];
  /** Epoch ms after which the unique key stops deduplicating, or null for no window. */
  uniqueUntil: number | null;
  tags: string[];
  retention: Retention;
  /** Dependencies with their policies (empty when none). */
  dependsOn: Dependency[];
}

/** Values used when neither the task nor the call sets an option. */
export const DEFAULTS = Object.freeze({
  queue: "default",
  priority: 0,
  attempts: 3,
  backoff: null,
  timeoutMs: null,
  retention: Object.freeze({ ageMs: 86_400_000 }),
  uniqueStates: PENDING_STATES,
} as const);

/** Bounds the validators enforce. */
export const LIMITS = Object.freeze({
  nameLength: 128,
  minPriority: -1_000_000,
  maxPriority: 1_000_000,
  maxAttempts: 1_000,
  /** Largest timeout a Node.js timer can hold (about 24.8 days); longer ones would fire at once. */
  maxTimeoutMs: 2_147_483_647,
  jobIdLength: 255,
  uniqueKeyLength: 512,
  maxTags: 32,
  tagLength: 128,
  /** Longest `delayMs`: 100 years (anything longer is a unit mistake). */
  maxDelayMs: 3_155_760_000_000,
} as const);

/** Every key of {@link JobOptions}. */
export const JOB_OPTION_KEYS: readonly (keyof JobOptions)[] = Object.freeze([
  "queue",
  "priority",
  "delayMs",
  "runAt",
  "attempts",
  "backoff",
  "timeoutMs",
  "jobId",
  "uniqueKey",
  "tags",
  "retention",
  "dependsOn",
  "limitKey",
]);

/** Words people reach for that are not option names. */
const ALIASES: Readonly<Record<string, string>> = {
  delay: "delayMs",
  wait: "delayMs",
  timeout: "timeoutMs",
  retries: "attempts",
  maxattempts: "attempts",
  retry: "attempts",
  id: "jobId",
  unique: "uniqueKey",
  dedupe: "uniqueKey",
  dedup: "uniqueKey",
  tag: "tags",
  runat: "runAt",
  at: "runAt",
  queuename: "queue",
  removeoncomplete: "retention",
  keep: "retention",
};

const NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/;
const MAX_DATE_MS = 8.64e15;

/** Option objects returned by {@link validateJobOptions}: {@link resolveJobOptions} need not check them again. */
const validated = new WeakSet<object>();

/**
 * Validates a queue name: 1 to 128 characters of letters, digits, `_`, `.`, `:` or `-`.
 *
 * @param name the name as given
 * @param field dotted name of the option, for the error (`options.queue`)
 * @returns the name
 * @throws ValidationError `INVALID_OPTION` with `field` set
 */
export function validateQueueName(name: unknown, field: string): string {
  return validateName(name, field, "queue");
}

/**
 * Validates a task name: 1 to 128 characters of letters, digits, `_`, `.`, `:` or `-`.
 *
 * @param name the name as given
 * @param field dotted name of the argument, for the error (`task`)
 * @returns the name
 * @throws ValidationError `INVALID_OPTION` with `field` set
 */
export function validateTaskName(name: unknown, field: string): string {
  return validateName(name, field, "task");
}

function validateName(name: unknown, field: string, what: string): string {
  if (
    typeof name === "string" &&
    name.length >= 1 &&
    name.length <= LIMITS.nameLength &&
    NAME_PATTERN.test(name)
  ) {
    return name;
  }
  let problem: string;
  if (typeof name !== "string") problem = `got ${describeValue(name)}`;
  else if (name.length === 0) problem = "got an empty string";
  else if (name.length > LIMITS.nameLength) problem = `got ${name.length} characters`;
  else problem = `got ${describeValue(name)}, which contains ${describeValue(firstBadChar(name))}`;
  throw new ValidationError(
    "INVALID_OPTION",
    `${field} must be a ${what} name of 1 to ${LIMITS.nameLength} characters, each a letter, digit, "_", ".", ":" ` +
      `or "-"; ${problem}`,
    { field },
  );
}

function firstBadChar(name: string): string {
  for (const char of name) {
    if (!NAME_PATTERN.test(char)) return char;
  }
  return "";
}

/**
 * Validates job options and returns a normalised copy: durations become milliseconds, `runAt` becomes
 * epoch ms, `uniqueKey.windowMs` becomes ms, arrays are copied. Keys whose value is `undefined` count as
 * absent. Rules:
 *
 * - unknown keys are rejected, naming the closest known key (`delay` → "did you mean delayMs?");
 * - `queue`: see {@link validateQueueName};
 * - `priority`: integer in [-1 000 000, 1 000 000];
 * - `delayMs`: duration `>= 0` (ms or string such as `"30s"`), at most 100 years; `runAt`: valid Date or
 *   epoch ms; not both;
 * - `attempts`: integer 1..1000;
 * - `backoff`: see `validateBackoff`;
 * - `timeoutMs`: duration `> 0` and at most 2 147 483 647 ms (the largest Node.js timer), or `null`;
 * - `jobId`: non-empty string of at most 255 characters;
 * - `uniqueKey`: non-empty string of at most 512 characters, or `{ key, windowMs?, states? }` with
 *   `windowMs > 0` and `states` a non-empty list of job states;
 * - `tags`: at most 32 strings of 1..128 characters;
 * - `jobId`, `uniqueKey` and `tags` never contain NUL (`\u0000`);
 * - `retention`: `true`, `false`, `{ ageMs }` with `ageMs >= 0`, or `{ count }` with an integer `count >= 0`.
 *
 * @param options the options object (undefined counts as `{}`)
 * @param fieldPrefix prefix of field names in errors (`options` gives `options.priority`); may be empty
 * @param extraKeys keys the caller handles itself (e.g. a task definition's `run`, `schema`): accepted
 *   here, left out of the result, and offered as suggestions for typos
 * @returns the normalised options, frozen (with their nested objects and arrays)
 * @throws ValidationError `INVALID_OPTION` with `field` set to the offending option
 */
export function validateJobOptions(
  options: unknown,
  fieldPrefix: string,
  extraKeys: readonly string[] = [],
): JobOptions {
  const at = (key: string): string => (fieldPrefix === "" ? key : `${fieldPrefix}.${key}`);
  if (options === undefined) return markValidated({});
  if (!isPlainObject(options)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${fieldPrefix || "options"} must be a plain object of job options (${JOB_OPTION_KEYS.join(", ")}); ` +
        `got ${describeValue(options)}`,
      { field: fieldPrefix || "options" },
    );
  }
  const input = options as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if ((JOB_OPTION_KEYS as readonly string[]).includes(key) || extraKeys.includes(key)) continue;
    const suggestion = suggestKey(key, [...JOB_OPTION_KEYS, ...extraKeys]);
    throw new ValidationError(
      "INVALID_OPTION",
      `${at(key)} is not a known option; ${suggestion ? `did you mean ${suggestion}? ` : ""}` +
        `known options are ${[...JOB_OPTION_KEYS, ...extraKeys].join(", ")}`,
      { field: at(key) },
    );
  }

  const out: JobOptions = {};
  if (input.queue !== undefined) out.queue = validateQueueName(input.queue, at("queue"));
  if (input.priority !== undefined) {
    out.priority = integerIn(
      input.priority,
      at("priority"),
      LIMITS.minPriority,
      LIMITS.maxPriority,
      "lower runs first",
    );
  }
  if (input.delayMs !== undefined && input.runAt !== undefined) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${at("delayMs")} and ${at("runAt")} were both given: pass delayMs (run after a delay) or runAt (run at a ` +
        "time), not both",
      { field: at("runAt") },
    );
  }
  if (input.delayMs !== undefined) out.delayMs = delay(input.delayMs, at("delayMs"));
  if (input.runAt !== undefined) out.runAt = epochMs(input.runAt, at("runAt"));
  if (input.attempts !== undefined) {
    out.attempts = integerIn(
      input.attempts,
      at("attempts"),
      1,
      LIMITS.maxAttempts,
      "the first attempt counts",
    );
  }
  if (input.backoff !== undefined) out.backoff = validateBackoff(input.backoff, at("backoff"));
  if (input.timeoutMs !== undefined) out.timeoutMs = timeout(input.timeoutMs, at("timeoutMs"));
  if (input.jobId !== undefined) out.jobId = boundedString(input.jobId, at("jobId"), LIMITS.jobIdLength);
  if (input.uniqueKey !== undefined) out.uniqueKey = uniqueKey(input.uniqueKey, at("uniqueKey"));
  if (input.tags !== undefined) out.tags = tags(input.tags, at("tags"));
  if (input.retention !== undefined) out.retention = retention(input.retention, at("retention"));
  if (input.dependsOn !== undefined) out.dependsOn = dependsOn(input.dependsOn, at("dependsOn"));
  if (input.limitKey !== undefined)
    out.limitKey = boundedString(input.limitKey, at("limitKey"), LIMITS.uniqueKeyLength);
  return markValidated(out);
}

/**
 * Merges task defaults and per-call options into the values a job is stored with.
 *
 * Per-call options override task defaults field by field (`queue` too; `tags` replace, they do not
 * merge; `timeoutMs: null` per call removes a task's timeout). `delayMs` and `runAt` override as a pair:
 * when the call gives either, the task's timing is ignored. Run time: `runAt` → that time; `delayMs` →
 * `now + delayMs`; neither → `now`. `uniqueUntil` is `now + windowMs` when the unique key has a window.
 * Inputs that did not come from {@link validateJobOptions} are validated first (fields `task.*` and
 * `options.*`).
 *
 * @param taskDefaults the task's options
 * @param perCall the enqueue call's options
 * @param now current epoch ms
 * @returns the resolved options
 * @throws ValidationError `INVALID_OPTION` when an input was not yet validated and is invalid
 */
export function resolveJobOptions(
  taskDefaults: JobOptions,
  perCall: JobOptions | undefined,
  now: number,
): ResolvedJobOptions {
  const task = validated.has(taskDefaults) ? taskDefaults : validateJobOptions(taskDefaults, "task");
  const call =
    perCall === undefined || validated.has(perCall)
      ? (perCall ?? {})
      : validateJobOptions(perCall, "options");

  const timing = call.runAt !== undefined || call.delayMs !== undefined ? call : task;
  let runAt = now;
  if (timing.runAt !== undefined) runAt = toEpochMs(timing.runAt);
  else if (timing.delayMs !== undefined) runAt = now + Math.round(toMs(timing.delayMs));

  const timeoutMs = call.timeoutMs !== undefined ? call.timeoutMs : task.timeoutMs;
  const unique = call.uniqueKey ?? task.uniqueKey;
  let uniqueKey: string | null = null;
  let uniqueStates: JobState[] = [];
  let uniqueUntil: number | null = null;
  if (typeof unique === "string") {
    uniqueKey = unique;
    uniqueStates = [...DEFAULTS.uniqueStates];
  } else if (unique !== undefined) {
    uniqueKey = unique.key;
    uniqueStates = unique.states ? [...unique.states] : [...DEFAULTS.uniqueStates];
    if (unique.windowMs !== undefined) uniqueUntil = now + Math.round(toMs(unique.windowMs));
  }
  const retention = call.retention ?? task.retention ?? DEFAULTS.retention;

  return {
    queue: call.queue ?? task.queue ?? DEFAULTS.queue,
    priority: call.priority ?? task.priority ?? DEFAULTS.priority,
    runAt,
    maxAttempts: call.attempts ?? task.attempts ?? DEFAULTS.attempts,
    backoff: call.backoff ?? task.backoff ?? DEFAULTS.backoff,
    timeoutMs: timeoutMs === undefined || timeoutMs === null ? null : Math.round(toMs(timeoutMs)),
    jobId: call.jobId ?? task.jobId ?? null,
    uniqueKey,
    uniqueStates,
    uniqueUntil,
    tags: [...(call.tags ?? task.tags ?? [])],
    retention: typeof retention === "boolean" ? retention : { ...retention },
    dependsOn: (call.dependsOn ?? []).map((d) =>
      typeof d === "string" ? { id: d, onFailure: "fail" } : { id: d.id, onFailure: d.onFailure ?? "fail" },
    ),
  };
}

/** Most dependencies of one job. */
const MAX_DEPENDENCIES = 10_000;

function dependsOn(value: unknown, field: string): JobOptions["dependsOn"] {
  const shape = 'a job id or { id, onFailure?: "fail" | "continue" | "ignore" }';
  if (!Array.isArray(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be an array of ${shape}; got ${describeValue(value)}`,
      {
        field,
      },
    );
  }
  if (value.length > MAX_DEPENDENCIES) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} has ${value.length} entries; at most ${MAX_DEPENDENCIES} (use a batch with a callback for more)`,
      { field },
    );
  }
  const seen = new Set<string>();
  return value.map((entry, i) => {
    const at = `${field}[${i}]`;
    let out: { id: string; onFailure?: DependencyPolicy };
    if (typeof entry === "string") {
      out = { id: boundedString(entry, at, LIMITS.jobIdLength) };
    } else if (isPlainObject(entry)) {
      const record = entry as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        if (key !== "id" && key !== "onFailure") {
          throw new ValidationError(
            "INVALID_OPTION",
            `${at}.${key} is not a dependency field; ${at} is ${shape}`,
            {
              field: `${at}.${key}`,
            },
          );
        }
      }
      out = { id: boundedString(record.id, `${at}.id`, LIMITS.jobIdLength) };
      if (record.onFailure !== undefined) {
        if (!(DEPENDENCY_POLICIES as readonly unknown[]).includes(record.onFailure)) {
          throw new ValidationError(
            "INVALID_OPTION",
            `${at}.onFailure must be one of ${DEPENDENCY_POLICIES.join(", ")}; got ${describeValue(record.onFailure)}`,
            { field: `${at}.onFailure` },
          );
        }
        out.onFailure = record.onFailure as DependencyPolicy;
      }
    } else {
      throw new ValidationError("INVALID_OPTION", `${at} must be ${shape}; got ${describeValue(entry)}`, {
        field: at,
      });
    }
    if (seen.has(out.id)) {
      throw new ValidationError("INVALID_OPTION", `${at}: job "${out.id}" is listed twice in ${field}`, {
        field: at,
      });
    }
    seen.add(out.id);
    return Object.freeze(out);
  });
}

/** Freezes the result (so the "already validated" mark stays true) and remembers it. */
function markValidated(options: JobOptions): JobOptions {
  if (options.tags) Object.freeze(options.tags);
  if (typeof options.uniqueKey === "object") {
    if (options.uniqueKey.states) Object.freeze(options.uniqueKey.states);
    Object.freeze(options.uniqueKey);
  }
  if (typeof options.retention === "object") Object.freeze(options.retention);
  if (typeof options.backoff === "object") Object.freeze(options.backoff);
  if (options.dependsOn) Object.freeze(options.dependsOn);
  Object.freeze(options);
  validated.add(options);
  return options;
}

// Validated options hold numbers; these only convert defensively for the type checker.
function toMs(value: number | string): number {
  return typeof value === "number" ? value : parseDuration(value, "duration");
}

function toEpochMs(value: Date | number): number {
  return Math.round(typeof value === "number" ? value : value.getTime());
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function integerIn(value: unknown, field: string, min: number, max: number, note: string): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return value;
  throw new ValidationError(
    "INVALID_OPTION",
    `${field} must be an integer from ${min} to ${max} (${note}); got ${describeValue(value)}`,
    { field },
  );
}

function duration(value: unknown, field: string): number {
  // parseDuration checks the type itself and builds the message for any input.
  return parseDuration(value as string | number, field);
}

function delay(value: unknown, field: string): number {
  const ms = duration(value, field);
  if (ms <= LIMITS.maxDelayMs) return ms;
  throw new ValidationError(
    "INVALID_OPTION",
    `${field} must be at most ${LIMITS.maxDelayMs} ms (100 years); got ${ms}: check the unit (ms, not µs)`,
    { field },
  );
}

function epochMs(value: unknown, field: string): number {
  let ms: number | undefined;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === "number") ms = value;
  if (ms !== undefined && Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS) return ms;
  const hint =
    typeof value === "string"
      ? "; to pass a date string, write new Date(text) and check it is valid"
      : value instanceof Date
        ? " (an invalid Date)"
        : "";
  throw new ValidationError(
    "INVALID_OPTION",
    `${field} must be a valid Date or a time in epoch milliseconds (Date.now() + ms); got ${describeValue(value)}${hint}`,
    { field },
  );
}

function timeout(value: unknown, field: string): number | null {
  if (value === null) return null;
  const ms = duration(value, field);
  if (ms > 0 && ms <= LIMITS.maxTimeoutMs) return ms;
  throw new ValidationError(
    "INVALID_OPTION",
    ms === 0
      ? `${field} must be greater than 0; use null for no timeout`
      : `${field} must be at most ${LIMITS.maxTimeoutMs} ms (about 24.8 days, the longest Node.js timer); ` +
          "use null for no timeout",
    { field },
  );
}

function boundedString(value: unknown, field: string, maxLength: number): string {
  if (typeof value === "string" && value.length >= 1 && value.length <= maxLength)
    return withoutNul(value, field);
  const problem =
    typeof value !== "string"
      ? `got ${describeValue(value)}`
      : value.length === 0
        ? "got an empty string"
        : `got ${value.length} characters`;
  throw new ValidationError(
    "INVALID_OPTION",
    `${field} must be a non-empty string of at most ${maxLength} characters (hash longer keys); ${problem}`,
    { field },
  );
}

function uniqueKey(value: unknown, field: string): NonNullable<JobOptions["uniqueKey"]> {
  if (typeof value === "string") return boundedString(value, field, LIMITS.uniqueKeyLength);
  if (!isPlainObject(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be a string or { key, windowMs?, states? }; got ${describeValue(value)}`,
      { field },
    );
  }
  const allowed = ["key", "windowMs", "states"];
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const suggestion = suggestKey(key, allowed);
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}.${key} is not a uniqueKey option; ${suggestion ? `did you mean ${suggestion}? ` : ""}` +
          "it takes key, windowMs and states",
        { field: `${field}.${key}` },
      );
    }
  }
  const out: { key: string; windowMs?: number; states?: JobState[] } = {
    key: boundedString(value.key, `${field}.key`, LIMITS.uniqueKeyLength),
  };
  if (value.windowMs !== undefined) {
    const windowMs = duration(value.windowMs, `${field}.windowMs`);
    if (windowMs <= 0) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}.windowMs must be greater than 0; leave it out to deduplicate for as long as a job is in the states`,
        { field: `${field}.windowMs` },
      );
    }
    out.windowMs = windowMs;
  }
  if (value.states !== undefined) out.states = uniqueStates(value.states, `${field}.states`);
  return out;
}

function uniqueStates(value: unknown, field: string): JobState[] {
  const help = `a non-empty array of job states (${JOB_STATES.join(", ")}); default ${PENDING_STATES.join(", ")}`;
  if (!Array.isArray(value) || value.length === 0) {
    throw new ValidationError("INVALID_OPTION", `${field} must be ${help}; got ${describeValue(value)}`, {
      field,
    });
  }
  const states: JobState[] = [];
  for (let index = 0; index < value.length; index++) {
    const state: unknown = value[index];
    if (!isJobState(state)) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}[${index}] is not a job state; ${field} must be ${help}; got ${describeValue(state)}`,
        { field: `${field}[${index}]` },
      );
    }
    if (!states.includes(state)) states.push(state);
  }
  return states;
}

function tags(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be an array of strings (at most ${LIMITS.maxTags}); got ${describeValue(value)}`,
      { field },
    );
  }
  if (value.length > LIMITS.maxTags) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} has ${value.length} tags; at most ${LIMITS.maxTags} are allowed: keep the ones you filter by`,
      { field },
    );
  }
  const out: string[] = [];
  for (let index = 0; index < value.length; index++) {
    const tag: unknown = value[index];
    if (typeof tag !== "string" || tag.length === 0 || tag.length > LIMITS.tagLength) {
      throw new ValidationError(
        "INVALID_OPTION",
        `${field}[${index}] must be a string of 1 to ${LIMITS.tagLength} characters; got ` +
          (typeof tag === "string"
            ? tag.length === 0
              ? "an empty string"
              : `${tag.length} characters`
            : describeValue(tag)),
        { field: `${field}[${index}]` },
      );
    }
    out.push(withoutNul(tag, `${field}[${index}]`));
  }
  return out;
}

/** Ids, keys and tags are stored as text; PostgreSQL's text cannot hold NUL, so no engine accepts it. */
function withoutNul(value: string, field: string): string {
  if (!value.includes("\u0000")) return value;
  throw new ValidationError(
    "INVALID_OPTION",
    `${field} must not contain NUL characters (\\u0000); got ${describeValue(value)}`,
    { field },
  );
}

function retention(value: unknown, field: string): Retention {
  if (value === true || value === false) return value;
  const help =
    "true (keep forever), false (delete at once), { ageMs } (keep for that many ms) or { count } (keep the " +
    "newest N per queue)";
  if (!isPlainObject(value)) {
    throw new ValidationError("INVALID_OPTION", `${field} must be ${help}; got ${describeValue(value)}`, {
      field,
    });
  }
  const keys = Object.keys(value).filter((key) => value[key] !== undefined);
  if (keys.length !== 1 || (keys[0] !== "ageMs" && keys[0] !== "count")) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be ${help}, with exactly one of ageMs or count; got keys ${keys.length ? keys.join(", ") : "(none)"}`,
      { field },
    );
  }
  if (keys[0] === "ageMs") {
    const ageMs = value.ageMs;
    if (typeof ageMs === "number" && Number.isFinite(ageMs) && ageMs >= 0) return { ageMs };
    throw new ValidationError(
      "INVALID_OPTION",
      `${field}.ageMs must be a finite number of milliseconds >= 0; got ${describeValue(ageMs)}`,
      { field: `${field}.ageMs` },
    );
  }
  const count = value.count;
  if (typeof count === "number" && Number.isInteger(count) && count >= 0) return { count };
  throw new ValidationError(
    "INVALID_OPTION",
    `${field}.count must be an integer >= 0 (completed jobs to keep per queue); got ${describeValue(count)}`,
    { field: `${field}.count` },
  );
}

/** The closest known key to a mistyped one, or null when nothing is close. */
function suggestKey(key: string, known: readonly string[]): string | null {
  const lower = key.toLowerCase();
  const alias = ALIASES[lower];
  if (alias !== undefined && known.includes(alias)) return alias;
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const candidateLower = candidate.toLowerCase();
    if (candidateLower === lower) return candidate;
    const distance = levenshtein(lower, candidateLower);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  if (best === null) return null;
  const threshold = Math.max(2, Math.floor(Math.max(key.length, best.length) / 3));
  if (bestDistance <= threshold) return best;
  // A known key that starts with what was typed ("delay" → "delayMs", "unique" → "uniqueKey").
  for (const candidate of known) {
    if (lower.length >= 3 && candidate.toLowerCase().startsWith(lower)) return candidate;
  }
  return null;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
