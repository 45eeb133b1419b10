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
      `--where: at column ${position + 1}: expected ${expected}, found ${found}\n  ${source}\n  ${" ".repeat(displayWidth(source.slice(0, position)))}^`,
    );
    this.column = position + 1;
  }
}

/**
 * Terminal columns `text` takes, so the caret lands under the spot: East Asian wide characters (Hangul,
 * CJK, fullwidth forms, emoji) take two, combining marks none, everything else one.
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (/\p{M}/u.test(ch)) continue;
    const wide =
      (cp >= 0x1100 && cp <= 0x115f) ||
      (cp >= 0x2e80 && cp <= 0xa4cf) ||
      (cp >= 0xac00 && cp <= 0xd7a3) ||
      (cp >= 0xf900 && cp <= 0xfaff) ||
      (cp >= 0xfe30 && cp <= 0xfe4f) ||
      (cp >= 0xff00 && cp <= 0xff60) ||
      (cp >= 0xffe0 && cp <= 0xffe6) ||
      (cp >= 0x1f300 && cp <= 0x1faff) ||
      (cp >= 0x20000 && cp <= 0x3fffd);
    width += wide ? 2 : 1;
  }
  return width;
}
