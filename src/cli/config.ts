/**
 * Where the CLI finds its store URL, and the worker config file.
 *
 * URL precedence: `--url`, then `SLUICE_URL`, then `url` in the first of `sluice.config.json`,
 * `sluice.config.yaml`, `sluice.config.yml`, `sluice.config.js` found in the working directory, then
 * `sqlite:./sluice.db` when that file already exists. Otherwise the command stops with a usage error
 * rather than create an empty database by accident.
 *
 * The worker config file (YAML or JSON) is validated before anything starts; every problem is reported
 * with its line, column and field.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { isInlineUrl } from "../client/inline.js";
import { validateMissed } from "../core/cron.js";
import { resolveEventRetention } from "../core/fleet-events.js";
import { type QueueLimits, validateQueueLimits } from "../core/limits.js";
import { validateJobOptions, validateTaskName } from "../core/options.js";
import type { HandlerSource, RegisteredTask, ResolvedSandbox } from "../core/task.js";
import {
  type EventRetentionOption,
  type JobOptions,
  parseDuration,
  type ScheduleDefinition,
  ValidationError,
  validateTiming,
  type WorkerOptions,
} from "../index.js";
import { validateSandbox } from "../runtime/sandbox/options.js";
import { QUEUE_NAME, UsageError } from "./errors.js";

/** Config file names searched in the working directory, in order. */
export const CONFIG_FILES = [
  "sluice.config.json",
  "sluice.config.yaml",
  "sluice.config.yml",
  "sluice.config.js",
] as const;

/** A resolved store URL and where it came from (for messages). */
export interface ResolvedUrl {
  url: string;
  source: string;
}

/**
 * Resolves the store URL; throws UsageError when none is configured, or when it selects inline mode (see
 * {@link refuseInlineUrl}).
 */
