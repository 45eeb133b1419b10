/**
 * A worker's sandboxes, one pool per sandboxed task. A job takes an idle sandbox of its task or starts
 * one, so a pool never holds more sandboxes than the worker runs jobs of that task at once (its
 * concurrency). A sandbox goes back idle after its job unless it died, was killed, or has run
 * `recycleAfter` jobs (then it is replaced by the next job's). `stop()` ends them all (worker.stop).
 */
import { SluiceError } from "../../core/errors.js";
import type { ResolvedSandbox } from "../../core/task.js";
import { Sandbox } from "./sandbox.js";

export class SandboxPools {
  private readonly idle = new Map<string, Sandbox[]>();
  private readonly all = new Set<Sandbox>();
  private stopped = false;

  /** An idle sandbox of `task`, or a new one once it has loaded the handler (rejects when it cannot). */
  async acquire(task: string, config: ResolvedSandbox): Promise<Sandbox> {
    if (this.stopped) throw new SluiceError("CLOSED", "the worker's sandboxes are stopped");
    const idle = this.idle.get(task)?.pop();
    if (idle) return idle;
    const sandbox = new Sandbox(task, config, (gone) => {
      this.all.delete(gone);
      const list = this.idle.get(task);
      if (list?.includes(gone)) list.splice(list.indexOf(gone), 1);
    });
    this.all.add(sandbox);
    await sandbox.ready;
    return sandbox;
  }

  /** Gives a sandbox back after its job: idle again, or ended (dead, stopped, or recycled). */
  release(task: string, config: ResolvedSandbox, sandbox: Sandbox): void {
    if (sandbox.dead) return;
    if (this.stopped || (config.recycleAfter !== null && sandbox.jobs >= config.recycleAfter)) {
      void sandbox.kill();
      return;
    }
    const list = this.idle.get(task) ?? [];
    list.push(sandbox);
    this.idle.set(task, list);
  }

  /** Sandboxes alive now (idle or running a job). */
  get size(): number {
    return this.all.size;
  }

  /** Ends every sandbox (a job still running in one settles as aborted by the worker). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.idle.clear();
    await Promise.all([...this.all].map((sandbox) => sandbox.kill()));
  }
}
