/**
 * `--modules` of bench/worker-footprint.ts: preloaded with `node --import`, it lists every ES module the
 * child loads (Sluice's own files and the packages' ESM entries), which `require.cache` does not show.
 * Module hooks run on a thread of their own, which costs memory: figures of a `--modules` run are not
 * the footprint (the bench says so); the plain runs load nothing of this.
 */
import { register } from "node:module";
import { MessageChannel } from "node:worker_threads";

const { port1, port2 } = new MessageChannel();
/** URLs of the ES modules loaded so far, in load order. */
globalThis.__footprintModules = [];
port1.on("message", (url) => globalThis.__footprintModules.push(url));
port1.unref();
register("./worker-footprint-hooks-thread.mjs", import.meta.url, {
  data: { port: port2 },
  transferList: [port2],
});
