/**
 * The examples are what users copy: they may import only the package's public entry points — `sluice`
 * and `sluice/http`, here as their sources `src/index.ts` and `src/http/index.ts` — never an internal
 * module, which the published package does not export.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const EXAMPLES = join(ROOT, "examples");
const PUBLIC = new Set(["src/index.js", "src/http/index.js", "sluice", "sluice/http"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

/** Every module specifier of a file: static imports and exports, and dynamic `import("…")`. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) found.push(m[1] as string);
  return found;
}

describe("examples import only public entry points", () => {
  const files = sources(EXAMPLES);

  it("finds the examples' sources", () => {
    expect(files.map((f) => relative(ROOT, f))).toContain("examples/document-progress/app.ts");
  });

  it.each(files.map((f) => [relative(ROOT, f), f] as const))("%s", (_name, file) => {
    const outside: string[] = [];
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      if (spec.startsWith("node:")) continue;
      if (!spec.startsWith(".")) {
        // A package: only sluice's own entry points among sluice's names.
        if (spec.startsWith("sluice") && !PUBLIC.has(spec)) outside.push(spec);
        continue;
      }
      const target = relative(ROOT, resolve(dirname(file), spec));
      // Within its own example folder is the example's own code.
      if (target.startsWith(relative(ROOT, dirname(file)))) continue;
      if (!PUBLIC.has(target)) outside.push(`${spec} (${target})`);
    }
    expect(outside, "imports of internal modules").toEqual([]);
  });

  it("the check itself catches an internal import", () => {
    const spec = specifiers('import { openEventStream } from "../../src/http/event-stream.js";')[0];
    expect(spec).toBe("../../src/http/event-stream.js");
    const target = relative(ROOT, resolve(join(EXAMPLES, "document-progress"), spec as string));
    expect(PUBLIC.has(target)).toBe(false);
  });
});
