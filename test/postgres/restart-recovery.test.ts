/**
 * After a PostgreSQL restart (immediate stop of a PRIVATE server, by its pid), leases that ran out during the
 * outage are not recovered until the server has been back one lease period (`pg_postmaster_start_time()`,
 * and this process's connection); then the orphan is, and a live worker's outcome is written.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { checkRecoveryWaitsAfterRestart } from "../support/restart-recovery.js";
import { openStore, urlWithSchema } from "./pg-test-utils.js";
import { PrivatePostgres } from "./private-postgres.js";

let server: PrivatePostgres;
beforeAll(async () => {
  server = await PrivatePostgres.create();
}, 120_000);
afterAll(async () => {
  await server?.destroy();
}, 60_000);

describe("postgres recovery after a restart", () => {
  it("waits one lease period after the server comes back before it recovers expired leases", async () => {
    const url = urlWithSchema(server.url, "sluice_restart_rule");
    await checkRecoveryWaitsAfterRestart({
      open: () => openStore(url),
      stop: () => server.stop("SIGQUIT"),
      start: () => server.start(),
    });
  }, 90_000);
});
