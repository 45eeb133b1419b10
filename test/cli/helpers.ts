/**
 * Test plumbing for the CLI: store URLs for every engine (each isolated and cleaned up), and the real
 * `sluice` binary — the package's compiled `bin`, built once per run (./build.ts) — run as a child process
 * with plain `node`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { EngineName } from "../../src/store/index.js";
import { ENGINE_NAMES, type IsolatedStore, isolatedStore } from "../support/engines/index.js";
import { until as waitUntil } from "../support/wait.js";
import { builtCli } from "./build.js";

/** Every engine, in the order of the engine list (src/store/index.ts). */
export const ENGINES = ENGINE_NAMES;
export type Engine = EngineName;

/** A fresh, isolated store URL for `engine`; `dispose` removes what the test left behind. */
export type TestStore = IsolatedStore;

/** Creates an isolated store location for `engine` (nothing is opened here). */
export function testStore(engine: Engine): TestStore {
  return isolatedStore(engine, "cli");
}

/** The compiled `sluice` binary (`cli/main.js` of the package build), built before any test runs. */
export const CLI = await builtCli();

/** Output of one CLI run. */
export interface CliResult {
  code: number | null;
  /** The signal that ended the process, or null when it exited with a code. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of a CLI run. */
export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to stdin, which is then closed. */
  input?: string;
  timeoutMs?: number;
}

function env(extra: CliOptions["env"]): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete base.SLUICE_URL;
  delete base.FORCE_COLOR;
  delete base.SLUICE_LOG_LEVEL;
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** Starts `sluice <args>` and returns the child (for long-running commands such as `worker`). */
export function spawnCli(args: readonly string[], options: CliOptions = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: env(options.env),
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Runs `sluice <args>` to completion. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  return collect(child, options);
}

/** Collects a child's output until it exits (killing it after `timeoutMs`). */
export function collect(child: ChildProcess, options: CliOptions = {}): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin?.end(options.input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Polls until truthy with a deadline (15 s by default here: CLI children start slowly under load). */
export function until<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  return waitUntil(what, check, timeoutMs, 25);
}

/** Resolves when `child` has printed a line matching `pattern` on stdout or stderr. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern} in child output:\n${seen}`)),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = pattern.exec(seen);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.stderr?.off("data", onData);
        resolve(m[0]);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
  });
}

/** Resolves with the exit code (or signal) of `child`. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Path of a test fixture in this folder. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}
