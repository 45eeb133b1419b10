/**
 * A sandboxed task's handler where no sandbox runs it: inline mode (`inline:`) and `Task.runNow` import
 * its module into this process and call it directly (they exist for tests and rollback, where isolation
 * is not the point and a thread per job would only slow them down).
 */
import { ValidationError } from "../../core/errors.js";
import type { HandlerSource, TaskContext } from "../../core/task.js";

type Handler = (payload: unknown, ctx: TaskContext) => unknown;

/** A `run` that loads the module's handler on first use. */
export function inProcessHandler(task: string, source: Extract<HandlerSource, { module: string }>): Handler {
  let loaded: Promise<Handler> | null = null;
  const load = async (): Promise<Handler> => {
    const handler = ((await import(source.module)) as Record<string, unknown>)[source.export];
    if (typeof handler !== "function") {
      throw new ValidationError(
        "INVALID_OPTION",
        `task "${task}": sandbox.module ${source.module} has no export "${source.export}" that is a function`,
        { field: "task.sandbox.export" },
      );
    }
    return handler as Handler;
  };
  return async (payload, ctx) => {
    loaded ??= load();
    loaded.catch(() => {
      loaded = null; // try again next time (the module may be fixed and the process restarted meanwhile)
    });
    return (await loaded)(payload, ctx);
  };
}
