/**
 * `sluice doctor` when the store itself is the problem, through the real binary: unreachable on every
 * engine (the other checks are reported as not checked, never as ok), hazards built on servers this test
 * starts (a Redis that may evict keys, without a durable AOF and with a password; a PostgreSQL with fsync
 * off), a PostgreSQL schema newer than the build, an in-memory SQLite database — and fixes that can be
 * typed as they are: no `sqlite:` scheme given to `ls`, no password and no `***` in any command.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { DoctorReport } from "../../src/doctor/index.js";
import { runCli, testStore } from "../cli/helpers.js";
import { enqueue, open } from "../cli/seed.js";
import { PrivatePostgres, withAdmin } from "../postgres/pg-test-utils.js";
import { PrivateRedis } from "../redis/helpers.js";
import { about, CHECK_IDS, doctorJson } from "./suite.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-doctor-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("sluice doctor on an unreachable store", () => {
  const cases = [
    {
      engine: "redis",
      url: "redis://127.0.0.1:1/0?prefix=nothing",
      fix: "redis-cli -h 127.0.0.1 -p 1 ping",
    },
    {
      engine: "postgres",
      url: "postgres://postgres@127.0.0.1:1/test?schema=nothing",
      fix: "pg_isready -h 127.0.0.1 -p 1 -U postgres -d test",
    },
    {
      engine: "sqlite",
      url: `sqlite:${join(dir, "missing-dir", "sluice.db")}`,
      fix: `ls -ld '${join(dir, "missing-dir")}'`,
    },
  ] as const;
  it.each(cases)(
    "on $engine: critical with the command that checks it; every other check not checked",
    async ({ engine, url, fix }) => {
      const { code, report } = await doctorJson(url, ["--connect-timeout", "3s"]);
      expect(code).toBe(1);
      expect(report.ok).toBe(false);
      expect(report.store.engine).toBe(engine);
      const [reach, ...rest] = report.findings;
      expect(reach).toMatchObject({ check: "store-reachable", severity: "critical" });
      expect(reach?.fix?.startsWith(fix), `${reach?.fix} starts with ${fix}`).toBe(true);
      expect(rest.map((f) => f.check)).toEqual(CHECK_IDS.filter((c) => c !== "store-reachable"));
      for (const f of rest) {
        expect(f.severity).toBe("skipped");
        expect(f.message).toContain("not checked");
      }
      expect(report.summary).toMatchObject({ ok: 0, critical: 1, skipped: rest.length });
      const human = await runCli(["doctor", "--connect-timeout", "3s"], { env: { SLUICE_URL: url } });
      expect(human.code).toBe(1);
      expect(human.stdout).not.toMatch(/^\s*OK\s/m);
      expect(human.stdout).toMatch(/SKIP\s+no-worker\s+not checked/);
    },
  );

  it("never puts a password, or *** in its place, into a suggested command", async () => {
    const { report } = await doctorJson("redis://:s3cret@127.0.0.1:1/0?prefix=x", [
      "--connect-timeout",
      "3s",
    ]);
    const fixes = report.findings.map((f) => f.fix ?? "").join("\n");
    expect(fixes).toContain("--askpass");
    expect(fixes).not.toContain("s3cret");
    expect(fixes).not.toContain("***");
    expect(JSON.stringify(report)).not.toContain("s3cret");
  });
});

describe("sluice doctor: store hazards built for real", () => {
  it("a Redis that may evict keys is critical; a non-durable AOF is a warning; fixes target that server", async () => {
    const server = await PrivateRedis.start([
      "--maxmemory-policy",
      "allkeys-lru",
      "--appendonly",
      "yes",
      "--appendfsync",
      "no",
    ]);
    try {
      const { code, report } = await doctorJson(`${server.url}?prefix=doc`);
      expect(code).toBe(1);
      const [evict] = about(report, "store-hazard", "REDIS_EVICTION_POLICY");
      expect(evict?.severity).toBe("critical");
      expect(evict?.fix).toContain(
        `redis-cli -h 127.0.0.1 -p ${server.port} CONFIG SET maxmemory-policy noeviction`,
      );
      const [fsync] = about(report, "store-hazard", "REDIS_AOF_FSYNC");
      expect(fsync?.severity).toBe("warn");
      expect(fsync?.fix).toContain(
        `redis-cli -h 127.0.0.1 -p ${server.port} CONFIG SET appendfsync everysec`,
      );
    } finally {
      await server.destroy();
    }
  });

  it('a URL given with --url that holds a password: the commands refer to "$SLUICE_URL" instead', async () => {
    const store = testStore("postgres"); // the shared server trusts local connections: the password is unused
    try {
      const url = store.url.replace("postgres@", "postgres:s3cret@");
      const sluice = open(url);
      await enqueue(sluice, "q_pw", [{}]);
      await sluice.close();
      const flagged = await runCli(["doctor", "--json", "--url", url]);
      expect(flagged.code).toBe(1);
      const report = JSON.parse(flagged.stdout) as DoctorReport;
      expect(about(report, "no-worker", "q_pw")[0]?.fix).toBe(
        'sluice worker --queues q_pw --tasks ./dist/tasks.js --url "$SLUICE_URL"',
      );
      expect(flagged.stdout).not.toContain("s3cret");
      // The store's location may show *** (it is not a command); no command may.
      expect(report.findings.filter((f) => f.fix?.includes("***"))).toEqual([]);
      const human = await runCli(["doctor", "--url", url]);
      expect(human.stdout).toContain("export it first");
      // Without a password, the URL given is repeated as it is, quoted for the shell.
      const plain = await runCli(["doctor", "--json", "--url", store.url]);
      expect(about(JSON.parse(plain.stdout) as DoctorReport, "no-worker", "q_pw")[0]?.fix).toBe(
        `sluice worker --queues q_pw --tasks ./dist/tasks.js --url '${store.url}'`,
      );
    } finally {
      await store.dispose();
    }
  });

  it("a PostgreSQL with fsync off is critical", async () => {
    const server = await PrivatePostgres.create(); // its tests run it with -c fsync=off
    try {
      const { report } = await doctorJson(`${server.url}?schema=doc`);
      const [fsync] = about(report, "store-hazard", "PG_FSYNC_OFF");
      expect(fsync).toMatchObject({ severity: "critical" });
      expect(fsync?.fix).toContain("fsync = on");
    } finally {
      await server.destroy();
    }
  });

  it("a PostgreSQL schema newer than this build is a warning", async () => {
    const store = testStore("postgres");
    try {
      const migrate = await runCli(["migrate", "--json", "--url", store.url]);
      expect(migrate.code, migrate.stderr).toBe(0);
      const schema = new URL(store.url).searchParams.get("schema") as string;
      await withAdmin(store.url, (client) =>
        client.query(
          `INSERT INTO "${schema}".schema_migrations (version, description) VALUES (9999, 'future')`,
        ),
      );
      const { report } = await doctorJson(store.url);
      expect(about(report, "store-hazard", "PG_SCHEMA_NEWER")[0]?.severity).toBe("warn");
    } finally {
      await store.dispose();
    }
  });

  it("a SQLite database whose schema is newer than this build is a warning", async () => {
    const store = testStore("sqlite");
    try {
      const migrate = await runCli(["migrate", "--json", "--url", store.url]);
      expect(migrate.code, migrate.stderr).toBe(0);
      const db = new Database(store.url.slice("sqlite:".length));
      db.pragma("user_version = 9999"); // as a newer deployment's migration would leave it
      db.close();
      const { report } = await doctorJson(store.url);
      expect(about(report, "store-hazard", "SQLITE_SCHEMA_NEWER")[0]?.severity).toBe("warn");
      const again = await runCli(["migrate", "--url", store.url]);
      expect(again.stdout).toContain("newer than this build");
    } finally {
      await store.dispose();
    }
  });

  it("an in-memory SQLite database is a warning; a file is in WAL mode", async () => {
    const memory = await doctorJson("sqlite::memory:");
    expect(about(memory.report, "store-hazard", "SQLITE_MEMORY")[0]).toMatchObject({
      severity: "warn",
      fix: "use a file: sqlite:./sluice.db",
    });
    const store = testStore("sqlite");
    try {
      const file = await doctorJson(store.url);
      expect(about(file.report, "store-hazard", "SQLITE_WAL")[0]?.severity).toBe("ok");
    } finally {
      await store.dispose();
    }
  });
});
