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
const open = new Set<string>();

defineConformanceSuite({
  name: "redis-cluster",
  crossSlotRefused: true,
  unreachableUrl: "redis+cluster://127.0.0.1:1?prefix=nowhere",
  async newUrl() {
    if (cluster === null) {
      cluster = await PrivateRedisCluster.start(3);
      // Lease recovery waits one lease period (30 s by default) after its server started, for leases that
      // ran out while it was down (src/store/outage.ts): a brand-new cluster looks like a restarted one.
      // The suite's recovery tests need a cluster older than that, so wait for its uptime.
      await cluster.olderThan(31_000);
    }
    runs++;
    const url = `${cluster!.url}?prefix=sluice_cluster_${process.pid}_${runs}`;
    open.add(url);
    return url;
  },
  async cleanup(url) {
    // The whole cluster is private to this file: stopping it once no store URL is in use removes every
    // key (a test's extra store is removed with its prefix only).
    open.delete(url);
    const prefix = /[?&]prefix=([^&]+)/.exec(url)?.[1] ?? "";
    if (open.size > 0) await cluster?.deletePrefix(prefix);
    else {
      await cluster?.stop();
      cluster = null;
    }
  },
});
