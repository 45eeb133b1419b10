/**
 * The conformance suite: the same behavioural tests against every engine. An engine's test file
 * (`test/engines/<engine>.test.ts`) calls `defineConformanceSuite(harness)` and nothing else.
 * A feature is done when it passes here on every engine.
 */
import { describe } from "vitest";
import { adminTests } from "./admin.js";
import { createContext } from "./context.js";
import { eventTests } from "./events.js";
import { failureTests } from "./failures.js";
import { filterTests } from "./filters.js";
import { flowTests } from "./flows.js";
import type { EngineHarness } from "./harness.js";
import { heldTests } from "./held.js";
import { inputTests } from "./input.js";
import { leaseTests } from "./leases.js";
import { lifecycleTests } from "./lifecycle.js";
import { limitTests } from "./limits.js";
import { methodTests } from "./methods/index.js";
import { runtimeTests } from "./runtime.js";
import { scheduleTests } from "./schedules.js";
import { stallTests } from "./stalls.js";

export type { EngineHarness } from "./harness.js";

export function defineConformanceSuite(harness: EngineHarness): void {
  describe(`conformance: ${harness.name}`, () => {
    const ctx = createContext(harness);
    lifecycleTests(ctx);
    failureTests(ctx);
    leaseTests(ctx);
    adminTests(ctx);
    inputTests(ctx);
    scheduleTests(ctx);
    runtimeTests(ctx);
    stallTests(ctx);
    heldTests(ctx);
    eventTests(ctx);
    filterTests(ctx);
    flowTests(ctx);
    limitTests(ctx);
    describe("methods", () => methodTests(ctx));
  });
}
