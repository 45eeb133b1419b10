/**
 * Every TypeScript sample of the docs compiles under strict tsc: each fenced ```ts / ```typescript block of
 * README.md and docs/*.md, and the sample in the header of src/index.ts (it ends up in dist/index.d.ts), is
 * written as its own module to a temporary folder inside node_modules/.cache (so `zod`, `pg` and
 * `better-sqlite3` resolve as they do for an application) with a tsconfig that maps "sluice" to
 * src/index.ts (and "sluice/http" to src/http/index.ts), and one `tsc` run checks them all. A sample is skipped only when the line before its fence
 * is `<!-- not compiled: reason -->`.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

/** One sample: where it is and its code. */
interface Sample {
  /** `docs/cli.md:129` (the line of the opening fence). */
  origin: string;
  code: string;
  /** The reason given in `<!-- not compiled: reason -->`, or null when it is compiled. */
  skipped: string | null;
}

const SKIP = /^<!--\s*not compiled:\s*(\S.*?)\s*-->$/;

/** The ```ts / ```typescript blocks of a markdown text. */
function markdownSamples(text: string, file: string): Sample[] {
  const lines = text.split("\n");
  const samples: Sample[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i] ?? "")) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ""); i++) body.push(lines[i] ?? "");
    let before = start - 1;
    while (before >= 0 && (lines[before] ?? "").trim() === "") before--;
    const skip = SKIP.exec((lines[before] ?? "").trim());
    samples.push({ origin: `${file}:${start + 1}`, code: body.join("\n"), skipped: skip?.[1] ?? null });
  }
  return samples;
}

/** The ```ts blocks of the first doc comment of a source file (` * ` prefixes removed). */
function headerSamples(path: string): Sample[] {
  const text = readFileSync(join(ROOT, path), "utf8");
  const comment = /^\/\*\*([\s\S]*?)\*\//.exec(text)?.[1] ?? "";
  const lines = comment.split("\n").map((l) => l.replace(/^\s*\* ?/, ""));
  // The comment's lines start after `/**`, on line 1 of the file.
  return markdownSamples(lines.join("\n"), path);
}

function allSamples(): Sample[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`);
  return [
    ...["README.md", ...docs].flatMap((file) =>
      markdownSamples(readFileSync(join(ROOT, file), "utf8"), file),
    ),
    ...headerSamples("src/index.ts"),
  ];
}

const dir = join(ROOT, "node_modules", ".cache", `sluice-doc-samples-${process.pid}`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Compiles `samples` with one tsc run; returns tsc's diagnostics per sample origin. */
async function compile(samples: readonly Sample[]): Promise<Map<string, string[]>> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = samples.map((sample, i) => {
    const name = `sample-${i}.ts`;
    writeFileSync(join(dir, name), `// ${sample.origin}\n${sample.code}\n`);
    return name;
  });
  writeFileSync(join(dir, "package.json"), '{ "type": "module", "private": true }\n');
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        lib: ["ES2023"],
        types: ["node"],
        strict: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: true,
        noEmit: true,
        paths: {
          sluice: [join(ROOT, "src", "index.ts")],
          "sluice/http": [join(ROOT, "src", "http", "index.ts")],
        },
      },
      files,
    }),
  );
  let output = "";
  try {
    await run(
      join(ROOT, "node_modules", ".bin", "tsc"),
      ["-p", join(dir, "tsconfig.json"), "--pretty", "false"],
      {
        cwd: dir,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    output = `${e.stdout ?? ""}${e.stderr ?? ""}` || e.message;
  }
  const byOrigin = new Map<string, string[]>();
  for (const line of output.split("\n")) {
    if (line.trim() === "") continue;
    const match = /sample-(\d+)\.ts\((\d+),(\d+)\): (.*)$/.exec(line);
    const sample = match ? samples[Number(match[1])] : undefined;
    // Line 1 of the file is the origin comment: sample line n is file line n + 1.
    const key = sample ? sample.origin : "(outside the samples)";
    const text = match ? `line ${Number(match[2]) - 1}, column ${match[3]}: ${match[4]}` : line;
    byOrigin.set(key, [...(byOrigin.get(key) ?? []), text]);
  }
  return byOrigin;
}

describe("documentation samples", () => {
  const samples = allSamples();
  const compiled = samples.filter((s) => s.skipped === null);

  it("finds the samples, and skips almost none (each skip says why)", () => {
    expect(compiled.length).toBeGreaterThanOrEqual(10);
    const skipped = samples.filter((s) => s.skipped !== null);
    expect(skipped.length, skipped.map((s) => s.origin).join(", ")).toBeLessThanOrEqual(2);
  });

  it("skips a sample only after an explicit not-compiled comment with a reason", () => {
    const text =
      "```ts\nconst a = 1;\n```\n\n<!-- not compiled: needs TypeORM -->\n\n```typescript\nx\n```\n<!-- not compiled -->\n```ts\ny\n```\n";
    expect(markdownSamples(text, "x.md")).toEqual([
      { origin: "x.md:1", code: "const a = 1;", skipped: null },
      { origin: "x.md:7", code: "x", skipped: "needs TypeORM" },
      { origin: "x.md:11", code: "y", skipped: null },
    ]);
  });

  it("every TypeScript sample compiles under strict tsc", { timeout: 180_000 }, async () => {
    const errors = await compile(compiled);
    const report = [...errors].map(([origin, lines]) => `${origin}\n  ${lines.join("\n  ")}`).join("\n");
    expect(report, `samples that do not compile (temp files in ${relative(ROOT, dir)})`).toBe("");
  });

  it("reports a sample that does not compile, at its place in the docs", { timeout: 180_000 }, async () => {
    const broken: Sample = {
      origin: "README.md:1",
      code: 'const n: number = "not a number";',
      skipped: null,
    };
    const errors = await compile([broken]);
    expect(errors.get("README.md:1")?.[0]).toMatch(/^line 1, column 7: error TS2322/);
  });
});
