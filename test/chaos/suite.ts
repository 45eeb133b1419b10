/**
 * One chaos test per engine (test/chaos/<engine>.test.ts): the bounded size under `npm test`, the full size
 * with CHAOS_FULL=1 (`npm run chaos`). Prints the engine's figures and fails on any loss, corruption or
 * duplicate beyond the bound (see chaos.ts).
 */
import { writeFileSync } from "node:fs";
import { expect, it } from "vitest";
import { BOUNDED, type ChaosEngine, type ChaosStore, FULL, formatReport, runChaos } from "./chaos.js";

export const FULL_RUN = process.env.CHAOS_FULL === "1";
const size = FULL_RUN ? FULL : BOUNDED;

export function chaosTest(engine: ChaosEngine, makeStore: () => Promise<ChaosStore>): void {
  it(
    `${engine}: worker SIGKILLs${engine === "sqlite" ? " mid-write" : " and store restarts"} lose nothing, corrupt nothing, duplicate within bounds`,
    async () => {
      const store = await makeStore();
      try {
        const report = await runChaos(engine, store, size, (line) => {
          if (FULL_RUN) console.log(line);
        });
        console.log(`chaos (${FULL_RUN ? "full" : "bounded"})\n${formatReport(report)}`);
        if (process.env.CHAOS_REPORT)
          writeFileSync(`${process.env.CHAOS_REPORT}.${engine}.json`, JSON.stringify(report, null, 2));
        expect(report.failures).toEqual([]);
      } finally {
        await store.destroy();
      }
    },
    size.deadlineMs + 120_000,
  );
}
