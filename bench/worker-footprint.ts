/**
 * `npm run bench:footprint -- --engine sqlite|postgres|redis [--io] [--count 20000] [--concurrency N]
 * [--modules] [--heap] [--layers]`: what one worker process costs, on the defaults a user gets.
 *
 * The measured worker is a child process (bench/worker-footprint-child.mjs) run by plain `node` on the
 * BUILT code (`dist/`, which the npm script builds first): it imports only the public entry, defines one
 * task and runs `new Sluice({ url }).worker({ concurrency })` — no options. This process (tsx, the
 * producer) pre-enqueues the jobs, watches the store until none is pending, then tells the child to stop;
 * tsx's own memory is never counted.
 *
 * - default: 20,000 pre-enqueued no-op jobs at concurrency 50: peak RSS (VmHWM and the sampled peak),
 *   peak heap used, jobs/s, and worker CPU ms per 1,000 completed jobs.
 * - `--io`: 20,000 jobs each sleeping uniformly 50–500 ms, at concurrency 100: total worker CPU seconds.
 * - `--modules`: also lists what the worker loaded (packages, ES modules, builtins). Runs the child with a
 *   module hook (its own thread), so its memory figures are not the footprint.
 * - `--heap`: also writes a heap snapshot half-way through the jobs (what a worker holds while it works)
 *   and prints the heap by constructor. The snapshot pauses the worker: its rate and CPU are not the footprint.
 * - `--alloc all|promoted`: also samples allocations over the run (V8's sampling heap profiler, collected
 *   objects included) and prints the functions that allocate most; `promoted`: only objects that outlived a
 *   scavenge (what grows the heap). Slows the run: its figures are not the footprint.
 * - `--url-options a=1&b=2`: engine options added to the store URL (e.g. `checkpointMs=0` on SQLite): what a
 *   default costs. The figures are then not those of the defaults.
 * - `--layers`: no run; what each piece costs in one process (bare node, + driver, + driver connected,
 *   + Sluice imported, + store opened, + idle worker).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PENDING_STATES } from "../src/core/job.js";
import { Sluice, silentLogger } from "../src/index.js";
import { benchEngineArg, engineUrl, wholeArg } from "./engines.js";
import { fmt } from "./stats.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "sqlite" },
    io: { type: "boolean", default: false },
    count: { type: "string", default: "20000" },
    concurrency: { type: "string" },
    modules: { type: "boolean", default: false },
    heap: { type: "boolean", default: false },
    layers: { type: "boolean", default: false },
    alloc: { type: "string" },
    "url-options": { type: "string" },
  },
});
const engine = benchEngineArg(values.engine);
const count = wholeArg("count", values.count, 1, 200_000);
const concurrency = wholeArg("concurrency", values.concurrency ?? (values.io ? "100" : "50"), 1, 1_000);
/** Longest a run may take before it reports what it reached. */
const DEADLINE_MS = values.io ? 600_000 : 300_000;
/** How often this process asks the store whether jobs are pending (its own connection, not the worker's). */
const WATCH_MS = values.io ? 250 : 50;

const CHILD = fileURLToPath(new URL("./worker-footprint-child.mjs", import.meta.url));
const HOOKS = fileURLToPath(new URL("./worker-footprint-hooks.mjs", import.meta.url));
const DIST = fileURLToPath(new URL("../dist/index.js", import.meta.url));

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const kibMiB = (kib: number | null) => (kib === null ? "n/a" : `${(kib / 1024).toFixed(1)} MiB`);

interface Child {
  messages: AsyncIterator<string>;
  stdin: NodeJS.WritableStream;
  exited: Promise<number | null>;
}

