/** The redaction functions: names at any depth, dotted paths with `*`, arrays, key spelling, no mutation. */
import { describe, expect, it } from "vitest";
import { compileRedaction, REDACTED, redactFields, redactLogMessage } from "../../src/http/index.js";

describe("redactFields", () => {
  const defaults = compileRedaction([]);

  it("masks the default secret names at any depth, whatever their spelling", () => {
    const input = {
      password: "p",
      nested: { deeper: { API_KEY: "k", "access-token": "t", keep: 1 } },
      list: [{ Authorization: "Bearer x", name: "a" }],
    };
    expect(redactFields(input, defaults)).toEqual({
      password: REDACTED,
      nested: { deeper: { API_KEY: REDACTED, "access-token": REDACTED, keep: 1 } },
      list: [{ Authorization: REDACTED, name: "a" }],
    });
  });

  it("masks dotted paths from the root only, with * for any one key, through arrays", () => {
    const rules = compileRedaction(["user.ssn", "*.pin", "cards.number"], false);
    const input = {
      user: { ssn: "1", other: { ssn: "2" } },
      ssn: "3",
      a: { pin: 1 },
      b: { pin: 2, c: { pin: 3 } },
      cards: [{ number: "4111", last4: "1111" }, { number: "5500" }],
    };
    expect(redactFields(input, rules)).toEqual({
      user: { ssn: REDACTED, other: { ssn: "2" } },
      ssn: "3",
      a: { pin: REDACTED },
      b: { pin: REDACTED, c: { pin: 3 } },
      cards: [{ number: REDACTED, last4: "1111" }, { number: REDACTED }],
    });
  });

  it("masks a whole object or list under a secret key, and never changes its input", () => {
    const input = { secret: { a: [1, 2] }, ok: "x" };
    const copy = structuredClone(input);
    expect(redactFields(input, defaults)).toEqual({ secret: REDACTED, ok: "x" });
    expect(input).toEqual(copy);
  });

  it("leaves scalars, null and data without secrets as they are; no rules means no change", () => {
    expect(redactFields(null, defaults)).toBeNull();
    expect(redactFields("password", defaults)).toBe("password");
    expect(redactFields([1, { a: 2 }], defaults)).toEqual([1, { a: 2 }]);
    const none = compileRedaction([], false);
    expect(redactFields({ password: "p" }, none)).toEqual({ password: "p" });
  });

  it("masks JSON log lines and leaves other text", () => {
    expect(redactLogMessage('{"user":"a","token":"t"}', defaults)).toBe('{"user":"a","token":"***"}');
    expect(redactLogMessage("token=abc (plain text)", defaults)).toBe("token=abc (plain text)");
    expect(redactLogMessage("{broken json", defaults)).toBe("{broken json");
  });

  it("refuses empty rules and empty segments", () => {
    expect(() => compileRedaction([""])).toThrow(TypeError);
    expect(() => compileRedaction(["a..b"])).toThrow(/empty segment/);
  });
});
