/** The syntax tree of a `--where` expression. */

/** A literal on the right of a comparison. */
export type Literal = number | string | boolean | null;

/** Comparison operators (`==` is accepted as `=`). */
export type Operator = "=" | "!=" | ">" | ">=" | "<" | "<=";

/** A `--where` expression. */
export type Expr =
  | { kind: "compare"; path: readonly string[]; op: Operator; value: Literal }
  | { kind: "and"; left: Expr; right: Expr }
  | { kind: "or"; left: Expr; right: Expr }
  | { kind: "not"; operand: Expr };
