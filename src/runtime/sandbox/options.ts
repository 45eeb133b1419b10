/**
 * Validation of a task's `sandbox` option (and of the worker config file's `sandbox:` entries, which use
 * the same rules): typed INVALID_OPTION errors at task definition. What cannot be known without loading
 * the module — that it exports a function — is checked by the sandbox at the first run (the attempt fails
 * with INVALID_OPTION saying so); loading a handler's module in the worker would defeat the sandbox.
 */
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describeValue } from "../../core/duration.js";
import { ValidationError } from "../../core/errors.js";
import type { HandlerSource, ResolvedSandbox } from "../../core/task.js";

export const SANDBOX_KINDS = ["thread", "process"] as const;
const FIELDS = ["kind", "module", "export", "memoryMb", "recycleAfter"] as const;

/**
 * Validates `value` (a task's `sandbox`, or a config file entry when `source` is given instead of a
 * module) and resolves it. `field` prefixes the error's field (`task.sandbox`).
 */
export function validateSandbox(value: unknown, field: string, source?: HandlerSource): ResolvedSandbox {
  const fail = (key: string, message: string): never => {
    throw new ValidationError("INVALID_OPTION", `${field}.${key} ${message}`, { field: `${field}.${key}` });
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `${field} must be { kind: "thread" | "process", module, export?, memoryMb?, recycleAfter? }; got ${describeValue(value)}`,
      { field },
    );
  }
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      fail(key, `is not a sandbox option; expected one of ${FIELDS.join(", ")}`);
    }
  }
  const { kind, memoryMb, recycleAfter } = options;
  if (!(SANDBOX_KINDS as readonly unknown[]).includes(kind)) {
    fail("kind", `must be "thread" or "process"; got ${describeValue(kind)}`);
  }
  for (const [key, n] of [
    ["memoryMb", memoryMb],
    ["recycleAfter", recycleAfter],
  ] as const) {
    if (n !== undefined && (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1)) {
      fail(key, `must be a positive whole number; got ${describeValue(n)}`);
    }
  }
  let resolved: HandlerSource | undefined = source;
  if (options.module !== undefined || !source) resolved = moduleSource(options, fail);
  return {
    kind: kind as ResolvedSandbox["kind"],
    source: resolved as HandlerSource,
    memoryMb: (memoryMb as number | undefined) ?? null,
    recycleAfter: (recycleAfter as number | undefined) ?? null,
  };
}

function moduleSource(
  options: Record<string, unknown>,
  fail: (key: string, message: string) => never,
): HandlerSource {
  const { module, export: name } = options;
  let path: string;
  if (module instanceof URL) {
    if (module.protocol !== "file:") fail("module", `must be a file: URL; got ${module.href}`);
    path = fileURLToPath(module);
  } else if (typeof module === "string" && module.startsWith("file:")) {
    path = fileURLToPath(module);
  } else if (typeof module === "string" && isAbsolute(module)) {
    path = module;
  } else {
    return fail(
      "module",
      `must be the handler's module as a file URL (new URL("./handler.js", import.meta.url)) or an absolute path; got ${describeValue(module)}`,
    );
  }
  if (!existsSync(path)) fail("module", `${path} does not exist`);
  if (name !== undefined && (typeof name !== "string" || name === "")) {
    fail("export", `must be the name of the module's export that is the handler; got ${describeValue(name)}`);
  }
  return { module: pathToFileURL(path).href, export: (name as string | undefined) ?? "default" };
}