function startChild(args: object, nodeFlags: string[] = []): Child {
  // FOOTPRINT_NODE_FLAGS: node flags for the child, for diagnosis only (`--trace-gc`, `--cpu-prof`).
  const extra = process.env.FOOTPRINT_NODE_FLAGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...extra, ...nodeFlags, CHILD, JSON.stringify(args)], {
    stdio: ["pipe", "inherit", "inherit", "pipe"],
  });
  const fd3 = child.stdio[3] as NodeJS.ReadableStream;
  return {
    messages: createInterface({ input: fd3 })[Symbol.asyncIterator](),
    stdin: child.stdin as NodeJS.WritableStream,
    exited: new Promise((resolve) => child.once("exit", resolve)),
  };
}

async function message<T>(child: Child, type: string): Promise<T> {
  for (;;) {
    const next = await child.messages.next();
    if (next.done) throw new Error(`worker child exited before sending "${type}"`);
    const parsed = JSON.parse(next.value) as { type: string };
    if (parsed.type === type) return parsed as T;
  }
}

/** Bare `node`: the floor every worker process starts from. */
async function bareNode(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "process.stdout.write(String(process.memoryUsage().rss))"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  await new Promise((resolve) => child.once("exit", resolve));
  return Number(out);
}

interface WorkerResult {
  cpuUserMs: number;
  cpuSystemMs: number;
  processCpuMs: number;
  peaks: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  hwmKiB: number | null;
  rssKiB: number | null;
  heapSpacesKiB: Record<string, number>;
  spacesAtPeakKiB: Record<string, number>;
  resident: { nodeBinary: number; files: number; anonymous: number } | null;
  /** CPU ms by thread name, over the whole process life. */
  threads: Record<string, number> | null;
  modules?: { packages: string[]; cjsFiles: number; esm: string[]; builtins: string[] };
}

interface LayerResult {
  steps: {
    step: string;
    rss: number;
    heapUsed: number;
    external: number;
    hwmKiB: number | null;
    resident: WorkerResult["resident"];
  }[];
  modules?: WorkerResult["modules"];
}

function printModules(modules: WorkerResult["modules"]): void {
  if (!modules) return;
  console.log(`packages loaded (CommonJS): ${modules.packages.join(", ") || "none"}`);
  console.log(`CommonJS files: ${modules.cjsFiles}`);
  console.log(`ES modules (${modules.esm.length}):\n  ${modules.esm.join("\n  ")}`);
  console.log(`builtins: ${modules.builtins.join(", ")}`);
}

/**
 * The heap by constructor from a V8 heap snapshot (self sizes; the top `top`). The snapshot format: a flat
 * `nodes` array of `node_fields`-sized records, names in `strings`.
 */
