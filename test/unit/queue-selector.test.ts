/** Queue selection for claims: strict order, and weighted order drawn from a seeded random. */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/core/errors.js";
import { QueueSelector } from "../../src/runtime/queue-selector.js";
import { seeded } from "../support/seeded.js";

describe("queue selector", () => {
  it("keeps strict order on every claim", () => {
    const selector = new QueueSelector(["high", "default", "low"], seeded(1));
    expect(selector.mode).toBe("strict");
    for (let i = 0; i < 20; i++) expect(selector.order()).toEqual(["high", "default", "low"]);
  });

  it("puts each weighted queue first in proportion to its weight (3:1 → about 75 %)", () => {
    const selector = new QueueSelector(
      [
        ["seo", 3],
        ["images", 1],
      ],
      seeded(42),
    );
    expect(selector.mode).toBe("weighted");
    const draws = 10_000;
    let seoFirst = 0;
    let complete = 0;
    for (let i = 0; i < draws; i++) {
      const order = selector.order();
      if (order.length === 2 && order.includes("seo") && order.includes("images")) complete++; // every queue, once
      if (order[0] === "seo") seoFirst++;
    }
    expect(complete).toBe(draws);
    expect(seoFirst / draws).toBeGreaterThan(0.72);
    expect(seoFirst / draws).toBeLessThan(0.78);
  });

  it("draws the later places among the queues left (5:3:2 → the lightest is last most often)", () => {
    const selector = new QueueSelector(
      [
        ["a", 5],
        ["b", 3],
        ["c", 2],
      ],
      seeded(7),
    );
    const first = { a: 0, b: 0, c: 0 };
    const last = { a: 0, b: 0, c: 0 };
    const draws = 10_000;
    for (let i = 0; i < draws; i++) {
      const order = selector.order() as ("a" | "b" | "c")[];
      first[order[0] as "a"]++;
      last[order[2] as "a"]++;
    }
    expect(first.a / draws).toBeCloseTo(0.5, 1);
    expect(first.b / draws).toBeCloseTo(0.3, 1);
    expect(first.c / draws).toBeCloseTo(0.2, 1);
    expect(last.c).toBeGreaterThan(last.b);
    expect(last.b).toBeGreaterThan(last.a);
  });

  it("knows which queues it serves", () => {
    const selector = new QueueSelector([
      ["a", 2],
      ["b", 1],
    ]);
    expect(selector.serves("a")).toBe(true);
    expect(selector.serves("b")).toBe(true);
    expect(selector.serves("c")).toBe(false);
    expect(selector.names).toEqual(["a", "b"]);
  });

  it("refuses an empty list, a repeated queue, a bad weight or a bad pair with INVALID_OPTION", () => {
    const bad: unknown[] = [[], ["a", "a"], [["a", 0]], [["a", 1.5]], [["a", 1, 2]], [["a", -1]]];
    for (const spec of bad) {
      expect(() => new QueueSelector(spec as never)).toThrow(ValidationError);
    }
    expect(() => new QueueSelector([["a", 0]])).toThrow(/weight must be a positive integer/);
  });
});
