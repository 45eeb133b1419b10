/**
 * Errors the CLI raises itself. Exit codes: 0 success, 1 failure, 2 usage error (bad flags, bad `--where`,
 * bad config file, refusing a destructive command without `--yes` when it cannot ask).
 */

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