function heapByConstructor(file: string, top = 25): void {
  const snapshot = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const sizes = new Map<string, { size: number; count: number }>();
  let total = 0;
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt] as number] ?? "?";
    const size = snapshot.nodes[i + sizeAt] as number;
    total += size;
    // Objects by constructor name; everything else by its type (strings, code, arrays, closures…).
    const key =
      type === "object" || type === "native"
        ? `${type}: ${snapshot.strings[snapshot.nodes[i + nameAt] as number]}`
        : `(${type})`;
    const entry = sizes.get(key) ?? { size: 0, count: 0 };
    entry.size += size;
    entry.count++;
    sizes.set(key, entry);
  }
  console.log(`heap snapshot: ${mib(total)} in ${snapshot.nodes.length / width} nodes; top by self size:`);
  for (const [key, { size, count }] of [...sizes].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
    console.log(`  ${mib(size).padStart(10)}  ${String(count).padStart(7)}  ${key.slice(0, 90)}`);
  }
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** The sampled allocations by allocating function (self size), the top `top`; the ones under Sluice marked. */
function allocationSites(file: string, top = 30): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as { head: ProfileNode };
  const sites = new Map<string, number>();
  let total = 0;
  const visit = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, "$1/");
    const key = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`;
    sites.set(key, (sites.get(key) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const child of node.children) visit(child);
  };
  visit(profile.head);
  console.log(`allocations sampled over the run: ${mib(total)}; top allocating functions (self):`);
  for (const [key, size] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `  ${mib(size).padStart(10)}  ${`${((size / total) * 100).toFixed(1)} %`.padStart(7)}  ${key}`,
    );
  }
  // The same by call stack (the allocating function and its three callers), for the sites above.
  const stacks = new Map<string, number>();
  const walk = (node: ProfileNode, path: string[]) => {
    const frame = `${node.callFrame.functionName || "(anonymous)"}:${node.callFrame.lineNumber + 1}`;
    const here = [...path, frame];
    if (node.selfSize > 0) {
      const key = here.slice(-4).reverse().join(" < ");
      stacks.set(key, (stacks.get(key) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, []);
  console.log("top allocating stacks (function < callers):");
  for (const [key, size] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`  ${mib(size).padStart(10)}  ${key}`);
  }
}

async function layers(url: string): Promise<void> {
  const bare = await bareNode();
  const child = startChild(
    { mode: "layers", url, engine, concurrency, modules: values.modules },
    values.modules ? ["--import", HOOKS] : [],
  );
  const result = await message<LayerResult>(child, "result");
  await child.exited;
  console.log(`bare \`node -e\`: rss ${mib(bare)}`);
  let previous = result.steps[0]?.rss ?? 0;
  for (const s of result.steps) {
    console.log(
      `${s.step.padEnd(40)} rss ${mib(s.rss).padStart(10)} (${s.rss >= previous ? "+" : ""}${mib(s.rss - previous)})` +
        `  heap used ${mib(s.heapUsed)}  VmHWM ${kibMiB(s.hwmKiB)}` +
        (s.resident
          ? `  (node binary ${kibMiB(s.resident.nodeBinary)}, files ${kibMiB(s.resident.files)}, anonymous ${kibMiB(s.resident.anonymous)})`
          : ""),
    );
    previous = s.rss;
  }
  printModules(result.modules);
}