export async function resolveUrl(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Promise<ResolvedUrl> {
  return refuseInlineUrl(await findUrl(flag, env, cwd));
}

/**
 * The CLI works on a store other processes share; inline mode's store lives in the memory of the
 * application that enqueues (and dies with it), so no command could see it: refused with a UsageError.
 */
export function refuseInlineUrl(resolved: ResolvedUrl): ResolvedUrl {
  if (!isInlineUrl(resolved.url)) return resolved;
  throw new UsageError(
    `the store URL from ${resolved.source} is "${resolved.url}": inline mode keeps its jobs in the memory of ` +
      "the application process that enqueues them, so no command can reach them. Point the CLI at a shared " +
      "store (--url sqlite:./sluice.db, postgres://…, redis://…), or read inline jobs from the application " +
      "(sluice.admin)",
  );
}

async function findUrl(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Promise<ResolvedUrl> {
  if (flag !== undefined && flag !== "") return { url: flag, source: "--url" };
  const fromEnv = env.SLUICE_URL;
  if (fromEnv !== undefined && fromEnv !== "") return { url: fromEnv, source: "SLUICE_URL" };
  for (const name of CONFIG_FILES) {
    const path = resolve(cwd, name);
    if (!existsSync(path)) continue;
    const config = await loadProjectConfig(path);
    if (config.url !== undefined) return { url: config.url, source: name };
  }
  if (existsSync(resolve(cwd, "sluice.db"))) return { url: "sqlite:./sluice.db", source: "./sluice.db" };
  throw new UsageError(
    "no store URL: pass --url (e.g. --url sqlite:./sluice.db), set SLUICE_URL, or write " +
      '{ "url": "…" } to sluice.config.json in this directory',
  );
}

/** The contents of a `sluice.config.*` file. */
export interface ProjectConfig {
  url?: string;
  /** `http.tokens`: the HTTP API's tokens, `role:token,role:token` (as `SLUICE_HTTP_TOKENS`). */
  httpTokens?: string;
}

/** Reads a `sluice.config.{json,yaml,yml,js}` file. A `.js` file's default export is the config object. */
export async function loadProjectConfig(path: string): Promise<ProjectConfig> {
  let value: unknown;
  if (path.endsWith(".js")) {
    const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
    value = typeof mod.default === "function" ? await (mod.default as () => unknown)() : mod.default;
    if (value === null || typeof value !== "object") {
      throw new UsageError(`${path}: the default export must be an object such as { url: "redis://…" }`);
    }
  } else if (path.endsWith(".json")) {
    value = parseJsonConfig(path);
  } else {
    const { doc, lines } = parseFile(path, PROJECT_CONFIG);
    value = doc;
    const root = lines.root;
    if (!isMap(root)) {
      throw new ConfigFileError(
        path,
        [{ line: 1, column: 1, field: "", message: 'expected a mapping such as url: "redis://…"' }],
        PROJECT_CONFIG,
      );
    }
  }
  const url = (value as { url?: unknown }).url;
  if (url !== undefined && (typeof url !== "string" || url === "")) {
    throw new UsageError(`${path}: url must be a non-empty string such as "sqlite:./sluice.db"`);
  }
  const http = (value as { http?: unknown }).http;
  let httpTokens: string | undefined;
  if (http !== undefined) {
    const tokens = (http as { tokens?: unknown } | null)?.tokens;
    if (http === null || typeof http !== "object" || (tokens !== undefined && typeof tokens !== "string")) {
      throw new UsageError(
        `${path}: http must be an object such as { "tokens": "admin:<token>,read:<token>" }`,
      );
    }
    httpTokens = tokens;
  }
  return { ...(url === undefined ? {} : { url }), ...(httpTokens === undefined ? {} : { httpTokens }) };
}

/** `http.tokens` of the first `sluice.config.*` file in `cwd` that has one, with the file's name. */
export async function resolveHttpTokens(
  cwd: string = process.cwd(),
): Promise<{ tokens: string; source: string } | null> {
  for (const name of CONFIG_FILES) {
    const path = resolve(cwd, name);
    if (!existsSync(path)) continue;
    const config = await loadProjectConfig(path);
    if (config.httpTokens !== undefined) return { tokens: config.httpTokens, source: name };
  }
  return null;
}

// ── worker config file ───────────────────────────────────────────────────────────────────────────

/** A validated worker config file. */
export interface WorkerFileConfig {
  url?: string;
  /** Absolute path of the tasks module (relative paths are resolved against the config file). */
  tasks?: string;
  options: WorkerOptions;
  /** `schedules:`, in file order: declared by `sluice worker` at start (`sluice.schedule(name, definition)`). */
  schedules?: FileSchedule[];
  /**
   * `limits:` by queue, validated: applied by `sluice worker` at start with `sluice.limits(queue, limits)`
   * (fleet-wide, stored; the last worker started with a file wins). Health checks are code, not config:
   * they come from the tasks module's `health` export.
   */
  limits?: Record<string, QueueLimits>;
  /** `sandbox:`: which tasks run in a sandbox, by task name or by queue (see {@link applyFileSandboxes}). */
  sandbox?: FileSandboxes;
  /**
   * `events:`: how long the store keeps fleet-wide events (`SluiceOptions.events`): `{ maxEvents?,
   * retentionMs? }`, or false to write none. The worker's maintenance prunes by it.
   */
  events?: EventRetentionOption;
}

/** One schedule of a worker config file, validated, with where it is written (for errors found at start). */
export interface FileSchedule {
  name: string;
  definition: ScheduleDefinition;
  line: number;
  column: number;
}

/** One problem in a config file. */
export interface ConfigIssue {
  line: number;
  column: number;
  field: string;
  message: string;
}

/** What a `sluice.config.*` file is called in messages (it is not a worker config). */
const PROJECT_CONFIG = "CLI config file (where sluice reads the store URL)";

/**
 * A `sluice.config.json` is read as strict JSON (a YAML parser would accept a stray word as a key); a
 * syntax error is reported with its line and column.
 */
function parseJsonConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const lineColumn = /line (\d+) column (\d+)/.exec(message);
    let line = 1;
    let column = 1;
    if (lineColumn) {
      line = Number(lineColumn[1]);
      column = Number(lineColumn[2]);
    } else {
      const position = /position (\d+)/.exec(message);
      const offset = position ? Number(position[1]) : text.length;
      const before = text.slice(0, offset).split("\n");
      line = before.length;
      column = (before.at(-1)?.length ?? 0) + 1;
    }
    const reason = message.replace(/ in JSON at position \d+.*$/, "").replace(/^JSON\.parse: /, "");
    throw new ConfigFileError(path, [{ line, column, field: "", message: reason }], PROJECT_CONFIG);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigFileError(
      path,
      [{ line: 1, column: 1, field: "", message: 'expected an object such as { "url": "redis://…" }' }],
      PROJECT_CONFIG,
    );
  }
  return value;
}

/** Config file problems, all of them, each with line, column and field. Exit code 2. */
export class ConfigFileError extends UsageError {
  constructor(
    readonly path: string,
    readonly issues: readonly ConfigIssue[],
    /** What the file is: a worker config (`--config`) or the CLI's `sluice.config.*`. */
    readonly kind: string = "worker config",
  ) {
    super(
      `invalid ${kind} ${path}:\n${issues
        .map((i) => `  ${path}:${i.line}:${i.column}: ${i.field ? `${i.field}: ` : ""}${i.message}`)
        .join("\n")}`,
    );
  }
}

