/**
 * Engine selection by URL, from the engine descriptors (./engine.ts). Engines are loaded on demand so an
 * application pays only for the driver it uses.
 *
 * - `sqlite:./sluice.db`, `sqlite:/abs/path.db`, `sqlite::memory:` (one process only)
 * - `postgres://user@host:5432/db?schema=sluice` (also `postgresql://`)
 * - `redis://host:6379/0?prefix=sluice` (also `rediss://`)
 */
import { ValidationError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Store } from "./contract.js";
import { postgresEngine } from "./postgres/engine.js";
import { redisEngine } from "./redis/engine.js";
import { sqliteEngine } from "./sqlite/engine.js";

export type * from "./contract.js";
export type { EngineDescriptor } from "./engine.js";

/** Options every engine accepts. */
export interface StoreOptions {
  logger: Logger;
}

/**
 * Every engine, in the order URLs are matched against them. Nothing else in Sluice lists the engines:
 * selection, the doctor, the benchmarks and the test harnesses read this list.
 */
export const ENGINES = [sqliteEngine, postgresEngine, redisEngine] as const;

/** One of {@link ENGINES}. */
export type ListedEngine = (typeof ENGINES)[number];

export type EngineName = ListedEngine["name"];

/** The engine a URL selects; throws INVALID_CONFIG for anything else. */
export function engineFor(url: string): ListedEngine {
  const engine = ENGINES.find((e) => e.matches(url));
  if (engine) return engine;
  const examples = ENGINES.map((e) => e.urlExample);
  throw new ValidationError(
    "INVALID_CONFIG",
    `store URL "${redactUrl(url)}" names no engine: use ${examples.slice(0, -1).join(", ")} or ${examples.at(-1)}`,
    { field: "url" },
  );
}

/** Which engine a URL selects; throws INVALID_CONFIG for anything else. */
export function engineOf(url: string): EngineName {
  return engineFor(url).name;
}

/** Creates (but does not open) the store for `url`. */
export async function createStore(url: string, options: StoreOptions): Promise<Store> {
  return engineFor(url).create(url, options);
}

/** The URL with any password replaced, safe for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@");
}
