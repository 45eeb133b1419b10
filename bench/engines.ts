/** Fresh, isolated store URLs for each engine's benchmark run, and their cleanup. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type BenchEngine = "sqlite" | "postgres" | "redis";

export const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/0";

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
    case "postgres":
      return {
        url: `${PG_URL}?schema=sluice_${tag}`,
        cleanup: async () => {
          const { default: pg } = await import("pg");
          const client = new pg.Client({ connectionString: PG_URL });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS sluice_${tag} CASCADE`);
          await client.end();
        },
      };
    case "redis":
      return {
        url: `${REDIS_URL}?prefix=sluice_${tag}`,
        cleanup: async () => {
          const { Redis } = await import("ioredis");
          const redis = new Redis(REDIS_URL);
          let cursor = "0";
          do {
            const [next, keys] = await redis.scan(cursor, "MATCH", `*sluice_${tag}*`, "COUNT", 1000);
            cursor = next;
            if (keys.length) await redis.del(...keys);
          } while (cursor !== "0");
          redis.disconnect();
        },
      };
  }
}
