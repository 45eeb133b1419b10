/**
 * The measured process of bench/worker-footprint.ts. Plain JavaScript run by plain `node` (no tsx, no
 * loader) and importing the BUILT public entry (`../dist/index.js`), so what it reports is what an
 * application's worker process holds: not tsx's transpiler, not the source maps of the TypeScript.
 *
 * argv[2] = JSON { mode, url, concurrency, modules, heapSnapshot }:
 *
 *   mode "worker": `new Sluice({ url })` (defaults: no options), one task `footprint` (no-op, or sleeping
 *   `payload.ms` when the payload has one), `sluice.worker({ concurrency })`. Sends `started` once the
 *   worker is ready, then runs until the parent (which watches the store) writes `stop` on stdin; then
 *   reports its figures and exits. CPU is `process.cpuUsage()` from just before `worker.start()` to the
 *   `stop` line (processing, plus at most one poll of the parent's idle wait), and for the whole process.
 *   A `snapshot` line mid-run writes a heap snapshot (`--heap`).
 *
 *   mode "layers": what each piece costs, in one process, in this order: bare node; + the engine's driver
 *   imported; + the driver connected and one query run; + Sluice imported; + a Sluice store opened; + an idle
 *   worker started. Reports rss after each step (and VmHWM).
 *
 * Messages go to the parent on fd 3 (one JSON object a line), so the worker's own stdout (pino's default
 * logger) stays as the application would see it.
 */
import { readdirSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { cpuUsage, memoryUsage } from "node:process";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";

const args = JSON.parse(process.argv[2] ?? "{}");
const require = createRequire(import.meta.url);

/** @param {object} message */
function send(message) {
  writeSync(3, `${JSON.stringify(message)}\n`);
}

/** VmHWM / VmRSS from /proc/self/status, KiB (null where /proc is missing). */
function procStatus() {
  try {
    const text = readFileSync("/proc/self/status", "utf8");
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
    return { hwmKiB: kib("VmHWM"), rssKiB: kib("VmRSS") };
  } catch {
    return { hwmKiB: null, rssKiB: null };
  }
}

/**
 * Resident memory by what it maps (/proc/self/smaps), KiB: the node binary's pages, other files (shared
 * libraries, better-sqlite3's addon), the V8 heap and other anonymous memory (malloc: drivers, SQLite's
 * page cache, thread stacks), so the footprint can be told apart from what any node process holds.
 */
function residentByKind() {
  let text;
  try {
    text = readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return null;
  }
  const out = { nodeBinary: 0, files: 0, anonymous: 0 };
  let kind = "anonymous";
  for (const line of text.split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const name = header[1] ?? "";
      kind = name === process.execPath ? "nodeBinary" : name.startsWith("/") ? "files" : "anonymous";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]);
  }
  return out;
}

/**
 * CPU ms of each thread of this process (/proc/self/task): the main thread (`main`), and every other by
 * its name and id (node 20 names none of its threads: V8's GC helpers, libuv's pool, worker threads).
 */
function cpuByThread() {
  const out = {};
  let tasks;
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    return null;
  }
  const tick = 10; // ms per clock tick (USER_HZ 100)
  for (const task of tasks) {
    try {
      const stat = readFileSync(`/proc/self/task/${task}/stat`, "utf8");
      const name =
        Number(task) === process.pid
          ? "main"
          : `${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}#${task}`;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ms = (Number(fields[11]) + Number(fields[12])) * tick;
      out[name] = (out[name] ?? 0) + ms;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Peaks of the sampled figures (every 50 ms; VmHWM catches the RSS peak between samples). */
const peaks = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
/** Committed size of each V8 heap space (KiB) at the sample of the highest rss. */
let spacesAtPeak = {};
function sample() {
  const m = memoryUsage();
  if (m.rss > peaks.rss) {
    spacesAtPeak = Object.fromEntries(
      getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_size / 1024)]),
    );
  }
  for (const key of Object.keys(peaks)) peaks[key] = Math.max(peaks[key], m[key]);
}

/**
 * Resolves on the parent's `stop` line. A `snapshot` line before it writes a heap snapshot to
 * `args.heapSnapshot` at once (mid-run: what the worker holds while it works) and says `snapshotted`.
 */
function commands() {
  return new Promise((resolve) => {
    let buffer = "";
    const onData = (chunk) => {
      buffer += chunk;
      for (let at = buffer.indexOf("\n"); at !== -1; at = buffer.indexOf("\n")) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 1);
        if (line === "snapshot") {
          send({ type: "snapshotted", file: writeHeapSnapshot(args.heapSnapshot) });
        } else if (line === "stop") {
          process.stdin.off("data", onData);
          process.stdin.pause();
          resolve();
          return;
        }
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
  });
}

