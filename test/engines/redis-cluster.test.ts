/**
 * The conformance suite against a real Redis Cluster: 3 masters this file starts on free loopback ports
 * (test/support/redis-cluster.ts) and stops at the end, reached through a `redis+cluster://` URL. What a
 * cluster refuses by design (a flow across queues, a move between queues) is asserted as the typed
 * CLUSTER_CROSS_SLOT refusal by the suite itself (EngineHarness.crossSlotRefused).
 */
import { defineConformanceSuite } from "../conformance/suite.js";
import { PrivateRedisCluster } from "../support/redis-cluster.js";

let cluster: PrivateRedisCluster | null = null;
let runs = 0;

defineConformanceSuite({
  name: "redis-cluster",
  crossSlotRefused: true,
  unreachableUrl: "redis+cluster://127.0.0.1:1?prefix=nowhere",
  async newUrl() {
    cluster ??= await PrivateRedisCluster.start(3);
    runs++;
    return `${cluster.url}?prefix=sluice_cluster_${process.pid}_${runs}`;
  },
  async cleanup() {
    // The whole cluster is private to this file: stopping it removes every key it holds.
    await cluster?.stop();
    cluster = null;
  },
});
