/**
 * Failures as the API answers them: a store that does not answer (504 STORE_TIMEOUT), an unreachable store
 * (503 STORE_UNAVAILABLE, no password in the message), an unexpected error (500 INTERNAL, generic message,
 * logged), and the configuration errors of createHttpApi.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createHttpApi } from "../../src/http/index.js";
import { type Logger, Sluice, silentLogger, ValidationError } from "../../src/index.js";
import { overrideStore } from "../support/store-proxy.js";
import { call, codeOf, startApi } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-http-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("HTTP API errors", () => {
  it("answers 504 STORE_TIMEOUT when a store call passes the deadline, 500 INTERNAL for a bug", async () => {
    const owner = new Sluice({ url: `sqlite:${join(dir, "a.db")}`, logger: silentLogger() });
    const real = await owner.store();
    const logged: unknown[] = [];
    const logger = {
      ...silentLogger(),
      error: (...args: unknown[]) => logged.push(args),
    } as unknown as Logger;
    const store = overrideStore(real, {
      queueStats: () => new Promise(() => {}), // never answers
      listWorkers: () => Promise.reject(new Error("boom at postgres://app:s3cr3t@db/app")),
    });
    const sluice = new Sluice({ store, logger });
    const api = await startApi(sluice, { storeTimeoutMs: 200 });
    try {
      const slow = await call(api.base, "GET", "/queues");
      expect(slow.status).toBe(504);
      expect(codeOf(slow)).toBe("STORE_TIMEOUT");
      const bug = await call(api.base, "GET", "/workers");
      expect(bug.status).toBe(500);
      expect(bug.body).toEqual({
        error: { code: "INTERNAL", message: "internal error; the server's log has the details" },
      });
      expect(bug.text).not.toContain("s3cr3t");
      expect(logged.length).toBe(1);
    } finally {
      await api.close();
      await owner.close();
    }
  });

  it("answers 504 STORE_TIMEOUT when /events' first read of Last-Event-ID passes the deadline", async () => {
    const owner = new Sluice({ url: `sqlite:${join(dir, "events.db")}`, logger: silentLogger() });
    const real = await owner.store();
    await owner.enqueue("any", {}, { queue: "q" });
    const lastId = await real.lastEventId();
    expect(lastId).not.toBeNull();
    let reads = 0;
    const store = overrideStore(real, {
      readEvents: () => {
        reads++;
        return new Promise(() => {}); // never answers
      },
    });
    const sluice = new Sluice({ store, logger: silentLogger() });
    const api = await startApi(sluice, { storeTimeoutMs: 200 });
    try {
      // A deadline of the test's own: without the API's, the request would hang.
      const byHeader = await call(api.base, "GET", "/events", {
        headers: { "last-event-id": String(lastId) },
        signal: AbortSignal.timeout(5_000),
      });
      expect(byHeader.status).toBe(504);
      expect(codeOf(byHeader)).toBe("STORE_TIMEOUT");
      const byQuery = await call(api.base, "GET", `/events?after=${encodeURIComponent(String(lastId))}`, {
        signal: AbortSignal.timeout(5_000),
      });
      expect(byQuery.status).toBe(504);
      expect(reads).toBe(2);
      // Without a resume id there is nothing to check first: the stream opens at once.
      const live = await call(api.base, "GET", "/events");
      expect(live.status).toBe(200);
      expect(live.headers.get("content-type")).toMatch(/^text\/event-stream/);
    } finally {
      await api.close();
      await owner.close();
    }
  });

  it("answers 503 STORE_UNAVAILABLE for an unreachable store, without the password", async () => {
    const sluice = new Sluice({
      url: "postgres://app:hunter2pw@127.0.0.1:1/app?connect_timeout=1",
      logger: silentLogger(),
    });
    const api = await startApi(sluice, { storeTimeoutMs: 8000 });
    try {
      const answer = await call(api.base, "GET", "/queues");
      expect(answer.status).toBe(503);
      expect(codeOf(answer)).toBe("STORE_UNAVAILABLE");
      expect(answer.text).not.toContain("hunter2pw");
    } finally {
      await api.close();
      await sluice.close().catch(() => {});
    }
  });

  it("refuses to build without a token unless auth is none, and refuses weak tokens", () => {
    const sluice = new Sluice({ url: `sqlite:${join(dir, "b.db")}`, logger: silentLogger() });
    expect(() => createHttpApi(sluice, { env: {} })).toThrow(ValidationError);
    expect(() => createHttpApi(sluice, { env: {}, auth: "none" })).not.toThrow();
    expect(() => createHttpApi(sluice, { tokens: "admin:short" })).toThrow(/16 to 512/);
    expect(() => createHttpApi(sluice, { tokens: "root:0123456789abcdef0" })).toThrow(/role/);
    expect(() =>
      createHttpApi(sluice, { env: { SLUICE_HTTP_TOKENS: "read:0123456789abcdef0" } }),
    ).not.toThrow();
    expect(() =>
      createHttpApi(sluice, { tokens: [{ role: "admin", token: "0123456789abcdef0" }], redact: ["a..b"] }),
    ).toThrow(/empty segment/);
  });
});
