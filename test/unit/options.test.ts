import { describe, expect, it } from "vitest";
import type { BackoffFunction } from "../../src/core/backoff.js";
import { ValidationError } from "../../src/core/errors.js";
import { PENDING_STATES } from "../../src/core/job.js";
import {
  DEFAULTS,
  JOB_OPTION_KEYS,
  type JobOptions,
  LIMITS,
  resolveJobOptions,
  validateJobOptions,
  validateQueueName,
  validateTaskName,
} from "../../src/core/options.js";

const NOW = 1_700_000_000_000;

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectInvalid(fn: () => unknown, field: string, ...fragments: string[]): ValidationError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(ValidationError);
  const validation = error as ValidationError;
  expect(validation.code).toBe("INVALID_OPTION");
  expect(validation.field).toBe(field);
  expect(validation.message).toContain(field);
  for (const fragment of fragments) expect(validation.message).toContain(fragment);
  return validation;
}

/** Validates `{ [key]: value }` as per-call options and expects a rejection on `field`. */
function expectInvalidOption(
  key: string,
  value: unknown,
  field: string,
  ...fragments: string[]
): ValidationError {
  return expectInvalid(() => validateJobOptions({ [key]: value }, "options"), field, ...fragments);
}

describe("validateQueueName / validateTaskName", () => {
  it.each([
    ["default"],
    ["a"],
    ["rag_processing"],
    ["high-priority"],
    ["emails.v2"],
    ["tenant:42"],
    ["x".repeat(128)],
  ])("accepts %j", (name) => {
    expect(validateQueueName(name, "options.queue")).toBe(name);
    expect(validateTaskName(name, "task")).toBe(name);
  });

  it("rejects non-strings", () => {
    expectInvalid(
      () => validateQueueName(5, "options.queue"),
      "options.queue",
      "got 5",
      "1 to 128 characters",
    );
    expectInvalid(() => validateTaskName(undefined, "task"), "task", "got undefined", "task name");
  });

  it("rejects empty and over-long names", () => {
    expectInvalid(() => validateQueueName("", "options.queue"), "options.queue", "empty string");
    expectInvalid(() => validateTaskName("x".repeat(129), "task"), "task", "got 129 characters");
  });

  it.each([
    ["my queue", '" "'],
    ["a/b", '"/"'],
    ["émails", '"é"'],
    ["a*", '"*"'],
    ["tab\t", '"\\t"'],
  ])("rejects %j, naming the bad character", (name, shown) => {
    expectInvalid(
      () => validateQueueName(name, "options.queue"),
      "options.queue",
      `contains ${shown}`,
      '"_", ".", ":"',
    );
  });
});

