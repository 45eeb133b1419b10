import { describe, expect, it } from "vitest";
import {
  type BackoffFunction,
  computeBackoff,
  DEFAULT_BACKOFF,
  MAX_BACKOFF_MS,
  validateBackoff,
} from "../../src/core/backoff.js";
import { ValidationError } from "../../src/core/errors.js";
import type { BackoffSpec } from "../../src/core/job.js";
import { seeded } from "../support/seeded.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectInvalid(value: unknown, field: string, ...fragments: string[]): void {
  const error = thrown(() => validateBackoff(value, "options.backoff"));
  expect(error).toBeInstanceOf(ValidationError);
  const validation = error as ValidationError;
  expect(validation.code).toBe("INVALID_OPTION");
  expect(validation.field).toBe(field);
  for (const fragment of fragments) expect(validation.message).toContain(fragment);
}

const noRandom = (): number => {
  throw new Error("random must not be called without jitter");
};

describe("validateBackoff", () => {
  it("accepts each type and returns a copy with only known keys", () => {
    const fixed = { type: "fixed", delayMs: 500 } as const;
    const result = validateBackoff(fixed, "f");
    expect(result).toEqual(fixed);
    expect(result).not.toBe(fixed);
    expect(validateBackoff({ type: "linear", delayMs: 100, maxDelayMs: 1_000, jitter: false }, "f")).toEqual({
      type: "linear",
      delayMs: 100,
      maxDelayMs: 1_000,
      jitter: false,
    });
    expect(
      validateBackoff(
        { type: "exponential", delayMs: 1_000, maxDelayMs: 600_000, jitter: true, factor: 3 },
        "f",
      ),
    ).toEqual({ type: "exponential", delayMs: 1_000, maxDelayMs: 600_000, jitter: true, factor: 3 });
  });

  it("accepts edge values", () => {
    expect(validateBackoff({ type: "fixed", delayMs: 0 }, "f")).toEqual({ type: "fixed", delayMs: 0 });
    expect(validateBackoff({ type: "linear", delayMs: 5, maxDelayMs: 5 }, "f")).toEqual({
      type: "linear",
      delayMs: 5,
      maxDelayMs: 5,
    });
    expect(validateBackoff({ type: "exponential", delayMs: 5, factor: 1.01 }, "f")).toEqual({
      type: "exponential",
      delayMs: 5,
      factor: 1.01,
    });
  });

  it("accepts a function as is", () => {
    const fn: BackoffFunction = (attempt) => attempt * 10;
    expect(validateBackoff(fn, "f")).toBe(fn);
  });

  it.each([[null], [undefined], [5], ["exponential"], [[{ type: "fixed", delayMs: 1 }]]])(
    "rejects the non-object %j",
    (value) => {
      expectInvalid(value, "options.backoff", "options.backoff must be", "a function (attempt, error)");
    },
  );

  it("rejects a missing or unknown type", () => {
    expectInvalid({ delayMs: 1 }, "options.backoff.type", '"fixed", "linear" or "exponential"');
    expectInvalid({ type: "random", delayMs: 1 }, "options.backoff.type", 'got "random"');
  });

  it.each([
    [{ type: "fixed" }, "undefined"],
    [{ type: "fixed", delayMs: -1 }, "-1"],
    [{ type: "linear", delayMs: Number.NaN }, "NaN"],
    [{ type: "exponential", delayMs: Number.POSITIVE_INFINITY }, "Infinity"],
    [{ type: "exponential", delayMs: "1s" }, '"1s"'],
  ])("rejects delayMs in %j", (value, shown) => {
    expectInvalid(value, "options.backoff.delayMs", ">= 0", `got ${shown}`);
  });

  it("rejects maxDelayMs below delayMs or not finite", () => {
    expectInvalid(
      { type: "exponential", delayMs: 1_000, maxDelayMs: 999 },
      "options.backoff.maxDelayMs",
      ">= delayMs",
    );
    expectInvalid(
      { type: "linear", delayMs: 1, maxDelayMs: Number.POSITIVE_INFINITY },
      "options.backoff.maxDelayMs",
      "finite",
    );
    expectInvalid({ type: "linear", delayMs: 1, maxDelayMs: "1h" }, "options.backoff.maxDelayMs");
  });

  it.each([[1], [0.5], [0], [-2], [Number.NaN], [Number.POSITIVE_INFINITY], ["2"]])(
    "rejects factor %s",
    (factor) => {
      expectInvalid({ type: "exponential", delayMs: 1, factor }, "options.backoff.factor", "> 1");
    },
  );

  it("rejects a non-boolean jitter", () => {
    expectInvalid({ type: "fixed", delayMs: 1, jitter: "yes" }, "options.backoff.jitter", "true or false");
    expectInvalid({ type: "fixed", delayMs: 1, jitter: 1 }, "options.backoff.jitter");
  });

  it("rejects keys that do not apply to the type, and unknown keys", () => {
    expectInvalid(
      { type: "fixed", delayMs: 1, maxDelayMs: 5 },
      "options.backoff.maxDelayMs",
      "does not apply to fixed",
    );
    expectInvalid(
      { type: "linear", delayMs: 1, factor: 3 },
      "options.backoff.factor",
      "does not apply to linear",
    );
    expectInvalid({ type: "exponential", delayMs: 1, max: 5 }, "options.backoff.max", "remove it");
  });
});

