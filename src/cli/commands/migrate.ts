/** `sluice migrate`: opens the store (which applies pending migrations safely) and reports it is current. */
import type { Command } from "commander";
import { withSluice } from "../context.js";
import { toJson } from "../output/json.js";

/** Registers `sluice migrate`. */
export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description(
      "apply schema migrations (also applied automatically on start) and report the schema is current",
    )
    .option("--json", 'print JSON: { engine, version, location, schema: "current" }')
    .addHelpText("after", "\nExample:\n  $ SLUICE_URL=postgres://app@db/app?schema=jobs sluice migrate")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withSluice(cmd, async (sluice) => {
        const info = await sluice.admin.storeInfo();
        const report = {
          engine: info.engine,
          version: info.version,
          location: info.location,
          schema: "current",
        };
        process.stdout.write(
          opts.json
            ? toJson(report)
            : `${info.engine} ${info.version} at ${info.location}: schema is current\n`,
        );
      });
    });
}
