/**
 * The OpenAPI document against the app: its paths and methods equal the routes the Hono app registers
 * (both ways), the auth matrix is generated from it (every route × no token / read / admin, so a new route
 * cannot escape it), and docs/http.md's endpoint table is the one rendered from it.
 * `UPDATE_HTTP_DOCS=1 npx vitest run test/http/openapi.test.ts` rewrites the table.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpApi } from "../../src/http/index.js";
import { documentedRoutes, OPENAPI_DOCUMENT, renderEndpointTable } from "../../src/http/openapi.js";
import { Sluice, silentLogger } from "../../src/index.js";
import { ADMIN_TOKEN, type ApiServer, call, codeOf, READ_TOKEN, startApi, TOKENS } from "./helpers.js";
import { refsIn, resolveRef, responseSchema, shapeProblems } from "./schema-check.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "sluice-http-openapi-"));
const sluice = new Sluice({ url: `sqlite:${join(dir, "s.db")}`, logger: silentLogger() });
let api: ApiServer;

beforeAll(async () => {
  api = await startApi(sluice);
});
afterAll(async () => {
  await api?.close();
  await sluice.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The app's routes as `METHOD /path` with OpenAPI `{param}` syntax (middleware left out). */
function appRoutes(): string[] {
  const app = createHttpApi(sluice, { tokens: TOKENS });
  return [
    ...new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`),
    ),
  ].sort();
}

describe("OpenAPI document", () => {
  it("is OpenAPI 3.1 and is served at /openapi.json", async () => {
    const answer = await call(api.base, "GET", "/openapi.json", { token: READ_TOKEN });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
    expect(OPENAPI_DOCUMENT.openapi).toBe("3.1.0");
  });

  it("documents exactly the routes the app registers (both ways)", () => {
    const routes = appRoutes();
    const documented = documentedRoutes();
    expect(
      routes.filter((r) => !documented.includes(r)),
      "routes missing from the document",
    ).toEqual([]);
    expect(
      documented.filter((r) => !routes.includes(r)),
      "documented routes the app lacks",
    ).toEqual([]);
    expect(routes.length).toBeGreaterThanOrEqual(20);
  });

  it("every $ref resolves inside the document", () => {
    const doc = JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)) as Record<string, unknown>;
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(50);
    const broken = refs.filter(({ ref }) => {
      try {
        const target = resolveRef(ref, doc);
        return target === null || typeof target !== "object";
      } catch {
        return true;
      }
    });
    expect(broken, "dangling $refs").toEqual([]);
    // The resolver itself refuses what is not there.
    expect(() => resolveRef("#/components/schemas/NoSuchSchema", doc)).toThrow(/does not resolve/);
  });

  it("the shape check refuses an undeclared property, a wrong type and a missing required field", () => {
    const queues = responseSchema("GET", "/queues");
    const queue = {
      queue: "q",
      counts: { waiting: 1 },
      due: 0,
      oldestWaitingAt: null,
      latencyMs: 0,
      paused: false,
      pausedUntil: null,
      limits: { concurrency: 2, rate: { max: 5, windowMs: 1000 }, keyConcurrency: null, keyRate: null },
      limitedActive: 0,
      heldKeys: 0,
    };
    expect(shapeProblems({ queues: [queue] }, queues)).toEqual([]);
    expect(shapeProblems({ queues: [{ ...queue, surprise: 1 }] }, queues)).toEqual([
      "$.queues[0].surprise: not declared by the schema",
    ]);
    expect(shapeProblems({ queues: [{ ...queue, paused: "no" }] }, queues)[0]).toMatch(/paused: is string/);
    expect(shapeProblems({ queues: [{ ...queue, limits: { concurrency: "2" } }] }, queues)[0]).toMatch(
      /limits: fits no oneOf/,
    );
    const { queue: _missing, ...nameless } = queue;
    expect(shapeProblems({ queues: [nameless] }, queues)).toEqual(["$.queues[0].queue: required, missing"]);
    const detail = responseSchema("GET", "/jobs/{id}");
    expect(shapeProblems({ logs: [{ at: 1, attempt: 1, message: "m", extra: true }] }, detail)).toContain(
      "$.logs[0].extra: not declared by the schema",
    );
  });

  it("docs/http.md's endpoint table is the one rendered from the document", () => {
    const path = join(ROOT, "docs", "http.md");
    const text = readFileSync(path, "utf8");
    const start = "<!-- endpoints:start (generated from src/http/openapi.ts) -->\n";
    const end = "\n<!-- endpoints:end -->";
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    expect(from, "docs/http.md needs the endpoints markers").toBeGreaterThanOrEqual(0);
    const table = renderEndpointTable();
    if (process.env.UPDATE_HTTP_DOCS === "1") {
      writeFileSync(path, text.slice(0, from + start.length) + table + text.slice(to));
      return;
    }
    // Compared cell by cell: a formatter may pad the columns.
    const cells = (t: string) =>
      t
        .trim()
        .split("\n")
        .filter((line) => !/^\|[\s|:-]*\|$/.test(line))
        .map((line) => line.split("|").map((cell) => cell.trim()));
    expect(
      cells(text.slice(from + start.length, to)),
      "run UPDATE_HTTP_DOCS=1 npx vitest run test/http/openapi.test.ts",
    ).toEqual(cells(table));
  });
});

describe("auth matrix (every documented route × no token, read, admin)", () => {
  const operations = Object.entries(OPENAPI_DOCUMENT.paths).flatMap(([path, methods]) =>
    Object.entries(methods as Record<string, { "x-sluice-role": "read" | "admin" }>).map(([method, op]) => ({
      method: method.toUpperCase(),
      // Path parameters filled with values that exist or not: auth is decided before anything is read.
      path: path.replace("{id}", "no-such-job").replace("{queue}", "matrix_q").replace("{path}", "x"),
      role: op["x-sluice-role"],
    })),
  );

  it.each(operations)("$method $path ($role)", async ({ method, path, role }) => {
    // A body that would change nothing even if it got through: an unknown job, an empty filter refused.
    const none = await call(api.base, method, path, { token: null, body: {} });
    expect(none.status).toBe(401);
    expect(codeOf(none)).toBe("UNAUTHORIZED");
    expect(none.headers.get("www-authenticate")).toMatch(/Bearer realm="sluice"/);
    const wrong = await call(api.base, method, path, { token: `${ADMIN_TOKEN}x`, body: {} });
    expect(wrong.status).toBe(401);
    const asReader = await call(api.base, method, path, { token: READ_TOKEN, body: {} });
    const asAdmin = await call(api.base, method, path, { token: ADMIN_TOKEN, body: {} });
    if (role === "read") {
      expect(method).toBe("GET");
      expect(asReader.status, asReader.text).not.toBe(401);
      expect(asReader.status, asReader.text).not.toBe(403);
    } else {
      expect(asReader.status).toBe(403);
      expect(codeOf(asReader)).toBe("FORBIDDEN");
    }
    expect(asAdmin.status).not.toBe(401);
    expect(["UNAUTHORIZED", "FORBIDDEN"]).not.toContain(codeOf(asAdmin)); // 403 ENQUEUE_DISABLED is fine
    // Never a token from the query string or a cookie.
    const sep = path.includes("?") ? "&" : "?";
    const query = await call(api.base, method, `${path}${sep}access_token=${ADMIN_TOKEN}`, {
      token: null,
      headers: { cookie: `token=${ADMIN_TOKEN}; sluice_token=${ADMIN_TOKEN}` },
      body: {},
    });
    expect(query.status).toBe(401);
  });

  it("accepts Basic auth with the token as the password", async () => {
    const basic = Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64");
    const answer = await call(api.base, "GET", "/queues", {
      token: null,
      headers: { authorization: `Basic ${basic}` },
    });
    expect(answer.status).toBe(200);
    const bad = Buffer.from(`admin:${READ_TOKEN}0`).toString("base64");
    expect(
      (await call(api.base, "GET", "/queues", { token: null, headers: { authorization: `Basic ${bad}` } }))
        .status,
    ).toBe(401);
  });

  it("answers 404 NOT_FOUND as JSON for an unknown route", async () => {
    const answer = await call(api.base, "GET", "/nothing/here", { token: READ_TOKEN });
    expect(answer.status).toBe(404);
    expect(codeOf(answer)).toBe("NOT_FOUND");
  });
});
