/**
 * Errors the CLI raises itself. Exit codes: 0 success, 1 failure, 2 usage error (bad flags, bad `--where`,
 * bad config file, refusing a destructive command without `--yes` when it cannot ask).
 */
import { SluiceError, ValidationError } from "../index.js";

/** Wrong usage: the command line or a config file must change. Exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The command ran but did not do what was asked (interrupted, unsupported, partial). Exit code 1. */
export class CommandFailed extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = "CommandFailed";
  }
}

/** Job ids given on the command line that name no job (`JOB_NOT_FOUND`, exit 1); nothing was changed. */
export class JobsNotFoundError extends SluiceError {
  constructor(
    readonly missing: readonly string[],
    action: string,
  ) {
    super(
      "JOB_NOT_FOUND",
      `no job with id ${missing
        .slice(0, 5)
        .map((id) => `"${id}"`)
        .join(", ")}${missing.length > 5 ? ` and ${missing.length - 5} more` : ""}` +
        ` (deleted, pruned by retention, or a typo); nothing was changed. ` +
        `Check the ids with: sluice jobs list, then run ${action} again with existing ones`,
    );
    this.name = "JobsNotFoundError";
  }
}

/** Queue names the library accepts: 1 to 128 letters, digits, `_`, `.`, `:` or `-`. */
export const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Checks a queue name given on the command line before anything is read or changed; throws
 * ValidationError `INVALID_OPTION` (exit 2) naming the flag and the rule.
 */
export function checkQueueName(name: string, what: string): string {
  if (QUEUE_NAME.test(name)) return name;
  throw new ValidationError(
    "INVALID_OPTION",
    `${what}: ${JSON.stringify(name)} is not a queue name; use 1 to 128 letters, digits, "_", ".", ":" or "-"`,
    { field: what },
  );
}
