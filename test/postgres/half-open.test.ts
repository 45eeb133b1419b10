/**
 * Half-open connections on PostgreSQL: a peer that vanished without closing (a host gone, a NAT that
 * dropped the flow). A frozen proxy stands in for it. A statement on such a connection fails after
 * queryTimeoutMs instead of hanging, and the LISTEN connection's health check notices within seconds and
 * reconnects, so wake-ups come back without waiting for the kernel's keepalive.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import type { StoreSignal } from "../../src/store/contract.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { capturingLogger, linesWith } from "../support/fault-logs.js";
import { FreezingProxy } from "../support/freezing-proxy.js";
import {
  dropSchema,
  openStore,
  SHARED_URL,
  uniqueSchema,
  until,
  urlWithSchema,
  withAdmin,
} from "./pg-test-utils.js";

const schema = uniqueSchema();
const direct = urlWithSchema(SHARED_URL, schema);
let proxy: FreezingProxy;
const opened: PostgresStore[] = [];

function viaProxy(extra: Record<string, string>): string {
  const url = new URL(urlWithSchema(SHARED_URL, schema, extra));
  url.port = String(proxy.port);
  return url.toString();
}

beforeAll(async () => {
  proxy = await FreezingProxy.start(Number(new URL(SHARED_URL).port || 5432));
  opened.push(await openStore(direct)); // migrated once, directly
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
  await proxy?.close();
  await dropSchema(SHARED_URL, schema);
});

describe("half-open connections", () => {
  it("fails a statement on a silent connection after queryTimeoutMs, then works on a fresh one", async () => {
    const store = await openStore(viaProxy({ queryTimeoutMs: "300", pool: "1" }));
    opened.push(store);
    await store.ping(); // the pool's one connection is open, through the proxy
    expect(proxy.freeze()).toBeGreaterThan(0);
    const error = await store.ping().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).rejected).toBe(false); // worth retrying: the batchers do
    await store.ping(); // the frozen connection was discarded: a new one gets through
  });

  it("notices a silent LISTEN connection by its health check, reconnects and wakes subscribers", async () => {
    const { logger, lines } = capturingLogger();
    const url = viaProxy({ listenCheckMs: "200" });
    const store = new PostgresStore(url, { logger });
    await store.open();
    opened.push(store);
    const signals: StoreSignal[] = [];
    store.subscribe((signal) => signals.push(signal));
    expect(await store.listening()).toBe(true);
    await until("the first wake-up after LISTEN", () => signals.length > 0);
    signals.length = 0;
    proxy.freeze(); // the pool's connections and the LISTEN connection go silent
    // Nothing reaches a frozen LISTEN: only the health check can bring wake-ups back.
    await until("a reconnect that wakes subscribers", () =>
      signals.some((s) => s.type === "jobs" && s.queues === null),
    );
    expect(
      linesWith(
        lines,
        "LISTEN connection to PostgreSQL unavailable; reconnecting with backoff (workers fall back to polling)",
      ),
    ).not.toHaveLength(0);
    expect(await store.listening()).toBe(true);
  });

  it("waits for another process's migration past queryTimeoutMs (migrations are exempt)", async () => {
    const other = uniqueSchema();
    try {
      await withAdmin(SHARED_URL, async (admin) => {
        // Another process holds the migration lock of that schema for longer than the timeout.
        await admin.query("BEGIN");
        await admin.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
          `sluice.migrate:${other}`,
        ]);
        const store = new PostgresStore(urlWithSchema(SHARED_URL, other, { queryTimeoutMs: "100" }), {
          logger: capturingLogger().logger,
        });
        opened.push(store);
        let settled = false;
        const opening = store.open().finally(() => {
          settled = true;
        });
        // Still waiting well past the timeout (it would have failed at 100 ms), then the lock is released.
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(settled).toBe(false);
        await admin.query("COMMIT");
        await opening;
      });
    } finally {
      await dropSchema(SHARED_URL, other);
    }
  });
});
