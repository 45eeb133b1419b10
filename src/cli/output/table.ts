/** Aligned text tables for human output. Numbers (and columns marked `right`) are right-aligned. */
import { visibleLength } from "./colour.js";

/** One column of a table. */
export interface Column<R> {
  header: string;
  /** The cell text (may contain colour codes). */
  value: (row: R) => string;
  align?: "left" | "right";
}

/**
 * Renders rows as an aligned table with a header line; returns the text with a trailing newline, or
 * `empty` (plus newline) when there are no rows.
 */
export function renderTable<R>(columns: readonly Column<R>[], rows: readonly R[], empty = "(none)"): string {
  if (rows.length === 0) return `${empty}\n`;
  const cells = rows.map((row) => columns.map((c) => c.value(row)));
  const widths = columns.map((c, i) =>
    Math.max(visibleLength(c.header), ...cells.map((r) => visibleLength(r[i] ?? ""))),
  );
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => {
        const pad = " ".repeat(Math.max((widths[i] ?? 0) - visibleLength(v), 0));
        const last = i === values.length - 1;
        if (columns[i]?.align === "right") return pad + v;
        return last ? v : v + pad;
      })
      .join("  ")
      .trimEnd();
  return `${[line(columns.map((c) => c.header.toUpperCase())), ...cells.map(line)].join("\n")}\n`;
}
