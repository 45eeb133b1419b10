/**
 * The Redis engine has no schema to migrate: keys are created as jobs arrive, and the Lua scripts are
 * loaded on every connect (connection.ts). It reports version 1, always current, so `sluice migrate` and
 * `store.migrations()` answer the same way on every engine. A future change of the key layout would start
 * its versioning here.
 */
import type { MigrationStatus } from "../contract.js";

/** The one (implicit) version of the key layout. */
export const LATEST_VERSION = 1;

/** Always current: nothing to apply. */
export function migrationStatus(): MigrationStatus {
  return { current: LATEST_VERSION, latest: LATEST_VERSION, applied: [] };
}
