/** Shared plumbing for the conformance suite: one store URL per engine, fresh queues per test, cleanup. */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll } from "vitest";
import { Sluice, type SluiceOptions, silentLogger } from "../../src/index.js";
import type { EngineHarness } from "./harness.js";

export interface ConformanceContext {
  readonly harness: EngineHarness;
  /** The engine URL shared by this suite run. */
  url(): string;
  /** A Sluice on the suite's store, closed after the test. */
  sluice(options?: Omit<SluiceOptions, "url">): Sluice;
  /** A queue name no other test uses. */
  queue(label?: string): string;
  /** Spawns `test/fixtures/worker-process.ts` on the suite's store; killed after the test if still running. */
  spawnWorker(args: WorkerProcessArgs): WorkerProcess;
}

export interface WorkerProcessArgs {
  queue: string;
  /** `hang`: every job waits forever (until aborted). `record`: jobs complete at once and their ids are reported. */
  mode: "hang" | "record" | "timed";
  concurrency?: number;
  leaseMs?: number;
  /** Safety poll period; a huge value proves wake-ups arrive without polling. */
  pollMs?: number;
  /** Jobs of `queue` the process enqueues itself once its worker runs (a few at a time), then prints `produced`. */
  produce?: number;
  /** The worker's prefetch (jobs claimed ahead of free slots). */
  prefetch?: number;
}

export interface WorkerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves with the first stdout line starting with `prefix` (rest of the line). */
  waitFor(prefix: string, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

const FIXTURE = fileURLToPath(new URL("../fixtures/worker-process.ts", import.meta.url));
let counter = 0;

export function createContext(harness: EngineHarness): ConformanceContext {
  let url = "";
  const open: Sluice[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    url = await harness.newUrl();
  });
  afterEach(async () => {
    // A child still running is told to stop at once (SIGINT: no grace), so it gives up the maintenance
    // leadership and its registry entry instead of leaving them to expire under the next test; one that
    // does not exit in time is killed.
    await Promise.all(children.splice(0).map((child) => stopChild(child)));
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    if (url) await harness.cleanup(url);
  });

  return {
    harness,
    url: () => url,
    sluice(options = {}) {
      const sluice = new Sluice({ url, logger: silentLogger(), ...options });
      open.push(sluice);
      return sluice;
    },
    queue(label = "q") {
      counter++;
      return `${label}_${process.pid}_${counter}`;
    },
    spawnWorker(args) {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", FIXTURE, JSON.stringify({ url, concurrency: 1, leaseMs: 30_000, ...args })],
        { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, SLUICE_LOG_LEVEL: "warn" } },
      );
      children.push(child);
      const lines: string[] = [];
      const waiters: { prefix: string; resolve: (rest: string) => void }[] = [];
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      createInterface({ input: child.stdout }).on("line", (line) => {
        lines.push(line);
        for (const w of [...waiters]) {
          if (line.startsWith(w.prefix)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line.slice(w.prefix.length));
          }
        }
      });
      const exited = new Promise<number | string>((resolve) => {
        child.on("exit", (code, signal) => resolve(code ?? signal ?? -1));
      });
      return {
        child,
        exited,
        waitFor(prefix, timeoutMs = 30_000) {
          const seen = lines.find((l) => l.startsWith(prefix));
          if (seen !== undefined) return Promise.resolve(seen.slice(prefix.length));
          return new Promise<string>((resolve, reject) => {
            const timer = setTimeout(
              () =>
                reject(
                  new Error(
                    `worker process never printed "${prefix}" within ${timeoutMs} ms; stderr:\n${stderr}`,
                  ),
                ),
              timeoutMs,
            );
            waiters.push({
              prefix,
              resolve: (rest) => {
                clearTimeout(timer);
                resolve(rest);
              },
            });
            void exited.then((code) => {
              clearTimeout(timer);
              reject(
                new Error(`worker process exited (${code}) before printing "${prefix}"; stderr:\n${stderr}`),
              );
            });
          });
        },
      };
    },
  };
}

/** How long a child asked to stop after a test may take before it is killed. */
const CHILD_STOP_MS = 5_000;

async function stopChild(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGINT");
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), CHILD_STOP_MS);
  });
  if ((await Promise.race([exited, late])) === "late") {
    child.kill("SIGKILL");
    await exited;
  }
  clearTimeout(timer);
}

export { deferred, until } from "../support/wait.js";