const WORKER_FIELDS: Record<string, string> = {
  url: "store URL",
  tasks: "tasks module path",
  concurrency: "positive integer",
  queues: "list of queue names, or [name, weight] pairs",
  shutdownGrace: "duration",
  shutdownGraceMs: "duration",
  lease: "duration",
  leaseMs: "duration",
  heartbeat: "duration",
  heartbeatMs: "duration",
  poll: "duration",
  pollMs: "duration",
  maintenance: "boolean",
  schedules: "mapping of schedule name → { task, cron | every, … }",
  limits: "mapping of queue → { concurrency, rate: { max, window }, keyConcurrency, keyRate }",
  sandbox: "{ tasks: { <task>: { kind, memoryMb?, … } }, queues: { <queue>: { … } } }",
  events: "{ maxEvents, retention } (fleet-wide event retention), or false",
};

/** Fields of one queue under `limits:`. */
const LIMIT_FIELDS = ["concurrency", "rate", "keyConcurrency", "keyRate"] as const;

/** Fields of one entry of `schedules:` and what each takes. */
const SCHEDULE_FIELDS: Record<string, string> = {
  task: "the task whose job each tick enqueues",
  cron: 'cron expression, e.g. "0 3 * * *"',
  every: 'interval, e.g. "15m"',
  timezone: 'IANA time zone of cron, e.g. "Asia/Seoul"',
  payload: "the payload of every job",
  missed: "once, all or skip",
  queue: "queue of the jobs (default: the task's)",
  priority: "priority of the jobs",
  attempts: "most attempts of each job",
  backoff: "delay between attempts",
  timeout: "duration",
  timeoutMs: "duration",
  tags: "list of tags",
  retention: "how long completed jobs are kept",
};

function parseFile(
  path: string,
  kind?: string,
): {
  doc: unknown;
  lines: { root: Node | null; counter: LineCounter };
} {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigFileError(
      path,
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        return { line: pos.line, column: pos.col, field: "", message: e.message.split("\n")[0] ?? e.message };
      }),
      kind,
    );
  }
  return { doc: doc.toJS() as unknown, lines: { root: (doc.contents as Node | null) ?? null, counter } };
}

/**
 * Reads and validates a worker config file (YAML or JSON). Reports every problem at once with line,
 * column and field; nothing starts until the file is valid.
 */
