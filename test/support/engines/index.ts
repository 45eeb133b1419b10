/**
 * One test harness per engine (./<engine>.ts): how to make a store location nobody else uses on the shared
 * test servers, and remove it. Keyed by the engine list (src/store/index.ts), so a new engine does not
 * typecheck until it has its harness. The conformance suite (test/engines), the CLI and doctor tests and
 * the benchmarks take their store URLs from here.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENGINES, type EngineName } from "../../../src/store/index.js";
import type { EngineHarness } from "../../conformance/harness.js";
import { postgresHarness } from "./postgres.js";
import { redisHarness } from "./redis.js";
import { sqliteHarness } from "./sqlite.js";

export interface EngineTestHarness {
  /**
   * The URL of a store called `name` (a valid schema name and key prefix) that nobody else uses: under
   * `dir` (a scratch directory the caller removes) or on the server at `base` (default: the shared test
   * server). `dispose` removes what the store wrote there.
   */
  isolate(options: { name: string; dir: string; base?: string | undefined }): {
    url: string;
    dispose(): Promise<void>;
  };
  /** A URL of this engine that reaches nothing (a missing directory, a closed port). */
  readonly unreachableUrl: string;
}

export const HARNESSES: { readonly [K in EngineName]: EngineTestHarness } = {
  sqlite: sqliteHarness,
  postgres: postgresHarness,
  redis: redisHarness,
};

/** Every engine's name, in the order of the engine list. */
export const ENGINE_NAMES: readonly EngineName[] = ENGINES.map((e) => e.name);

/** An isolated store location and its scratch directory; `dispose` removes both. */
export interface IsolatedStore {
  url: string;
  dir: string;
  dispose(): Promise<void>;
}

/**
 * A fresh store location for `engine`, named after `tag` (`sluice_<tag>_<random>`), with a scratch
 * directory (`sluice-<tag>-…`, where SQLite keeps its file). `base` overrides the engine's shared server.
 */
export function isolatedStore(engine: EngineName, tag: string, base?: string): IsolatedStore {
  const dir = mkdtempSync(join(tmpdir(), `sluice-${tag}-`));
  const name = `sluice_${tag}_${randomBytes(5).toString("hex")}`;
  const store = HARNESSES[engine].isolate({ name, dir, base });
  return {
    url: store.url,
    dir,
    async dispose() {
      rmSync(dir, { recursive: true, force: true });
      await store.dispose();
    },
  };
}

/** The conformance suite's view of `engine`: a new isolated store per run, removed after it. */
export function conformanceHarness(engine: EngineName): EngineHarness {
  const stores = new Map<string, IsolatedStore>();
  return {
    name: engine,
    unreachableUrl: HARNESSES[engine].unreachableUrl,
    async newUrl() {
      const store = isolatedStore(engine, "conformance");
      stores.set(store.url, store);
      return store.url;
    },
    async cleanup(url) {
      await stores.get(url)?.dispose();
      stores.delete(url);
    },
  };
}
