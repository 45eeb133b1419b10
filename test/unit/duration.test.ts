import { describe, expect, it } from "vitest";
import { describeValue, formatDuration, parseDuration } from "../../src/core/duration.js";
import { ValidationError } from "../../src/core/errors.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectInvalidDuration(input: unknown, field = "options.delayMs"): ValidationError {
  const error = thrown(() => parseDuration(input as string | number, field));
  expect(error).toBeInstanceOf(ValidationError);
  const validation = error as ValidationError;
  expect(validation.code).toBe("INVALID_OPTION");
  expect(validation.field).toBe(field);
  expect(validation.message).toContain(field);
  // Says what to do: the accepted forms.
  expect(validation.message).toContain('"30s"');
  return validation;
}

describe("parseDuration", () => {
  it("takes numbers as milliseconds", () => {
    expect(parseDuration(0, "f")).toBe(0);
    expect(parseDuration(250, "f")).toBe(250);
    expect(parseDuration(1.5, "f")).toBe(1.5);
    expect(parseDuration(Number.MAX_SAFE_INTEGER, "f")).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("parses each unit", () => {
    expect(parseDuration("250ms", "f")).toBe(250);
    expect(parseDuration("30s", "f")).toBe(30_000);
    expect(parseDuration("30m", "f")).toBe(1_800_000);
    expect(parseDuration("2h", "f")).toBe(7_200_000);
    expect(parseDuration("7d", "f")).toBe(604_800_000);
  });

  it("parses plain digits as milliseconds", () => {
    expect(parseDuration("1500", "f")).toBe(1_500);
    expect(parseDuration("0", "f")).toBe(0);
  });

  it("parses compound, spaced and fractional durations", () => {
    expect(parseDuration("1h30m", "f")).toBe(5_400_000);
    expect(parseDuration("1h 30m", "f")).toBe(5_400_000);
    expect(parseDuration("2d4h5m6s7ms", "f")).toBe(2 * 86_400_000 + 4 * 3_600_000 + 5 * 60_000 + 6_000 + 7);
    expect(parseDuration(" 30 s ", "f")).toBe(30_000);
    expect(parseDuration("1.5s", "f")).toBe(1_500);
    expect(parseDuration(".5s", "f")).toBe(500);
    expect(parseDuration("0s", "f")).toBe(0);
  });

  it("rounds string results to whole milliseconds", () => {
    expect(parseDuration("1.6ms", "f")).toBe(2);
    expect(parseDuration("0.0004s", "f")).toBe(0);
  });

  it("distinguishes m (minutes) from ms", () => {
    expect(parseDuration("1m", "f")).toBe(60_000);
    expect(parseDuration("1ms", "f")).toBe(1);
    expect(parseDuration("1m1ms", "f")).toBe(60_001);
  });

  it.each([
    [-1],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [Number.NEGATIVE_INFINITY],
    [Number.MAX_SAFE_INTEGER + 2],
  ])("rejects the number %s", (input) => {
    expectInvalidDuration(input);
  });

  it.each([
    [""],
    ["   "],
    ["abc"],
    ["10x"],
    ["-5s"],
    ["5 seconds"],
    ["1h30"],
    ["1.5"],
    ["1e3"],
    ["30S"],
    ["s"],
    ["1h-30m"],
    ["99999999999999999999"],
    ["999999999999999d"],
  ])("rejects the string %j", (input) => {
    expectInvalidDuration(input);
  });

  it.each([[null], [undefined], [true], [{}], [[1]]])("rejects the non-duration %s", (input) => {
    expectInvalidDuration(input);
  });

  it("names the bad input in the message", () => {
    expect(expectInvalidDuration("10x", "task.timeoutMs").message).toContain('got "10x"');
    expect(expectInvalidDuration(-1).message).toContain("got -1");
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0ms"],
    [850, "850ms"],
    [999.4, "999ms"],
    [999.6, "1s"],
    [1_000, "1s"],
    [1_200, "1.2s"],
    [1_249, "1.2s"],
    [45_000, "45s"],
    [59_949, "59.9s"],
    [59_960, "1m"],
    [60_000, "1m"],
    [184_000, "3m 4s"],
    [3_599_600, "1h"],
    [3_600_000, "1h"],
    [7_500_000, "2h 5m"],
    [86_400_000, "1d"],
    [273_600_000, "3d 4h"],
  ])("formats %s ms as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("handles negative and non-finite values", () => {
    expect(formatDuration(-1_500)).toBe("-1.5s");
    expect(formatDuration(Number.NaN)).toBe("NaN");
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe("Infinity");
  });
});

describe("describeValue", () => {
  it("describes values briefly", () => {
    expect(describeValue("abc")).toBe('"abc"');
    expect(describeValue("x".repeat(100))).toHaveLength(62);
    expect(describeValue(3)).toBe("3");
    expect(describeValue(10n)).toBe("10n");
    expect(describeValue(null)).toBe("null");
    expect(describeValue(undefined)).toBe("undefined");
    expect(describeValue(Symbol("s"))).toBe("a symbol");
    expect(describeValue(() => 1)).toBe("a function");
    expect(describeValue([1])).toBe("an array");
    expect(describeValue({})).toBe("an object");
    expect(describeValue(Object.create(null))).toBe("an object");
    expect(describeValue(new Date())).toBe("a Date");
    expect(describeValue(new Error("x"))).toBe("an Error");
  });
});
