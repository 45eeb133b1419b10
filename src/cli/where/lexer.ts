/**
 * Tokens of the `--where` language: paths, numbers, strings, the keywords `and` `or` `not` `true`
 * `false` `null` (any case), comparison operators and parentheses. Never evaluates anything.
 *
 * Field names are letters of any script (`파일크기`, `café`), digits, `_`, `$` and `-`, not starting with a
 * digit or `-`; a name that has other characters (spaces, dots, quotes) is written quoted: `'file size'`,
 * `doc."a.b"`. A quoted name alone is lexed as a string; the parser takes a string in a field's place as
 * that one-segment field.
 */
import type { Operator } from "./ast.js";
import { WhereSyntaxError } from "./errors.js";

/** A token with its 0-based offset in the source. */
export type Token =
  | { type: "path"; segments: string[]; pos: number; text: string }
  | { type: "number"; value: number; pos: number; text: string }
  | { type: "string"; value: string; pos: number; text: string }
  | { type: "keyword"; value: "and" | "or" | "not" | "true" | "false" | "null"; pos: number; text: string }
  | { type: "op"; value: Operator; pos: number; text: string }
  | { type: "lparen" | "rparen" | "end"; pos: number; text: string };

const KEYWORDS = new Set(["and", "or", "not", "true", "false", "null"]);
const IDENT_START = /^[\p{L}\p{Nl}_$]$/u;
const IDENT_PART = /^[\p{L}\p{N}\p{M}_$-]$/u;

/** The whole character (code point) at `i`, or "" at the end. */
function charAt(source: string, i: number): string {
  const cp = source.codePointAt(i);
  return cp === undefined ? "" : String.fromCodePoint(cp);
}

/** Reads the quoted string starting at `start` (a `'` or `"`); returns its value and the index after it. */
function readString(source: string, start: number): { value: string; end: number } {
  const quote = source[start] as string;
  let value = "";
  let i = start + 1;
  for (;;) {
    if (i >= source.length) {
      throw new WhereSyntaxError(
        source,
        start,
        `a closing ${quote} for the string that starts here`,
        "end of input",
      );
    }
    const c = source[i] as string;
    if (c === "\\") {
      const next = source[i + 1];
      if (next === undefined) throw new WhereSyntaxError(source, i, "a character after \\", "end of input");
      value += next === "n" ? "\n" : next === "t" ? "\t" : next;
      i += 2;
      continue;
    }
    if (c === quote) return { value, end: i + 1 };
    value += c;
    i++;
  }
}

/** Reads a field name (identifier characters) from `i`; returns the index after it. */
function readName(source: string, i: number): number {
  let at = i;
  for (;;) {
    const ch = charAt(source, at);
    if (ch === "" || !IDENT_PART.test(ch)) return at;
    at += ch.length;
  }
}

const isQuote = (ch: string) => ch === "'" || ch === '"';
const NUMBER = /-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/y;

/** Splits `source` into tokens, ending with an `end` token. */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i] as string;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const start = i;
    if (ch === "(" || ch === ")") {
      tokens.push({ type: ch === "(" ? "lparen" : "rparen", pos: i, text: ch });
      i++;
      continue;
    }
    const two = source.slice(i, i + 2);
    if (two === ">=" || two === "<=" || two === "!=" || two === "==") {
      tokens.push({ type: "op", value: two === "==" ? "=" : two, pos: i, text: two });
      i += 2;
      continue;
    }
    if (ch === "=" || ch === ">" || ch === "<") {
      tokens.push({ type: "op", value: ch, pos: i, text: ch });
      i++;
      continue;
    }
    NUMBER.lastIndex = i;
    const number = /[-.\d]/.test(ch) ? NUMBER.exec(source) : null;
    if (number) {
      i = NUMBER.lastIndex;
      if (i < source.length && IDENT_PART.test(charAt(source, i))) {
        throw new WhereSyntaxError(source, start, "a number", `"${source.slice(start, i + 1)}"`);
      }
      tokens.push({ type: "number", value: Number(number[0]), pos: start, text: number[0] });
      continue;
    }
    const first = charAt(source, i);
    if (isQuote(ch) || IDENT_START.test(first)) {
      // A path: segments that are names or quoted strings, joined by dots.
      const segments: string[] = [];
      let quotedOnly = true;
      for (;;) {
        const here = charAt(source, i);
        if (isQuote(here)) {
          const str = readString(source, i);
          segments.push(str.value);
          i = str.end;
        } else {
          const end = readName(source, i);
          segments.push(source.slice(i, end));
          i = end;
          quotedOnly = false;
        }
        if (source[i] !== ".") break;
        const after = charAt(source, i + 1);
        if (after !== "" && (isQuote(after) || IDENT_PART.test(after))) {
          i++;
          quotedOnly = false;
          continue;
        }
        throw new WhereSyntaxError(source, i + 1, "a field name after '.'", describeAt(source, i + 1));
      }
      const text = source.slice(start, i);
      if (quotedOnly && segments.length === 1) {
        tokens.push({ type: "string", value: segments[0] as string, pos: start, text });
        continue;
      }
      const lower = text.toLowerCase();
      if (segments.length === 1 && KEYWORDS.has(lower)) {
        tokens.push({ type: "keyword", value: lower as "and", pos: start, text });
      } else {
        tokens.push({ type: "path", segments, pos: start, text });
      }
      continue;
    }
    throw new WhereSyntaxError(
      source,
      i,
      "a field, a value, an operator (= != > >= < <=), and, or, not, or a parenthesis",
      `"${first}"`,
    );
  }
  tokens.push({ type: "end", pos: source.length, text: "" });
  return tokens;
}

/** How the character at `pos` is named in messages. */
export function describeAt(source: string, pos: number): string {
  return pos >= source.length ? "end of input" : `"${source[pos]}"`;
}
