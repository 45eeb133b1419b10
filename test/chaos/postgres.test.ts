/**
 * Chaos on PostgreSQL: worker SIGKILLs, then immediate stops (`pg_ctl -m immediate`: SIGQUIT to the
 * postmaster, by pid) of a PRIVATE server, which is started again on the same data directory; amcheck
 * verifies the job table's indexes afterwards.
 */
import pg from "pg";
import { describe } from "vitest";
import { urlWithSchema } from "../postgres/pg-test-utils.js";
import { PrivatePostgres } from "../postgres/private-postgres.js";
import { chaosTest } from "./suite.js";

describe("chaos", () => {
  chaosTest("postgres", async () => {
    const server = await PrivatePostgres.create();
    return {
      url: urlWithSchema(server.url, "chaos"),
      stop: () => server.stop("SIGQUIT"),
      start: () => server.start(),
      integrity: async () => {
        const client = new pg.Client({ connectionString: server.url });
        await client.connect();
        try {
          await client.query("CREATE EXTENSION IF NOT EXISTS amcheck");
          const { rows } = await client.query<{ index: string }>(
            // amcheck verifies b-trees (the events table's BRIN index has no such check).
            `SELECT c.relname AS index FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam
             WHERE n.nspname = 'chaos' AND am.amname = 'btree'`,
          );
          for (const row of rows)
            await client.query("SELECT bt_index_check($1::regclass, true)", [`chaos."${row.index}"`]);
          return null;
        } catch (error) {
          return String(error);
        } finally {
          await client.end();
        }
      },
      destroy: () => server.destroy(),
    };
  });
});
