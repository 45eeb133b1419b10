/** Test plumbing for the Redis engine: isolated prefixes on the shared server, and private servers. */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { type Logger, silentLogger } from "../../src/core/logger.js";
import { RedisStore } from "../../src/store/redis/redis-store.js";
import { freePort } from "../support/free-port.js";
import { until } from "../support/wait.js";

/** The shared development server: only ever used under a fresh prefix, never reconfigured. */
export const SHARED_REDIS = process.env.SLUICE_TEST_REDIS ?? "redis://127.0.0.1:6379/0";

export function randomPrefix(): string {
  return `sluice_t_${randomBytes(6).toString("hex")}`;
}

/** Deletes every key of `prefix` on the server at `base`. */
export async function deletePrefix(base: string, prefix: string): Promise<void> {
  const client = new Redis(base, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    for (const pattern of [`{${prefix}}:*`, `{${prefix}:q:*`]) {
      let cursor = "0";
      do {
        const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        if (keys.length > 0) await client.unlink(...keys);
      } while (cursor !== "0");
    }
  } finally {
    client.disconnect();
  }
}

/** A store on the shared server under its own prefix; `dispose` closes it and deletes its keys. */
export async function sharedStore(logger: Logger = silentLogger()): Promise<{
  store: RedisStore;
  url: string;
  prefix: string;
  dispose(): Promise<void>;
}> {
  const prefix = randomPrefix();
  const url = `${SHARED_REDIS}?prefix=${prefix}`;
  const store = new RedisStore(url, { logger });
  await store.open();
  return {
    store,
    url,
    prefix,
    async dispose() {
      await store.close();
      await deletePrefix(SHARED_REDIS, prefix);
    },
  };
}

/** Polls until truthy with a deadline (10 s by default for store-level Redis tests). */
export function eventually<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  return until(what, check, timeoutMs, 20);
}

/** Servers started here and not yet seen to exit: killed if the test process exits early. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * A redis-server this test started (own port, own data directory). Only this process is ever stopped or
 * reconfigured by the tests, by its pid.
 */
export class PrivateRedis {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
    readonly password: string | null,
  ) {}

  /**
   * Starts a server; `args` are extra redis-server options (`["--maxmemory-policy", "allkeys-lru"]`),
   * `password` sets `requirepass` (and goes into `url`).
   */
  static async start(args: string[] = [], options: { password?: string } = {}): Promise<PrivateRedis> {
    const password = options.password ?? null;
    const server = new PrivateRedis(
      await freePort(),
      mkdtempSync(join(tmpdir(), "sluice-redis-")),
      password === null ? args : [...args, "--requirepass", password],
      password,
    );
    try {
      await server.startAgain();
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  get url(): string {
    const auth = this.password === null ? "" : `:${encodeURIComponent(this.password)}@`;
    return `redis://${auth}127.0.0.1:${this.port}/0`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** (Re)starts the server on the same port and data directory (AOF reloads what was written). */
  async startAgain(): Promise<void> {
    if (this.child) throw new Error("private redis is already running");
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", "", ...this.args],
      { stdio: "ignore" },
    );
    this.child = child;
    live.add(child);
    child.once("exit", () => {
      live.delete(child);
      if (this.child === child) this.child = null;
    });
    await until(
      `redis-server on port ${this.port} to answer`,
      async () => {
        if (this.child !== child) throw new Error("private redis-server exited at start");
        const probe = new Redis(this.url, {
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
        });
        probe.on("error", () => {});
        try {
          await probe.connect();
          return (await probe.ping()) === "PONG";
        } finally {
          probe.disconnect();
        }
      },
      30_000,
      20,
    );
  }

  /** Stops the server by pid (SIGTERM: Redis flushes the AOF and exits) and waits until it has exited. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    child.kill(signal);
    await exited;
    if (this.child === child) this.child = null;
  }

  /** A plain client to inspect the private server. */
  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1 });
  }

  async destroy(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
