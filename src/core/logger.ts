/**
 * Structured logging through pino. Callers may pass their own pino logger; the default writes JSON
 * lines to stdout at `SLUICE_LOG_LEVEL` (default `warn`: a library that only enqueues says nothing in
 * the host application's output unless something is wrong; the CLI passes its own logger at `info`).
 * Secrets never go into log fields: store URLs are redacted before logging and payloads are not logged.
 */
import { pino } from "pino";

export type Logger = pino.Logger;

export function defaultLogger(): Logger {
  return pino({ name: "sluice", level: process.env.SLUICE_LOG_LEVEL || "warn" });
}

/** A logger that drops everything (tests, embedded use where the host logs). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