describe("computeBackoff", () => {
  it("fixed: always delayMs", () => {
    const spec: BackoffSpec = { type: "fixed", delayMs: 700 };
    for (const attempt of [1, 2, 10, 100]) expect(computeBackoff(spec, attempt, null, noRandom)).toBe(700);
  });

  it("linear: delayMs * attempt, capped by maxDelayMs", () => {
    const spec: BackoffSpec = { type: "linear", delayMs: 100, maxDelayMs: 450 };
    expect([1, 2, 3, 4, 5, 6].map((a) => computeBackoff(spec, a, null, noRandom))).toEqual([
      100, 200, 300, 400, 450, 450,
    ]);
    expect(computeBackoff({ type: "linear", delayMs: 100 }, 50, null, noRandom)).toBe(5_000);
  });

  it("exponential: delayMs * factor^(attempt - 1), default factor 2, capped by maxDelayMs", () => {
    const spec: BackoffSpec = { type: "exponential", delayMs: 1_000, maxDelayMs: 10_000 };
    expect([1, 2, 3, 4, 5, 6].map((a) => computeBackoff(spec, a, null, noRandom))).toEqual([
      1_000, 2_000, 4_000, 8_000, 10_000, 10_000,
    ]);
    expect(computeBackoff({ type: "exponential", delayMs: 10, factor: 3 }, 4, null, noRandom)).toBe(270);
  });

  it("never exceeds 30 days, even without maxDelayMs or with a huge attempt number", () => {
    expect(computeBackoff({ type: "exponential", delayMs: 1_000 }, 10_000, null, noRandom)).toBe(
      MAX_BACKOFF_MS,
    );
    expect(computeBackoff({ type: "exponential", delayMs: 1_000 }, 60, null, noRandom)).toBe(MAX_BACKOFF_MS);
    expect(computeBackoff({ type: "linear", delayMs: 86_400_000 }, 31, null, noRandom)).toBe(MAX_BACKOFF_MS);
    expect(computeBackoff({ type: "fixed", delayMs: 40 * 86_400_000 }, 1, null, noRandom)).toBe(
      MAX_BACKOFF_MS,
    );
    expect(MAX_BACKOFF_MS).toBe(30 * 24 * 3_600_000);
  });

  it("a zero delay stays zero at any attempt (no NaN from 0 * Infinity)", () => {
    expect(computeBackoff({ type: "exponential", delayMs: 0 }, 5_000, null, noRandom)).toBe(0);
    expect(computeBackoff({ type: "linear", delayMs: 0, jitter: true }, 3, null, () => 0.5)).toBe(0);
  });

  it("treats attempt numbers below 1 or not finite as 1, and floors fractions", () => {
    const spec: BackoffSpec = { type: "exponential", delayMs: 100 };
    expect(computeBackoff(spec, 0, null, noRandom)).toBe(100);
    expect(computeBackoff(spec, -3, null, noRandom)).toBe(100);
    expect(computeBackoff(spec, Number.NaN, null, noRandom)).toBe(100);
    expect(computeBackoff(spec, 3.9, null, noRandom)).toBe(400);
  });

  it("returns integers", () => {
    expect(computeBackoff({ type: "exponential", delayMs: 3, factor: 1.5 }, 3, null, noRandom)).toBe(7); // 6.75
    expect(computeBackoff({ type: "fixed", delayMs: 0.4 }, 1, null, noRandom)).toBe(0);
  });

  it("jitter stays within [50%, 100%] of the capped delay and spreads over the range", () => {
    const spec: BackoffSpec = { type: "exponential", delayMs: 1_000, maxDelayMs: 8_000, jitter: true };
    const random = seeded(42);
    for (let attempt = 1; attempt <= 8; attempt++) {
      const full = Math.min(1_000 * 2 ** (attempt - 1), 8_000);
      const samples: number[] = [];
      for (let i = 0; i < 2_000; i++) samples.push(computeBackoff(spec, attempt, null, random));
      expect(samples.every((delay) => Number.isInteger(delay))).toBe(true);
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(full / 2);
      expect(Math.max(...samples)).toBeLessThanOrEqual(full);
      // Spread: both the lower and the upper tenth of the range are hit.
      expect(Math.min(...samples)).toBeLessThan(full * 0.55);
      expect(Math.max(...samples)).toBeGreaterThan(full * 0.95);
    }
  });

  it("jitter maps the random value linearly: 0 → 50%, 0.5 → 75%, just under 1 → 100%", () => {
    const spec: BackoffSpec = { type: "fixed", delayMs: 1_000, jitter: true };
    expect(computeBackoff(spec, 1, null, () => 0)).toBe(500);
    expect(computeBackoff(spec, 1, null, () => 0.5)).toBe(750);
    expect(computeBackoff(spec, 1, null, () => 0.999_999_9)).toBe(1_000);
  });

  it("jitter clamps a misbehaving random source", () => {
    const spec: BackoffSpec = { type: "fixed", delayMs: 1_000, jitter: true };
    expect(computeBackoff(spec, 1, null, () => 7)).toBe(1_000);
    expect(computeBackoff(spec, 1, null, () => -1)).toBe(500);
    expect(computeBackoff(spec, 1, null, () => Number.NaN)).toBe(500);
  });

  it("jitter applies after the cap", () => {
    const spec: BackoffSpec = { type: "exponential", delayMs: 1_000, maxDelayMs: 3_000, jitter: true };
    expect(computeBackoff(spec, 10, null, () => 0)).toBe(1_500);
  });

  it("no jitter unless jitter is true", () => {
    expect(computeBackoff({ type: "fixed", delayMs: 1_000, jitter: false }, 1, null, noRandom)).toBe(1_000);
  });

  it("null uses DEFAULT_BACKOFF: exponential from 1 s, capped at 1 h, jittered", () => {
    expect(DEFAULT_BACKOFF).toEqual({
      type: "exponential",
      delayMs: 1_000,
      maxDelayMs: 3_600_000,
      jitter: true,
    });
    expect(Object.isFrozen(DEFAULT_BACKOFF)).toBe(true);
    expect(computeBackoff(null, 1, null, () => 0)).toBe(500);
    expect(computeBackoff(null, 3, null, () => 0.999_999_99)).toBe(4_000);
    expect(computeBackoff(null, 30, null, () => 0.999_999_99)).toBe(3_600_000);
    expect(computeBackoff(null, 30, null, () => 0)).toBe(1_800_000);
  });

  it("uses Math.random by default", () => {
    const delay = computeBackoff(null, 1, null);
    expect(delay).toBeGreaterThanOrEqual(500);
    expect(delay).toBeLessThanOrEqual(1_000);
  });

  describe("custom functions", () => {
    it("are called with the attempt and the error, and their result is used unjittered", () => {
      const calls: [number, unknown][] = [];
      const error = new Error("boom");
      const fn: BackoffFunction = (attempt, err) => {
        calls.push([attempt, err]);
        return attempt * 1_234;
      };
      expect(computeBackoff(fn, 3, error, noRandom)).toBe(3_702);
      expect(calls).toEqual([[3, error]]);
    });

    it("results are rounded and capped at 30 days", () => {
      expect(computeBackoff(() => 10.6, 1, null, noRandom)).toBe(11);
      expect(computeBackoff(() => 0, 1, null, noRandom)).toBe(0);
      expect(computeBackoff(() => 1e15, 1, null, noRandom)).toBe(MAX_BACKOFF_MS);
    });

    it.each([
      ["a negative number", () => -5],
      ["NaN", () => Number.NaN],
      ["Infinity", () => Number.POSITIVE_INFINITY],
      ["a string", () => "1000" as unknown as number],
      ["undefined", () => undefined as unknown as number],
      ["a promise", () => Promise.resolve(5) as unknown as number],
    ])("fall back to the default backoff when they return %s", (_label, fn) => {
      expect(computeBackoff(fn as BackoffFunction, 2, null, () => 0)).toBe(1_000);
      expect(computeBackoff(fn as BackoffFunction, 2, null, () => 0.999_999_99)).toBe(2_000);
    });

    it("fall back to the default backoff when they throw, without throwing", () => {
      const fn: BackoffFunction = () => {
        throw new Error("bug in user code");
      };
      expect(() => computeBackoff(fn, 1, null, () => 0)).not.toThrow();
      expect(computeBackoff(fn, 1, null, () => 0)).toBe(500);
      const throwsNonError: BackoffFunction = () => {
        throw "string";
      };
      expect(computeBackoff(throwsNonError, 4, null, () => 0)).toBe(4_000);
    });
  });

  it("falls back to the default for a malformed stored spec", () => {
    const corrupt = [
      { type: "weird", delayMs: 5 },
      { type: "fixed", delayMs: -5 },
      { type: "fixed", delayMs: "5" },
      { type: "fixed" },
    ] as unknown as BackoffSpec[];
    for (const spec of corrupt) expect(computeBackoff(spec, 1, null, () => 0)).toBe(500);
    // A bad factor falls back to the default factor only.
    expect(computeBackoff({ type: "exponential", delayMs: 10, factor: 0.5 }, 3, null, noRandom)).toBe(40);
  });
});
