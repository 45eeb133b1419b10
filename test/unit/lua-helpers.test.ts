import { describe, expect, it } from "vitest";
import { splitDefinitions, withHelpers } from "../../src/store/redis/lua-helpers.js";

const HELPERS = `
local qp = string.sub(KEYS[1], 1, -2)
local A, B = 1, 2
-- adds one
local function inc(n) return n + A end
local FG = qp
if CLUSTER then FG = 'x' end
local function twice(n)
  return inc(inc(n))
end
local function unused() return B end
`;

describe("lua helpers", () => {
  it("splits top-level definitions, keeping comments and column-0 statements with their local", () => {
    const defs = splitDefinitions(HELPERS);
    expect(defs.map((d) => d.names)).toEqual([["qp"], ["A", "B"], ["inc"], ["FG"], ["twice"], ["unused"]]);
    expect(defs[2]?.code).toBe("-- adds one\nlocal function inc(n) return n + A end");
    expect(defs[3]?.code).toContain("if CLUSTER then FG = 'x' end");
  });

  it("keeps what the body uses, directly or through other helpers, in order, and nothing else", () => {
    const script = withHelpers(splitDefinitions(HELPERS), "return twice(1)");
    expect(script).toContain("local function twice");
    expect(script).toContain("local function inc");
    expect(script).toContain("local A, B = 1, 2");
    expect(script.indexOf("local A, B")).toBeLessThan(script.indexOf("local function inc"));
    expect(script.indexOf("local function inc")).toBeLessThan(script.indexOf("local function twice"));
    expect(script).not.toContain("unused");
    expect(script).not.toContain("local qp");
    expect(script.endsWith("return twice(1)")).toBe(true);
  });

  it("keeps the names it is told to keep", () => {
    expect(withHelpers(splitDefinitions(HELPERS), "return 1", ["qp"])).toContain("local qp");
    expect(withHelpers(splitDefinitions(HELPERS), "return FG")).toContain("local qp");
  });

  it("refuses source it cannot split", () => {
    expect(() => splitDefinitions("redis.call('PING')\nlocal a = 1")).toThrow(/outside any definition/);
    expect(() => splitDefinitions("local a\nlocal b = 1")).toThrow(/cannot tell what this declares/);
  });
});
