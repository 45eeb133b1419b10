/**
 * The method-level layer of the conformance suite (in the style of River's riverdrivertest): one case per
 * store method and rule, straight on the contract, with jobs put into any state by the factory.
 */
import type { ConformanceContext } from "../context.js";
import { adminMethodTests } from "./admin.js";
import { annotateMethodTests } from "./annotate.js";
import { leadershipMethodTests, registryMethodTests } from "./maintenance.js";

export function methodTests(ctx: ConformanceContext): void {
  leadershipMethodTests(ctx);
  registryMethodTests(ctx);
  adminMethodTests(ctx);
  annotateMethodTests(ctx);
}
