/**
 * A small structural check of JSON values against the OpenAPI document's schemas, for tests (no schema
 * library): every property a value carries must be declared, declared types and enums must match, and
 * required properties must be there. It understands what src/http/openapi.ts uses — `$ref`, `allOf`,
 * `oneOf`, `type` (one or a list), `properties`, `required`, `additionalProperties`, `items`, `enum` — and
 * treats a schema without `type` or `properties` (`{}`, `{ description }`) as "any value".
 */
import { OPENAPI_DOCUMENT } from "../../src/http/openapi.js";

type Schema = Record<string, unknown>;

const DOC = JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)) as Schema;

/** Follows a local `$ref` (`#/a/b/c`) in the document; throws when it points nowhere. */
export function resolveRef(ref: string, doc: Schema = DOC): unknown {
  if (!ref.startsWith("#/")) throw new Error(`not a local $ref: ${ref}`);
  let node: unknown = doc;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !(key in (node as Schema))) {
      throw new Error(`$ref ${ref} does not resolve (no "${key}")`);
    }
    node = (node as Schema)[key];
  }
  return node;
}

/** Every `$ref` string in `node`, with where it is. */
export function refsIn(node: unknown, at = "#"): { at: string; ref: string }[] {
  if (Array.isArray(node)) return node.flatMap((item, i) => refsIn(item, `${at}/${i}`));
  if (node === null || typeof node !== "object") return [];
  return Object.entries(node as Schema).flatMap(([key, value]) =>
    key === "$ref" && typeof value === "string" ? [{ at, ref: value }] : refsIn(value, `${at}/${key}`),
  );
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function deref(schema: Schema): Schema {
  let s = schema;
  for (let i = 0; i < 20 && typeof s.$ref === "string"; i++) s = resolveRef(s.$ref) as Schema;
  return s;
}

/**
 * Problems of `value` against `schema` (empty: it fits), each as `path: what`. `allOf` members are merged
 * (an object may carry the properties any member declares); `oneOf` needs one alternative that fits.
 */
export function shapeProblems(value: unknown, schema: Schema, path = "$"): string[] {
  const s = deref(schema);
  if (Array.isArray(s.oneOf)) {
    const tries = (s.oneOf as Schema[]).map((alt) => shapeProblems(value, alt, path));
    if (tries.some((t) => t.length === 0)) return [];
    return [`${path}: fits no oneOf alternative (${tries.map((t) => t.join("; ")).join(" | ")})`];
  }
  if (Array.isArray(s.allOf)) {
    const members = (s.allOf as Schema[]).map(deref);
    const merged: Schema = {
      type: "object",
      properties: Object.assign({}, ...members.map((m) => (m.properties as Schema | undefined) ?? {})),
      required: members.flatMap((m) => (m.required as string[] | undefined) ?? []),
    };
    return shapeProblems(value, merged, path);
  }
  const problems: string[] = [];
  const actual = typeOf(value);
  if (s.type !== undefined) {
    const allowed = [s.type].flat() as string[];
    const fits = allowed.includes(actual) || (actual === "integer" && allowed.includes("number"));
    if (!fits) return [`${path}: is ${actual}, the schema says ${allowed.join(" or ")}`];
  }
  if (Array.isArray(s.enum) && !(s.enum as unknown[]).includes(value)) {
    problems.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
  }
  if (actual === "array" && s.items !== undefined) {
    (value as unknown[]).forEach((item, i) => {
      problems.push(...shapeProblems(item, s.items as Schema, `${path}[${i}]`));
    });
  }
  if (actual === "object" && (s.properties !== undefined || s.additionalProperties !== undefined)) {
    const properties = (s.properties as Record<string, Schema> | undefined) ?? {};
    const record = value as Record<string, unknown>;
    for (const key of (s.required as string[] | undefined) ?? []) {
      if (!(key in record)) problems.push(`${path}.${key}: required, missing`);
    }
    for (const [key, child] of Object.entries(record)) {
      const declared = properties[key];
      if (declared !== undefined) problems.push(...shapeProblems(child, declared, `${path}.${key}`));
      else if (s.additionalProperties !== undefined && typeof s.additionalProperties === "object") {
        problems.push(...shapeProblems(child, s.additionalProperties as Schema, `${path}.${key}`));
      } else if (s.additionalProperties !== true) {
        problems.push(`${path}.${key}: not declared by the schema`);
      }
    }
  }
  return problems;
}

/** The schema of the JSON 200 (or `status`) answer of `METHOD path` in the document. */
export function responseSchema(method: string, path: string, status = "200"): Schema {
  const paths = DOC.paths as Record<string, Record<string, Schema>>;
  const operation = paths[path]?.[method.toLowerCase()];
  if (!operation) throw new Error(`the document has no ${method} ${path}`);
  const response = (operation.responses as Record<string, Schema>)[status];
  const content = response?.content as Record<string, { schema: Schema }> | undefined;
  const schema = content?.["application/json"]?.schema;
  if (!schema) throw new Error(`${method} ${path} has no JSON ${status} answer`);
  return schema;
}
