#!/usr/bin/env node
/**
 * Adds package-lock.json entries for other platforms' optional binaries (Biome's CLI builds, msgpackr's
 * native addon) when the registry this machine uses does not carry them. npm then leaves them out of the
 * lock, and `npm ci` refuses a lock that lacks any optional dependency, even one it would skip on this
 * platform. Each added entry names its os / cpu / libc, so `npm ci` skips it here without fetching it.
 *
 * Run after `npm install` changes the lock: `node scripts/lock-platform-entries.mjs`. Idempotent.
 */
import { readFileSync, writeFileSync } from "node:fs";

const LOCK = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, "utf8"));
const packages = lock.packages;

/** os / cpu / libc from a platform package name such as cli-linux-arm64-musl or msgpackr-extract-win32-x64. */
function platformOf(name) {
  const match = /-(android|darwin|linux|win32|freebsd)-(x64|arm64|arm|ia32)(-musl)?$/.exec(name);
  if (!match) return null;
  const [, os, cpu, musl] = match;
  return { os: [os], cpu: [cpu], ...(os === "linux" ? { libc: [musl ? "musl" : "glibc"] } : {}) };
}

let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  if (!path.startsWith("node_modules/") || !entry.optionalDependencies) continue;
  for (const [dep, version] of Object.entries(entry.optionalDependencies)) {
    const key = `node_modules/${dep}`;
    if (packages[key]) continue;
    const platform = platformOf(dep);
    if (!platform) continue; // not a platform binary: a genuinely missing dependency is npm's to report
    packages[key] = {
      version,
      ...platform,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
    };
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))),
);
lock.packages = sorted;
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`lock-platform-entries: added ${added} entr${added === 1 ? "y" : "ies"}\n`);
