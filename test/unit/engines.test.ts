/**
 * The engine list (src/store/index.ts): every URL form goes to the engine it names and to no other, an
 * unknown scheme gets the typed INVALID_CONFIG error it always got, names are unique, and passwords never
 * survive redaction. Nothing here connects to a server.
 */
import { describe, expect, it } from "vitest";
import { storeTarget } from "../../src/doctor/target.js";
import {
  createStore,
  engineOf,
  redactUrl,
  SluiceError,
  silentLogger,
  ValidationError,
} from "../../src/index.js";
import { ENGINES, type EngineName, engineFor } from "../../src/store/index.js";

/** Every URL form each engine accepts today. */
const ACCEPTED: [string, EngineName][] = [
  ["sqlite:./sluice.db", "sqlite"],
  ["sqlite:sluice.db", "sqlite"],
  ["sqlite:/var/lib/app/jobs.db?synchronous=full", "sqlite"],
  ["sqlite://./x.db", "sqlite"],
  ["sqlite::memory:", "sqlite"],
  ["postgres://postgres@127.0.0.1:5432/test", "postgres"],
  ["postgres://app:secret@db.example/jobs?schema=sluice&pool=4", "postgres"],
  ["postgresql://app@db.example:6543/jobs", "postgres"],
  ["redis://127.0.0.1:6379/0", "redis"],
  ["redis://:secret@cache:6379/2?prefix=jobs", "redis"],
  ["rediss://ops:secret@cache.internal:6380/5", "redis"],
];

/** Forms no engine takes (schemes are matched exactly, case-sensitive, with `//` for servers). */
const REJECTED = [
  "",
  "./sluice.db",
  "/var/lib/app/jobs.db",
  "file:./sluice.db",
  "file:///var/lib/app/jobs.db",
  "SQLITE:./sluice.db",
  "sqlite3:./sluice.db",
  "postgres:jobs",
  "POSTGRES://h/db",
  "pg://h/db",
  "redis:cache",
  "redis+sentinel://h",
  "mysql://root:hunter2@h/db",
  "http://example.com",
];

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("engine list", () => {
  it("has unique names, in the order URLs are matched", () => {
    const names = ENGINES.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(["sqlite", "postgres", "redis"]);
  });

  it.each(ACCEPTED)("%s goes to %s, and to no other engine", (url, name) => {
    expect(engineOf(url)).toBe(name);
    expect(engineFor(url).name).toBe(name);
    expect(ENGINES.filter((e) => e.matches(url)).map((e) => e.name)).toEqual([name]);
  });

  it.each(REJECTED)("%j names no engine: INVALID_CONFIG on the url field, as before", (url) => {
    expect(ENGINES.filter((e) => e.matches(url))).toEqual([]);
    const error = caught(() => engineOf(url));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: "INVALID_CONFIG", field: "url" });
    expect((error as Error).message).toBe(
      `store URL "${redactUrl(url)}" names no engine: use sqlite:./sluice.db, postgres://… or redis://…`,
    );
    expect((error as Error).message).not.toContain("hunter2");
    expect(storeTarget(url)).toEqual({ engine: "unknown" });
  });

  it("createStore rejects an unknown scheme with the same error, before loading any engine", async () => {
    const error = await createStore("mysql://root:hunter2@h/db", { logger: silentLogger() }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: "INVALID_CONFIG", field: "url" });
    expect((error as Error).message).not.toContain("hunter2");
  });

  it.each(ACCEPTED)("%s: the doctor's target comes from the %s descriptor", (url, name) => {
    const engine = engineFor(url);
    const target = storeTarget(url);
    expect(target).toEqual(engine.doctorTarget(url));
    expect(target.engine).toBe(name);
    expect(JSON.stringify(target)).not.toContain("secret");
  });

  it.each(ACCEPTED)("%s: the %s descriptor parses its own options", (url) => {
    expect(() => engineFor(url).parseUrl(url)).not.toThrow();
  });

  it("each engine's options are parsed by its descriptor", () => {
    expect(engineFor("sqlite::memory:").parseUrl("sqlite::memory:")).toMatchObject({ memory: true });
    const pg = "postgres://app@db/jobs?schema=work&pool=4";
    expect(engineFor(pg).parseUrl(pg)).toMatchObject({
      schema: "work",
      poolSize: 4,
      connectionString: "postgres://app@db/jobs",
    });
    const redis = "redis://cache:6379/0?prefix=work";
    expect(engineFor(redis).parseUrl(redis)).toEqual({
      connection: "redis://cache:6379/0",
      prefix: "work",
      cluster: null,
    });
    // Redis Cluster: the seed nodes, each with its port (docs/redis.md, "Redis Cluster").
    const cluster = "redis+cluster://a:7000,b:7001/?prefix=work";
    expect(engineFor(cluster).parseUrl(cluster)).toMatchObject({
      prefix: "work",
      cluster: {
        nodes: [
          { host: "a", port: 7000 },
          { host: "b", port: 7001 },
        ],
        tls: false,
      },
    });
  });

  it.each(ENGINES.map((e) => [e.name, e] as const))(
    "a %s store carries its descriptor's name and traits (created, not opened)",
    async (name, engine) => {
      const url = {
        sqlite: "sqlite::memory:",
        postgres: "postgres://postgres@127.0.0.1:1/test",
        redis: "redis://127.0.0.1:1/0",
      }[name];
      const store = await createStore(url, { logger: silentLogger() });
      try {
        expect(store.engine).toBe(name);
        expect(store.traits).toBe(engine.traits);
      } finally {
        await store.close();
      }
    },
  );

  it("only SQLite runs in this process", () => {
    expect(Object.fromEntries(ENGINES.map((e) => [e.name, e.traits.inProcess]))).toEqual({
      sqlite: true,
      postgres: false,
      redis: false,
    });
  });
});

describe("redactUrl", () => {
  it.each([
    [
      "postgres://app:secret@db.example:5432/jobs?schema=s",
      "postgres://app:***@db.example:5432/jobs?schema=s",
    ],
    ["postgresql://app:secret@db.example/jobs", "postgresql://app:***@db.example/jobs"],
    ["redis://:secret@cache:6379/0?prefix=p", "redis://:***@cache:6379/0?prefix=p"],
    ["redis://default:secret@cache:6379/0", "redis://default:***@cache:6379/0"],
    ["rediss://ops:se%40cret@cache.internal:6380/5", "rediss://ops:***@cache.internal:6380/5"],
    ["mysql://root:secret@h/db", "mysql://root:***@h/db"],
  ])("hides the password of %s", (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
    expect(redactUrl(url)).not.toContain("secret");
    expect(redactUrl(url)).not.toContain("cret");
  });

  it("hides a password that holds an unencoded @ (drivers split user info at the last @)", () => {
    expect(redactUrl("redis://u:ab@cd@h:6379/0")).toBe("redis://u:***@h:6379/0");
  });

  it.each([
    "sqlite:./sluice.db",
    "sqlite:/var/lib/app/jobs.db?synchronous=full",
    "sqlite::memory:",
    "postgres://app@db.example/jobs",
    "redis://127.0.0.1:6379/0?prefix=p",
    "rediss://cache.internal:6380/5",
  ])("leaves %s, which has no password, as it is", (url) => {
    expect(redactUrl(url)).toBe(url);
  });
});
