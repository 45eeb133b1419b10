/**
 * Server-Sent Events of the fleet-wide job events (`GET /events`), as a Fetch API `Response`, so any
 * framework that speaks Fetch (Hono, and through it Node's `http`, Express, Fastify) can serve it.
 *
 * - Resume: `Last-Event-ID` (sent by `EventSource` on reconnect) or `?after=` continues after that id, with
 *   no gap or duplicate while the store keeps it; otherwise an `event: reset` tells the page to reload.
 * - Heartbeats: a comment line every `heartbeatMs` keeps proxies from closing an idle stream.
 * - Slow clients: the stream is pulled by the socket, so nothing is read from the feed faster than the
 *   client takes it, and at most `maxBufferedBytes` wait in memory. A client that takes nothing for
 *   `slowClientMs` while data waits is disconnected; it reconnects with its `Last-Event-ID` and loses
 *   nothing the store still keeps.
 */

import type { FleetStreamItem } from "../client/event-feed.js";
import type { Sluice } from "../client/sluice.js";

export interface EventStreamOptions {
  /** Comment line sent when no event went out for this long. Default 15 s. */
  heartbeatMs?: number;
  /** Most bytes waiting for a client before the stream stops reading events for it. Default 256 KiB. */
  maxBufferedBytes?: number;
  /** A client whose buffer stays full this long is disconnected. Default 10 s. */
  slowClientMs?: number;
  /** Changes an event before it is sent (redaction of progress data); null drops it. */
  transform?: (item: FleetStreamItem) => FleetStreamItem | null;
}

export interface EventStreamRequest {
  queue?: string;
  jobId?: string;
  /** Resume after this id (`Last-Event-ID` or `?after=`); null: from the oldest event kept; absent: from now. */
  after?: string | null;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

/**
 * Each event's SSE bytes, built once: every subscriber of one process walks the same event objects (the
 * feed's ring), so with 200 streams an event is serialised once, not 200 times.
 */
const encoded = new WeakMap<FleetStreamItem, Uint8Array>();

function sseBytes(item: FleetStreamItem): Uint8Array {
  let bytes = encoded.get(item);
  if (!bytes) {
    bytes = encoder.encode(formatSse(item));
    encoded.set(item, bytes);
  }
  return bytes;
}

/** One SSE message for `item`. */
export function formatSse(item: FleetStreamItem): string {
  if (item.type === "reset") return `event: reset\ndata: ${JSON.stringify({ at: item.at })}\n\n`;
  // JSON never holds a raw newline, so one data line carries the whole event.
  return `id: ${item.id}\nevent: ${item.type}\ndata: ${JSON.stringify(item)}\n\n`;
}

/**
 * Opens the stream. Validates the request first (a malformed `after` or queue rejects with the typed
 * error, before any byte is sent), so the caller can answer 400.
 */
export async function openEventStream(
  sluice: Sluice,
  request: EventStreamRequest,
  options: EventStreamOptions = {},
): Promise<Response> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const slowClientMs = options.slowClientMs ?? 10_000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 256 * 1024;
  if (request.after !== undefined && request.after !== null) {
    // The store checks the id's shape; a probe read makes a bad one a 400 instead of a broken stream.
    const store = await sluice.store();
    await store.readEvents({ after: request.after, limit: 1 });
  }
  const abort = new AbortController();
  request.signal?.addEventListener("abort", () => abort.abort(), { once: true });
  const items = sluice.events({
    ...(request.queue !== undefined ? { queue: request.queue } : {}),
    ...(request.jobId !== undefined ? { jobId: request.jobId } : {}),
    ...(request.after !== undefined ? { after: request.after } : {}),
    signal: abort.signal,
  });
  let pending: Promise<IteratorResult<FleetStreamItem>> | null = null;
  let watchdog: NodeJS.Timeout | undefined;
  let lastPull = Date.now();
  let ended = false;
  const stop = () => {
    ended = true;
    clearInterval(watchdog);
    abort.abort();
    void items.return(undefined).catch(() => {});
  };

  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(encoder.encode(`retry: 2000\n: connected\n\n`));
        watchdog = setInterval(
          () => {
            const full = (controller.desiredSize ?? 0) <= 0;
            if (full && Date.now() - lastPull > slowClientMs) {
              stop();
              controller.error(new Error("slow client disconnected: its buffer stayed full"));
            }
          },
          Math.max(50, Math.min(1_000, slowClientMs / 4)),
        );
        watchdog.unref();
      },
      async pull(controller) {
        lastPull = Date.now();
        pending ??= items.next();
        let timer: NodeJS.Timeout | undefined;
        const beat = new Promise<"beat">((resolve) => {
          timer = setTimeout(() => resolve("beat"), heartbeatMs);
        });
        const next = await Promise.race([pending, beat]);
        clearTimeout(timer);
        if (ended) return; // disconnected (slow, or gone) while waiting
        if (next === "beat") {
          controller.enqueue(encoder.encode(": heartbeat\n\n"));
          return;
        }
        pending = null;
        if (next.done) {
          stop();
          controller.close();
          return;
        }
        const item = options.transform ? options.transform(next.value) : next.value;
        if (item) controller.enqueue(sseBytes(item));
      },
      cancel() {
        stop();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: maxBufferedBytes }),
  );
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // Nginx buffers responses by default, which would hold events back.
      "x-accel-buffering": "no",
    },
  });
}
