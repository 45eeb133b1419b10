/**
 * Evaluates a `--where` expression against a job's payload. Semantics:
 * - a path walks objects by key and arrays by index; a missing field is `undefined`;
 * - `=` / `!=` compare type and value strictly (`10` ≠ `"10"`); `field = null` also matches a missing field;
 * - `>` `>=` `<` `<=` hold only between two numbers or two strings (string order is by code unit);
 *   anything else (missing field, mixed types) is false;
 * - `not` negates, so `not (size > 10)` matches jobs without `size`.
 */
import type { Expr, Literal } from "./ast.js";

/** Value at a dotted path of `root`, or undefined. Own properties only. */
export function valueAt(root: unknown, path: readonly string[]): unknown {
  let current: unknown = root;
  for (const segment of path) {
    if (current === null || typeof current !== "object") return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function compare(actual: unknown, op: Expr & { kind: "compare" }): boolean {
  const expected: Literal = op.value;
  switch (op.op) {
    case "=":
      return expected === null ? actual === null || actual === undefined : actual === expected;
    case "!=":
      return expected === null ? actual !== null && actual !== undefined : actual !== expected;
    default: {
      const comparable =
        (typeof actual === "number" && typeof expected === "number") ||
        (typeof actual === "string" && typeof expected === "string");
      if (!comparable) return false;
      const a = actual as number | string;
      const b = expected as number | string;
      if (op.op === ">") return a > b;
      if (op.op === ">=") return a >= b;
      if (op.op === "<") return a < b;
      return a <= b;
    }
  }
}

/** True when `payload` satisfies `expr`. */
export function evaluateWhere(expr: Expr, payload: unknown): boolean {
  switch (expr.kind) {
    case "compare":
      return compare(valueAt(payload, expr.path), expr);
    case "and":
      return evaluateWhere(expr.left, payload) && evaluateWhere(expr.right, payload);
    case "or":
      return evaluateWhere(expr.left, payload) || evaluateWhere(expr.right, payload);
    case "not":
      return !evaluateWhere(expr.operand, payload);
  }
}