/** Builtins and packages this process has loaded (CommonJS cache: every npm package here is CJS). */
function loaded() {
  const packages = new Set();
  for (const file of Object.keys(require.cache)) {
    const at = file.lastIndexOf("node_modules/");
    if (at === -1) continue;
    const parts = file.slice(at + "node_modules/".length).split("/");
    packages.add(parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]);
  }
  const builtins = process.moduleLoadList
    .filter((m) => m.startsWith("NativeModule "))
    .map((m) => m.slice("NativeModule ".length))
    .filter((m) => !m.startsWith("internal/"));
  // Filled by worker-footprint-hooks.mjs in a `--modules` run: every ES module, Sluice's files included.
  const esm = (globalThis.__footprintModules ?? []).filter((url) => !url.startsWith("node:"));
  const root = new URL("..", import.meta.url).href;
  return {
    packages: [...packages].sort(),
    cjsFiles: Object.keys(require.cache).length,
    esm: esm.map((url) => url.replace(root, "")),
    builtins,
  };
}

async function worker() {
  const { Sluice } = await import("../dist/index.js");
  const sampler = setInterval(sample, 50);
  sampler.unref();
  const sluice = new Sluice({ url: args.url });
  sluice.task("footprint", {
    run: (payload) =>
      typeof payload?.ms === "number" ? new Promise((resolve) => setTimeout(resolve, payload.ms)) : null,
  });
  const w = sluice.worker({ concurrency: args.concurrency });
  const stopLine = commands();
  const profiler = args.allocProfile ? await startAllocationProfile() : null;
  const cpu0 = cpuUsage();
  await w.start();
  send({ type: "started" });
  await stopLine;
  const cpu = cpuUsage(cpu0);
  if (profiler) await profiler.stop(args.allocProfile);
  const total = cpuUsage();
  sample();
  const status = procStatus();
  const resident = residentByKind();
  const threads = cpuByThread();
  const heapSpaces = Object.fromEntries(
    getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_used_size / 1024)]),
  );
  const modules = args.modules ? loaded() : undefined;
  await w.stop();
  await sluice.close();
  send({
    type: "result",
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    processCpuMs: (total.user + total.system) / 1000,
    peaks,
    ...status,
    heapSpacesKiB: heapSpaces,
    spacesAtPeakKiB: spacesAtPeak,
    resident,
    threads,
    modules,
  });
}

/**
 * `--alloc`: V8's sampling heap profiler over the run, counting objects that were collected since (the
 * garbage a job leaves is what grows the heap), written to `file` for the parent to summarise.
 */
async function startAllocationProfile() {
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    // "promoted": only what outlived a scavenge (the garbage that grows the old space and new space).
    includeObjectsCollectedByMinorGC: args.allocKind !== "promoted",
  });
  return {
    async stop(file) {
      const { profile } = await session.post("HeapProfiler.stopSampling");
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

async function layers() {
  const steps = [];
  const step = (name) => {
    const m = memoryUsage();
    steps.push({
      step: name,
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      ...procStatus(),
      resident: residentByKind(),
    });
  };
  step("bare node");
  const engine = args.engine;
  if (engine === "sqlite") {
    const Database = require("better-sqlite3");
    step("+ driver imported (better-sqlite3)");
    const db = new Database(args.url.replace(/^sqlite:/, "").replace(/\?.*$/, ""));
    db.prepare("select 1").get();
    db.close();
  } else if (engine === "postgres") {
    const pg = require("pg");
    step("+ driver imported (pg)");
    const client = new pg.Client({ connectionString: args.url.replace(/\?.*$/, "") });
    await client.connect();
    await client.query("select 1");
    await client.end();
  } else {
    const { Redis } = require("ioredis");
    step("+ driver imported (ioredis)");
    const redis = new Redis(args.url.replace(/\?.*$/, ""));
    await redis.ping();
    redis.disconnect();
  }
  step("+ driver connected, one query");
  const { Sluice } = await import("../dist/index.js");
  step("+ sluice imported");
  const sluice = new Sluice({ url: args.url });
  await sluice.store();
  step("+ store opened (migrated)");
  sluice.task("footprint", { run: () => null });
  const w = sluice.worker({ concurrency: args.concurrency });
  await w.start();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  step("+ idle worker started (1 s)");
  const modules = args.modules ? loaded() : undefined;
  await w.stop();
  await sluice.close();
  send({ type: "result", steps, modules });
}

if (args.mode === "layers") await layers();
else await worker();
process.exit(0);
