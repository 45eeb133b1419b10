/**
 * Progress of bulk operations, on stderr. A redrawn bar when stderr is a TTY; nothing when piped, unless
 * `SLUICE_PROGRESS=plain` asks for one plain line per batch (for CI logs).
 */

/** Receives the running count after each batch. */
export interface Progress {
  update(done: number): void;
  /** Clears the bar (a finished line is left to the caller's summary). */
  finish(): void;
}

interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

/** A progress reporter for `label` over `total` items (null when unknown). */
export function progressBar(
  label: string,
  total: number | null,
  stream: ProgressStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): Progress {
  const mode = env.SLUICE_PROGRESS === "plain" ? "plain" : stream.isTTY ? "bar" : "none";
  if (mode === "none") return { update() {}, finish() {} };
  if (mode === "plain") {
    return {
      update(done) {
        stream.write(`${label}: ${done}${total === null ? "" : `/${total}`}\n`);
      },
      finish() {},
    };
  }
  let drawn = false;
  let last = 0;
  return {
    update(done) {
      const now = Date.now();
      if (drawn && now - last < 50 && done !== total) return;
      last = now;
      drawn = true;
      const width = 30;
      const ratio = total ? Math.min(done / total, 1) : 0;
      const filled = Math.round(ratio * width);
      const bar = total ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
      const counts = total ? `${done}/${total} (${Math.round(ratio * 100)}%)` : String(done);
      stream.write(`\r\u001b[2K${label} ${bar}${counts}`);
    },
    finish() {
      if (drawn) stream.write("\r\u001b[2K");
    },
  };
}
