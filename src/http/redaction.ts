/**
 * Redaction of secret fields in job data (payload, result, progress, JSON log lines) before the HTTP API
 * answers with it. Pure functions, no I/O.
 *
 * A rule is a field name or a dotted path:
 * - a **name** without a dot (`password`, `apiKey`) masks that key at any depth;
 * - a **path** (`user.ssn`, `*.password`) masks the key at exactly that path from the root, `*` standing for
 *   any one key. Array items are looked through: `users.password` masks the password of every item of
 *   `users`.
 *
 * Keys are compared case-insensitively with `_` and `-` ignored, so `apiKey` also masks `api_key`,
 * `API-KEY` and `apikey`. A masked value, whatever its type, becomes the string `"***"`; nothing else of
 * the data changes, and the input is never modified (a copy is returned).
 */

/** What a masked value is replaced with. */
export const REDACTED = "***";

/**
 * Field names masked by default at any depth: the common names of credentials. Extend them with the
 * `redact` option of `createHttpApi`; turn them off with `redactDefaults: false`.
 */
export const DEFAULT_REDACTED_FIELDS: readonly string[] = [
  "password",
  "passwd",
  "pwd",
  "secret",
  "clientSecret",
  "token",
  "accessToken",
  "refreshToken",
  "idToken",
  "apiKey",
  "authorization",
  "cookie",
  "privateKey",
  "credentials",
];

/** Rules compiled once: names matched anywhere, paths matched from the root. */
export interface RedactionRules {
  readonly names: ReadonlySet<string>;
  readonly paths: readonly (readonly string[])[];
}

function normalise(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, "");
}

/**
 * Compiles `rules` (names and dotted paths, see the module comment), with the default names unless
 * `defaults` is false. Throws a TypeError for an empty rule or an empty path segment (`a..b`).
 */
export function compileRedaction(rules: readonly string[], defaults = true): RedactionRules {
  const names = new Set<string>();
  const paths: string[][] = [];
  for (const rule of [...(defaults ? DEFAULT_REDACTED_FIELDS : []), ...rules]) {
    if (typeof rule !== "string" || rule.trim() === "") {
      throw new TypeError(
        `redaction rule must be a field name or a dotted path, got ${JSON.stringify(rule)}`,
      );
    }
    const segments = rule.trim().split(".");
    if (segments.some((s) => s === "")) {
      throw new TypeError(`redaction rule "${rule}" has an empty segment`);
    }
    if (segments.length === 1) names.add(normalise(segments[0] ?? ""));
    else paths.push(segments.map((s) => (s === "*" ? s : normalise(s))));
  }
  return { names, paths };
}

/** A copy of `value` with every field the rules name replaced by {@link REDACTED}. */
export function redactFields(value: unknown, rules: RedactionRules): unknown {
  if (rules.names.size === 0 && rules.paths.length === 0) return value;
  return walk(value, [], rules);
}

function pathMatches(path: readonly string[], rules: RedactionRules): boolean {
  for (const rule of rules.paths) {
    if (rule.length !== path.length) continue;
    if (rule.every((segment, i) => segment === "*" || segment === path[i])) return true;
  }
  return false;
}

function walk(value: unknown, path: string[], rules: RedactionRules): unknown {
  if (Array.isArray(value)) return value.map((item) => walk(item, path, rules));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const name = normalise(key);
    const childPath = [...path, name];
    out[key] =
      rules.names.has(name) || pathMatches(childPath, rules) ? REDACTED : walk(child, childPath, rules);
  }
  return out;
}

/**
 * A log line's message with its secret fields masked when it is a JSON object or array (`ctx.log(
 * JSON.stringify({ ... }))`); any other text is returned as it is.
 */
export function redactLogMessage(message: string, rules: RedactionRules): string {
  const text = message.trim();
  if (!(text.startsWith("{") || text.startsWith("["))) return message;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return message;
  }
  return JSON.stringify(redactFields(parsed, rules));
}
