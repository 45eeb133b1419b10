/**
 * How the conformance suite reaches an engine. Each engine's test file (`test/engines/<engine>.test.ts`)
 * passes a harness to `defineConformanceSuite` and nothing else: the suite is the same for every engine.
 * The harnesses are built from each engine's test harness (test/support/engines).
 */
export interface EngineHarness {
  /** `sqlite`, `postgres` or `redis`. */
  name: string;
  /**
   * A fresh, isolated store URL (own file, schema or key prefix) that no other test uses. Child
   * processes spawned by the suite receive this URL, so everything about the engine must be in it.
   */
  newUrl(): Promise<string>;
  /** Removes what `newUrl` created (file, schema, keys). Called once per URL after its tests. */
  cleanup(url: string): Promise<void>;
  /** A URL of this engine that reaches nothing (a missing directory, a closed port). */
  unreachableUrl: string;
  /**
   * True for Redis Cluster: what would need one script across hash slots (a flow whose jobs, children or
   * callbacks are in several queues; a move between queues) is refused with `CLUSTER_CROSS_SLOT` having
   * written nothing, and the suite asserts that refusal instead (docs/redis.md, "Redis Cluster").
   */
  crossSlotRefused?: boolean;
}
