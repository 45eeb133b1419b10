/**
 * What an operator must know about a SQLite database (`sluice doctor`, `store.info()`):
 *
 * - A journal mode other than WAL makes readers block the writer: several processes time out. Critical.
 * - A schema newer than this build: an old process runs against a newer deployment. Warning.
 * - An in-memory database loses every job when the process exits and is invisible to other processes.
 */
import type { StoreHazard } from "../contract.js";
import { LATEST_VERSION } from "./migrations.js";

/** What the hazards are judged from (read by the store with PRAGMAs). */
export interface SqliteSettings {
  /** `PRAGMA journal_mode`. */
  journalMode: string;
  /** `PRAGMA user_version`: the schema version in the file. */
  schemaVersion: number;
  memory: boolean;
  path: string;
}

/** Hazards for the given database settings (pure). */
export function sqliteHazards(settings: SqliteSettings): StoreHazard[] {
  const hazards: StoreHazard[] = [];
  const { journalMode: journal, schemaVersion: schema } = settings;
  if (journal.toLowerCase() !== "wal" && !settings.memory) {
    hazards.push({
      severity: "critical",
      code: "SQLITE_NOT_WAL",
      message: `journal_mode is ${journal}: readers block the writer and several processes will time out`,
      fix: `sqlite3 ${settings.path} 'PRAGMA journal_mode=WAL;'`,
    });
  } else {
    hazards.push({ severity: "ok", code: "SQLITE_WAL", message: "journal_mode is wal" });
  }
  if (schema > LATEST_VERSION) {
    hazards.push({
      severity: "warn",
      code: "SQLITE_SCHEMA_NEWER",
      message: `the database schema is at version ${schema}, newer than this build (${LATEST_VERSION}): an old process is running against a newer deployment`,
      fix: "upgrade this process to the version that migrated the database",
    });
  }
  if (settings.memory) {
    hazards.push({
      severity: "warn",
      code: "SQLITE_MEMORY",
      message: "in-memory database: jobs are lost when the process exits and other processes cannot see them",
      fix: "use a file: sqlite:./sluice.db",
    });
  }
  return hazards;
}
