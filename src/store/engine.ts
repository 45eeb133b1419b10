/**
 * An engine descriptor: what the rest of Sluice needs to know about one engine, in one object. Each engine
 * folder exports its descriptor from `engine.ts`; `ENGINES` in ./index.ts lists them, and engine
 * selection (createStore, engineOf), the doctor's store targets, the benchmarks and the test harnesses
 * read that list instead of comparing engine names. A new engine is a folder, an entry in `ENGINES` and a
 * test harness (test/support/engines/).
 *
 * Importing a descriptor loads no driver: `create` imports the store module (and its driver) on first use.
 */

import type { EventRetention } from "../core/fleet-events.js";
import type { Logger } from "../core/logger.js";
import type { Store, StoreTraits } from "./contract.js";

/**
 * Where the store is, for the commands the doctor suggests — never with its password (only whether there
 * is one, so a command can ask for it).
 */
export type StoreTarget =
  | { engine: "sqlite"; path: string; memory: boolean }
  | {
      engine: "postgres";
      host: string;
      port: number;
      user: string | null;
      database: string | null;
      hasPassword: boolean;
    }
  | {
      engine: "redis";
      host: string;
      port: number;
      db: number;
      user: string | null;
      tls: boolean;
      hasPassword: boolean;
    }
  | { engine: "unknown" };

/** Options every engine accepts. */
export interface StoreOptions {
  logger: Logger;
  /** Fleet-wide events: whether transitions write them, and how many Redis keeps (per write). Default: DEFAULT_EVENT_RETENTION. */
  events?: EventRetention;
}

export interface EngineDescriptor<Name extends string = string, Config = unknown> {
  /** `Store.engine` and `StoreInfo.engine` of its stores; what logs and `sluice doctor` call it. */
  readonly name: Name;
  /** The URL shown when a URL names no engine (`sqlite:./sluice.db`, `postgres://…`). */
  readonly urlExample: string;
  /** True when `url` selects this engine (by its scheme). */
  matches(url: string): boolean;
  /** The engine's settings from `url`; throws INVALID_CONFIG for a bad option. */
  parseUrl(url: string): Config;
  /** Where the store is, for the commands `sluice doctor` suggests: never with the password. */
  doctorTarget(url: string): StoreTarget;
  /** Creates (but does not open) a store for `url`, loading the engine's driver on first use. */
  create(url: string, options: StoreOptions): Promise<Store>;
  /** What the runtime may assume about the engine; its store class exposes this same object. */
  readonly traits: StoreTraits;
}

/** The parts of a server URL (`scheme://user:password@host:port/…`) that doctor targets share. */
export interface ServerUrl {
  parsed: URL;
  /** Without IPv6 brackets; `localhost` when the URL names no host. */
  host: string;
  user: string | null;
  /** Only whether there is a password: the password itself never leaves the URL. */
  hasPassword: boolean;
}

/** Parses a server URL; null when it does not parse. */
export function serverUrl(url: string): ServerUrl | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  const user = parsed.username === "" ? null : decodeURIComponent(parsed.username);
  // pg and ioredis both read a `?password=` query option as the password.
  const hasPassword = parsed.password !== "" || parsed.searchParams.has("password");
  const host = parsed.hostname.replace(/^\[|\]$/g, "") || "localhost";
  return { parsed, host, user, hasPassword };
}
