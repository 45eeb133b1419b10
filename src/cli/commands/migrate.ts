/**
 * `sluice migrate`: opens the store, which applies pending schema migrations safely (also done
 * automatically on start, under a lock when many processes start at once), and reports what it applied.
 */
import type { Command } from "commander";
import type { MigrationStatus } from "../../index.js";
import { withSluice } from "../context.js";
import { toJson } from "../output/json.js";

/** `sluice migrate --json`. */
export interface MigrateReport {
  engine: string;
  version: string;
  location: string;
  /** current: the store's schema version now; latest: this build's; applied: what this run applied. */
  schema: MigrationStatus;
}

/** The one-line human report. */
export function describeMigration(schema: MigrationStatus): string {
  if (schema.applied.length > 0) {
    return `applied ${schema.applied.join(", ")}; schema at version ${schema.current}`;
  }
  if (schema.current > schema.latest) {
    return `schema at version ${schema.current}, newer than this build (${schema.latest}): nothing applied; upgrade this installation`;
  }
  return `schema already at version ${schema.current}`;
}

/** Registers `sluice migrate`. */
export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description(
      "apply pending schema migrations (also applied automatically on start) and say what was applied",
    )
    .option("--json", "print JSON: { engine, version, location, schema: { current, latest, applied } }")
    .addHelpText(
      "after",
      "\nRedis has no schema: it always reports version 1 and nothing applied.\n\n" +
        "Example:\n  $ SLUICE_URL='postgres://app@db/app?schema=jobs' sluice migrate",
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withSluice(cmd, async (sluice) => {
        const [info, schema] = await Promise.all([sluice.admin.storeInfo(), sluice.admin.migrations()]);
        const report: MigrateReport = {
          engine: info.engine,
          version: info.version,
          location: info.location,
          schema,
        };
        process.stdout.write(
          opts.json
            ? toJson(report)
            : `${info.engine} ${info.version} at ${info.location}: ${describeMigration(schema)}\n`,
        );
      });
    });
}
