/** Library version, recorded in the worker registry (mixed fleets during a rolling deploy) and shown by the CLI. */
export const VERSION = "0.1.0";
