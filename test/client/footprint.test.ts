/**
 * What a worker process loads (bench/worker-footprint.ts measures what it costs): the public entry of the
 * built package, on SQLite, running a worker, loads the driver of its engine and nothing optional — not the
 * other engines' drivers, not pino (the default logger writes pino's lines itself), not croner (no cron
 * schedule was evaluated), not the sandbox code or child_process (no task runs in a sandbox).
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { builtCli } from "../cli/build.js";
import { isolatedStore } from "../support/engines/index.js";

const BUILD = dirname(dirname(await builtCli())); // the package build's outDir (…/index.js)
const HOOKS = fileURLToPath(new URL("../../bench/worker-footprint-hooks.mjs", import.meta.url));

const CHILD = `
import { createRequire } from "node:module";
const { Sluice } = await import(process.env.ENTRY);
const sluice = new Sluice({ url: process.env.URL });
let ran = 0;
sluice.task("t", { run: () => { ran++; return null; } });
await sluice.enqueue("t", {});
const worker = sluice.worker({ concurrency: 2 });
await worker.start();
const deadline = Date.now() + 20_000;
while (ran === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
await worker.stop();
await sluice.close();
process.stdout.write(JSON.stringify({
  ran,
  esm: globalThis.__footprintModules,
  cjs: Object.keys(createRequire(import.meta.url).cache),
  builtins: process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")),
}));
`;

function run(url: string): Promise<{ ran: number; esm: string[]; cjs: string[]; builtins: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", HOOKS, "--input-type=module", "-e", CHILD], {
      env: { ...process.env, ENTRY: join(BUILD, "index.js"), URL: url, SLUICE_LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
      else resolve(JSON.parse(out.slice(out.indexOf("{"))));
    });
  });
}

describe("worker footprint", () => {
  const store = isolatedStore("sqlite", "footprint");
  afterAll(() => store.dispose());

  it("a SQLite worker on defaults loads its driver and nothing optional", async () => {
    const loaded = await run(store.url);
    expect(loaded.ran).toBe(1);
    const files = [...loaded.esm, ...loaded.cjs];
    expect(files.some((f) => f.includes("/better-sqlite3/"))).toBe(true);
    for (const unwanted of [
      "/pino/",
      "/croner/",
      "/ioredis/",
      "/pg/",
      "/hono/",
      "/commander/",
      "/yaml/",
      "/runtime/sandbox/pool.js",
      "/runtime/sandbox/run.js",
      "/runtime/sandbox/transports.js",
      "/cli/",
      "/http/",
    ]) {
      expect(
        files.filter((f) => f.includes(unwanted)),
        `loaded ${unwanted}`,
      ).toEqual([]);
    }
    expect(loaded.builtins).not.toContain("NativeModule child_process");
  });
});
