/**
 * `GET /events` and a client that stops reading, over a real socket on every engine: the API runs on a
 * node:http server (through @hono/node-server, as `sluice serve` and the mounting examples do), and a raw
 * `net.Socket` sends the request, then never reads again. Events far larger than every buffer on the way
 * (the kernel's socket buffers take about 4 MiB on loopback) are produced; the server must cut the stream
 * once its bounded buffer stays full, and at no point hold more than that bound for the client: not in the
 * event stream's queue, not in the response's write buffer.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { SseStreamSummary } from "../../src/http/index.js";
import { Sluice, silentLogger } from "../../src/index.js";
import { ENGINE_NAMES, isolatedStore } from "../support/engines/index.js";
import { until } from "../support/wait.js";
import { READ_TOKEN, startApi } from "./helpers.js";

/** The stream's buffer bound under test. */
const MAX_BUFFERED = 64 * 1024;
/** One progress event's blob, and how many the job reports: 10 MiB of events in all. */
const BLOB = 16 * 1024;
const PROGRESS_EVENTS = 640;
/** Node's default high-water mark of a response (writable stream). */
const NODE_HWM = 16 * 1024;

describe.each(ENGINE_NAMES)("GET /events with a client that stops reading, on %s", (engine) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("cuts the stream once its bounded buffer stays full, never holding more than the bound", async () => {
    const store = isolatedStore(engine, "sse_slow");
    cleanups.push(store.dispose);
    const sluice = new Sluice({ url: store.url, logger: silentLogger() });
    cleanups.push(() => sluice.close());
    const summaries: SseStreamSummary[] = [];
    const api = await startApi(sluice, {
      events: {
        maxBufferedBytes: MAX_BUFFERED,
        slowClientMs: 300,
        heartbeatMs: 60_000,
        onClose: (summary) => summaries.push(summary),
      },
    });
    cleanups.push(api.close);

    // The server's side of the connection: the response's write buffer, sampled, and when it closes.
    const server = { requests: 0, closed: false, socketClosed: false, maxWritable: 0 };
    api.server.on("request", (_req, res) => {
      server.requests++;
      const sample = setInterval(() => {
        server.maxWritable = Math.max(server.maxWritable, res.writableLength);
      }, 5);
      res.on("close", () => {
        clearInterval(sample);
        server.closed = true;
      });
      res.socket?.on("close", () => {
        server.socketClosed = true;
      });
    });

    const blob = "x".repeat(BLOB);
    const task = sluice.task("flood", {
      queue: "flood",
      async run(_payload, ctx) {
        for (let i = 1; i <= PROGRESS_EVENTS; i++) await ctx.progress({ i, blob });
        return { done: true };
      },
    });
    const from = await sluice.eventCursor();
    const job = await task.enqueue({});

    // The client: sends the request, then reads nothing.
    const port = Number(new URL(api.base).port);
    const client: Socket = connect(port, "127.0.0.1");
    cleanups.push(() => void client.destroy());
    let clientEnded = false;
    client.on("close", () => {
      clientEnded = true;
    });
    client.on("error", () => {});
    await new Promise<void>((resolve) => client.once("connect", resolve));
    client.pause();
    client.write(
      `GET /events?job=${encodeURIComponent(job.id)}&after=${encodeURIComponent(from ?? "")} HTTP/1.1\r\n` +
        `Host: 127.0.0.1:${port}\r\nAuthorization: Bearer ${READ_TOKEN}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    await until("the server to take the request", () => server.requests === 1);

    const worker = sluice.worker({ queues: ["flood"], pollMs: 50 });
    await worker.start();
    cleanups.push(() => worker.stop().then(() => {}));

    // The server cuts the stream (and closes the connection) while the client still reads nothing.
    const cut = await until(
      "the slow client to be cut",
      () => summaries.find((s) => s.reason === "slow-client"),
      30_000,
    );
    await until(
      "the server to close the response and its socket",
      () => server.closed && server.socketClosed,
    );
    expect(clientEnded).toBe(false); // the client has not read a byte yet: the cut is the server's doing

    // One event on the wire: the blob, JSON-escaped nowhere (x), in its envelope.
    const eventBytes = BLOB + 1024;
    const produced = PROGRESS_EVENTS * BLOB;
    expect(cut.peakBufferedBytes).toBeGreaterThan(0);
    expect(cut.peakBufferedBytes).toBeLessThanOrEqual(MAX_BUFFERED + eventBytes);
    expect(server.maxWritable).toBeLessThanOrEqual(NODE_HWM + eventBytes);
    // It stopped taking events from the feed long before the end: no copy of the rest was ever made.
    expect(cut.bytes).toBeLessThan(produced);

    // What reaches the client when it reads again is what the server had let out, then the end.
    let received = 0;
    let text = "";
    client.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (text.length < 4096) text += chunk.toString("latin1", 0, 4096);
    });
    client.resume();
    await until("the client to see the connection end", () => clientEnded, 30_000);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain("text/event-stream");
    expect(received).toBeLessThanOrEqual(cut.bytes + 16 * 1024); // headers and chunk framing on top
    expect(received).toBeLessThan(produced);
    // The job itself is unaffected by its follower's fate.
    await until("the job to complete", async () => (await sluice.admin.getJob(job.id)).state === "completed");
  });
});