export function loadWorkerConfig(path: string): WorkerFileConfig {
  const absolute = resolve(path);
  const { doc, lines } = parseFile(absolute);
  const { root, counter } = lines;
  const issues: ConfigIssue[] = [];
  const at = (node: Node | null | undefined, field: string, message: string) => {
    const offset = node?.range?.[0] ?? 0;
    const pos = counter.linePos(offset);
    issues.push({ line: pos.line, column: pos.col, field, message });
  };
  const out: WorkerFileConfig = { options: {} };
  if (!isMap(root)) {
    at(root, "", "expected a mapping of settings (concurrency, queues, shutdownGrace, lease, …)");
    throw new ConfigFileError(absolute, issues);
  }
  const seen = new Set<string>();
  const nodes = new Map<string, Node | null>();
  for (const pair of root.items) {
    if (!isPair(pair)) continue;
    const keyNode = pair.key as Node | null;
    const valueNode = pair.value as Node | null;
    const key = isScalar(keyNode) ? String(keyNode.value) : "";
    if (!(key in WORKER_FIELDS)) {
      at(keyNode, key, `unknown field; expected one of ${Object.keys(WORKER_FIELDS).join(", ")}`);
      continue;
    }
    const canonical = key.endsWith("Ms") ? key.slice(0, -2) : key;
    if (seen.has(canonical)) {
      at(keyNode, key, `given twice (${canonical} and ${canonical}Ms mean the same)`);
      continue;
    }
    seen.add(canonical);
    nodes.set(canonical, valueNode);
    const scalar = isScalar(valueNode) ? valueNode.value : undefined;
    switch (canonical) {
      case "url":
      case "tasks":
        if (typeof scalar !== "string" || scalar === "") {
          at(valueNode ?? keyNode, key, `must be a non-empty string (${WORKER_FIELDS[key]})`);
        } else if (canonical === "url") {
          out.url = scalar;
        } else {
          out.tasks = isAbsolute(scalar) ? scalar : resolve(dirname(absolute), scalar);
        }
        break;
      case "concurrency":
        if (typeof scalar !== "number" || !Number.isInteger(scalar) || scalar < 1 || scalar > 10_000) {
          at(
            valueNode ?? keyNode,
            key,
            `must be a whole number from 1 to 10000, got ${show(scalar, valueNode)}`,
          );
        } else {
          out.options.concurrency = scalar;
        }
        break;
      case "maintenance":
        if (typeof scalar !== "boolean") at(valueNode ?? keyNode, key, "must be true or false");
        else out.options.maintenance = scalar;
        break;
      case "queues": {
        const queues = readQueues(valueNode, key, at);
        if (queues) out.options.queues = queues;
        break;
      }
      case "limits": {
        const limits = readLimits(valueNode, at);
        if (limits) out.limits = limits;
        break;
      }
      case "events": {
        const events = readEvents(valueNode, at);
        if (events !== undefined) out.events = events;
        break;
      }
      case "sandbox":
        out.sandbox = readSandboxes(valueNode, dirname(absolute), at);
        break;
      case "schedules":
        out.schedules = readSchedules(
          valueNode,
          (doc as { schedules?: unknown } | null)?.schedules,
          at,
          counter,
        );
        break;
      default: {
        if (typeof scalar !== "number" && typeof scalar !== "string") {
          at(valueNode ?? keyNode, key, 'must be a duration such as "30s", "2m" or a number of milliseconds');
          break;
        }
        try {
          const ms = parseDuration(scalar, key);
          if (canonical === "shutdownGrace") out.options.shutdownGraceMs = ms;
          if (canonical === "lease") out.options.leaseMs = ms;
          if (canonical === "heartbeat") out.options.heartbeatMs = ms;
          if (canonical === "poll") out.options.pollMs = ms;
          if (canonical !== "shutdownGrace" && ms < 1) at(valueNode, key, "must be at least 1ms");
        } catch (error) {
          at(valueNode, key, (error as Error).message.replace(`${key} must be`, "must be"));
        }
      }
    }
  }
  const { leaseMs, heartbeatMs } = out.options;
  if (leaseMs !== undefined && heartbeatMs !== undefined && heartbeatMs >= leaseMs) {
    at(
      nodes.get("heartbeat") ?? root,
      "heartbeat",
      `heartbeat (${heartbeatMs} ms) must be shorter than lease (${leaseMs} ms)`,
    );
  }
  if (issues.length > 0) throw new ConfigFileError(absolute, issues);
  return out;
}

function readQueues(
  node: Node | null,
  key: string,
  at: (node: Node | null | undefined, field: string, message: string) => void,
): WorkerOptions["queues"] | undefined {
  if (!isSeq(node) || node.items.length === 0) {
    at(node, key, "must be a non-empty list: [a, b] (strict order) or [[a, 5], [b, 3]] (weights)");
    return undefined;
  }
  const names: string[] = [];
  const pairs: [string, number][] = [];
  let weighted = false;
  let ok = true;
  node.items.forEach((item, i) => {
    const field = `${key}[${i}]`;
    const itemNode = item as Node;
    if (isScalar(itemNode)) {
      const name = itemNode.value;
      if (typeof name !== "string" || !QUEUE_NAME.test(name)) {
        at(itemNode, field, `must be a queue name (letters, digits, _ . : -), got ${show(name, itemNode)}`);
        ok = false;
        return;
      }
      names.push(name);
      pairs.push([name, 1]);
      return;
    }
    let nameNode: Node | null | undefined;
    let weightNode: Node | null | undefined;
    if (isSeq(itemNode) && itemNode.items.length === 2) {
      [nameNode, weightNode] = itemNode.items as [Node, Node];
    } else if (isMap(itemNode)) {
      nameNode = itemNode.get("name", true) as Node | undefined;
      weightNode = itemNode.get("weight", true) as Node | undefined;
    } else {
      at(itemNode, field, "must be a queue name, a [name, weight] pair or { name, weight }");
      ok = false;
      return;
    }
    const name = isScalar(nameNode) ? nameNode.value : undefined;
    const weight = isScalar(weightNode) ? weightNode.value : undefined;
    if (typeof name !== "string" || !QUEUE_NAME.test(name)) {
      at(nameNode ?? itemNode, `${field}.name`, `must be a queue name, got ${show(name, nameNode)}`);
      ok = false;
      return;
    }
    if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 1) {
      at(
        weightNode ?? itemNode,
        `${field}.weight`,
        `must be a positive whole number, got ${show(weight, weightNode)}`,
      );
      ok = false;
      return;
    }
    weighted = true;
    names.push(name);
    pairs.push([name, weight]);
  });
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) {
    at(node, key, `lists queue "${dup}" twice`);
    ok = false;
  }
  if (!ok) return undefined;
  return weighted ? pairs : names;
}

