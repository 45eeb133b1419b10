/**
 * Structured logging. Callers may pass their own pino logger (or anything with pino's `child` and level
 * methods). The default writes pino's JSON lines to stdout at `SLUICE_LOG_LEVEL` (default `warn`: a library
 * that only enqueues says nothing in the host application's output unless something is wrong; the CLI
 * passes its own pino logger at `info`).
 *
 * The default is not pino itself: loading pino (with its stream, thread-transport and serializer modules)
 * costs every worker process ~9 MiB of resident memory (bench:footprint), for the handful of warnings a
 * library writes. This logger writes the same line format, synchronously to fd 1 as pino's default
 * destination does, with pino's `err` serialisation (type, message and stack with causes, own fields).
 * Secrets never go into log fields: store URLs are redacted before logging and payloads are not logged.
 */
import { writeSync } from "node:fs";
import { hostname } from "node:os";

/** A log method: `(fields, message)` or `(message)`, as pino's. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** What Sluice calls on a logger: pino's `child` and level methods. Any pino logger is one. */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** pino's level numbers. */
const LEVELS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

/**
 * The default logger: pino's JSON lines at `SLUICE_LOG_LEVEL` (default `warn`) on stdout. `write` replaces
 * stdout (tests).
 */
export function defaultLogger(
  level: string = process.env.SLUICE_LOG_LEVEL || "warn",
  write: (line: string) => void = writeLine,
): Logger {
  const threshold = LEVELS[level];
  if (threshold === undefined) throw new Error(`unknown level ${level}`); // what pino says
  return new JsonLogger(
    threshold,
    `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"name":"sluice"`,
    write,
  );
}

const SILENT: Logger = {
  child: () => SILENT,
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** A logger that drops everything (tests, embedded use where the host logs). */
export function silentLogger(): Logger {
  return SILENT;
}

/** pino's line format: level, time, base fields and bindings, the call's fields, then `msg`. */
class JsonLogger implements Logger {
  constructor(
    private readonly threshold: number,
    /** `,"key":value…` of the base fields and every binding of this logger and its parents. */
    private readonly prefix: string,
    private readonly writeOut: (line: string) => void,
  ) {}

  child(bindings: Record<string, unknown>): Logger {
    return new JsonLogger(this.threshold, this.prefix + fields(bindings), this.writeOut);
  }

  debug(obj: object | string, msg?: string): void {
    if (this.threshold <= 20) this.write(20, obj, msg);
  }

  info(obj: object | string, msg?: string): void {
    if (this.threshold <= 30) this.write(30, obj, msg);
  }

  warn(obj: object | string, msg?: string): void {
    if (this.threshold <= 40) this.write(40, obj, msg);
  }

  error(obj: object | string, msg?: string): void {
    if (this.threshold <= 50) this.write(50, obj, msg);
  }

  private write(level: number, obj: object | string | null, msg: string | undefined): void {
    let message = msg;
    let rest = "";
    if (typeof obj === "string") message = obj;
    else if (obj instanceof Error) {
      rest = `,"err":${stringify(serializeError(obj))}`;
      message ??= obj.message;
    } else if (obj !== null && obj !== undefined) {
      rest = fields(obj as Record<string, unknown>);
      const err = (obj as { err?: { message?: unknown } }).err;
      if (message === undefined && typeof err?.message === "string") message = err.message;
    }
    const tail = message === undefined ? "" : `,"msg":${JSON.stringify(String(message))}`;
    this.writeOut(`{"level":${level},"time":${Date.now()}${this.prefix}${rest}${tail}}\n`);
  }
}

/** `,"key":value` for each own field, as pino writes them (`err` through the error serializer). */
function fields(obj: Record<string, unknown>): string {
  let out = "";
  for (const key of Object.keys(obj)) {
    let value = obj[key];
    if (value === undefined || typeof value === "function") continue;
    if (key === "err") value = serializeError(value);
    const text = typeof value === "number" && !Number.isFinite(value) ? "null" : stringify(value);
    if (text !== undefined) out += `,${JSON.stringify(key)}:${text}`;
  }
  return out;
}

/**
 * JSON of any value: circular references (`"[Circular]"`) and bigints (a number, as pino writes them) do not
 * throw: a log line must never throw.
 */
function stringify(value: unknown): string | undefined {
  if (typeof value === "bigint") return value.toString();
  try {
    return JSON.stringify(value);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === "bigint") return Number(v);
      if (v !== null && typeof v === "object") {
        if (seen.has(v)) return "[Circular]";
        seen.add(v);
      }
      return v;
    });
  }
}

type ErrorLike = { message: string; stack?: string; cause?: unknown; errors?: unknown };

function isErrorLike(value: unknown): value is ErrorLike {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

function causeOf(error: ErrorLike): ErrorLike | undefined {
  const cause = typeof error.cause === "function" ? (error.cause as () => unknown)() : error.cause;
  return isErrorLike(cause) ? cause : undefined;
}

/**
 * pino's `err` serializer (pino-std-serializers): `type` (the constructor's name), `message` and `stack`
 * with their causes appended, `aggregateErrors`, then the error's own enumerable fields (nested errors
 * serialised the same way, `cause` left out: it is in the message and stack).
 */
function serializeError(value: unknown, seen: Set<object> = new Set()): unknown {
  if (!isErrorLike(value)) return value;
  seen.add(value);
  const made = (value as { constructor?: unknown }).constructor;
  const out: Record<string, unknown> = {
    type: typeof made === "function" ? made.name : (value as { name?: unknown }).name,
    message: messageWithCauses(value),
    stack: stackWithCauses(value),
  };
  if (Array.isArray(value.errors)) {
    out.aggregateErrors = value.errors.map((e: unknown) => serializeError(e, seen));
  }
  for (const key in value) {
    if (out[key] !== undefined) continue;
    const field = (value as unknown as Record<string, unknown>)[key];
    if (isErrorLike(field)) {
      if (key !== "cause" && !seen.has(field)) out[key] = serializeError(field, seen);
    } else out[key] = field;
  }
  return out;
}

function messageWithCauses(error: ErrorLike, seen = new Set<ErrorLike>(), skip = false): string {
  const message = skip ? "" : error.message || "";
  if (seen.has(error)) return `${message}: ...`;
  const cause = causeOf(error);
  if (!cause) return message;
  seen.add(error);
  const vErrorStyle = typeof error.cause === "function";
  return message + (vErrorStyle ? "" : ": ") + messageWithCauses(cause, seen, vErrorStyle);
}

function stackWithCauses(error: ErrorLike, seen = new Set<ErrorLike>()): string {
  const stack = error.stack || "";
  if (seen.has(error)) return `${stack}\ncauses have become circular...`;
  const cause = causeOf(error);
  if (!cause) return stack;
  seen.add(error);
  return `${stack}\ncaused by: ${stackWithCauses(cause, seen)}`;
}

/**
 * Writes a line to fd 1 synchronously, as pino's default destination does (lines are not lost when the
 * process exits right after): a full pipe (EAGAIN) is retried after a short wait.
 */
function writeLine(line: string): void {
  let buffer = Buffer.from(line);
  for (let attempt = 0; buffer.length > 0; attempt++) {
    try {
      const written = writeSync(1, buffer);
      buffer = buffer.subarray(written);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN" || attempt > 1_000) return; // never throw from a log call
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
