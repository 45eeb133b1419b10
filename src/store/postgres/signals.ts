/**
 * Wake-ups for the PostgreSQL engine: one dedicated connection per store runs `LISTEN <schema>`.
 *
 * Writers send `pg_notify(<schema>, payload)` inside the transaction that makes work available, and
 * PostgreSQL delivers notifications only when that transaction commits: a worker can never wake up, claim,
 * and find nothing because the producer's rows are not yet visible. Payloads are small JSON:
 * `{"q": ["queue", …] | null}` (new work in those queues; null = any) or `{"t": "cancel"}`.
 *
 * The connection is not pooled: a pooled client would be handed to other queries and LISTEN state is per
 * session. When it breaks (server restart, network), it reconnects with jittered exponential backoff and
 * then emits `{ type: "jobs", queues: null }` and `{ type: "cancel" }`, because notifications sent while it
 * was away are lost and the worker must look at the store once instead of waiting for its safety poll or
 * heartbeat. It does the same once the first LISTEN is in place, which can come after a worker's first claim.
 *
 * A LISTEN connection only receives, so a half-open one (the peer vanished without a FIN: a host gone, a
 * NAT or firewall that dropped the flow) would look healthy until the kernel's keepalive gives up, minutes
 * later, and every wake-up meanwhile would be lost. So every `checkMs` it sends `SELECT 1`, which must be
 * answered within CHECK_TIMEOUT_MS; a check that fails or goes unanswered counts as a lost connection.
 */
import pg from "pg";
import type { Logger } from "../../core/logger.js";
import type { StoreSignal } from "../contract.js";

/** How long the LISTEN connection's health check may go unanswered. */
const CHECK_TIMEOUT_MS = 5_000;

/** Largest NOTIFY payload we send; PostgreSQL's hard limit is 8000 bytes. */
const MAX_PAYLOAD = 4_000;

/** Builds the NOTIFY payload for "new work in these queues" (null = any queue). */
export function jobsPayload(queues: readonly string[] | null): string {
  if (queues === null) return '{"q":null}';
  const text = JSON.stringify({ q: [...new Set(queues)] });
  return Buffer.byteLength(text) <= MAX_PAYLOAD ? text : '{"q":null}';
}

/** The NOTIFY payload for "an operator requested a cancel". */
export const CANCEL_PAYLOAD = '{"t":"cancel"}';

/** Parses a NOTIFY payload; anything unexpected becomes "look at every queue" (never dropped). */
export function parsePayload(payload: string | undefined): StoreSignal {
  try {
    const value = JSON.parse(payload ?? "") as { t?: unknown; q?: unknown };
    if (value.t === "cancel") return { type: "cancel" };
    if (Array.isArray(value.q) && value.q.every((q) => typeof q === "string")) {
      return { type: "jobs", queues: value.q as string[] };
    }
  } catch {
    // fall through
  }
  return { type: "jobs", queues: null };
}

export interface ListenerOptions {
  client: pg.ClientConfig;
  channel: string;
  logger: Logger;
  location: string;
  /** Period of the health check on the LISTEN connection (default 10 s). */
  checkMs?: number;
  /** First reconnect delay; doubles up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** A self-healing LISTEN connection that fans notifications out to subscribers. */
export class NotificationListener {
  private readonly listeners = new Set<(signal: StoreSignal) => void>();
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private everConnected = false;
  private closed = false;
  private connecting: Promise<void> | null = null;

  constructor(private readonly options: ListenerOptions) {}

  /** Adds a subscriber and connects on first use. Returns the unsubscribe function. */
  subscribe(listener: (signal: StoreSignal) => void): () => void {
    this.listeners.add(listener);
    if (!this.client && !this.timer && !this.connecting && !this.closed) this.connecting = this.connect();
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Resolves when the LISTEN is in place (for tests and `open()`); never rejects. */
  async ready(): Promise<void> {
    await this.connecting;
  }

  /** True while the LISTEN connection is up. */
  get connected(): boolean {
    return this.client !== null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopChecks();
    await this.connecting;
    const client = this.client;
    this.client = null;
    this.listeners.clear();
    if (client) await client.end().catch(() => undefined);
  }

  private emit(signal: StoreSignal): void {
    for (const listener of this.listeners) {
      try {
        listener(signal);
      } catch (error) {
        this.options.logger.error({ err: error }, "store subscriber threw; ignored");
      }
    }
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ ...this.options.client, query_timeout: CHECK_TIMEOUT_MS });
    // Without an 'error' listener a dropped connection would crash the process.
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, new Error("connection ended")));
    client.on("notification", (message) => {
      if (message.channel === this.options.channel) this.emit(parsePayload(message.payload));
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.options.channel}"`);
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      this.connecting = null;
      this.schedule(error);
      return;
    }
    this.connecting = null;
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.failures > 0 || this.everConnected) {
      this.options.logger.info(
        { engine: "postgres", location: this.options.location, after: this.failures },
        "LISTEN connection to PostgreSQL restored; re-polling for work",
      );
    }
    // Notifications sent before the LISTEN took effect (the first connect races a worker's first claim) or
    // while the connection was away are gone: tell subscribers to look for work and for cancel requests.
    this.emit({ type: "jobs", queues: null });
    this.emit({ type: "cancel" });
    this.failures = 0;
    this.everConnected = true;
    this.startChecks(client);
  }

  /** Proves the connection alive every `checkMs`; a check that fails or times out drops and reconnects it. */
  private startChecks(client: pg.Client): void {
    this.stopChecks();
    const timer = setInterval(() => {
      if (this.client !== client) return;
      client.query("SELECT 1").catch((error: unknown) => {
        this.lost(client, error instanceof Error ? error : new Error(String(error)));
      });
    }, this.options.checkMs ?? 10_000);
    timer.unref();
    this.checkTimer = timer;
  }

  private stopChecks(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.checkTimer = null;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client) return; // an old or never-established connection
    this.client = null;
    this.stopChecks();
    client.removeAllListeners("end");
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.schedule(error);
  }

  private schedule(error: unknown): void {
    if (this.closed || this.timer) return;
    const min = this.options.minBackoffMs ?? 100;
    const max = this.options.maxBackoffMs ?? 5_000;
    const delay = Math.min(max, min * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.failures++;
    this.options.logger.warn(
      {
        engine: "postgres",
        location: this.options.location,
        err:
          error instanceof Error
            ? { message: error.message, code: (error as { code?: unknown }).code }
            : error,
        retryInMs: Math.round(delay),
        failures: this.failures,
      },
      "LISTEN connection to PostgreSQL unavailable; reconnecting with backoff (workers fall back to polling)",
    );
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed && !this.client) this.connecting = this.connect();
    }, delay);
    this.timer.unref();
  }
}
