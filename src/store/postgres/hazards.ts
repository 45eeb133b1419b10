/**
 * What an operator must know about the PostgreSQL server and schema (`sluice doctor`, `store.info()`):
 *
 * - `fsync = off`: a server crash can corrupt the database. Critical.
 * - `synchronous_commit = off` or `full_page_writes = off`: a crash can lose or corrupt recent writes. Warning.
 * - The schema older than this build (run `sluice migrate`, critical) or newer (an old worker, warning).
 */
import type { StoreHazard } from "../contract.js";
import { LATEST_VERSION } from "./migrations.js";

/** The server settings the hazards are judged from (`current_setting(…)` of each). */
export interface PostgresSettings {
  fsync: string;
  synchronous_commit: string;
  full_page_writes: string;
}

/** Hazards for the given server settings and the version of `schema` (pure). */
export function postgresHazards(
  settings: PostgresSettings,
  schema: string,
  schemaVersion: number,
): StoreHazard[] {
  const hazards: StoreHazard[] = [];
  if (settings.fsync === "off") {
    hazards.push({
      severity: "critical",
      code: "PG_FSYNC_OFF",
      message: "fsync is off: a server crash can corrupt the database and lose enqueued jobs",
      fix: "ALTER SYSTEM SET fsync = on; SELECT pg_reload_conf();",
    });
  }
  if (settings.synchronous_commit === "off") {
    hazards.push({
      severity: "warn",
      code: "PG_SYNC_COMMIT_OFF",
      message:
        "synchronous_commit is off: a server crash can lose the last few hundred ms of committed enqueues and completions",
      fix: "ALTER SYSTEM SET synchronous_commit = on; SELECT pg_reload_conf();",
    });
  }
  if (settings.full_page_writes === "off") {
    hazards.push({
      severity: "warn",
      code: "PG_FULL_PAGE_WRITES_OFF",
      message: "full_page_writes is off: a crash during a page write can corrupt the jobs table",
      fix: "ALTER SYSTEM SET full_page_writes = on; SELECT pg_reload_conf();",
    });
  }
  if (schemaVersion < LATEST_VERSION) {
    hazards.push({
      severity: "critical",
      code: "PG_SCHEMA_OUTDATED",
      message: `schema "${schema}" is at version ${schemaVersion}, this build needs ${LATEST_VERSION}`,
      fix: "sluice migrate",
    });
  } else if (schemaVersion > LATEST_VERSION) {
    hazards.push({
      severity: "warn",
      code: "PG_SCHEMA_NEWER",
      message: `schema "${schema}" is at version ${schemaVersion}, newer than this build (${LATEST_VERSION}): an old worker is running against a newer deployment`,
      fix: "upgrade this process to the version that migrated the schema",
    });
  }
  if (hazards.length === 0) {
    hazards.push({
      severity: "ok",
      code: "PG_DURABLE",
      message: `fsync and synchronous_commit are on; schema "${schema}" is at version ${schemaVersion}`,
    });
  }
  return hazards;
}
