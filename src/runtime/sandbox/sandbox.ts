/**
 * One sandbox: a thread or a child process that loads a task's handler once and runs its jobs one at a
 * time. It answers the handler's `ctx` calls with the worker's real context, and turns the sandbox's death
 * into a typed error (out of memory, crashed) for the job it was running.
 */
import { SandboxCrashedError, SandboxMemoryError, SluiceError, ValidationError } from "../../core/errors.js";
import type { JobRecord } from "../../core/job.js";
import type { ResolvedSandbox, TaskContext } from "../../core/task.js";
import {
  FORWARDED,
  type FromSandbox,
  reviveError,
  type SerializedError,
  serializeError,
} from "./protocol.js";
import { type SandboxExit, startProcess, startThread, type Transport } from "./transports.js";

/** How a run in a sandbox ended: the handler settled, or the sandbox died (killed: by us, on purpose). */
export type SandboxOutcome = { ok: true; value: unknown } | { ok: false; error: unknown; died: boolean };

interface Current {
  ctx: TaskContext;
  settle(outcome: SandboxOutcome): void;
}

export class Sandbox {
  /** Jobs started in this sandbox (for recycleAfter). */
  jobs = 0;
  /** Settles when the sandbox has loaded its handler; rejects when it could not. */
  readonly ready: Promise<void>;
  dead = false;
  private readonly transport: Transport;
  private current: Current | null = null;
  private fatal: SerializedError | null = null;
  private killed = false;
  private loaded!: { resolve: () => void; reject: (error: unknown) => void };
  private readonly exited: Promise<void>;
  private markExited!: () => void;

  constructor(
    private readonly task: string,
    private readonly config: ResolvedSandbox,
    /** Called once when the sandbox is gone (the pool forgets it). */
    private readonly onDead: (sandbox: Sandbox) => void,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.loaded = { resolve, reject };
    });
    this.ready.catch(() => {}); // observed by whoever runs a job here
    this.exited = new Promise((resolve) => {
      this.markExited = resolve;
    });
    const start = config.kind === "thread" ? startThread : startProcess;
    this.transport = start({ source: config.source }, config.memoryMb, {
      message: (message) => this.onMessage(message),
      exit: (exit) => this.onExit(exit),
    });
  }

  /** Runs one job; settles when the handler does or the sandbox dies. */
  run(job: JobRecord, payload: unknown, ctx: TaskContext): Promise<SandboxOutcome> {
    if (this.dead) throw new SluiceError("CLOSED", "sandbox is gone");
    this.jobs += 1;
    return new Promise<SandboxOutcome>((settle) => {
      this.current = { ctx, settle };
      this.transport.send({ t: "run", job, payload });
    });
  }

  /** Forwards an abort to the handler's `ctx.signal`. */
  abort(reason: unknown): void {
    if (!this.dead) this.transport.send({ t: "abort", reason: serializeError(reason) });
  }

  /** Ends the sandbox now; a job running in it settles as died. Resolves when it is gone. */
  kill(): Promise<void> {
    if (!this.dead) {
      this.killed = true;
      this.transport.kill();
    }
    return this.exited;
  }

  private onMessage(message: FromSandbox): void {
    switch (message.t) {
      case "ready":
        this.loaded.resolve();
        return;
      case "load-failed":
        // The module is missing an export, throws at load, or cannot be found: a definition problem.
        this.loaded.reject(
          new ValidationError(
            "INVALID_OPTION",
            `task "${this.task}": its sandbox could not load the handler: ${message.error.message}`,
            { field: "task.sandbox.module" },
          ),
        );
        void this.kill();
        return;
      case "fatal":
        this.fatal = message.error;
        return;
      case "done": {
        const current = this.current;
        this.current = null;
        current?.settle(
          message.ok
            ? { ok: true, value: message.value }
            : { ok: false, error: reviveError(message.error), died: false },
        );
        return;
      }
      case "call": {
        const ctx = this.current?.ctx;
        const method = (FORWARDED as readonly string[]).includes(message.method) ? message.method : null;
        const reply = (result: { ok: true; value: unknown } | { ok: false; error: unknown }) => {
          if (this.dead) return;
          try {
            this.transport.send(
              result.ok
                ? { t: "reply", id: message.id, ok: true, value: result.value }
                : { t: "reply", id: message.id, ok: false, error: serializeError(result.error) },
            );
          } catch (error) {
            this.transport.send({ t: "reply", id: message.id, ok: false, error: serializeError(error) });
          }
        };
        if (!ctx || !method) {
          reply({ ok: false, error: new Error(`ctx.${message.method} called after the job ended`) });
          return;
        }
        const fn = ctx[method] as (...args: unknown[]) => Promise<unknown>;
        Promise.resolve()
          .then(() => fn(...message.args))
          .then(
            (value) => reply({ ok: true, value }),
            (error: unknown) => reply({ ok: false, error }),
          );
        return;
      }
    }
  }

  private onExit(exit: SandboxExit): void {
    if (this.dead) return;
    this.dead = true;
    const error = this.killed ? null : this.describe(exit);
    this.loaded.reject(error ?? new SandboxCrashedError(this.task, "killed before it loaded its handler"));
    const current = this.current;
    this.current = null;
    current?.settle({ ok: false, error, died: true });
    this.onDead(this);
    this.markExited();
  }

  private describe(exit: SandboxExit): Error {
    if (exit.kind === "out-of-memory") return new SandboxMemoryError(this.task, this.config.memoryMb);
    const fatal = this.fatal ?? (exit.kind === "uncaught" ? exit.error : null);
    if (fatal || exit.kind === "uncaught") {
      const error = fatal ?? (exit as { error: SerializedError }).error;
      return new SandboxCrashedError(this.task, `uncaught ${error.name}: ${error.message}`);
    }
    if (exit.kind === "signal") return new SandboxCrashedError(this.task, exit.signal);
    return new SandboxCrashedError(
      this.task,
      `${this.config.kind === "thread" ? "thread" : "process"} exited with code ${exit.code}`,
    );
  }
}
