/**
 * Child process for the concurrent-migration test. argv[2] = store URL. Prints `ready` once its pool has a
 * live connection, waits for `go` on stdin (so all children migrate at the same instant), then runs the
 * store's migrations and prints `applied <json array of versions this process applied>`.
 */
import { createInterface } from "node:readline";
import { silentLogger } from "../../src/core/logger.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";

const store = new PostgresStore(process.argv[2] ?? "", { logger: silentLogger() });
await store.ping();
process.stdout.write("ready\n");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === "go") break;
}
lines.close();
const applied = await store.migrate();
await store.open(); // what a starting worker does: must be a no-op now
process.stdout.write(`applied ${JSON.stringify(applied)}\n`);
await store.close();
