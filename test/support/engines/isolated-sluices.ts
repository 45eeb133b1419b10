/**
 * Sluice instances on isolated stores, for a test file that builds its own: each is closed, and its store
 * disposed, after every test of the file that called {@link isolatedSluices}.
 */
import { afterEach } from "vitest";
import { Sluice, silentLogger } from "../../../src/index.js";
import type { EngineName } from "../../../src/store/index.js";
import { type IsolatedStore, isolatedStore } from "./index.js";

/** Registers the clean-up and returns a factory: a silent Sluice on a fresh store of `engine`. */
export function isolatedSluices(): (engine: EngineName, tag: string) => Sluice {
  let stores: IsolatedStore[] = [];
  let instances: Sluice[] = [];
  afterEach(async () => {
    for (const sluice of instances) await sluice.close();
    for (const store of stores) await store.dispose();
    stores = [];
    instances = [];
  });
  return (engine, tag) => {
    const isolated = isolatedStore(engine, tag);
    stores.push(isolated);
    const sluice = new Sluice({ url: isolated.url, logger: silentLogger() });
    instances.push(sluice);
    return sluice;
  };
}
