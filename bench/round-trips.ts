/**
 * `npm run bench:round-trips -- [--engine sqlite|postgres|redis] [--rate 200] [--jobs 2000]
 * [--concurrency 10] [--backlog] [--io]`: what a worker asks its store per job under light, steady traffic. A
 * producer enqueues one job at a time at `rate` jobs/s; a worker in the same process (defaults, the given
 * concurrency) runs them as no-ops. With `--backlog` every job is enqueued first (batches of 500) and the
 * worker then drains them as fast as it can: the calls per job at saturation (e.g. `--concurrency 1`). With
 * `--io` each job awaits 50–500 ms instead of returning at once (I/O-bound jobs: `--backlog --io
 * --concurrency 100 --jobs 5000` is `npm run bench:compare`'s `io` workload at a quarter of its size).
 * Prints the worker's store calls per job by method (each a round trip on a networked store).
 * Also prints what one round trip costs the client on this machine (2,000 awaited trivial calls: wall and
 * process CPU per call), and on Redis the server time of one enqueue script call (`INFO commandstats`) and,
 * with `--backlog`, of the worker's scripts per job drained. With `--backlog` it also prints the machine's CPU
 * per job drained (Linux `/proc/stat`): this process's and the rest, which is mostly the store's server. The
 * worker shares the process with the producer, so its CPU is not reported here (`npm run bench:compare`
 * measures a worker child's). Asserts nothing.
 */
import { readFileSync } from "node:fs";
import { Sluice, silentLogger } from "../src/index.js";
import type { Store } from "../src/store/contract.js";
import { benchEngineArg, engineUrl, wholeArg } from "./engines.js";
import { fmt } from "./stats.js";

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const engine = benchEngineArg(flag("engine") ?? "postgres");
const rate = wholeArg("rate", flag("rate") ?? "200", 1, 10_000);
const total = wholeArg("jobs", flag("jobs") ?? "2000", 1, 100_000);
const concurrency = wholeArg("concurrency", flag("concurrency") ?? "10", 1, 1_000);
const backlog = args.includes("--backlog");
const io = args.includes("--io");
/** The worker's store methods counted (the others are called rarely: heartbeats, maintenance). */
const METHODS = [
  "claim",
  "start",
  "complete",
  "completeAndStart",
  "fail",
  "nextRunAt",
  "extendLeases",
] as const;

/** CPU time (ms) of the whole machine, every core, from /proc/stat; null where there is none (not Linux). */
function machineCpuMs(): number | null {
  try {
    const fields = readFileSync("/proc/stat", "utf8")
      .split("\n")[0]
      ?.trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    if (!fields || fields.length < 8) return null;
    // user, nice, system, irq, softirq, steal (not idle, not iowait), in USER_HZ ticks (100 per second).
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) * 10;
  } catch {
    return null;
  }
}

const { url, cleanup } = engineUrl(engine);
const producer = new Sluice({ url, logger: silentLogger() });
const consumer = new Sluice({ url, logger: silentLogger() });
let ran = 0;
let allRan!: () => void;
const done = new Promise<void>((resolve) => (allRan = resolve));
const definition = {
  queue: "trips",
  run: async () => {
    if (io) await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 450));
    if (++ran === total) allRan();
  },
};
const task = producer.task<{ i: number }>("noop", definition);
consumer.task<{ i: number }>("noop", definition);
const producerStore = await producer.store();
const workerStore = await consumer.store();

/** Wraps `store`'s worker methods to count their calls. */
function countCalls(store: Store): Record<string, number> {
  const counts: Record<string, number> = {};
  const methods = store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const method of METHODS) {
    const original = methods[method]?.bind(store);
    if (!original) continue;
    methods[method] = (...a: unknown[]) => {
      counts[method] = (counts[method] ?? 0) + 1;
      return original(...a);
    };
  }
  return counts;
}

/** Wall and process CPU per awaited call of `call`, over `n` calls. */
async function perCall(n: number, call: () => Promise<unknown>): Promise<{ wallUs: number; cpuUs: number }> {
  for (let i = 0; i < 200; i++) await call(); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await call();
  const cpu = process.cpuUsage(cpu0);
  return { wallUs: ((performance.now() - t0) * 1000) / n, cpuUs: (cpu.user + cpu.system) / n };
}

try {
  console.log(
    `round trips — engine ${engine} — ${total} ${io ? "" : "no-op "}jobs ` +
      (backlog ? "enqueued first, then drained" : `enqueued one at a time at ${rate}/s`) +
      (io ? ", each awaiting 50–500 ms" : "") +
      `, worker at concurrency ${concurrency} in this process — node ${process.version}`,
  );
  // What one round trip costs the client here: a trivial call the store already makes.
  const trip = await perCall(2_000, () => producerStore.ping());
  console.log(
    `one round trip (store.ping, awaited)   wall ${fmt(trip.wallUs)} µs, client CPU ${fmt(trip.cpuUs)} µs`,
  );
  if (backlog) {
    for (let i = 0; i < total; i += 500) {
      const n = Math.min(500, total - i);
      await task.enqueueMany(Array.from({ length: n }, (_, k) => ({ payload: { i: i + k } })));
    }
  }
  // Redis: the server time of the worker's scripts while it drains (nothing else calls scripts then).
  const redis =
    engine === "redis" ? (producerStore as unknown as { conn(): import("ioredis").Redis }).conn() : undefined;
  if (redis && backlog) await redis.config("RESETSTAT");
  const counts = countCalls(workerStore);
  const worker = consumer.worker({ queues: ["trips"], concurrency });
  const machine0 = machineCpuMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await worker.start();
  for (let i = 0; i < total && !backlog; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await task.enqueue({ i });
  }
  await done;
  if (backlog) {
    const machine1 = machineCpuMs();
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `drained at                             ${fmt((total * 1000) / (performance.now() - t0))} jobs/s`,
    );
    if (machine0 !== null && machine1 !== null) {
      // This process is the worker (the producer is idle while it drains); the rest is mostly the store's
      // server, plus whatever else runs on the machine.
      const own = (cpu.user + cpu.system) / 1000;
      const us = (ms: number) => fmt((ms * 1000) / total, 1);
      console.log(
        `CPU per job (machine, all cores)       ${us(machine1 - machine0)} µs: this process ${us(own)}, ` +
          `the rest (the store's server) ${us(machine1 - machine0 - own)}`,
      );
    }
  }
  const drainStats = redis && backlog ? await redis.info("commandstats") : undefined;
  await worker.stop();
  const perJob = METHODS.filter((m) => counts[m]).map((m) => `${m} ${fmt((counts[m] ?? 0) / total, 2)}`);
  const sum = METHODS.reduce((n, m) => n + (counts[m] ?? 0), 0) / total;
  console.log(`worker store calls per job             ${perJob.join(", ")} (all ${fmt(sum, 2)})`);
  const drained = drainStats && /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(drainStats);
  if (drained)
    console.log(
      `worker scripts on the server           ${fmt(Number(drained[2]) / total, 1)} µs per job ` +
        `(${fmt(Number(drained[1]) / total, 2)} calls per job)`,
    );
  if (redis) {
    // Server time of one enqueue script call, as Redis itself accounts it (the connection is the store's).
    await redis.config("RESETSTAT");
    for (let i = 0; i < 5_000; i++) await task.enqueue({ i });
    const stats = await redis.info("commandstats");
    const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(stats);
    if (m)
      console.log(
        `enqueue script on the server           ${fmt(Number(m[2]) / Number(m[1]), 1)} µs per call`,
      );
  }
} finally {
  await producer.close();
  await consumer.close();
  await cleanup();
}
