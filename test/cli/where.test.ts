/** The `--where` language: parsing, evaluation, and errors with position and expectation. */
import { describe, expect, it } from "vitest";
import { evaluateWhere, parseWhere, WhereSyntaxError } from "../../src/cli/where/index.js";

const matches = (expr: string, payload: unknown) => evaluateWhere(parseWhere(expr), payload);

describe("--where evaluation", () => {
  it("compares numbers, strings, booleans and null at dotted paths", () => {
    expect(matches("fileSizeMb >= 10", { fileSizeMb: 10 })).toBe(true);
    expect(matches("fileSizeMb >= 10", { fileSizeMb: 9.5 })).toBe(false);
    expect(matches("fileSizeMb > 10", { fileSizeMb: 10 })).toBe(false);
    expect(matches("fileSizeMb < 10 ", { fileSizeMb: 3 })).toBe(true);
    expect(matches("fileSizeMb <= -1.5e1", { fileSizeMb: -15 })).toBe(true);
    expect(matches("doc.meta.lang = 'ko'", { doc: { meta: { lang: "ko" } } })).toBe(true);
    expect(matches('doc.meta.lang == "ko"', { doc: { meta: { lang: "en" } } })).toBe(false);
    expect(matches("items.1.size = 5", { items: [{ size: 1 }, { size: 5 }] })).toBe(true);
    expect(matches("urgent = true", { urgent: true })).toBe(true);
    expect(matches("urgent != true", {})).toBe(true);
    expect(matches("owner = null", {})).toBe(true);
    expect(matches("owner = null", { owner: null })).toBe(true);
    expect(matches("owner != null", { owner: "x" })).toBe(true);
    expect(matches("name >= 'b'", { name: "c" })).toBe(true);
  });

  it("is strict about types and missing fields", () => {
    expect(matches("size = 10", { size: "10" })).toBe(false);
    expect(matches("size > 1", { size: "5" })).toBe(false);
    expect(matches("size > 1", {})).toBe(false);
    expect(matches("size > 1", null)).toBe(false);
    expect(matches("a.b > 1", { a: 3 })).toBe(false);
    expect(matches("toString = null", {})).toBe(true); // own properties only, never the prototype
  });

  it("takes field names in any script (Korean payload keys) and quoted names with spaces or dots", () => {
    expect(matches("파일크기 >= 10", { 파일크기: 12 })).toBe(true);
    expect(matches("파일크기 >= 10", { 파일크기: 3 })).toBe(false);
    expect(matches("문서.언어 = 'ko' and 크기_MB < 5", { 문서: { 언어: "ko" }, 크기_MB: 1 })).toBe(true);
    expect(matches("café = 1", { café: 1 })).toBe(true);
    expect(matches("'file size' > 1", { "file size": 2 })).toBe(true);
    expect(matches('"a.b" = 1', { "a.b": 1, a: { b: 2 } })).toBe(true);
    expect(matches("a.b = 1", { "a.b": 1, a: { b: 2 } })).toBe(false);
    expect(matches("doc.'my key'.x = true", { doc: { "my key": { x: true } } })).toBe(true);
    expect(matches('"it\'s" = 1', { "it's": 1 })).toBe(true);
    expect(matches("items.0.'파일 크기' = 7", { items: [{ "파일 크기": 7 }] })).toBe(true);
  });

  it("combines with and/or/not and parentheses, with and binding tighter than or", () => {
    const p = { a: 1, b: 2, c: 3 };
    expect(matches("a = 1 or b = 9 and c = 9", p)).toBe(true);
    expect(matches("(a = 1 or b = 9) and c = 9", p)).toBe(false);
    expect(matches("not a = 2", p)).toBe(true);
    expect(matches("NOT (a = 1 AND b = 2)", p)).toBe(false);
    expect(matches("not not a = 1", p)).toBe(true);
  });
});

describe("--where errors", () => {
  const error = (expr: string): WhereSyntaxError => {
    try {
      parseWhere(expr);
    } catch (e) {
      if (e instanceof WhereSyntaxError) return e;
      throw e;
    }
    throw new Error(`parsed: ${expr}`);
  };

  it("reports position, expectation and what was found", () => {
    const e = error("fileSizeMb >= ");
    expect(e.column).toBe(15);
    expect(e.message).toContain("expected a value");
    expect(e.message).toContain("found end of input");
    expect(e.exitCode).toBe(2);
    expect(error("fileSizeMb 10").message).toMatch(/column 12: expected a comparison operator.*found "10"/);
    expect(error("a = 1 and").message).toContain("column 10");
    expect(error("(a = 1").message).toMatch(/expected '\)' to close the '\(' at column 1/);
    expect(error("a = 1)").message).toMatch(/column 6: expected and, or, or the end/);
    expect(error("lang = ko").message).toContain("quote text values: 'ko'");
    expect(error("a = 'open").message).toMatch(/closing ' for the string/);
    expect(error("a ~ 1").message).toMatch(/column 3: expected a field/);
    expect(error("").message).toContain("expected an expression");
    expect(error("a. = 1").message).toContain("a field name after '.'");
    expect(error("size > 10MB").message).toContain("expected a number");
    expect(error("파일크기 >= ").column).toBe(9);
    // The caret sits under the spot on a terminal, where each Hangul syllable takes two columns.
    expect(error("파일크기 >= ").message.endsWith(`\n  ${" ".repeat(12)}^`)).toBe(true);
    expect(error("'a'. = 1").message).toContain("a field name after '.'");
  });

  it("never evaluates code", () => {
    expect(() => parseWhere("process.exit(1)")).toThrow(WhereSyntaxError);
    expect(() => parseWhere("a = `x`")).toThrow(WhereSyntaxError);
    expect(() => parseWhere("constructor.constructor = 1")).not.toThrow();
    expect(matches("constructor.constructor = 1", {})).toBe(false);
  });
});
