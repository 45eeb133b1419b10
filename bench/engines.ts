/**
 * Fresh, isolated store URLs for each engine's benchmark run, and their cleanup: the engines' test
 * harnesses (test/support/engines), pointed at the benchmark servers.
 */
import type { EngineName } from "../src/store/index.js";
import { ENGINE_NAMES, isolatedStore } from "../test/support/engines/index.js";

export type BenchEngine = EngineName;

/** Every engine the benchmarks can run on. */
export const BENCH_ENGINES: readonly BenchEngine[] = ENGINE_NAMES;

export const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/0";

/** The servers the benchmarks use instead of the test servers' defaults (engines without a server: none). */
const BENCH_SERVERS: Partial<Record<BenchEngine, string>> = { postgres: PG_URL, redis: REDIS_URL };

export function engineUrl(engine: BenchEngine): { url: string; cleanup: () => Promise<void> } {
  const store = isolatedStore(engine, "bench", BENCH_SERVERS[engine]);
  return { url: store.url, cleanup: () => store.dispose() };
}

/** `--engine`'s value as an engine name; anything else exits 2 with the names to use. */
export function benchEngineArg(value: string | undefined): BenchEngine {
  const engine = (value ?? "sqlite") as BenchEngine;
  if (BENCH_ENGINES.includes(engine)) return engine;
  process.stderr.write(`unknown engine "${engine}": use ${BENCH_ENGINES.join(", ")}\n`);
  process.exit(2);
}

/** A whole-number flag from `min` to `max`; anything else exits 2 saying which flag and what it takes. */
export function wholeArg(flag: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (Number.isInteger(n) && n >= min && n <= max) return n;
  process.stderr.write(
    `--${flag} must be a whole number from ${min} to ${max}; got ${JSON.stringify(value)}\n`,
  );
  process.exit(2);
}