/**
 * Reads `limits:`: queue → { concurrency?, rate?: { max, window }, keyConcurrency?, keyRate?: { max, window } }.
 * A window is a duration ("1m", "500ms") or milliseconds; every value is then checked by the validator of
 * `sluice.limits()`, and each problem is reported at its field.
 */
function readLimits(
  node: Node | null,
  at: (node: Node | null | undefined, field: string, message: string) => void,
): Record<string, QueueLimits> | undefined {
  if (!isMap(node) || node.items.length === 0) {
    at(
      node,
      "limits",
      "must be a mapping of queue → { concurrency, rate: { max, window }, keyConcurrency, keyRate }",
    );
    return undefined;
  }
  const out: Record<string, QueueLimits> = {};
  let ok = true;
  for (const pair of node.items) {
    const queueNode = pair.key as Node | null;
    const entryNode = pair.value as Node | null;
    const queue = isScalar(queueNode) ? queueNode.value : undefined;
    if (typeof queue !== "string" || !QUEUE_NAME.test(queue)) {
      at(
        queueNode,
        "limits",
        `must be keyed by queue names (letters, digits, _ . : -), got ${show(queue, queueNode)}`,
      );
      ok = false;
      continue;
    }
    const base = `limits.${queue}`;
    if (!isMap(entryNode)) {
      at(
        entryNode ?? queueNode,
        base,
        "must be a mapping such as { concurrency: 5, rate: { max: 500, window: 1m } }",
      );
      ok = false;
      continue;
    }
    const input: Record<string, unknown> = {};
    const fieldNodes = new Map<string, Node | null>();
    let entryOk = true;
    for (const field of entryNode.items) {
      const keyNode = field.key as Node | null;
      const valueNode = field.value as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : "";
      fieldNodes.set(key, valueNode ?? keyNode);
      if (!(LIMIT_FIELDS as readonly string[]).includes(key)) {
        at(keyNode, `${base}.${key}`, `unknown field; expected one of ${LIMIT_FIELDS.join(", ")}`);
        entryOk = false;
        continue;
      }
      if (key === "rate" || key === "keyRate") {
        const rate = readRate(valueNode, `${base}.${key}`, at);
        if (rate === undefined) entryOk = false;
        else input[key] = rate;
      } else {
        input[key] = isScalar(valueNode) ? valueNode.value : isSeq(valueNode) || isMap(valueNode) ? [] : null;
      }
    }
    if (!entryOk) {
      ok = false;
      continue;
    }
    try {
      out[queue] = validateQueueLimits(input, base);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      const field = error.field ?? base;
      const key = field.slice(base.length + 1).split(".")[0] ?? "";
      const message = error.message.startsWith(`${field} `)
        ? error.message.slice(field.length + 1)
        : error.message;
      at(fieldNodes.get(key) ?? entryNode, field, message);
      ok = false;
    }
  }
  return ok ? out : undefined;
}

/** Fields of `events:`, and what each takes. */
const EVENT_FIELDS: Record<string, string> = {
  maxEvents: "most events kept (a positive whole number; default 100000)",
  retention: 'how long events are kept, a duration such as "24h" (default 24h)',
  retentionMs: "how long events are kept, in milliseconds",
};

/**
 * Reads `events:` — `{ maxEvents?, retention? | retentionMs? }` or `false` — into `SluiceOptions.events`.
 * Each problem is reported at its field; undefined after reporting.
 */