describe("validateJobOptions", () => {
  it("returns {} for undefined", () => {
    expect(validateJobOptions(undefined, "options")).toEqual({});
  });

  it("returns a normalised, frozen copy", () => {
    const input = {
      queue: "q",
      priority: -5,
      delayMs: "1m",
      attempts: 5,
      backoff: { type: "fixed", delayMs: 10 },
      timeoutMs: "15m",
      jobId: "job-1",
      uniqueKey: { key: "doc:1", windowMs: "1h", states: ["waiting", "waiting", "active"] },
      tags: ["a", "b"],
      retention: { count: 10 },
    } as const;
    const result = validateJobOptions(input, "options");
    expect(result).toEqual({
      queue: "q",
      priority: -5,
      delayMs: 60_000,
      attempts: 5,
      backoff: { type: "fixed", delayMs: 10 },
      timeoutMs: 900_000,
      jobId: "job-1",
      uniqueKey: { key: "doc:1", windowMs: 3_600_000, states: ["waiting", "active"] },
      tags: ["a", "b"],
      retention: { count: 10 },
    });
    expect(result).not.toBe(input);
    expect(result.tags).not.toBe(input.tags);
    expect(Object.isFrozen(result)).toBe(true);
    expect(Object.isFrozen(result.tags)).toBe(true);
    expect(Object.isFrozen(result.uniqueKey)).toBe(true);
    expect(Object.isFrozen(result.retention)).toBe(true);
    expect(Object.isFrozen(result.backoff)).toBe(true);
  });

  it("treats keys set to undefined as absent", () => {
    expect(validateJobOptions({ priority: undefined, delayMs: undefined, runAt: 5 }, "options")).toEqual({
      runAt: 5,
    });
  });

  it.each([[null], [[]], ["fast"], [5], [new Date()], [new Map()]])("rejects the non-object %j", (value) => {
    expectInvalid(() => validateJobOptions(value, "options"), "options", "plain object of job options");
  });

  it("uses bare keys as fields when the prefix is empty", () => {
    expectInvalid(() => validateJobOptions({ priority: 0.5 }, ""), "priority");
    expectInvalid(() => validateJobOptions(null, ""), "options");
  });

  describe("unknown keys", () => {
    it.each([
      ["delay", "delayMs"],
      ["timeout", "timeoutMs"],
      ["priorty", "priority"],
      ["Priority", "priority"],
      ["attemps", "attempts"],
      ["retries", "attempts"],
      ["maxAttempts", "attempts"],
      ["id", "jobId"],
      ["unique", "uniqueKey"],
      ["uniquekey", "uniqueKey"],
      ["tag", "tags"],
      ["run_at", "runAt"],
      ["queu", "queue"],
      ["retension", "retention"],
      ["backof", "backoff"],
    ])("rejects %j and suggests %j", (key, suggestion) => {
      const error = expectInvalidOption(key, 1, `options.${key}`, "is not a known option");
      expect(error.message).toContain(`did you mean ${suggestion}?`);
    });

    it("lists the known options when nothing is close", () => {
      const error = expectInvalidOption(
        "zzzzzz",
        1,
        "options.zzzzzz",
        `known options are ${JOB_OPTION_KEYS.join(", ")}`,
      );
      expect(error.message).not.toContain("did you mean");
    });

    it("accepts, strips and suggests the caller's extra keys", () => {
      const run = (): void => {};
      expect(validateJobOptions({ run, schema: {}, queue: "q" }, "task", ["run", "schema"])).toEqual({
        queue: "q",
      });
      const error = expectInvalid(
        () => validateJobOptions({ shema: {} }, "task", ["run", "schema"]),
        "task.shema",
      );
      expect(error.message).toContain("did you mean schema?");
      expectInvalid(() => validateJobOptions({ run }, "task"), "task.run", "is not a known option");
    });
  });

  it("validates queue with the queue-name rule", () => {
    expect(validateJobOptions({ queue: "a.b" }, "options").queue).toBe("a.b");
    expectInvalidOption("queue", "a b", "options.queue", "1 to 128 characters");
    expectInvalidOption("queue", "", "options.queue");
  });

  describe("priority", () => {
    it.each([[-1_000_000], [0], [1_000_000], [-5]])("accepts %s", (priority) => {
      expect(validateJobOptions({ priority }, "options").priority).toBe(priority);
    });
    it.each([[1.5], [1_000_001], [-1_000_001], ["1"], [Number.NaN], [null]])("rejects %j", (priority) => {
      expectInvalidOption("priority", priority, "options.priority", "integer from -1000000 to 1000000");
    });
  });

  describe("attempts", () => {
    it.each([[1], [3], [1_000]])("accepts %s", (attempts) => {
      expect(validateJobOptions({ attempts }, "options").attempts).toBe(attempts);
    });
    it.each([[0], [1_001], [2.5], [-1], ["3"], [Number.POSITIVE_INFINITY]])("rejects %j", (attempts) => {
      expectInvalidOption("attempts", attempts, "options.attempts", "integer from 1 to 1000");
    });
  });

  describe("delayMs and runAt", () => {
    it("accepts delayMs as ms or a duration string", () => {
      expect(validateJobOptions({ delayMs: 0 }, "options").delayMs).toBe(0);
      expect(validateJobOptions({ delayMs: 1_500 }, "options").delayMs).toBe(1_500);
      expect(validateJobOptions({ delayMs: "2h" }, "options").delayMs).toBe(7_200_000);
      expect(validateJobOptions({ delayMs: LIMITS.maxDelayMs }, "options").delayMs).toBe(LIMITS.maxDelayMs);
    });

    it.each([[-1], ["soon"], [Number.NaN], [null], [true]])("rejects delayMs %j", (delayMs) => {
      expectInvalidOption("delayMs", delayMs, "options.delayMs", "duration");
    });

    it("rejects a delay over 100 years", () => {
      expectInvalidOption("delayMs", LIMITS.maxDelayMs + 1, "options.delayMs", "100 years");
    });

    it("accepts runAt as a Date or epoch ms and normalises it to ms", () => {
      expect(validateJobOptions({ runAt: new Date(NOW) }, "options").runAt).toBe(NOW);
      expect(validateJobOptions({ runAt: NOW }, "options").runAt).toBe(NOW);
      expect(validateJobOptions({ runAt: 0 }, "options").runAt).toBe(0);
    });

    it("rejects an invalid runAt", () => {
      expectInvalidOption("runAt", new Date("nope"), "options.runAt", "an invalid Date");
      expectInvalidOption("runAt", "2030-01-01", "options.runAt", "new Date(text)");
      expectInvalidOption("runAt", Number.NaN, "options.runAt", "valid Date or a time in epoch milliseconds");
      expectInvalidOption("runAt", 9e15, "options.runAt");
      expectInvalidOption("runAt", null, "options.runAt");
    });

    it("rejects delayMs and runAt together", () => {
      expectInvalid(
        () => validateJobOptions({ delayMs: 5, runAt: NOW }, "options"),
        "options.runAt",
        "not both",
        "options.delayMs",
      );
    });
  });

  it("validates backoff with validateBackoff, field included", () => {
    const fn: BackoffFunction = () => 5;
    expect(validateJobOptions({ backoff: fn }, "options").backoff).toBe(fn);
    expectInvalidOption("backoff", { type: "exponential", delayMs: -1 }, "options.backoff.delayMs");
    expectInvalidOption("backoff", "exponential", "options.backoff");
    expectInvalidOption("backoff", null, "options.backoff");
  });

  describe("timeoutMs", () => {
    it("accepts a positive duration or null", () => {
      expect(validateJobOptions({ timeoutMs: null }, "options").timeoutMs).toBeNull();
      expect(validateJobOptions({ timeoutMs: 1 }, "options").timeoutMs).toBe(1);
      expect(validateJobOptions({ timeoutMs: "15m" }, "options").timeoutMs).toBe(900_000);
      expect(validateJobOptions({ timeoutMs: LIMITS.maxTimeoutMs }, "options").timeoutMs).toBe(2_147_483_647);
    });

    it("rejects zero, suggesting null", () => {
      expectInvalidOption("timeoutMs", 0, "options.timeoutMs", "greater than 0", "null");
      expectInvalidOption("timeoutMs", "0s", "options.timeoutMs", "greater than 0");
    });

    it("rejects timeouts longer than a Node.js timer can hold", () => {
      expectInvalidOption("timeoutMs", LIMITS.maxTimeoutMs + 1, "options.timeoutMs", "at most 2147483647 ms");
      expectInvalidOption("timeoutMs", "30d", "options.timeoutMs", "at most");
    });

    it.each([[-1], ["forever"], [Number.NaN], [false]])("rejects %j", (timeoutMs) => {
      expectInvalidOption("timeoutMs", timeoutMs, "options.timeoutMs", "duration");
    });
  });

  describe("jobId", () => {
    it("accepts 1 to 255 characters", () => {
      expect(validateJobOptions({ jobId: "x" }, "options").jobId).toBe("x");
      expect(validateJobOptions({ jobId: "x".repeat(255) }, "options").jobId).toHaveLength(255);
    });
    it.each([
      ["", "empty string"],
      ["x".repeat(256), "got 256 characters"],
      [42, "got 42"],
      [null, "got null"],
    ])("rejects %j", (jobId, fragment) => {
      expectInvalidOption("jobId", jobId, "options.jobId", "at most 255 characters", fragment);
    });
  });

  describe("uniqueKey", () => {
    it("accepts a string of 1 to 512 characters", () => {
      expect(validateJobOptions({ uniqueKey: "doc:1" }, "options").uniqueKey).toBe("doc:1");
      expect(validateJobOptions({ uniqueKey: "k".repeat(512) }, "options").uniqueKey).toHaveLength(512);
    });

    it("rejects bad strings", () => {
      expectInvalidOption("uniqueKey", "", "options.uniqueKey", "empty string");
      expectInvalidOption("uniqueKey", "k".repeat(513), "options.uniqueKey", "at most 512");
    });

    it("accepts the object form and normalises windowMs", () => {
      expect(validateJobOptions({ uniqueKey: { key: "k" } }, "options").uniqueKey).toEqual({ key: "k" });
      expect(validateJobOptions({ uniqueKey: { key: "k", windowMs: "10m" } }, "options").uniqueKey).toEqual({
        key: "k",
        windowMs: 600_000,
      });
      expect(
        validateJobOptions({ uniqueKey: { key: "k", states: ["completed", "waiting"] } }, "options")
          .uniqueKey,
      ).toEqual({ key: "k", states: ["completed", "waiting"] });
    });

    it("rejects a bad object form", () => {
      expectInvalidOption("uniqueKey", 5, "options.uniqueKey", "string or { key, windowMs?, states? }");
      expectInvalidOption("uniqueKey", null, "options.uniqueKey");
      expectInvalidOption("uniqueKey", {}, "options.uniqueKey.key", "non-empty string");
      expectInvalidOption("uniqueKey", { key: "" }, "options.uniqueKey.key");
      expectInvalidOption(
        "uniqueKey",
        { key: "k", windowMs: 0 },
        "options.uniqueKey.windowMs",
        "greater than 0",
      );
      expectInvalidOption("uniqueKey", { key: "k", windowMs: "x" }, "options.uniqueKey.windowMs", "duration");
      expectInvalidOption(
        "uniqueKey",
        { key: "k", states: [] },
        "options.uniqueKey.states",
        "non-empty array",
      );
      expectInvalidOption("uniqueKey", { key: "k", states: "waiting" }, "options.uniqueKey.states");
      expectInvalidOption(
        "uniqueKey",
        { key: "k", states: ["waiting", "failed"] },
        "options.uniqueKey.states[1]",
        'got "failed"',
        "scheduled, waiting, active, completed, dead, cancelled, blocked",
      );
      const error = expectInvalidOption("uniqueKey", { key: "k", window: 5 }, "options.uniqueKey.window");
      expect(error.message).toContain("did you mean windowMs?");
    });
  });

  describe("tags", () => {
    it("accepts up to 32 tags of 1 to 128 characters", () => {
      const tags = Array.from({ length: 32 }, (_, i) => `t${i}`.padEnd(128, "x"));
      expect(validateJobOptions({ tags }, "options").tags).toEqual(tags);
      expect(validateJobOptions({ tags: [] }, "options").tags).toEqual([]);
    });

    it("rejects bad tags", () => {
      expectInvalidOption("tags", "a", "options.tags", "array of strings");
      expectInvalidOption(
        "tags",
        Array.from({ length: 33 }, () => "t"),
        "options.tags",
        "33 tags",
        "at most 32",
      );
      expectInvalidOption("tags", ["ok", ""], "options.tags[1]", "empty string");
      expectInvalidOption("tags", ["x".repeat(129)], "options.tags[0]", "129 characters");
      expectInvalidOption("tags", ["ok", 5], "options.tags[1]", "got 5");
    });
  });

  describe("retention", () => {
    it.each([[true], [false], [{ ageMs: 0 }], [{ ageMs: 3_600_000 }], [{ count: 0 }], [{ count: 100 }]])(
      "accepts %j",
      (retention) => {
        expect(validateJobOptions({ retention }, "options").retention).toEqual(retention);
      },
    );

    it("ignores an undefined sibling key", () => {
      expect(validateJobOptions({ retention: { ageMs: 5, count: undefined } }, "options").retention).toEqual({
        ageMs: 5,
      });
    });

    it("rejects bad values", () => {
      expectInvalidOption("retention", "1d", "options.retention", "true (keep forever)");
      expectInvalidOption("retention", null, "options.retention");
      expectInvalidOption("retention", {}, "options.retention", "exactly one of ageMs or count", "(none)");
      expectInvalidOption("retention", { ageMs: 1, count: 1 }, "options.retention", "ageMs, count");
      expectInvalidOption("retention", { days: 1 }, "options.retention", "days");
      expectInvalidOption("retention", { ageMs: -1 }, "options.retention.ageMs", ">= 0");
      expectInvalidOption("retention", { ageMs: "1d" }, "options.retention.ageMs");
      expectInvalidOption("retention", { count: 1.5 }, "options.retention.count", "integer >= 0");
      expectInvalidOption("retention", { count: -1 }, "options.retention.count");
    });
  });
});