async function run(url: string): Promise<void> {
  const producer = new Sluice({ url, logger: silentLogger() });
  const task = producer.task("footprint");
  // I/O mode: sleeps uniform in 50–500 ms, from a fixed seed so every run sleeps the same total.
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let slept = 0;
  for (let n = 0; n < count; n += 1_000) {
    const items = Array.from({ length: Math.min(1_000, count - n) }, (_, i) => {
      if (!values.io) return { payload: { n: n + i } };
      const ms = 50 + Math.floor(random() * 451);
      slept += ms;
      return { payload: { n: n + i, ms } };
    });
    await task.enqueueMany(items);
  }
  const pending = async () => {
    const queue = (await producer.admin.queues()).find((q) => q.queue === "default");
    return queue ? PENDING_STATES.reduce((sum, state) => sum + queue.counts[state], 0) : 0;
  };
  const snapshotFile = values.heap ? join(tmpdir(), `sluice-footprint-${process.pid}.heapsnapshot`) : null;
  const allocFile =
    values.alloc !== undefined ? join(tmpdir(), `sluice-footprint-${process.pid}.heapprofile`) : null;
  const child = startChild(
    {
      mode: "worker",
      url,
      concurrency,
      modules: values.modules,
      heapSnapshot: snapshotFile,
      allocProfile: allocFile,
      allocKind: values.alloc,
    },
    values.modules ? ["--import", HOOKS] : [],
  );
  await message(child, "started");
  const started = performance.now();
  const deadline = started + DEADLINE_MS;
  let left = count;
  let snapshot: string | null = null;
  while (performance.now() < deadline) {
    left = await pending();
    if (left === 0) break;
    if (snapshotFile && snapshot === null && left <= count / 2) {
      child.stdin.write("snapshot\n");
      snapshot = (await message<{ file: string }>(child, "snapshotted")).file;
    }
    await new Promise((resolve) => setTimeout(resolve, WATCH_MS));
  }
  const seconds = (performance.now() - started) / 1_000;
  child.stdin.write("stop\n");
  const result = await message<WorkerResult>(child, "result");
  await child.exited;
  await producer.close();

  const done = count - left;
  const cpuMs = result.cpuUserMs + result.cpuSystemMs;
  const title = values.io
    ? `${engine}: ${count} jobs sleeping 50–500 ms (mean ${fmt(slept / count)} ms), concurrency ${concurrency}, defaults`
    : `${engine}: ${count} no-op jobs, concurrency ${concurrency}, defaults`;
  console.log(title);
  if (left > 0) console.log(`  DEADLINE: ${left} jobs still pending after ${DEADLINE_MS / 1_000} s`);
  console.log(`  completed            ${done} in ${seconds.toFixed(2)} s (${fmt(done / seconds)} jobs/s)`);
  console.log(`  peak RSS (VmHWM)     ${kibMiB(result.hwmKiB)}   sampled peak ${mib(result.peaks.rss)}`);
  console.log(
    `  peak heap used       ${mib(result.peaks.heapUsed)}  (heap total ${mib(result.peaks.heapTotal)}, external ${mib(result.peaks.external)}, array buffers ${mib(result.peaks.arrayBuffers)})`,
  );
  console.log(
    `  worker CPU           ${(cpuMs / 1_000).toFixed(2)} s (user ${(result.cpuUserMs / 1_000).toFixed(2)}, system ${(result.cpuSystemMs / 1_000).toFixed(2)}); ` +
      `${fmt((cpuMs / done) * 1_000)} ms per 1,000 jobs; whole process ${(result.processCpuMs / 1_000).toFixed(2)} s`,
  );
  console.log(
    `  heap spaces (KiB)    ${Object.entries(result.heapSpacesKiB)
      .filter(([, kib]) => kib > 0)
      .map(([space, kib]) => `${space.replace(/_space$/, "")} ${kib}`)
      .join(", ")}`,
  );
  console.log(
    `  heap committed at the rss peak (KiB): ${Object.entries(result.spacesAtPeakKiB)
      .filter(([, kib]) => kib > 0)
      .map(([space, kib]) => `${space.replace(/_space$/, "")} ${kib}`)
      .join(", ")}`,
  );
  if (result.resident) {
    const r = result.resident;
    console.log(
      `  resident at the end  node binary ${kibMiB(r.nodeBinary)}, other files ${kibMiB(r.files)}, anonymous (V8 heap, malloc, stacks) ${kibMiB(r.anonymous)}`,
    );
  }
  if (result.threads) {
    console.log(
      `  CPU by thread (ms)   ${Object.entries(result.threads)
        .sort((a, b) => b[1] - a[1])
        .map(([name, ms]) => `${name} ${ms}`)
        .join(", ")}`,
    );
  }
  if (values.modules)
    console.log("  (--modules: a module hook thread ran in the child; memory above is not the footprint)");
  printModules(result.modules);
  if (allocFile) {
    allocationSites(allocFile);
    rmSync(allocFile, { force: true });
  }
  if (snapshot) {
    heapByConstructor(snapshot);
    rmSync(snapshot, { force: true });
  }
}

if (!existsSync(DIST)) {
  process.stderr.write("dist/ is missing: run `npm run build` (npm run bench:footprint does)\n");
  process.exit(2);
}
const builtAt = statSync(DIST).mtimeMs;
if (Date.now() - builtAt > 3_600_000) {
  process.stderr.write(`note: dist/ was built ${fmt((Date.now() - builtAt) / 60_000)} minutes ago\n`);
}
const isolated = engineUrl(engine);
const { cleanup } = isolated;
// --url-options a=1&b=2: engine options added to the store URL (diagnosis: what a default costs).
const extra = values["url-options"];
const url = extra ? `${isolated.url}${isolated.url.includes("?") ? "&" : "?"}${extra}` : isolated.url;
if (extra) console.log(`store URL options: ${extra} (not the defaults)`);
try {
  if (values.layers) await layers(url);
  else await run(url);
} finally {
  await cleanup();
}
