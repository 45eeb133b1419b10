import { runInNewContext } from "node:vm";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ValidationError } from "../../src/core/errors.js";
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  parseStoredJson,
  serializePayload,
  serializeResult,
  validateWithSchema,
} from "../../src/core/payload.js";

const LIMIT = DEFAULT_MAX_PAYLOAD_BYTES;

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectInvalidPayload(value: unknown, field: string, ...fragments: string[]): ValidationError {
  const error = thrown(() => serializePayload(value, LIMIT));
  expect(error).toBeInstanceOf(ValidationError);
  const validation = error as ValidationError;
  expect(validation.code).toBe("INVALID_PAYLOAD");
  expect(validation.field).toBe(field);
  expect(validation.message.startsWith(`${field} `)).toBe(true);
  for (const fragment of fragments) expect(validation.message).toContain(fragment);
  return validation;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

describe("serializePayload: accepted values", () => {
  it.each([
    [null],
    [true],
    [false],
    [0],
    [-1.5],
    [Number.MAX_VALUE],
    [""],
    ["héllo 🌍"],
    [[]],
    [{}],
    [[1, "a", null, true, [2, [3]], { b: { c: [] } }]],
    [{ docId: "d1", nested: { list: [{ a: 1 }, { b: [null] }], flag: false } }],
  ])("serialises %j exactly like JSON.stringify", (value) => {
    expect(serializePayload(value, LIMIT)).toBe(JSON.stringify(value));
  });

  it("accepts objects with a null prototype", () => {
    const value = Object.create(null) as Record<string, unknown>;
    value.a = 1;
    expect(serializePayload(value, LIMIT)).toBe('{"a":1}');
  });

  it("accepts plain objects and arrays from another realm", () => {
    const value: unknown = runInNewContext("({ a: [1, { b: 2 }] })");
    expect(serializePayload(value, LIMIT)).toBe('{"a":[1,{"b":2}]}');
  });

  it("accepts the same object twice when it is not a cycle", () => {
    const shared = { id: 1 };
    const value = { a: shared, b: shared, list: [shared, shared] };
    expect(serializePayload(value, LIMIT)).toBe(JSON.stringify(value));
  });

  it("ignores symbol-keyed and non-enumerable properties, like JSON.stringify", () => {
    const value: Record<PropertyKey, unknown> = { a: 1, [Symbol("s")]: () => 1 };
    Object.defineProperty(value, "hidden", { value: undefined, enumerable: false });
    expect(serializePayload(value, LIMIT)).toBe('{"a":1}');
  });
});

describe("serializePayload: rejected values", () => {
  it("rejects undefined at the top level, advising null or {}", () => {
    expectInvalidPayload(undefined, "payload", "undefined", "pass null or {}");
  });

  it("rejects an undefined property, advising to remove it or use null", () => {
    expectInvalidPayload({ a: { b: undefined } }, "payload.a.b", "remove it or use null");
  });

  it("rejects an undefined array element, and holes in sparse arrays", () => {
    expectInvalidPayload({ items: [1, 2, undefined] }, "payload.items[2]", "array element", "use null");
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expectInvalidPayload([1, , 3], "payload[1]", "array element");
  });

  it("rejects functions, symbols and bigints with advice", () => {
    expectInvalidPayload({ cb: () => 1 }, "payload.cb", "is a function");
    expectInvalidPayload({ toJSON: () => "x" }, "payload.toJSON", "is a function");
    expectInvalidPayload([Symbol("s")], "payload[0]", "is a symbol", "string");
    expectInvalidPayload({ n: 10n }, "payload.n", "bigint (10n)", "toString()");
  });

  it.each([
    [Number.NaN, "NaN"],
    [Number.POSITIVE_INFINITY, "Infinity"],
    [Number.NEGATIVE_INFINITY, "-Infinity"],
  ])("rejects %s", (value, shown) => {
    expectInvalidPayload({ score: value }, "payload.score", `is ${shown}`, "finite number or null");
  });

  it("rejects a Date, naming its path and advising toISOString()", () => {
    const payload = { items: [{}, {}, {}, { at: new Date(0) }] };
    expectInvalidPayload(payload, "payload.items[3].at", "is a Date", "date.toISOString()");
  });

  it("rejects Map and Set with a conversion hint", () => {
    expectInvalidPayload({ m: new Map([["a", 1]]) }, "payload.m", "is a Map", "Object.fromEntries(map)");
    expectInvalidPayload({ s: new Set([1]) }, "payload.s", "is a Set", "[...set]");
  });

  it("rejects binary data", () => {
    expectInvalidPayload({ file: Buffer.from("abc") }, "payload.file", "binary data (Buffer)", "reference");
    expectInvalidPayload({ file: new Uint8Array(3) }, "payload.file", "binary data (Uint8Array)");
    expectInvalidPayload({ file: new ArrayBuffer(3) }, "payload.file", "binary data (ArrayBuffer)");
  });

  it("rejects class instances, naming the class", () => {
    expectInvalidPayload({ p: new Point(1, 2) }, "payload.p", "instance of Point", "plain object");
    expectInvalidPayload(new Point(1, 2), "payload", "instance of Point");
    expectInvalidPayload({ e: new Error("x") }, "payload.e", "instance of Error");
    expectInvalidPayload({ r: /x/ }, "payload.r", "instance of RegExp");
    expectInvalidPayload({ s: new String("x") }, "payload.s", "instance of String");
    expectInvalidPayload({ o: Object.create({ inherited: 1 }) }, "payload.o", "custom prototype");
  });

  it("rejects circular references, naming both ends", () => {
    const self: Record<string, unknown> = { a: 1 };
    self.self = self;
    expectInvalidPayload(self, "payload.self", "refers back to payload ", "circular");

    const root: Record<string, unknown> = {};
    const a: Record<string, unknown> = {};
    root.a = a;
    a.b = { c: a };
    expectInvalidPayload(root, "payload.a.b.c", "refers back to payload.a ");

    const list: unknown[] = [1];
    list.push({ back: list });
    expectInvalidPayload({ list }, "payload.list[1].back", "refers back to payload.list ");
  });

  it("formats keys that are not identifiers with brackets", () => {
    expectInvalidPayload({ "content-type": { "": [undefined] } }, 'payload["content-type"][""][0]');
  });

  it("uses the given root name", () => {
    const error = thrown(() => serializePayload({ at: new Date() }, LIMIT, "progress"));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("progress.at");
  });

  it("rejects nesting deeper than the stack allows as INVALID_PAYLOAD, not a RangeError", () => {
    let deep: unknown = null;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const error = thrown(() => serializePayload(deep, LIMIT));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe("INVALID_PAYLOAD");
    expect((error as ValidationError).message).toContain("nested too deeply");
  });
});

describe("serializePayload: size limit", () => {
  function expectTooLarge(value: unknown, maxBytes: number, actual: number): void {
    const error = thrown(() => serializePayload(value, maxBytes));
    expect(error).toBeInstanceOf(ValidationError);
    const validation = error as ValidationError;
    expect(validation.code).toBe("PAYLOAD_TOO_LARGE");
    expect(validation.field).toBe("payload");
    expect(validation.message).toContain(`(${actual} bytes)`);
    expect(validation.message).toContain(`(${maxBytes} bytes)`);
    expect(validation.message).toContain("pass a reference");
  }

  it("defaults to 1 MiB", () => {
    expect(DEFAULT_MAX_PAYLOAD_BYTES).toBe(1_048_576);
  });

  it("accepts exactly the limit and rejects one byte more (ASCII)", () => {
    const value = { s: "x".repeat(100) }; // {"s":"xxx…"} = 8 + 100 bytes
    expect(serializePayload(value, 108)).toBe(JSON.stringify(value));
    expectTooLarge(value, 107, 108);
  });

  it("counts UTF-8 bytes, not characters", () => {
    const accents = "é".repeat(50); // 2 bytes each → "…" = 102 bytes, 52 characters
    expect(serializePayload(accents, 102)).toBe(JSON.stringify(accents));
    expectTooLarge(accents, 101, 102);
    const emoji = "🌍".repeat(10); // 4 bytes each (2 UTF-16 units) → 42 bytes
    expect(serializePayload(emoji, 42)).toBe(JSON.stringify(emoji));
    expectTooLarge(emoji, 41, 42);
  });

  it("counts the JSON text, escapes included", () => {
    const value = "\n".repeat(10); // each newline is written as \n (2 bytes) → 22 bytes
    expect(serializePayload(value, 22)).toBe(JSON.stringify(value));
    expectTooLarge(value, 21, 22);
  });

  it("reports human sizes for big payloads", () => {
    const value = "x".repeat(1_572_864 - 2);
    const error = thrown(() => serializePayload(value, LIMIT)) as ValidationError;
    expect(error.code).toBe("PAYLOAD_TOO_LARGE");
    expect(error.message).toContain("1.5 MiB");
    expect(error.message).toContain("limit of 1 MiB");
  });

  it("checks the shape before the size", () => {
    const error = thrown(() =>
      serializePayload({ big: "x".repeat(100), bad: Number.NaN }, 10),
    ) as ValidationError;
    expect(error.code).toBe("INVALID_PAYLOAD");
  });
});

describe("serializeResult", () => {
  it("stores undefined as null (no result)", () => {
    expect(serializeResult(undefined)).toBeNull();
  });

  it("stores JSON values as JSON.stringify does", () => {
    expect(serializeResult(null)).toBe("null");
    expect(serializeResult({ chunks: 42 })).toBe('{"chunks":42}');
    expect(serializeResult("ok")).toBe('"ok"');
    expect(serializeResult(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
    expect(serializeResult({ n: Number.NaN, u: undefined })).toBe('{"n":null}');
  });

  function reason(text: string | null): string {
    expect(text).not.toBeNull();
    const parsed = JSON.parse(text as string) as { unserializableResult?: unknown };
    expect(typeof parsed.unserializableResult).toBe("string");
    return parsed.unserializableResult as string;
  }

  it("describes a bigint instead of throwing", () => {
    expect(reason(serializeResult({ n: 1n }))).toMatch(/BigInt/);
  });

  it("describes a cycle instead of throwing", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.me = cyclic;
    expect(reason(serializeResult(cyclic))).toMatch(/circular/i);
  });

  it("describes a function or symbol result", () => {
    expect(reason(serializeResult(() => 1))).toContain("returned a function");
    expect(reason(serializeResult(Symbol("s")))).toContain("returned a symbol");
  });

  it("survives throwing toJSON methods and getters, even with hostile thrown values", () => {
    expect(
      reason(
        serializeResult({
          toJSON: () => {
            throw new Error("nope");
          },
        }),
      ),
    ).toContain("nope");
    const getter = {
      get x(): number {
        throw new Error("getter failed");
      },
    };
    expect(reason(serializeResult(getter))).toContain("getter failed");
    const hostile = {
      toJSON: () => {
        throw {
          toString() {
            throw new Error("again");
          },
        };
      },
    };
    expect(reason(serializeResult(hostile))).toContain("unknown error");
  });
});

describe("parseStoredJson", () => {
  it("parses JSON text and passes null through", () => {
    expect(parseStoredJson(null)).toBeNull();
    expect(parseStoredJson("null")).toBeNull();
    expect(parseStoredJson('{"a":[1,"b",true]}')).toEqual({ a: [1, "b", true] });
    expect(parseStoredJson("3")).toBe(3);
  });

  it("throws a plain Error that explains the corruption without leaking content", () => {
    const text = '{"apiKey":"hunter2"';
    const error = thrown(() => parseStoredJson(text));
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ValidationError);
    const message = (error as Error).message;
    expect(message).toContain("corrupt");
    expect(message).toContain(`${text.length} characters`);
    expect(message).not.toContain("hunter2");
    expect((error as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it("rejects empty text", () => {
    expect(() => parseStoredJson("")).toThrow(/corrupt/);
  });
});

describe("validateWithSchema", () => {
  it("returns the schema's output on success (zod)", async () => {
    const schema = z.object({ docId: z.string(), retries: z.number().default(3) });
    await expect(validateWithSchema(schema, { docId: "d1" }, "payload")).resolves.toEqual({
      docId: "d1",
      retries: 3,
    });
  });

  it("throws SCHEMA_VALIDATION with issues and paths (zod)", async () => {
    const schema = z.object({ docId: z.string(), items: z.array(z.object({ n: z.number() })) });
    const error = await rejection(
      validateWithSchema(schema, { docId: 5, items: [{ n: 1 }, { n: "x" }] }, "payload"),
    );
    expect(error).toBeInstanceOf(ValidationError);
    const validation = error as ValidationError;
    expect(validation.code).toBe("SCHEMA_VALIDATION");
    expect(validation.field).toBe("payload");
    expect(validation.issues).toHaveLength(2);
    expect(validation.issues.map((issue) => issue.path)).toEqual([["docId"], ["items", 1, "n"]]);
    expect(validation.message).toContain("(2 problems)");
    expect(validation.message).toContain("payload.docId: ");
    expect(validation.message).toContain("payload.items[1].n: ");
    expect(validation.message).toContain("fix the data or the schema");
  });

  function customSchema(
    validate: (
      value: unknown,
    ) => StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>,
  ): StandardSchemaV1 {
    return { "~standard": { version: 1, vendor: "test", validate } };
  }

  it("awaits asynchronous schemas", async () => {
    const schema = customSchema(async (value) => ({ value: { wrapped: value } }));
    await expect(validateWithSchema(schema, 1, "payload")).resolves.toEqual({ wrapped: 1 });
    const failing = customSchema(async () => ({ issues: [{ message: "async no" }] }));
    const error = (await rejection(validateWithSchema(failing, 1, "payload"))) as ValidationError;
    expect(error.code).toBe("SCHEMA_VALIDATION");
    expect(error.message).toContain("payload: async no");
  });

  it("lists at most 5 issues and counts the rest; keeps them all on issues", async () => {
    const issues = Array.from({ length: 8 }, (_, i) => ({ message: `bad ${i}`, path: [`f${i}`] }));
    const error = (await rejection(
      validateWithSchema(
        customSchema(() => ({ issues })),
        {},
        "options.payload",
      ),
    )) as ValidationError;
    expect(error.field).toBe("options.payload");
    expect(error.issues).toHaveLength(8);
    expect(error.message).toContain("options.payload.f4: bad 4");
    expect(error.message).not.toContain("bad 5");
    expect(error.message).toContain("(and 3 more)");
    expect(error.message).toContain("(8 problems)");
  });

  it("normalises path segments given as { key } objects and symbols", async () => {
    const sym = Symbol("s");
    const schema = customSchema(() => ({
      issues: [{ message: "m", path: [{ key: "a" }, { key: 0 }, sym, "x-y"] }],
    }));
    const error = (await rejection(validateWithSchema(schema, {}, "payload"))) as ValidationError;
    expect(error.issues[0]?.path).toEqual(["a", 0, sym, "x-y"]);
    expect(error.message).toContain('payload.a[0]["Symbol(s)"]["x-y"]: m');
    expect(error.message).toContain("(1 problem)");
  });

  it("rejects something that is not a Standard Schema", async () => {
    const error = (await rejection(
      validateWithSchema({} as unknown as StandardSchemaV1, {}, "payload"),
    )) as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.code).toBe("INVALID_OPTION");
    expect(error.field).toBe("schema");
    expect(error.message).toContain("Standard Schema");
  });
});