describe("resolveJobOptions", () => {
  it("DEFAULTS are as documented and frozen", () => {
    expect(DEFAULTS).toEqual({
      queue: "default",
      priority: 0,
      attempts: 3,
      backoff: null,
      timeoutMs: null,
      retention: { ageMs: 86_400_000 },
      uniqueStates: PENDING_STATES,
    });
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    expect(Object.isFrozen(DEFAULTS.retention)).toBe(true);
  });

  it("applies the defaults when nothing is set", () => {
    const expected = {
      queue: "default",
      priority: 0,
      runAt: NOW,
      maxAttempts: 3,
      backoff: null,
      timeoutMs: null,
      jobId: null,
      uniqueKey: null,
      uniqueStates: [],
      uniqueUntil: null,
      tags: [],
      retention: { ageMs: 86_400_000 },
      dependsOn: [],
    };
    expect(resolveJobOptions({}, undefined, NOW)).toEqual(expected);
    expect(
      resolveJobOptions(validateJobOptions({}, "task"), validateJobOptions(undefined, "options"), NOW),
    ).toEqual(expected);
  });

  it("per-call options override task defaults field by field", () => {
    const fn: BackoffFunction = () => 1;
    const task = validateJobOptions(
      {
        queue: "slow",
        priority: 5,
        attempts: 7,
        backoff: { type: "fixed", delayMs: 100 },
        timeoutMs: 1_000,
        tags: ["task"],
        retention: { count: 3 },
        jobId: "task-id",
      },
      "task",
    );
    expect(resolveJobOptions(task, { priority: -1, tags: ["call"] }, NOW)).toMatchObject({
      queue: "slow",
      priority: -1,
      maxAttempts: 7,
      backoff: { type: "fixed", delayMs: 100 },
      timeoutMs: 1_000,
      tags: ["call"],
      retention: { count: 3 },
      jobId: "task-id",
    });
    expect(
      resolveJobOptions(
        task,
        { queue: "fast", attempts: 1, backoff: fn, timeoutMs: 5, retention: false, jobId: "call-id" },
        NOW,
      ),
    ).toMatchObject({
      queue: "fast",
      priority: 5,
      maxAttempts: 1,
      backoff: fn,
      timeoutMs: 5,
      retention: false,
      jobId: "call-id",
    });
  });

  it("timeoutMs: null per call removes the task's timeout; undefined keeps it", () => {
    const task: JobOptions = { timeoutMs: "1m" };
    expect(resolveJobOptions(task, { timeoutMs: null }, NOW).timeoutMs).toBeNull();
    expect(resolveJobOptions(task, { timeoutMs: undefined }, NOW).timeoutMs).toBe(60_000);
    expect(resolveJobOptions(task, {}, NOW).timeoutMs).toBe(60_000);
  });

  it("resolves the run time from runAt, delayMs or now", () => {
    expect(resolveJobOptions({}, { delayMs: 60_000 }, NOW).runAt).toBe(NOW + 60_000);
    expect(resolveJobOptions({}, { delayMs: "30s" }, NOW).runAt).toBe(NOW + 30_000);
    expect(resolveJobOptions({}, { runAt: new Date(NOW + 5) }, NOW).runAt).toBe(NOW + 5);
    expect(resolveJobOptions({}, { runAt: NOW - 1_000 }, NOW).runAt).toBe(NOW - 1_000);
    expect(resolveJobOptions({}, { runAt: NOW + 0.6 }, NOW).runAt).toBe(NOW + 1);
    expect(resolveJobOptions({}, {}, NOW).runAt).toBe(NOW);
  });

  it("per-call timing replaces the task's timing as a pair", () => {
    const task: JobOptions = { delayMs: "1m" };
    expect(resolveJobOptions(task, undefined, NOW).runAt).toBe(NOW + 60_000);
    expect(resolveJobOptions(task, { runAt: NOW + 7 }, NOW).runAt).toBe(NOW + 7);
    expect(resolveJobOptions(task, { delayMs: 0 }, NOW).runAt).toBe(NOW);
    expect(resolveJobOptions({ runAt: NOW + 9 }, { delayMs: 2 }, NOW).runAt).toBe(NOW + 2);
  });

  it("resolves uniqueKey: states default to the pending states, window to uniqueUntil", () => {
    expect(resolveJobOptions({}, { uniqueKey: "doc:1" }, NOW)).toMatchObject({
      uniqueKey: "doc:1",
      uniqueStates: ["scheduled", "waiting", "active", "blocked"],
      uniqueUntil: null,
    });
    expect(resolveJobOptions({}, { uniqueKey: { key: "doc:2", windowMs: "1h" } }, NOW)).toMatchObject({
      uniqueKey: "doc:2",
      uniqueStates: [...PENDING_STATES],
      uniqueUntil: NOW + 3_600_000,
    });
    expect(resolveJobOptions({}, { uniqueKey: { key: "doc:3", states: ["completed"] } }, NOW)).toMatchObject({
      uniqueKey: "doc:3",
      uniqueStates: ["completed"],
      uniqueUntil: null,
    });
    expect(resolveJobOptions({ uniqueKey: "task-key" }, { uniqueKey: "call-key" }, NOW).uniqueKey).toBe(
      "call-key",
    );
  });

  it("returns fresh mutable arrays and objects", () => {
    const task = validateJobOptions({ tags: ["a"], retention: { ageMs: 5 }, uniqueKey: "k" }, "task");
    const resolved = resolveJobOptions(task, undefined, NOW);
    resolved.tags.push("b");
    resolved.uniqueStates.push("dead");
    expect(task.tags).toEqual(["a"]);
    expect(resolved.retention).not.toBe(task.retention);
    expect(Object.isFrozen(resolved.retention)).toBe(false);
    expect(resolveJobOptions({}, undefined, NOW).retention).not.toBe(DEFAULTS.retention);
    expect(PENDING_STATES).toEqual(["scheduled", "waiting", "active", "blocked"]);
  });

  it("validates inputs that did not come from validateJobOptions", () => {
    expectInvalid(() => resolveJobOptions({}, { priority: 0.5 }, NOW), "options.priority");
    expectInvalid(() => resolveJobOptions({ attempts: 0 }, undefined, NOW), "task.attempts");
    expectInvalid(
      () => resolveJobOptions({}, { delay: 5 } as unknown as JobOptions, NOW),
      "options.delay",
      "did you mean delayMs?",
    );
    expectInvalid(() => resolveJobOptions({}, { delayMs: 1, runAt: NOW }, NOW), "options.runAt", "not both");
  });
});
