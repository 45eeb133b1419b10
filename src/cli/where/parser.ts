/**
 * Parser of the `--where` language (recursive descent, no eval):
 *
 * ```
 * expr       := orExpr
 * orExpr     := andExpr ( "or" andExpr )*
 * andExpr    := notExpr ( "and" notExpr )*
 * notExpr    := "not" notExpr | primary
 * primary    := "(" expr ")" | comparison
 * comparison := path op literal
 * path       := segment ( "." segment )*    segment: a name — letters of any script, digits, _ $ -
 *                                            (not starting with a digit or -; digits alone after a dot
 *                                            are an array index: items.0.size) — or a quoted name
 *                                            ('file size', "a.b") for any other characters
 * op         := "=" | "==" | "!=" | ">" | ">=" | "<" | "<="
 * literal    := number | 'string' | "string" | true | false | null
 * ```
 */
import type { Expr, Literal } from "./ast.js";
import { WhereSyntaxError } from "./errors.js";
import { type Token, tokenize } from "./lexer.js";

const VALUE = "a value (a number, a 'string', true, false or null)";

/** Parses a `--where` expression; throws WhereSyntaxError with position and expectation. */
export function parseWhere(source: string): Expr {
  const tokens = tokenize(source);
  let index = 0;
  const peek = (): Token => tokens[index] as Token;
  const next = (): Token => tokens[index++] as Token;
  const found = (t: Token) => (t.type === "end" ? "end of input" : `"${t.text}"`);
  const fail = (t: Token, expected: string): never => {
    throw new WhereSyntaxError(source, t.pos, expected, found(t));
  };
  const isKeyword = (t: Token, word: string) => t.type === "keyword" && t.value === word;

  const parseOr = (): Expr => {
    let left = parseAnd();
    while (isKeyword(peek(), "or")) {
      next();
      left = { kind: "or", left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): Expr => {
    let left = parseNot();
    while (isKeyword(peek(), "and")) {
      next();
      left = { kind: "and", left, right: parseNot() };
    }
    return left;
  };
  const parseNot = (): Expr => {
    if (isKeyword(peek(), "not")) {
      next();
      return { kind: "not", operand: parseNot() };
    }
    return parsePrimary();
  };
  const parsePrimary = (): Expr => {
    const t = next();
    if (t.type === "lparen") {
      const inner = parseOr();
      const close = next();
      if (close.type !== "rparen") fail(close, `')' to close the '(' at column ${t.pos + 1}, or and/or`);
      return inner;
    }
    // A quoted name alone ('file size' > 1) is lexed as a string: in a field's place it is that field.
    const path = t.type === "path" ? t.segments : t.type === "string" ? [t.value] : null;
    if (path === null) return fail(t, "a payload field (e.g. fileSizeMb or doc.size), 'not' or '('");
    const op = next();
    if (op.type !== "op") return fail(op, "a comparison operator (= != > >= < <=)");
    const value = parseLiteral(next());
    return { kind: "compare", path, op: op.value, value };
  };
  const parseLiteral = (t: Token): Literal => {
    if (t.type === "number" || t.type === "string") return t.value;
    if (t.type === "keyword" && (t.value === "true" || t.value === "false")) return t.value === "true";
    if (t.type === "keyword" && t.value === "null") return null;
    if (t.type === "path") {
      return fail(t, `${VALUE}; quote text values: '${t.text}'`);
    }
    return fail(t, VALUE);
  };

  if (peek().type === "end") fail(peek(), "an expression such as fileSizeMb >= 10");
  const expr = parseOr();
  const rest = peek();
  if (rest.type !== "end") fail(rest, "and, or, or the end of the expression");
  return expr;
}
