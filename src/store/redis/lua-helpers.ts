/**
 * Only the helpers a script uses. The scripts share a prelude of helpers (lua.ts PRELUDE, EVENTS, FLOW),
 * and Redis runs a script's whole chunk on every call: each `local function` is a closure allocated and each
 * `local` evaluated again, used or not. Measured on the enqueue script (Redis 7.0, one job per call, about
 * 33 µs in all): the chunk up to its body cost 9.0 µs with every helper, 7.4 µs with the ones it uses. So
 * each script is built with the helpers its body needs, directly or through other helpers, and nothing else.
 *
 * The helper source is split into top-level definitions: a definition starts at a line beginning with
 * `local ` in column 0 (the comment lines right above it go with it) and runs to the next one, so a
 * column-0 statement that adjusts a local (`if CLUSTER then FG = qp end`) stays with the local it
 * adjusts. A definition is kept when a name it declares appears as a word in the body or in a kept
 * definition. Lua resolves a local only after its declaration, so a definition can only use those above
 * it: one pass from the last definition to the first finds every dependency. A false match (a name in a
 * comment or a string) only keeps a helper that was not needed; a missed one cannot happen for a name
 * the script spells out, and a helper reached any other way (a computed global) does not exist here.
 */

export interface Definition {
  /** The locals it declares. */
  names: string[];
  code: string;
  /** Every word of its code: the names it may use. */
  uses: Set<string>;
}

const LOCAL_FUNCTION = /^local function ([A-Za-z_][A-Za-z0-9_]*)/;
const LOCAL_NAMES = /^local ([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*=/;
const WORD = /[A-Za-z_][A-Za-z0-9_]*/g;

/** The top-level definitions of helper source, in order. */
export function splitDefinitions(source: string): Definition[] {
  const definitions: Definition[] = [];
  let pending: string[] = []; // comment (and blank) lines waiting for the definition below them
  let current: string[] | undefined;
  const close = () => {
    if (!current) return;
    const head = current.find((line) => line.startsWith("local ")) ?? "";
    const fn = LOCAL_FUNCTION.exec(head);
    const vars = LOCAL_NAMES.exec(head);
    const names = fn ? [fn[1]!] : vars ? vars[1]!.split(",").map((name) => name.trim()) : [];
    if (names.length === 0) throw new Error(`lua helpers: cannot tell what this declares: ${head}`);
    const code = current.join("\n");
    definitions.push({ names, code, uses: words(code) });
    current = undefined;
  };
  for (const line of source.split("\n")) {
    if (line.startsWith("local ")) {
      close();
      current = [...pending, line];
      pending = [];
    } else if (line.startsWith("--") || line.trim() === "") {
      pending.push(line);
    } else if (current) {
      current.push(...pending, line);
      pending = [];
    } else {
      throw new Error(`lua helpers: a statement outside any definition: ${line}`);
    }
  }
  close();
  return definitions;
}

function words(text: string): Set<string> {
  return new Set(text.match(WORD) ?? []);
}

/**
 * `helpers` cut down to the definitions `body` needs (and those named in `keep`), in their order, followed
 * by `body`.
 */
export function withHelpers(
  helpers: readonly Definition[],
  body: string,
  keep: readonly string[] = [],
): string {
  const needed = words(body);
  for (const name of keep) needed.add(name);
  const kept: string[] = [];
  for (let i = helpers.length - 1; i >= 0; i--) {
    const definition = helpers[i]!;
    if (!definition.names.some((name) => needed.has(name))) continue;
    kept.push(definition.code);
    for (const word of definition.uses) needed.add(word);
  }
  return `${kept.reverse().join("\n")}\n${body}`;
}
