/** The tasks a Sluice instance knows, with their validated defaults. */
import type { BackoffOption } from "../core/backoff.js";
import type { JobOptions } from "../core/options.js";
import type { TaskDefinition } from "./task.js";

export interface RegisteredTask {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: the registry holds tasks of every payload and result type
  definition: TaskDefinition<any, any>;
  /** Job option defaults taken from the definition (already validated). */
  defaults: JobOptions;
  /** The definition's backoff (may be a function, which cannot be stored with the job). */
  backoff: BackoffOption | null;
}
