/** URL resolution and the worker config file: every problem reported with line, column and field. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigFileError, loadWorkerConfig, parseQueuesFlag, resolveUrl } from "../../src/cli/config.js";
import { UsageError } from "../../src/cli/errors.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("store URL resolution", () => {
  it("takes --url, then SLUICE_URL, then sluice.config.*, then an existing ./sluice.db", async () => {
    const cwd = mkdtempSync(join(dir, "cwd-"));
    await expect(resolveUrl(undefined, {}, cwd)).rejects.toThrow(UsageError);
    writeFileSync(join(cwd, "sluice.db"), "");
    expect(await resolveUrl(undefined, {}, cwd)).toEqual({
      url: "sqlite:./sluice.db",
      source: "./sluice.db",
    });
    writeFileSync(join(cwd, "sluice.config.yaml"), "url: redis://cfg:6379/1\n");
    expect((await resolveUrl(undefined, {}, cwd)).url).toBe("redis://cfg:6379/1");
    writeFileSync(join(cwd, "sluice.config.json"), '{ "url": "postgres://json/db" }');
    expect((await resolveUrl(undefined, {}, cwd)).url).toBe("postgres://json/db");
    expect((await resolveUrl(undefined, { SLUICE_URL: "redis://env" }, cwd)).url).toBe("redis://env");
    expect(await resolveUrl("sqlite:x.db", { SLUICE_URL: "redis://env" }, cwd)).toEqual({
      url: "sqlite:x.db",
      source: "--url",
    });
  });

  it("reads a .js config's default export", async () => {
    const cwd = mkdtempSync(join(dir, "js-"));
    writeFileSync(join(cwd, "sluice.config.js"), 'export default { url: "redis://from-js:6379/2" };\n');
    writeFileSync(join(cwd, "package.json"), '{ "type": "module" }');
    expect((await resolveUrl(undefined, {}, cwd)).url).toBe("redis://from-js:6379/2");
  });
});

describe("a broken sluice.config.* file", () => {
  async function failure(name: string, text: string): Promise<ConfigFileError> {
    const cwd = mkdtempSync(join(dir, "broken-"));
    writeFileSync(join(cwd, name), text);
    const error = await resolveUrl(undefined, {}, cwd).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigFileError);
    return error as ConfigFileError;
  }

  it("is reported as the CLI config file, with its path and the JSON error's line and column", async () => {
    const error = await failure("sluice.config.json", '{\n  "url": "sqlite:./x.db",\n  oops\n}\n');
    expect(error.exitCode).toBe(2);
    expect(error.message).not.toMatch(/worker/);
    expect(error.message).toMatch(
      /^invalid CLI config file \(where sluice reads the store URL\) \S+sluice\.config\.json:/,
    );
    expect(error.message).toMatch(/sluice\.config\.json:3:3: /);
    expect(error.issues.map((i) => `${i.line}:${i.column}`)).toEqual(["3:3"]);
  });

  it("reports a truncated JSON file and a YAML syntax error the same way", async () => {
    const truncated = await failure("sluice.config.json", '{\n  "url": "sqlite:./x.db"\n');
    expect(truncated.message).toMatch(/^invalid CLI config file .*sluice\.config\.json:3:1: /s);
    const yaml = await failure("sluice.config.yaml", "url: [redis://h\n");
    expect(yaml.message).toMatch(/^invalid CLI config file .*sluice\.config\.yaml:\d+:\d+: /s);
    const list = await failure("sluice.config.json", '["redis://h"]');
    expect(list.message).toContain('sluice.config.json:1:1: expected an object such as { "url"');
  });
});

describe("worker config file", () => {
  it("accepts weights, strict order, durations and a tasks path relative to the file", () => {
    const weighted = loadWorkerConfig(
      file(
        "w.yaml",
        "concurrency: 12\nqueues:\n  - [seo, 5]\n  - { name: thumbnails, weight: 4 }\n  - images\nshutdownGrace: 30s\nlease: 45s\ntasks: ./tasks.js\n",
      ),
    );
    expect(weighted.options).toEqual({
      concurrency: 12,
      queues: [
        ["seo", 5],
        ["thumbnails", 4],
        ["images", 1],
      ],
      shutdownGraceMs: 30_000,
      leaseMs: 45_000,
    });
    expect(weighted.tasks).toBe(join(dir, "tasks.js"));
    const strict = loadWorkerConfig(file("s.json", '{ "queues": ["high", "low"], "shutdownGraceMs": 5000 }'));
    expect(strict.options).toEqual({ queues: ["high", "low"], shutdownGraceMs: 5000 });
  });

  it("reports every problem with line, column and field", () => {
    const path = file(
      "bad.yaml",
      "concurrency: many\nqueues:\n  - [seo, 0]\n  - 12\nshutdownGrace: soon\nconcurency: 3\nlease: 1s\nheartbeat: 2s\n",
    );
    let error: ConfigFileError | undefined;
    try {
      loadWorkerConfig(path);
    } catch (e) {
      error = e as ConfigFileError;
    }
    expect(error).toBeInstanceOf(ConfigFileError);
    expect(error?.exitCode).toBe(2);
    const issues = error?.issues.map((i) => `${i.line}:${i.column} ${i.field}`);
    expect(issues).toEqual([
      "1:14 concurrency",
      "3:11 queues[0].weight",
      "4:5 queues[1]",
      "5:16 shutdownGrace",
      "6:1 concurency",
      "8:12 heartbeat",
    ]);
    expect(error?.message).toContain(`${path}:6:1: concurency: unknown field`);
  });

  it("reports YAML syntax errors with their position", () => {
    const path = file("syntax.yaml", "concurrency: 3\nqueues: [a, b\n");
    expect(() => loadWorkerConfig(path)).toThrow(/syntax\.yaml:\d+:\d+/);
    expect(() => loadWorkerConfig(file("list.yaml", "- a\n- b\n"))).toThrow(/1:1: expected a mapping/);
  });

  it("parses --queues with and without weights", () => {
    expect(parseQueuesFlag("a,b")).toEqual(["a", "b"]);
    expect(parseQueuesFlag("a:5, b:3")).toEqual([
      ["a", 5],
      ["b", 3],
    ]);
    expect(() => parseQueuesFlag("a:x")).toThrow(UsageError);
    expect(() => parseQueuesFlag(",")).toThrow(UsageError);
  });
});
