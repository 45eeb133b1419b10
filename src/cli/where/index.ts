/** The `--where` payload filter: a small, safe expression language (parsed, never eval'd). */
export type { Expr, Literal, Operator } from "./ast.js";
export { WhereSyntaxError } from "./errors.js";
export { evaluateWhere, valueAt } from "./evaluate.js";
export { parseWhere } from "./parser.js";
