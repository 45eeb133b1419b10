/**
 * The default logger writes pino's lines (it replaces pino only to spare every worker pino's memory):
 * the same fields in the same order, the same `err` serialisation, the same levels.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { defaultLogger, type Logger } from "../../src/core/logger.js";
import { StoreUnavailableError } from "../../src/index.js";

/** Lines of `logger`, parsed, without `time` (which differs between two loggers). */
function capture(make: (write: (line: string) => void) => Logger): { logger: Logger; lines: unknown[] } {
  const lines: unknown[] = [];
  const logger = make((text) => {
    for (const line of text.split("\n")) {
      if (!line) continue;
      const { time, ...rest } = JSON.parse(line) as { time: number };
      expect(typeof time).toBe("number");
      lines.push(rest);
    }
  });
  return { logger, lines };
}

function viaPino(level: string) {
  return capture((write) => {
    const stream = new Writable({
      write(chunk, _encoding, done) {
        write(String(chunk));
        done();
      },
    });
    return pino({ name: "sluice", level }, stream);
  });
}

// One set of errors for both loggers: their stacks are part of the lines.
const cause = new Error("connection refused");
const error = new StoreUnavailableError("cannot reach the store", { cause });
const plain = new TypeError("plain");

function logAll(logger: Logger): void {
  logger.debug("debug line");
  logger.info({ queue: "q", n: 1, nested: { a: [1, 2] }, skipped: undefined, inf: Infinity }, "info line");
  const child = logger.child({ worker: "h/1/abc" }).child({ lane: 2 });
  child.warn({ err: error, jobId: "j1" }, "warn line");
  child.error(error);
  child.error({ err: plain });
  const circular: Record<string, unknown> = { name: "c" };
  circular.self = circular;
  logger.warn({ circular, big: 10n }, "odd values");
}

describe("default logger", () => {
  it("writes the lines pino writes, field for field and in order", () => {
    for (const level of ["debug", "warn", "silent"]) {
      const ours = capture((write) => defaultLogger(level, write));
      const theirs = viaPino(level);
      logAll(ours.logger);
      logAll(theirs.logger);
      // Circular and bigint values: pino writes "[Circular]" and the number; ours the same.
      expect(ours.lines).toEqual(theirs.lines);
      expect(ours.lines.map((l) => Object.keys(l as object))).toEqual(
        theirs.lines.map((l) => Object.keys(l as object)),
      );
      expect(ours.lines.length).toBe({ debug: 6, warn: 4, silent: 0 }[level]);
    }
  });

  it("refuses an unknown level as pino does", () => {
    expect(() => defaultLogger("loud")).toThrow("unknown level loud");
  });
});
