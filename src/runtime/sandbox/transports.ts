/**
 * How a sandbox is started and how it died: a worker thread (resourceLimits) or a child process
 * (`--max-old-space-size`). Both run entry.js; from the sources (tests, `tsx`) they run entry.ts through
 * tsx, which only the development tree has: dist/ runs under plain node.
 */
import { type ChildProcess, fork } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker as Thread } from "node:worker_threads";
import type { FromSandbox, SandboxBoot, SerializedError, ToSandbox } from "./protocol.js";

/** How a sandbox ended, as its transport saw it. */
export type SandboxExit =
  | { kind: "out-of-memory" }
  | { kind: "signal"; signal: string }
  | { kind: "code"; code: number }
  | { kind: "uncaught"; error: SerializedError };

export interface Transport {
  send(message: ToSandbox): void;
  /** Ends the sandbox now (whatever it is doing). */
  kill(): void;
}

export interface TransportEvents {
  message(message: FromSandbox): void;
  exit(exit: SandboxExit): void;
}

/** entry.ts when this file runs from the sources (under tsx or vitest), entry.js in dist/. */
const FROM_SOURCES = import.meta.url.endsWith(".ts");
const ENTRY = new URL(FROM_SOURCES ? "./entry.ts" : "./entry.js", import.meta.url);

/** tsx's files, resolved from this package (a development dependency: only needed FROM_SOURCES). */
function tsxFile(path: string): string {
  const root = dirname(createRequire(import.meta.url).resolve("tsx/package.json"));
  return pathToFileURL(join(root, path)).href;
}

export function startThread(boot: SandboxBoot, memoryMb: number | null, events: TransportEvents): Transport {
  const resourceLimits = memoryMb === null ? undefined : { maxOldGenerationSizeMb: memoryMb };
  const options = {
    workerData: boot,
    ...(resourceLimits ? { resourceLimits } : {}),
    stdout: false,
    stderr: false,
  };
  // A thread cannot take --import: from the sources, a bootstrap registers tsx, then loads entry.ts.
  const thread = FROM_SOURCES
    ? new Thread(
        `import(${JSON.stringify(tsxFile("dist/esm/api/index.mjs"))}).then((m) => { m.register(); return import(${JSON.stringify(ENTRY.href)}); });`,
        { ...options, eval: true },
      )
    : new Thread(ENTRY, options);
  thread.unref();
  let failure: SandboxExit | null = null;
  thread.on("message", (message: FromSandbox) => events.message(message));
  thread.on("error", (error: Error & { code?: string }) => {
    failure =
      error.code === "ERR_WORKER_OUT_OF_MEMORY"
        ? { kind: "out-of-memory" }
        : {
            kind: "uncaught",
            error: {
              name: error.name,
              message: error.message,
              props: {},
              ...(error.stack ? { stack: error.stack } : {}),
            },
          };
  });
  thread.on("exit", (code) => events.exit(failure ?? { kind: "code", code }));
  return {
    send: (message) => thread.postMessage(message),
    kill: () => void thread.terminate(),
  };
}

/** Most stderr kept from a child process (to tell an out-of-memory from other aborts). */
const STDERR_TAIL = 16_384;

export function startProcess(boot: SandboxBoot, memoryMb: number | null, events: TransportEvents): Transport {
  const execArgv = [
    ...(FROM_SOURCES ? ["--import", tsxFile("dist/loader.mjs")] : []),
    ...(memoryMb === null ? [] : [`--max-old-space-size=${memoryMb}`]),
  ];
  const child: ChildProcess = fork(ENTRY, [JSON.stringify(boot)], {
    execArgv,
    serialization: "advanced",
    stdio: ["ignore", "inherit", "pipe", "ipc"],
  });
  child.unref();
  (child.channel as { unref?: () => void } | undefined)?.unref?.();
  let stderr = "";
  // The handler's stderr still reaches the worker's; the tail tells V8's "heap out of memory" abort apart.
  child.stderr?.on("data", (chunk: Buffer) => {
    process.stderr.write(chunk);
    stderr = (stderr + chunk.toString("utf8")).slice(-STDERR_TAIL);
  });
  (child.stderr as { unref?: () => void } | null)?.unref?.();
  child.on("message", (message: FromSandbox) => events.message(message));
  child.on("error", () => {}); // a failed send to a dead child: its exit is what counts
  // "close" (not "exit"): stderr is fully read by then.
  child.on("close", (code, signal) => {
    if (/heap out of memory|Reached heap limit/.test(stderr)) events.exit({ kind: "out-of-memory" });
    else if (signal) events.exit({ kind: "signal", signal });
    else events.exit({ kind: "code", code: code ?? 0 });
  });
  return {
    send: (message) => {
      if (child.connected) child.send(message);
    },
    kill: () => void child.kill("SIGKILL"),
  };
}
