/**
 * Engine selection by URL, from the engine descriptors (./engine.ts). Engines are loaded on demand so an
 * application pays only for the driver it uses.
 *
 * - `sqlite:./sluice.db`, `sqlite:/abs/path.db`, `sqlite::memory:` (one process only)
 * - `postgres://user@host:5432/db?schema=sluice` (also `postgresql://`)
 * - `redis://host:6379/0?prefix=sluice` (also `rediss://`)
 */
import { ValidationError } from "../core/errors.js";
import type { EngineName, Store } from "./contract.js";
import type { EngineDescriptor, StoreOptions } from "./engine.js";
import { postgresEngine } from "./postgres/engine.js";
import { redactUrl } from "./redact.js";
import { redisEngine } from "./redis/engine.js";
import { sqliteEngine } from "./sqlite/engine.js";

export type * from "./contract.js";
export type { EngineDescriptor, StoreOptions } from "./engine.js";
export { redactUrl } from "./redact.js";

/**
 * Every engine, in the order URLs are matched against them. Nothing else in Sluice lists the engines:
 * selection, the doctor, the benchmarks and the test harnesses read this list.
 */
export const ENGINES = [
  sqliteEngine,
  postgresEngine,
  redisEngine,
] as const satisfies readonly EngineDescriptor<EngineName>[];

/** One of {@link ENGINES}. */
export type ListedEngine = (typeof ENGINES)[number];

/** Every engine name has a descriptor in ENGINES (and `satisfies` above: every descriptor has a name). */
const listsEveryEngine: EngineName extends ListedEngine["name"] ? true : never = true;
void listsEveryEngine;

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
