/**
 * Shared plumbing for the PostgreSQL tests: a unique schema per test file on the shared server, and a
 * private PostgreSQL server for fault-injection tests (the shared server on 5432 is never stopped).
 */
import { execFile } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { type Logger, silentLogger } from "../../src/core/logger.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";

const run = promisify(execFile);

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

export { until } from "../support/wait.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

const BIN = process.env.SLUICE_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/**
 * A throw-away PostgreSQL server in a temporary directory, on a free port, owned by the `postgres` OS
 * user when the tests run as root (the server refuses to run as root). Only this object's data directory
 * is ever started or stopped.
 */
export class PrivatePostgres {
  readonly dir: string;
  readonly port: number;
  private readonly asPostgres: boolean;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.asPostgres = userInfo().uid === 0;
  }

  /** Creates the cluster (initdb) and starts it. */
  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), "sluice-pg-"));
    const server = new PrivatePostgres(dir, await freePort());
    if (server.asPostgres) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      const { stdout: gid } = await run("id", ["-g", "postgres"]);
      chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    await server.exec("initdb", ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync"]);
    await server.start();
    return server;
  }

  /** URL of database `postgres` on this server. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    await this.exec("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-l",
      join(this.dir, "server.log"),
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "-w",
      "start",
    ]);
  }

  /** Fast shutdown: open connections are terminated, as in a failover or a restart. */
  async stop(): Promise<void> {
    await this.exec("pg_ctl", ["-D", join(this.dir, "data"), "-m", "fast", "-w", "stop"]);
  }

  /** Stops the server (if running) and deletes its directory. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async exec(tool: string, args: string[]): Promise<void> {
    const binary = join(BIN, tool);
    if (this.asPostgres) await run("runuser", ["-u", "postgres", "--", binary, ...args], { cwd: this.dir });
    else await run(binary, args, { cwd: this.dir });
  }
}

export { newJob } from "../support/new-job.js";

/** A PostgresStore on `url`, opened (migrated). */
export async function openStore(url: string, logger: Logger = silentLogger()): Promise<PostgresStore> {
  const store = new PostgresStore(url, { logger });
  await store.open();
  return store;
}
