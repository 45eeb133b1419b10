/**
 * The SSE stream itself (src/http/event-stream.ts) on every engine, served by a bare node:http server:
 * heartbeats, a bad Last-Event-ID refused before the stream starts, and a client that stops reading is
 * disconnected instead of growing the server's memory.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { openEventStream, type SseStreamOptions } from "../../src/http/index.js";
import { Sluice, SluiceError, silentLogger } from "../../src/index.js";
import { ENGINE_NAMES, isolatedStore } from "../support/engines/index.js";
import { connectSse } from "../support/sse.js";
import { until } from "../support/wait.js";

interface Served {
  url: string;
  sluice: Sluice;
  /** Streams whose response has closed (ended by the server or the client). */
  closed: number;
  close(): Promise<void>;
}

async function serve(storeUrl: string, options: SseStreamOptions): Promise<Served> {
  const sluice = new Sluice({ url: storeUrl, logger: silentLogger() });
  const served: Served = { url: "", sluice, closed: 0, close: async () => {} };
  const server: Server = createServer(async (req, res) => {
    res.on("close", () => served.closed++);
    const url = new URL(req.url ?? "/", "http://x");
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    try {
      const header = req.headers["last-event-id"];
      const stream = await openEventStream(
        sluice,
        {
          ...(url.searchParams.has("queue") ? { queue: url.searchParams.get("queue") as string } : {}),
          ...(typeof header === "string" ? { after: header } : {}),
          signal: abort.signal,
        },
        options,
      );
      res.writeHead(200, Object.fromEntries(stream.headers));
      for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
      }
      res.end();
    } catch (error) {
      if (res.headersSent) return void res.destroy();
      const code = error instanceof SluiceError ? error.code : "INTERNAL";
      res.writeHead(error instanceof SluiceError ? 400 : 500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code } }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  served.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  served.close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await sluice.close();
  };
  return served;
}

describe.each(ENGINE_NAMES)("SSE event stream on %s", (engine) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function setup(options: SseStreamOptions): Promise<Served> {
    const store = isolatedStore(engine, "sse");
    cleanups.push(store.dispose);
    const served = await serve(store.url, options);
    cleanups.push(served.close);
    return served;
  }

  it("sends heartbeats on an idle stream and events as they commit, filtered by queue", async () => {
    const served = await setup({ heartbeatMs: 50 });
    const sse = await connectSse(`${served.url}/?queue=mine`);
    cleanups.push(async () => sse.close());
    expect(sse.status).toBe(200);
    await until("two heartbeats", () => sse.comments >= 3); // "connected" and two heartbeats
    await served.sluice.enqueue("other", {}, { queue: "theirs" });
    const job = await served.sluice.enqueue("mine", {}, { queue: "mine" });
    const message = await sse.next();
    expect(message.event).toBe("enqueued");
    expect(JSON.parse(message.data)).toMatchObject({ jobId: job.id, queue: "mine", type: "enqueued" });
    expect(message.id).toEqual(expect.any(String));
  });

  it("refuses a malformed Last-Event-ID with 400 before streaming", async () => {
    const served = await setup({});
    const res = await fetch(served.url, { headers: { "last-event-id": "'; DROP TABLE jobs; --" } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: "INVALID_OPTION" } });
  });

  it("disconnects a client that stops reading, instead of buffering for it", async () => {
    const served = await setup({});
    // The stream as a server hands it to the socket: a client that reads nothing leaves it unpulled.
    const slow = await openEventStream(
      served.sluice,
      { queue: "flood", after: await served.sluice.eventCursor() },
      { maxBufferedBytes: 4_096, slowClientMs: 200, heartbeatMs: 60_000 },
    );
    const reader = (slow.body as ReadableStream<Uint8Array>).getReader();
    await served.sluice.enqueueMany(
      "flood",
      Array.from({ length: 300 }, () => ({ payload: {}, options: { queue: "flood" } })),
    );
    // Some events fit in the buffer; then the stream is cut, not grown.
    let bytes = 0;
    const failure = await until(
      "the stream to be cut",
      async () => {
        try {
          const chunk = await reader.read();
          if (chunk.done) return new Error("ended");
          bytes += chunk.value.byteLength;
          return null;
        } catch (error) {
          return error as Error;
        }
      },
      30_000,
      // Reads far apart: slower than the client cut-off, so the buffer stays full between them.
      400,
    );
    expect(failure.message).toMatch(/slow client/);
    // What it could read was bounded by the buffer, far less than the 300 events written.
    expect(bytes).toBeLessThan(300 * 150);
    // A reader that keeps up is unaffected.
    const sse = await connectSse(`${served.url}/?queue=flood`);
    cleanups.push(async () => sse.close());
    await until("the live stream to be open", () => sse.comments >= 1);
    await served.sluice.enqueue("flood", {}, { queue: "flood" });
    expect((await sse.next()).event).toBe("enqueued");
  });
});