function readEvents(
  node: Node | null,
  at: (node: Node | null | undefined, field: string, message: string) => void,
): EventRetentionOption | undefined {
  if (isScalar(node) && node.value === false) return false;
  const shape =
    "must be a mapping such as { maxEvents: 100000, retention: 24h }, or false to write no events";
  if (!isMap(node) || node.items.length === 0) {
    at(node, "events", shape);
    return undefined;
  }
  const out: { maxEvents?: number; retentionMs?: number } = {};
  let ok = true;
  const seen = new Set<string>();
  for (const pair of node.items) {
    const keyNode = pair.key as Node | null;
    const valueNode = pair.value as Node | null;
    const key = isScalar(keyNode) ? String(keyNode.value) : "";
    const field = `events.${key}`;
    if (!(key in EVENT_FIELDS)) {
      at(keyNode, field, `unknown field; expected one of ${Object.keys(EVENT_FIELDS).join(", ")}`);
      ok = false;
      continue;
    }
    const canonical = key === "retentionMs" ? "retention" : key;
    if (seen.has(canonical)) {
      at(keyNode, field, "given twice (retention and retentionMs mean the same)");
      ok = false;
      continue;
    }
    seen.add(canonical);
    const value = isScalar(valueNode) ? valueNode.value : undefined;
    if (key === "maxEvents") {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
        at(
          valueNode ?? keyNode,
          field,
          `must be a positive whole number, got ${show(value, valueNode)}; use events: false to write no events`,
        );
        ok = false;
      } else out.maxEvents = value;
      continue;
    }
    if (typeof value !== "number" && typeof value !== "string") {
      at(valueNode ?? keyNode, field, 'must be a duration such as "24h", "7d" or a number of milliseconds');
      ok = false;
      continue;
    }
    try {
      const ms = parseDuration(value, field);
      if (ms < 1) throw new ValidationError("INVALID_CONFIG", `${field} must be at least 1ms`, { field });
      out.retentionMs = ms;
    } catch (error) {
      at(valueNode, field, (error as Error).message.replace(`${field} must be`, "must be"));
      ok = false;
    }
  }
  if (!ok) return undefined;
  // The same check as `new Sluice({ events })`, so the file cannot pass what the constructor refuses.
  try {
    resolveEventRetention(out);
  } catch (error) {
    at(node, (error as ValidationError).field ?? "events", (error as Error).message);
    return undefined;
  }
  return out;
}

/** Reads `{ max, window }` (window a duration or ms) into `{ max, windowMs }`; undefined after reporting. */
function readRate(
  node: Node | null,
  field: string,
  at: (node: Node | null | undefined, field: string, message: string) => void,
): { max: unknown; windowMs: number } | undefined {
  if (!isMap(node)) {
    at(node, field, 'must be { max, window }, e.g. { max: 500, window: "1m" }');
    return undefined;
  }
  let max: unknown;
  let windowMs: number | undefined;
  let ok = true;
  for (const item of node.items) {
    const keyNode = item.key as Node | null;
    const valueNode = item.value as Node | null;
    const key = isScalar(keyNode) ? String(keyNode.value) : "";
    const value = isScalar(valueNode) ? valueNode.value : undefined;
    if (key === "max") {
      max = value ?? null;
    } else if (key === "window" || key === "windowMs") {
      if (typeof value !== "number" && typeof value !== "string") {
        at(
          valueNode ?? keyNode,
          `${field}.${key}`,
          'must be a duration such as "1m", "10s" or a number of milliseconds',
        );
        ok = false;
        continue;
      }
      try {
        windowMs = parseDuration(value, `${field}.${key}`);
      } catch (error) {
        at(
          valueNode,
          `${field}.${key}`,
          (error as Error).message.replace(`${field}.${key} must be`, "must be"),
        );
        ok = false;
      }
    } else {
      at(keyNode, `${field}.${key}`, "unknown field; a rate is { max, window }");
      ok = false;
    }
  }
  if (ok && (max === undefined || windowMs === undefined)) {
    at(node, field, `needs both max and window, e.g. { max: 500, window: "1m" }`);
    ok = false;
  }
  return ok ? { max, windowMs: windowMs as number } : undefined;
}

/**
 * Reads `schedules:`: name → { task, cron | every, timezone?, payload?, missed?, queue?, priority?, … }.
 * Each problem is reported at its field; the timing and the job options are checked by the same
 * validators as `sluice.schedule()` (a bad cron, cron and every both given, an unknown field).
 */
