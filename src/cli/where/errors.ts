/** Syntax errors in a `--where` expression: position, what was expected, what was found. */
import { UsageError } from "../errors.js";

/** A `--where` syntax error (exit code 2). The message shows the expression with a caret under the spot. */
export class WhereSyntaxError extends UsageError {
  /** 1-based column of the problem. */
  readonly column: number;
  constructor(
    readonly source: string,
    /** 0-based offset of the problem. */
    readonly position: number,
    readonly expected: string,
    readonly found: string,
  ) {
    super(
      `--where: at column ${position + 1}: expected ${expected}, found ${found}\n  ${source}\n  ${" ".repeat(position)}^`,
    );
    this.column = position + 1;
  }
}
