/**
 * Durations: parsing what callers write (`30s`, `1h30m`, `250`) into milliseconds, and formatting
 * milliseconds for people (`1.2s`, `3m 4s`). Pure, no I/O.
 */
import { ValidationError } from "./errors.js";

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** One `<number><unit>` component, e.g. `1.5h`. Units are lower case. */
const COMPONENT = /(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*/y;
const PLAIN_DIGITS = /^\d+$/;

const DURATION_HELP =
  'milliseconds as a number >= 0, or a string such as "250ms", "30s", "5m", "2h", "7d" or "1h30m" ' +
  "(units ms, s, m, h, d; digits alone mean milliseconds)";

/**
 * Parses a duration into milliseconds.
 *
 * - A number is taken as milliseconds and must be finite and `>= 0`.
 * - A string is either digits alone (milliseconds, `"1500"`) or one or more `<number><unit>` components
 *   with units `ms`, `s`, `m`, `h`, `d` (lower case), optionally separated by spaces: `"250ms"`, `"1.5s"`,
 *   `"1h30m"`, `"2d 4h"`. String results are rounded to whole milliseconds.
 *
 * Results above `Number.MAX_SAFE_INTEGER` are rejected too (they are always a mistake and break arithmetic).
 *
 * @param input the duration as given by the caller
 * @param field dotted name of the option, used in the error (`options.delayMs`)
 * @returns the duration in milliseconds
 * @throws ValidationError `INVALID_OPTION` with `field` set, when the input is not a valid duration
 */
export function parseDuration(input: string | number, field: string): number {
  if (typeof input === "number") {
    if (Number.isFinite(input) && input >= 0 && input <= Number.MAX_SAFE_INTEGER) return input;
    throw invalidDuration(input, field);
  }
  if (typeof input !== "string") throw invalidDuration(input, field);
  const text = input.trim();
  if (text === "") throw invalidDuration(input, field);
  if (PLAIN_DIGITS.test(text)) {
    const ms = Number(text);
    if (ms <= Number.MAX_SAFE_INTEGER) return ms;
    throw invalidDuration(input, field);
  }
  let total = 0;
  let index = 0;
  while (index < text.length) {
    COMPONENT.lastIndex = index;
    const match = COMPONENT.exec(text);
    if (!match) throw invalidDuration(input, field);
    const amount = Number(match[1]);
    const unit = UNIT_MS[match[2] ?? ""];
    if (unit === undefined) throw invalidDuration(input, field);
    total += amount * unit;
    index = COMPONENT.lastIndex;
  }
  const ms = Math.round(total);
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) throw invalidDuration(input, field);
  return ms;
}

function invalidDuration(input: unknown, field: string): ValidationError {
  return new ValidationError(
    "INVALID_OPTION",
    `${field} must be a duration: ${DURATION_HELP}; got ${describeValue(input)}`,
    { field },
  );
}

/**
 * Formats milliseconds as a short human string: `850ms`, `1.2s`, `45s`, `3m 4s`, `2h 5m`, `3d 4h`.
 * Values are rounded to the shown precision; negative values get a leading `-`; non-finite values are
 * returned as `String(ms)`.
 *
 * @param ms the duration in milliseconds
 * @returns the formatted duration
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  const whole = Math.round(ms);
  if (whole < 1_000) return `${whole}ms`;
  if (whole < 60_000) {
    const tenths = Math.round(whole / 100);
    if (tenths < 600) return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)}s`;
  }
  if (whole < 3_600_000) {
    const seconds = Math.round(whole / 1_000);
    if (seconds < 3_600) return pair(Math.floor(seconds / 60), "m", seconds % 60, "s");
  }
  if (whole < 86_400_000) {
    const minutes = Math.round(whole / 60_000);
    if (minutes < 1_440) return pair(Math.floor(minutes / 60), "h", minutes % 60, "m");
  }
  const hours = Math.round(whole / 3_600_000);
  return pair(Math.floor(hours / 24), "d", hours % 24, "h");
}

function pair(major: number, majorUnit: string, minor: number, minorUnit: string): string {
  return minor === 0 ? `${major}${majorUnit}` : `${major}${majorUnit} ${minor}${minorUnit}`;
}

/**
 * Describes a value for an error message without dumping it: strings are quoted and cut at 60
 * characters, objects are named by kind (`an array`, `a Date`, `an object`).
 *
 * @internal shared by the core validators; not part of the public API
 * @param value any value
 * @returns a short description such as `"abc"`, `-1`, `NaN`, `undefined`, `a function`, `a Map`
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case "string": {
      const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
      return JSON.stringify(shown);
    }
    case "number":
    case "boolean":
      return String(value);
    case "bigint":
      return `${value}n`;
    case "undefined":
      return "undefined";
    case "symbol":
      return "a symbol";
    case "function":
      return "a function";
    default:
      break;
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return "an object";
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name === "string" && name !== "") return /^[AEIOU]/.test(name) ? `an ${name}` : `a ${name}`;
  return "an object";
}