function readSchedules(
  node: Node | null,
  value: unknown,
  at: (node: Node | null | undefined, field: string, message: string) => void,
  counter: LineCounter,
): FileSchedule[] {
  if (!isMap(node)) {
    at(node, "schedules", "must be a mapping of schedule name → { task, cron | every, … }");
    return [];
  }
  const out: FileSchedule[] = [];
  for (const pair of node.items) {
    const nameNode = pair.key as Node | null;
    const entryNode = pair.value as Node | null;
    const name = isScalar(nameNode) ? nameNode.value : undefined;
    const base = `schedules.${String(name)}`;
    try {
      validateTaskName(name, "name");
    } catch (error) {
      at(nameNode, base, (error as Error).message.replace(/^name must be a task name/, "must be a name"));
      continue;
    }
    if (!isMap(entryNode)) {
      at(
        entryNode ?? nameNode,
        base,
        'must be a mapping such as { task: nightly-report, cron: "0 3 * * *" }',
      );
      continue;
    }
    const entry = ((value as Record<string, unknown>)[name as string] ?? {}) as Record<string, unknown>;
    const fieldNodes = new Map<string, Node | null>();
    let ok = true;
    for (const field of entryNode.items) {
      const keyNode = field.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : "";
      if (!(key in SCHEDULE_FIELDS)) {
        at(
          keyNode,
          `${base}.${key}`,
          `unknown field; expected one of ${Object.keys(SCHEDULE_FIELDS).join(", ")}`,
        );
        ok = false;
        continue;
      }
      fieldNodes.set(key, (field.value as Node | null) ?? keyNode);
    }
    // A problem at `<base>.<key>` is shown at that field's value (or the entry when the field is missing).
    const report = (error: unknown) => {
      if (!(error instanceof ValidationError)) throw error;
      const field = error.field ?? base;
      const key = field.slice(base.length + 1).split(".")[0] ?? "";
      // The validators' messages start with the field, which the report already shows.
      const message = error.message.startsWith(`${field} `)
        ? error.message.slice(field.length + 1)
        : error.message.startsWith(`${base}: `)
          ? error.message.slice(base.length + 2)
          : error.message;
      at(fieldNodes.get(key) ?? nameNode, field, message);
      ok = false;
    };
    const task = entry.task;
    if (typeof task !== "string" || task === "") {
      at(
        fieldNodes.get("task") ?? nameNode,
        `${base}.task`,
        "must name the task whose job each tick enqueues",
      );
      ok = false;
    }
    if (entry.timeout !== undefined && entry.timeoutMs !== undefined) {
      at(
        fieldNodes.get("timeoutMs"),
        `${base}.timeoutMs`,
        "given twice (timeout and timeoutMs mean the same)",
      );
      ok = false;
    }
    try {
      validateTiming(entry, base);
    } catch (error) {
      report(error);
    }
    try {
      validateMissed(entry.missed, `${base}.missed`);
    } catch (error) {
      report(error);
    }
    const options: Record<string, unknown> = {};
    for (const key of ["queue", "priority", "attempts", "backoff", "tags", "retention"] as const) {
      if (entry[key] !== undefined) options[key] = entry[key];
    }
    const timeout = entry.timeout ?? entry.timeoutMs;
    if (timeout !== undefined) options.timeoutMs = timeout;
    for (const [key, option] of Object.entries(options)) {
      try {
        validateJobOptions({ [key]: option }, base);
      } catch (error) {
        if (key === "timeoutMs" && error instanceof ValidationError) {
          const given = entry.timeout !== undefined ? "timeout" : "timeoutMs";
          at(fieldNodes.get(given), `${base}.${given}`, error.message.replace(`${base}.timeoutMs `, ""));
          ok = false;
        } else report(error);
      }
    }
    if (!ok) continue;
    const definition: ScheduleDefinition = { task: task as string };
    if (entry.cron !== undefined) definition.cron = entry.cron as string;
    if (entry.every !== undefined) definition.every = entry.every as string | number;
    if (entry.timezone !== undefined) definition.timezone = entry.timezone as string;
    if (entry.payload !== undefined) definition.payload = entry.payload;
    if (entry.missed !== undefined) definition.missed = entry.missed as ScheduleDefinition["missed"];
    if (Object.keys(options).length > 0) definition.options = options as JobOptions;
    const pos = counter.linePos(nameNode?.range?.[0] ?? 0);
    out.push({ name: name as string, definition, line: pos.line, column: pos.col });
  }
  return out;
}

function show(value: unknown, node: Node | null | undefined): string {
  if (node === null || node === undefined) return "nothing";
  if (isSeq(node)) return "a list";
  if (isMap(node)) return "a mapping";
  return JSON.stringify(value) ?? String(value);
}

// ── sandbox: ─────────────────────────────────────────────────────────────────────────────────────

/** `sandbox:` of a worker config file: per task name, and per queue (a task's own entry wins). */
export interface FileSandboxes {
  tasks: Record<string, ResolvedSandbox>;
  queues: Record<string, ResolvedSandbox>;
}

/** Until applied, an entry without `module` runs the task's own run() from the tasks module. */
const FROM_TASKS_MODULE: HandlerSource = { tasksModule: "", task: "" };

/**
 * Reads `sandbox: { tasks: { name: entry }, queues: { name: entry } }`; an entry is { kind, memoryMb?,
 * recycleAfter?, module?, export? } checked by the same rules as the task option (`module` relative to the
 * config file). Without `module`, the sandbox loads the tasks module and runs the task's own `run`.
 */
