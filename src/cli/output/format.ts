/** Small formatters shared by the human outputs. */
import { formatDuration } from "../../index.js";

/** `3m 4s ago`-style age of an epoch-ms timestamp; `-` for null. */
export function ago(at: number | null, now = Date.now()): string {
  if (at === null) return "-";
  const ms = now - at;
  return ms < 0 ? `in ${formatDuration(-ms)}` : `${formatDuration(ms)} ago`;
}

/** A duration in ms for a table cell; `-` for null, `>1h` for the histogram's overflow bucket. */
export function durationCell(ms: number | null): string {
  if (ms === null) return "-";
  if (!Number.isFinite(ms)) return ">1h";
  return formatDuration(ms);
}

/** ISO-8601 time (UTC) of an epoch-ms timestamp, or `-`. */
export function isoTime(at: number | null): string {
  return at === null ? "-" : new Date(at).toISOString();
}

/** "1 job" / "3 jobs". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
