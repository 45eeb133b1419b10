/**
 * `npm run bench:compare [-- --engine postgres|redis] [--quick]`: the same workloads, in one run, on
 * Sluice and on its peers against the same server — PostgreSQL: graphile-worker and pg-boss; Redis:
 * BullMQ — each peer in its documented fast configuration (see bench/peers/*). Prints a table with
 * Sluice/peer ratios (for latency, peer/Sluice: above 1 means Sluice is faster).
 */
import { parseArgs } from "node:util";
import { engineUrl, PG_URL, REDIS_URL } from "./engines.js";
import { createSluiceTarget } from "./sluice-target.js";
import { fmt } from "./stats.js";
import type { BenchTarget, BenchTargetFactory } from "./target.js";
import { enqueueBatches, enqueueOneByOne, FULL, latency, processing, QUICK } from "./workloads.js";

const { values } = parseArgs({
  options: { engine: { type: "string" }, quick: { type: "boolean", default: false } },
});
const sizes = values.quick ? QUICK : FULL;

interface Figures {
  name: string;
  enqueueOne: number;
  enqueueMany: number;
  process50: number;
  p50: number;
  p99: number;
}

async function measure(target: BenchTarget): Promise<Figures> {
  process.stderr.write(`  measuring ${target.name}…\n`);
  const enqueueOne = await enqueueOneByOne(target, sizes.enqueueOne);
  const enqueueMany = await enqueueBatches(target, sizes.enqueueBatch, sizes.batchSize);
  const process50 = await processing(target, sizes.process, 50, sizes.batchSize);
  const lat = await latency(target, sizes.latencyJobs, sizes.latencyRate);
  return { name: target.name, enqueueOne, enqueueMany, process50, p50: lat.p50, p99: lat.p99 };
}

async function peer(module: string, url: string): Promise<BenchTarget> {
  const { createTarget } = (await import(module)) as { createTarget: BenchTargetFactory };
  return createTarget(url);
}

function table(title: string, rows: Figures[]): string {
  const [sluice, ...peers] = rows;
  if (!sluice) return "";
  const out = [
    `\n${title}`,
    `${"target".padEnd(18)} ${"enqueue 1×1/s".padStart(14)} ${"enqueueMany/s".padStart(14)} ${"process c=50/s".padStart(15)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}`,
  ];
  for (const r of rows) {
    out.push(
      `${r.name.padEnd(18)} ${fmt(r.enqueueOne).padStart(14)} ${fmt(r.enqueueMany).padStart(14)} ${fmt(r.process50).padStart(15)} ${fmt(r.p50, 2).padStart(8)} ${fmt(r.p99, 2).padStart(8)}`,
    );
  }
  for (const p of peers) {
    const ratio = (a: number, b: number) => `${fmt(a / b, 2)}x`;
    out.push(
      `${`sluice / ${p.name}`.padEnd(18)} ${ratio(sluice.enqueueOne, p.enqueueOne).padStart(14)} ${ratio(sluice.enqueueMany, p.enqueueMany).padStart(14)} ${ratio(sluice.process50, p.process50).padStart(15)} ${ratio(p.p50, sluice.p50).padStart(8)} ${ratio(p.p99, sluice.p99).padStart(8)}`,
    );
  }
  return out.join("\n");
}

async function group(engine: "postgres" | "redis"): Promise<string> {
  const { url, cleanup } = engineUrl(engine);
  const rows: Figures[] = [];
  const peers =
    engine === "postgres"
      ? [
          ["./peers/graphile-worker.js", PG_URL],
          ["./peers/pg-boss.js", PG_URL],
        ]
      : [["./peers/bullmq.js", REDIS_URL]];
  try {
    const sluice = await createSluiceTarget(url, `sluice/${engine}`);
    try {
      rows.push(await measure(sluice));
    } finally {
      await sluice.close();
    }
    for (const [module, peerUrl] of peers) {
      const target = await peer(module as string, peerUrl as string);
      try {
        rows.push(await measure(target));
      } finally {
        await target.reset().catch(() => {});
        await target.close();
      }
    }
  } finally {
    await cleanup();
  }
  return table(`${engine} (same server for every target; latency ratios are peer/sluice)`, rows);
}

const engines = values.engine ? [values.engine] : ["postgres", "redis"];
process.stdout.write(
  `sluice vs peers — ${values.quick ? "quick" : "full"} sizes — node ${process.version}\n`,
);
for (const engine of engines) {
  if (engine !== "postgres" && engine !== "redis") {
    process.stderr.write(`unknown engine "${engine}": use postgres or redis\n`);
    process.exit(2);
  }
  process.stdout.write(`${await group(engine)}\n`);
}