function readSandboxes(
  node: Node | null,
  base: string,
  at: (node: Node | null | undefined, field: string, message: string) => void,
): FileSandboxes | undefined {
  const out: FileSandboxes = { tasks: {}, queues: {} };
  if (!isMap(node)) {
    at(
      node,
      "sandbox",
      "must be a mapping: { tasks: { <task>: { kind: process, memoryMb: 512 } }, queues: { … } }",
    );
    return undefined;
  }
  for (const pair of node.items) {
    const keyNode = pair.key as Node | null;
    const group = isScalar(keyNode) ? String(keyNode.value) : "";
    if (group !== "tasks" && group !== "queues") {
      at(keyNode, `sandbox.${group}`, "unknown field; expected tasks or queues");
      continue;
    }
    const entries = pair.value as Node | null;
    if (!isMap(entries)) {
      at(
        entries ?? keyNode,
        `sandbox.${group}`,
        `must be a mapping of ${group === "tasks" ? "task" : "queue"} name → { kind, memoryMb?, recycleAfter?, module?, export? }`,
      );
      continue;
    }
    for (const entry of entries.items) {
      const nameNode = entry.key as Node | null;
      const name = isScalar(nameNode) ? String(nameNode.value) : "";
      const field = `sandbox.${group}.${name}`;
      const valueNode = entry.value as Node | null;
      const value = isMap(valueNode) ? (valueNode.toJSON() as Record<string, unknown>) : valueNode?.toJSON();
      if (value && typeof value === "object" && typeof (value as { module?: unknown }).module === "string") {
        const module = (value as { module: string }).module;
        (value as { module: string }).module = isAbsolute(module) ? module : resolve(base, module);
      }
      try {
        out[group][name] = validateSandbox(value, field, FROM_TASKS_MODULE);
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        const key = error.field?.slice(field.length + 1) ?? "";
        const where =
          isMap(valueNode) && key ? ((valueNode.get(key, true) as Node | undefined) ?? valueNode) : valueNode;
        at(where ?? nameNode, error.field ?? field, error.message.replace(`${error.field} `, ""));
      }
    }
  }
  return out;
}

/**
 * Puts the config file's sandboxes on the tasks the tasks module defined (before the worker starts): a
 * task's entry, else its queue's. Throws UsageError for a task entry that names no defined task, or a task
 * with neither a run() nor a `module` to run.
 */
export function applyFileSandboxes(
  tasks: ReadonlyMap<string, RegisteredTask>,
  sandboxes: FileSandboxes,
  tasksModule: string,
  configPath: string,
): void {
  for (const name of Object.keys(sandboxes.tasks)) {
    if (!tasks.has(name)) {
      throw new UsageError(
        `${configPath}: sandbox.tasks.${name}: the tasks module defines no task "${name}"`,
      );
    }
  }
  for (const task of tasks.values()) {
    const entry = sandboxes.tasks[task.name] ?? sandboxes.queues[task.defaults.queue ?? "default"];
    if (!entry) continue;
    if (entry.source !== FROM_TASKS_MODULE) {
      task.sandbox = entry;
      continue;
    }
    if (typeof task.definition.run !== "function") {
      throw new UsageError(
        `${configPath}: sandbox for task "${task.name}": it has no run() to sandbox; give the entry a module`,
      );
    }
    task.sandbox = {
      ...entry,
      source: { tasksModule: pathToFileURL(resolve(tasksModule)).href, task: task.name },
    };
  }
}

/** Parses `--queues a,b` or `--queues a:5,b:3` (weights) into the worker's queue option. */
export function parseQueuesFlag(text: string): NonNullable<WorkerOptions["queues"]> {
  const parts = text
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 0) throw new UsageError("--queues needs at least one queue name: --queues a,b");
  const pairs: [string, number][] = [];
  let weighted = false;
  for (const part of parts) {
    const [name = "", weightText] = part.split(":") as [string, string | undefined];
    if (!QUEUE_NAME.test(name)) throw new UsageError(`--queues: "${name}" is not a valid queue name`);
    let weight = 1;
    if (weightText !== undefined) {
      weight = Number(weightText);
      if (!Number.isInteger(weight) || weight < 1) {
        throw new UsageError(
          `--queues: weight of "${name}" must be a positive whole number, got "${weightText}"`,
        );
      }
      weighted = true;
    }
    pairs.push([name, weight]);
  }
  return weighted ? pairs : pairs.map(([n]) => n);
}
