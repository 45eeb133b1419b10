/**
 * Colour for human output: on when the stream is a TTY, off when piped. `NO_COLOR` (any value) turns it
 * off, `FORCE_COLOR` (anything but `0`) turns it on, following the common conventions.
 */

/** A stream that may be a terminal. */
export interface MaybeTty {
  isTTY?: boolean;
}

/** Whether colour should be written to `stream`. */
export function colourEnabled(stream: MaybeTty, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return true;
  return stream.isTTY === true;
}

/** Paint functions; identity when colour is off. */
export interface Palette {
  red(text: string): string;
  yellow(text: string): string;
  green(text: string): string;
  cyan(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const wrap = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;

/** The palette for a stream (or forced on/off). */
export function palette(enabled: boolean): Palette {
  if (!enabled) {
    const same = (text: string) => text;
    return { red: same, yellow: same, green: same, cyan: same, dim: same, bold: same };
  }
  return {
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    green: wrap(32, 39),
    cyan: wrap(36, 39),
    dim: wrap(2, 22),
    bold: wrap(1, 22),
  };
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

/** Visible width of a string that may contain colour codes. */
export function visibleLength(text: string): number {
  return text.replace(ANSI, "").length;
}
