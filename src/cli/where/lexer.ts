/**
 * Tokens of the `--where` language: paths, numbers, strings, the keywords `and` `or` `not` `true`
 * `false` `null` (any case), comparison operators and parentheses. Never evaluates anything.
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
const IDENT_START = /[A-Za-z_$]/;
const IDENT_PART = /[A-Za-z0-9_$-]/;
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
    if (ch === "'" || ch === '"') {
      let value = "";
      i++;
      for (;;) {
        if (i >= source.length) {
          throw new WhereSyntaxError(
            source,
            start,
            `a closing ${ch} for the string that starts here`,
            "end of input",
          );
        }
        const c = source[i] as string;
        if (c === "\\") {
          const next = source[i + 1];
          if (next === undefined) {
            throw new WhereSyntaxError(source, i, "a character after \\", "end of input");
          }
          value += next === "n" ? "\n" : next === "t" ? "\t" : next;
          i += 2;
          continue;
        }
        if (c === ch) {
          i++;
          break;
        }
        value += c;
        i++;
      }
      tokens.push({ type: "string", value, pos: start, text: source.slice(start, i) });
      continue;
    }
    NUMBER.lastIndex = i;
    const number = /[-.\d]/.test(ch) ? NUMBER.exec(source) : null;
    if (number) {
      i = NUMBER.lastIndex;
      if (i < source.length && IDENT_PART.test(source[i] as string)) {
        throw new WhereSyntaxError(source, start, "a number", `"${source.slice(start, i + 1)}"`);
      }
      tokens.push({ type: "number", value: Number(number[0]), pos: start, text: number[0] });
      continue;
    }
    if (IDENT_START.test(ch)) {
      const segments: string[] = [];
      for (;;) {
        const segStart = i;
        while (i < source.length && IDENT_PART.test(source[i] as string)) i++;
        segments.push(source.slice(segStart, i));
        if (source[i] === "." && i + 1 < source.length && /[A-Za-z0-9_$]/.test(source[i + 1] as string)) {
          i++;
          continue;
        }
        if (source[i] === ".") {
          throw new WhereSyntaxError(source, i + 1, "a field name after '.'", describeAt(source, i + 1));
        }
        break;
      }
      const text = source.slice(start, i);
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
      `"${ch}"`,
    );
  }
  tokens.push({ type: "end", pos: source.length, text: "" });
  return tokens;
}

/** How the character at `pos` is named in messages. */
export function describeAt(source: string, pos: number): string {
  return pos >= source.length ? "end of input" : `"${source[pos]}"`;
}
