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

  it("reads schedules: name → task, cron | every, timezone, payload, missed and job options", () => {
    const config = loadWorkerConfig(
      file(
        "sched.yaml",
        [
          "queues: [reports]",
          "schedules:",
          "  nightly-report:",
          "    task: report",
          '    cron: "0 3 * * *"',
          "    timezone: Asia/Seoul",
          "    payload: { scope: all, days: [1, 2] }",
          "    queue: reports",
          "    priority: 5",
          "    attempts: 2",
          "    timeout: 10m",
          "    tags: [nightly]",
          "  heartbeat:",
          "    task: ping",
          "    every: 15m",
          "    missed: skip",
          "",
        ].join("\n"),
      ),
    );
    expect(config.schedules).toEqual([
      {
        name: "nightly-report",
        line: 3,
        column: 3,
        definition: {
          task: "report",
          cron: "0 3 * * *",
          timezone: "Asia/Seoul",
          payload: { scope: "all", days: [1, 2] },
          options: { queue: "reports", priority: 5, attempts: 2, timeoutMs: "10m", tags: ["nightly"] },
        },
      },
      { name: "heartbeat", line: 13, column: 3, definition: { task: "ping", every: "15m", missed: "skip" } },
    ]);
    const json = loadWorkerConfig(
      file("sched.json", '{ "schedules": { "tick": { "task": "t", "every": 60000 } } }'),
    );
    expect(json.schedules).toEqual([
      { name: "tick", line: 1, column: 18, definition: { task: "t", every: 60000 } },
    ]);
  });

  it("reports every schedule problem with line, column and field: bad cron, cron and every, unknown field", () => {
    const path = file(
      "sched-bad.yaml",
      [
        "schedules:",
        "  bad-cron:",
        "    task: report",
        '    cron: "61 * * * *"',
        "  both:",
        "    task: report",
        '    cron: "* * * * *"',
        "    every: 1m",
        "  typo:",
        "    task: report",
        "    every: 1h",
        "    cronn: x",
        "    priority: 1.5",
        "  zone:",
        "    every: 1h",
        "    timezone: Mars/Olympus",
        "    missed: sometimes",
        "  never:",
        "    task: report",
        '    cron: "0 0 30 2 *"',
        "  bad name!:",
        "    task: report",
        "    every: 1h",
        "  flat: report",
        "",
      ].join("\n"),
    );
    let error: ConfigFileError | undefined;
    try {
      loadWorkerConfig(path);
    } catch (e) {
      error = e as ConfigFileError;
    }
    expect(error).toBeInstanceOf(ConfigFileError);
    expect(error?.exitCode).toBe(2);
    expect(error?.issues.map((i) => `${i.line}:${i.column} ${i.field}`)).toEqual([
      "4:11 schedules.bad-cron.cron",
      "8:12 schedules.both.every",
      "12:5 schedules.typo.cronn",
      "13:15 schedules.typo.priority",
      "14:3 schedules.zone.task",
      "16:15 schedules.zone.timezone",
      "17:13 schedules.zone.missed",
      "20:11 schedules.never.cron",
      "21:3 schedules.bad name!",
      "24:9 schedules.flat",
    ]);
    expect(error?.message).toContain(
      `${path}:4:11: schedules.bad-cron.cron: "61 * * * *" is not a valid cron expression`,
    );
    expect(error?.message).toContain(
      `${path}:8:12: schedules.both.every: give cron (a cron expression) or every`,
    );
    expect(error?.message).toContain(
      `${path}:12:5: schedules.typo.cronn: unknown field; expected one of task, cron,`,
    );
    expect(() => loadWorkerConfig(file("sched-list.yaml", "schedules: [a, b]\n"))).toThrow(
      /sched-list\.yaml:1:12: schedules: must be a mapping of schedule name/,
    );
  });

  it("reads limits: queue → concurrency, rate { max, window }, keyConcurrency, keyRate", () => {
    const path = file(
      "limits.yaml",
      [
        "limits:",
        "  embeddings:",
        "    rate: { max: 500, window: 1m }",
        "    keyConcurrency: 1",
        "  ocr:",
        "    concurrency: 4",
        "    keyRate:",
        "      max: 10",
        "      windowMs: 1000",
        "",
      ].join("\n"),
    );
    expect(loadWorkerConfig(path).limits).toEqual({
      embeddings: {
        concurrency: null,
        rate: { max: 500, windowMs: 60_000 },
        keyConcurrency: 1,
        keyRate: null,
      },
      ocr: { concurrency: 4, rate: null, keyConcurrency: null, keyRate: { max: 10, windowMs: 1_000 } },
    });
  });

  it("reports every limits problem with line, column and field: 0, negative, NaN, bad window, unknown field", () => {
    const path = file(
      "limits-bad.yaml",
      [
        "limits:",
        "  zero:",
        "    concurrency: 0",
        "  negative:",
        "    keyConcurrency: -2",
        "  nan:",
        "    concurrency: .nan",
        "  window:",
        "    rate: { max: 5, window: soon }",
        "  half:",
        "    rate: { max: 5 }",
        "  typo:",
        "    concurency: 3",
        "  fraction:",
        "    rate: { max: 2.5, window: 1s }",
        "  flat: 5",
        "  bad queue!:",
        "    concurrency: 1",
        "",
      ].join("\n"),
    );
    let error: ConfigFileError | undefined;
    try {
      loadWorkerConfig(path);
    } catch (e) {
      error = e as ConfigFileError;
    }
    expect(error).toBeInstanceOf(ConfigFileError);
    expect(error?.exitCode).toBe(2);
    expect(error?.issues.map((i) => `${i.line}:${i.column} ${i.field}`)).toEqual([
      "3:18 limits.zero.concurrency",
      "5:21 limits.negative.keyConcurrency",
      "7:18 limits.nan.concurrency",
      "9:29 limits.window.rate.window",
      "11:11 limits.half.rate",
      "13:5 limits.typo.concurency",
      "15:11 limits.fraction.rate.max",
      "16:9 limits.flat",
      "17:3 limits",
    ]);
    expect(error?.message).toContain(
      `${path}:3:18: limits.zero.concurrency: must be a whole number from 1 to`,
    );
    expect(error?.message).toContain(`${path}:11:11: limits.half.rate: needs both max and window`);
    expect(() => loadWorkerConfig(file("limits-list.yaml", "limits: [a]\n"))).toThrow(
      /limits-list\.yaml:1:9: limits: must be a mapping of queue/,
    );
  });

  it("reads events: maxEvents and retention (a duration or retentionMs), or false", () => {
    const path = file("events.yaml", "events:\n  maxEvents: 50000\n  retention: 7d\n");
    expect(loadWorkerConfig(path).events).toEqual({ maxEvents: 50_000, retentionMs: 7 * 86_400_000 });
    expect(loadWorkerConfig(file("events-ms.yaml", "events: { retentionMs: 60000 }\n")).events).toEqual({
      retentionMs: 60_000,
    });
    expect(loadWorkerConfig(file("events-count.yaml", "events: { maxEvents: 10 }\n")).events).toEqual({
      maxEvents: 10,
    });
    expect(loadWorkerConfig(file("events-off.yaml", "events: false\n")).events).toBe(false);
    expect(loadWorkerConfig(file("events-none.yaml", "concurrency: 2\n")).events).toBeUndefined();
  });

  it("reports every events problem with line, column and field", () => {
    const issues = (text: string) => {
      try {
        loadWorkerConfig(file("events-bad.yaml", text));
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigFileError);
        expect((e as ConfigFileError).exitCode).toBe(2);
        return (e as ConfigFileError).issues.map((i) => `${i.line}:${i.column} ${i.field}: ${i.message}`);
      }
      throw new Error(`accepted:\n${text}`);
    };
    expect(issues("events:\n  maxEvents: 0\n  retention: soon\n  max: 3\n")).toEqual([
      "2:14 events.maxEvents: must be a positive whole number, got 0; use events: false to write no events",
      expect.stringMatching(/^3:14 events\.retention: must be a duration/),
      "4:3 events.max: unknown field; expected one of maxEvents, retention, retentionMs",
    ]);
    expect(issues("events:\n  maxEvents: -5\n")[0]).toMatch(
      /^2:14 events\.maxEvents: must be a positive whole/,
    );
    expect(issues("events:\n  maxEvents: 2.5\n")[0]).toMatch(/^2:14 events\.maxEvents: .*got 2\.5/);
    expect(issues("events:\n  maxEvents: lots\n")[0]).toMatch(/^2:14 events\.maxEvents: .*got "lots"/);
    expect(issues("events:\n  maxEvents: .nan\n")[0]).toMatch(/^2:14 events\.maxEvents: must be a positive/);
    expect(issues("events:\n  retention: 0\n")[0]).toMatch(/^2:14 events\.retention: must be at least 1ms/);
    expect(issues("events:\n  retention: [1h]\n")[0]).toMatch(/^2:14 events\.retention: must be a duration/);
    expect(issues("events:\n  retention: 1h\n  retentionMs: 5000\n")).toEqual([
      "3:3 events.retentionMs: given twice (retention and retentionMs mean the same)",
    ]);
    for (const bad of ["events: true\n", "events: {}\n", "events: [a]\n", "events: 100\n"]) {
      expect(issues(bad), bad).toEqual([
        expect.stringMatching(
          /^1:9 events: must be a mapping such as \{ maxEvents: 100000, retention: 24h \}/,
        ),
      ]);
    }
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
