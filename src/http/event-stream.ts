/**
 * Server-Sent Events of the fleet-wide job events (`GET /events`), as a Fetch API `Response`, so any
 * framework that speaks Fetch (Hono, and through it Node's `http`, Express, Fastify) can serve it.
 *
 * - Resume: `Last-Event-ID` (sent by `EventSource` on reconnect) or `?after=` continues after that id, with
 *   no gap or duplicate while the store keeps it; otherwise an `event: reset` tells the page to reload.
 * - Heartbeats: a comment line every `heartbeatMs` keeps proxies from closing an idle stream.
 * - Slow clients: the stream is pulled by the socket, so nothing is read from the feed faster than the
 *   client takes it, and at most `maxBufferedBytes` (plus the event being added) wait in memory. A client
 *   that takes nothing for `slowClientMs` while data waits is disconnected; it reconnects with its
 *   `Last-Event-ID` and loses nothing the store still keeps.
 */

import type { FleetStreamItem } from "../client/event-feed.js";
import type { Sluice } from "../client/sluice.js";
import { withDeadline } from "./errors.js";

/** How {@link openEventStream} streams: heartbeats, the buffer bound, the slow-client cut, the probe's deadline. */
export interface SseStreamOptions {
  /** Comment line sent when no event went out for this long. Default 15 s. */
  heartbeatMs?: number;
  /** Most bytes waiting for a client before the stream stops reading events for it. Default 256 KiB. */
  maxBufferedBytes?: number;
  /** A client whose buffer stays full this long is disconnected. Default 10 s. */
  slowClientMs?: number;
  /**
   * Deadline of the store calls made before the stream starts (opening the store, checking `after`); past
   * it `openEventStream` rejects with StoreTimeoutError (`STORE_TIMEOUT`). Default 10 s.
   */
  storeTimeoutMs?: number;
  /** Changes an event before it is sent (redaction of progress data); null drops it. */
  transform?: (item: FleetStreamItem) => FleetStreamItem | null;
  /** Called once when the stream ends, with why and how much it held (for logs and metrics). */
  onClose?: (summary: SseStreamSummary) => void;
}

/** How one stream ended (`SseStreamOptions.onClose`). */
export interface SseStreamSummary {
  /**
   * `slow-client`: cut because its buffer stayed full for `slowClientMs`; `client`: the client went away
   * (or the caller cancelled the body); `ended`: the event feed ended (its Sluice instance closed).
   */
  reason: "slow-client" | "client" | "ended";
  /** Bytes handed to the stream for this client in all. */
  bytes: number;
  /** Most bytes that waited in the stream's buffer at once: at most `maxBufferedBytes` plus one event. */
  peakBufferedBytes: number;
}

/** What one client asked for (the `GET /events` query and `Last-Event-ID`). */
export interface SseStreamRequest {
  /** Only events of this queue. */
  queue?: string;
  /** Only events of this job. */
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
 * Opens a Server-Sent Events stream of `sluice`'s fleet-wide events for one client, as a Fetch `Response`
 * (status 200, `text/event-stream`): what `GET /events` of {@link createHttpApi} serves, for an application
 * that streams from its own route (its own auth and URL, e.g. one job's progress page).
 *
 * The request is checked first: a malformed `after` rejects with ValidationError (`INVALID_OPTION`) and a
 * store that does not answer within `storeTimeoutMs` with StoreTimeoutError (`STORE_TIMEOUT`), before any
 * byte is sent, so the caller can answer 400 or 504. Abort `request.signal` when the client goes away.
 *
 * ```ts
 * const abort = new AbortController();
 * req.on("close", () => abort.abort());
 * const stream = await openEventStream(sluice, { jobId, after: req.headers["last-event-id"], signal: abort.signal });
 * res.writeHead(stream.status, Object.fromEntries(stream.headers));
 * for await (const chunk of stream.body) if (!res.write(chunk)) await once(res, "drain");
 * res.end();
 * ```
 */
export async function openEventStream(
  sluice: Sluice,
  request: SseStreamRequest,
  options: SseStreamOptions = {},
): Promise<Response> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const slowClientMs = options.slowClientMs ?? 10_000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 256 * 1024;
  const storeTimeoutMs = options.storeTimeoutMs ?? 10_000;
  if (request.after !== undefined && request.after !== null) {
    // The store checks the id's shape; a probe read makes a bad one a 400 instead of a broken stream. Under
    // a deadline, as every store call a request makes: a store that hangs must not hold the request open.
    const after = request.after;
    await withDeadline(
      sluice.store().then((store) => store.readEvents({ after, limit: 1 })),
      storeTimeoutMs,
    );
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
  let bytes = 0;
  let peakBufferedBytes = 0;
  const stop = (reason: SseStreamSummary["reason"]) => {
    if (ended) return;
    ended = true;
    clearInterval(watchdog);
    abort.abort();
    void items.return(undefined).catch(() => {});
    options.onClose?.({ reason, bytes, peakBufferedBytes });
  };
  const send = (controller: ReadableStreamDefaultController<Uint8Array>, chunk: Uint8Array) => {
    controller.enqueue(chunk);
    bytes += chunk.byteLength;
    // What waits in the queue now: the queue's high-water mark minus the room left (below 0 past it).
    peakBufferedBytes = Math.max(peakBufferedBytes, strategy.highWaterMark - (controller.desiredSize ?? 0));
  };

  const strategy = new ByteLengthQueuingStrategy({ highWaterMark: maxBufferedBytes });
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        send(controller, encoder.encode(`retry: 2000\n: connected\n\n`));
        watchdog = setInterval(
          () => {
            const full = (controller.desiredSize ?? 0) <= 0;
            if (full && Date.now() - lastPull > slowClientMs) {
              stop("slow-client");
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
          send(controller, encoder.encode(": heartbeat\n\n"));
          return;
        }
        pending = null;
        if (next.done) {
          // The feed ends when the client went away (its signal) or the Sluice instance closed.
          stop(request.signal?.aborted ? "client" : "ended");
          controller.close();
          return;
        }
        const item = options.transform ? options.transform(next.value) : next.value;
        if (item) send(controller, sseBytes(item));
      },
      cancel() {
        stop("client");
      },
    },
    strategy,
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
