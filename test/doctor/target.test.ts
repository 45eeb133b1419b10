/** The store address the doctor's commands are built from: parsed from the URL, never with its password. */
import { describe, expect, it } from "vitest";
import { commandSuffix } from "../../src/cli/commands/doctor.js";
import { pgArgs, redisCliArgs, shellQuote, storeTarget } from "../../src/doctor/target.js";

describe("doctor: store targets and command suffixes", () => {
  it("takes host, port, db, user and TLS from a Redis URL, and only whether it has a password", () => {
    const t = storeTarget("rediss://ops:p%40ss@cache.internal:6380/5?prefix=sluice");
    expect(t).toEqual({
      engine: "redis",
      host: "cache.internal",
      port: 6380,
      db: 5,
      user: "ops",
      tls: true,
      hasPassword: true,
    });
    expect(redisCliArgs(t)).toBe("-h cache.internal -p 6380 -n 5 --tls --user ops --askpass");
    expect(JSON.stringify(t)).not.toContain("p@ss");
    expect(redisCliArgs(storeTarget("redis://127.0.0.1/0"))).toBe("-h 127.0.0.1 -p 6379");
  });

  it("takes host, port, user and database from a PostgreSQL URL", () => {
    const t = storeTarget("postgresql://app:secret@db.example:6543/jobs?schema=sluice");
    expect(pgArgs(t)).toBe("-h db.example -p 6543 -U app -d jobs");
    expect(JSON.stringify(t)).not.toContain("secret");
    expect(pgArgs(storeTarget("postgres://db/app"))).toBe("-h db -p 5432 -d app");
  });

  it("strips the scheme and the options from a SQLite URL", () => {
    expect(storeTarget("sqlite:/var/lib/app/jobs.db?synchronous=full")).toEqual({
      engine: "sqlite",
      path: "/var/lib/app/jobs.db",
      memory: false,
    });
    expect(storeTarget("sqlite::memory:")).toMatchObject({ memory: true });
  });

  it("repeats a --url without a password quoted for the shell, and never one with a password", () => {
    expect(commandSuffix(undefined)).toBe("");
    expect(commandSuffix("sqlite:/tmp/a.db")).toBe(" --url sqlite:/tmp/a.db");
    expect(commandSuffix("redis://h:6379/0?prefix=x")).toBe(" --url 'redis://h:6379/0?prefix=x'");
    expect(commandSuffix("redis://:pw@h:6379/0")).toBe(' --url "$SLUICE_URL"');
    expect(commandSuffix("postgres://u:pw@h/db")).toBe(' --url "$SLUICE_URL"');
    expect(commandSuffix("postgres://u@h/db?password=pw")).toBe(' --url "$SLUICE_URL"');
    expect(commandSuffix("redis://u:p@ss@h:6379/0")).toBe(' --url "$SLUICE_URL"');
    expect(commandSuffix("redis://h:6379/0?Token=t")).toBe(' --url "$SLUICE_URL"');
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});
