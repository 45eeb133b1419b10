/**
 * `npm run bench:multi -- [--engine sqlite|postgres|redis] [--rounds 2]`: the "2 worker processes × 50" row
 * of `npm run bench` alone (20,000 no-op jobs), with fleet-wide events off then on, alternating, so the
 * events' cost with several worker processes is measured without the rest of the suite. Asserts nothing.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { multiProcessThroughput } from "./child-workers.js";
import { type BenchEngine, engineUrl } from "./engines.js";
import { createSluiceTarget } from "./sluice-target.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    rounds: { type: "string", default: "2" },
    child: { type: "boolean", default: false },
  },
});
const engine = values.engine as BenchEngine;

if (values.child) {
  // One measurement, in a process of its own: BENCH_EVENTS (read by sluice-target.ts) set by the parent.
  const { url, cleanup } = engineUrl(engine);
  const target = await createSluiceTarget(url);
  const spec = {
    module: new URL("./sluice-target.ts", import.meta.url).href,
    url,
    namespace: `b_${process.pid}`,
  };
  const result = await multiProcessThroughput(target, spec, 20_000, 50, 2, 1_000);
  process.stdout.write(`${Math.round(result.completed)}\n`);
  await target.close();
  await cleanup();
  process.exit(0);
}

console.log(`2 worker processes × 50 on ${engine}, 20,000 no-op jobs, completed jobs/s\n`);
console.log("| round | events off | events on |");
console.log("| --- | --- | --- |");
const self = fileURLToPath(import.meta.url);
const run = (events: "off" | "on") => {
  const child = spawnSync(process.execPath, ["--import", "tsx", self, "--child", "--engine", engine], {
    env: { ...process.env, BENCH_EVENTS: events },
    encoding: "utf8",
  });
  if (child.status !== 0) throw new Error(`measurement failed: ${child.stderr}`);
  return Number(child.stdout.trim().split("\n").at(-1)).toLocaleString("en");
};
for (let round = 1; round <= Number(values.rounds); round++) {
  const off = run("off");
  console.log(`| ${round} | ${off} | ${run("on")} |`);
}
