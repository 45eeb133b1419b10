/** Fresh, isolated store URLs for each engine's benchmark run, and their cleanup. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type BenchEngine = "sqlite" | "postgres" | "redis";

export const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/0";

/** `base` with one query parameter set, keeping whatever query string it already has. */
export function withParam(base: string, name: string, value: string): string {
  const url = new URL(base);
  url.searchParams.set(name, value);
  return url.href;
}

export function engineUrl(engine: BenchEngine): { url: string; cleanup: () => Promise<void> } {
  const tag = `bench_${process.pid}`;
  switch (engine) {
    case "sqlite": {
      const dir = mkdtempSync(join(tmpdir(), "sluice-bench-"));
      return {
        url: `sqlite:${join(dir, "bench.db")}`,
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    }
    case "postgres": {
      const schema = `sluice_${tag}`;
      return {
        url: withParam(PG_URL, "schema", schema),
        cleanup: async () => {
          const { default: pg } = await import("pg");
          const client = new pg.Client({ connectionString: PG_URL });
          await client.connect();
          try {
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          } finally {
            await client.end();
          }
        },
      };
    }
    case "redis": {
      const prefix = `sluice_${tag}`;
      return {
        url: withParam(REDIS_URL, "prefix", prefix),
        cleanup: async () => {
          const { Redis } = await import("ioredis");
          const redis = new Redis(REDIS_URL);
          try {
            let cursor = "0";
            do {
              const [next, keys] = await redis.scan(cursor, "MATCH", `*${prefix}*`, "COUNT", 1000);
              cursor = next;
              if (keys.length) await redis.del(...keys);
            } while (cursor !== "0");
          } finally {
            redis.disconnect();
          }
        },
      };
    }
  }
}
