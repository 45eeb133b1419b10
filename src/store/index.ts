/**
 * Engine selection by URL. Engines are loaded on demand so an application pays only for the driver it uses.
 *
 * - `sqlite:./sluice.db`, `sqlite:/abs/path.db`, `sqlite::memory:` (one process only)
 * - `postgres://user@host:5432/db?schema=sluice` (also `postgresql://`)
 * - `redis://host:6379/0?prefix=sluice` (also `rediss://`)
 */
import { ValidationError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Store } from "./contract.js";

export type * from "./contract.js";

/** Options every engine accepts. */
export interface StoreOptions {
  logger: Logger;
}

export type EngineName = Store["engine"];

/** Which engine a URL selects; throws INVALID_CONFIG for anything else. */
export function engineOf(url: string): EngineName {
  if (url.startsWith("sqlite:")) return "sqlite";
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return "postgres";
  if (url.startsWith("redis://") || url.startsWith("rediss://")) return "redis";
  throw new ValidationError(
    "INVALID_CONFIG",
    `store URL "${redactUrl(url)}" names no engine: use sqlite:./sluice.db, postgres://… or redis://…`,
    { field: "url" },
  );
}

/** Creates (but does not open) the store for `url`. */
export async function createStore(url: string, options: StoreOptions): Promise<Store> {
  switch (engineOf(url)) {
    case "sqlite": {
      const { SqliteStore } = await import("./sqlite/sqlite-store.js");
      return new SqliteStore(url, options);
    }
    case "postgres": {
      const { PostgresStore } = await import("./postgres/postgres-store.js");
      return new PostgresStore(url, options);
    }
    case "redis": {
      const { RedisStore } = await import("./redis/redis-store.js");
      return new RedisStore(url, options);
    }
  }
}

/** The URL with any password replaced, safe for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@");
}
