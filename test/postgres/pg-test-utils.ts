/**
 * Shared plumbing for the PostgreSQL tests: a unique schema per test file on the shared server (the
 * fault-injection tests start their own server: fault-server.ts; the shared one on 5432 is never stopped).
 */
import pg from "pg";
import { type Logger, silentLogger } from "../../src/core/logger.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";

/** The shared test server (trust auth). */
export const SHARED_URL = process.env.SLUICE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test uses. */
export function uniqueSchema(prefix = "sluice_t"): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

/** `base` with `?schema=` (and any extra options) set. */
export function urlWithSchema(base: string, schema: string, extra: Record<string, string> = {}): string {
  const url = new URL(base);
  url.searchParams.set("schema", schema);
  for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
  return url.toString();
}

/** Runs `fn` with a short-lived admin connection to `base` (no schema option). */
export async function withAdmin<T>(base: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const url = new URL(base);
  url.searchParams.delete("schema");
  url.searchParams.delete("pool");
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function dropSchema(base: string, schema: string): Promise<void> {
  await withAdmin(base, (client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

export { newJob } from "../support/new-job.js";
export { until } from "../support/wait.js";

/** A PostgresStore on `url`, opened (migrated). */
export async function openStore(url: string, logger: Logger = silentLogger()): Promise<PostgresStore> {
  const store = new PostgresStore(url, { logger });
  await store.open();
  return store;
}
export { PrivatePostgres } from "./private-postgres.js";
