/** JSON output for `--json`: one pretty-printed document per command, newline terminated. */

/** Serialises `value` for `--json` (non-finite numbers become null, as in JSON.stringify). */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
