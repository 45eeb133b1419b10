/**
 * The `sluice` binary the CLI tests run: the package's `bin` (`dist/cli/main.js`), compiled by the package's
 * own build (`tsc -p tsconfig.build.json`) and run with plain `node` — no tsx loader, so a missing `.js`
 * extension, a type-only import used as a value or a broken `bin` path fails here as it would for users.
 *
 * Built once per source state, not once per test file: the output goes to
 * `node_modules/.cache/sluice-cli-test/<hash of src/, tsconfig*.json, package.json>/`, so
 * - parallel test files (vitest forks) share one build: the first takes a lock (an atomic `mkdir`), the
 *   others wait for the finished directory, which appears at once (built in a temporary directory, then
 *   renamed);
 * - a run never rewrites files that another run's children are executing (as rebuilding `dist/` would);
 * - an unchanged tree is not rebuilt at all.
 * Type errors do not stop the build (tsc still emits, as `npm run build` would): they are another
 * concern (`npm run typecheck`), reported once on stderr and in `tsc.log` next to the output.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CACHE = join(ROOT, "node_modules", ".cache", "sluice-cli-test");
/** A lock older than this belongs to a build that died; it is taken over. */
const STALE_LOCK_MS = 120_000;
const run = promisify(execFile);

function files(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Hash of everything the build reads. */
function sourceHash(): string {
  const hash = createHash("sha256");
  const inputs = [
    ...files(join(ROOT, "src")),
    ...["tsconfig.json", "tsconfig.build.json", "package.json"].map((f) => join(ROOT, f)),
  ].sort();
  for (const path of inputs) {
    hash.update(relative(ROOT, path));
    hash.update("\0");
    hash.update(readFileSync(path));
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

/** The `bin` entry of package.json, relative to the build's outDir (`dist`). */
function binInOutDir(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: { sluice: string } };
  return relative("dist", pkg.bin.sluice);
}

async function compile(outDir: string): Promise<void> {
  const tsc = join(ROOT, "node_modules", ".bin", "tsc");
  let log = "";
  try {
    await run(tsc, ["-p", "tsconfig.build.json", "--outDir", outDir, "--declaration", "false"], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    log = `${e.stdout ?? ""}${e.stderr ?? ""}` || e.message;
  }
  if (!existsSync(join(outDir, binInOutDir()))) {
    throw new Error(`building the sluice binary failed (tsc -p tsconfig.build.json):\n${log}`);
  }
  if (log) {
    writeFileSync(join(outDir, "tsc.log"), log);
    const first = log.split("\n").find((l) => l.trim() !== "") ?? "";
    process.stderr.write(
      `[test/cli/build] tsc reported type errors (see npm run typecheck); the emitted JS is used anyway: ${first}\n`,
    );
  }
  // The output lives under node_modules, where Node stops looking for the package's "type": say it here.
  writeFileSync(join(outDir, "package.json"), '{ "type": "module", "private": true }\n');
}

function pruneOld(keep: string): void {
  const cutoff = Date.now() - 2 * 3_600_000; // no test run lasts that long
  for (const name of readdirSync(CACHE)) {
    const path = join(CACHE, name);
    if (path === keep || path === `${keep}.lock`) continue;
    try {
      if (statSync(path).mtimeMs < cutoff) rmSync(path, { recursive: true, force: true });
    } catch {
      // another run removed it
    }
  }
}

/** Builds (or reuses) the binary for the current sources; returns the path of `cli/main.js`. */
export async function builtCli(): Promise<string> {
  const dir = join(CACHE, sourceHash());
  const main = join(dir, binInOutDir());
  const lock = `${dir}.lock`;
  mkdirSync(CACHE, { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (existsSync(main)) return main;
    let locked = false;
    try {
      mkdirSync(lock);
      locked = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      try {
        if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS)
          rmSync(lock, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
    }
    if (locked) {
      try {
        if (existsSync(main)) return main;
        const tmp = `${dir}.tmp-${process.pid}`;
        rmSync(tmp, { recursive: true, force: true });
        await compile(tmp);
        rmSync(dir, { recursive: true, force: true });
        renameSync(tmp, dir);
        pruneOld(dir);
        return main;
      } finally {
        rmSync(lock, { recursive: true, force: true });
      }
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for another test file to build ${dir}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
