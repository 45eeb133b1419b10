/**
 * Seed 001's pattern end to end: a web app enqueues a document job and answers with its id at once; the
 * page follows the job's progress over Server-Sent Events (`EventSource`) until it completes. The worker
 * may run in this process (as here, for a one-command demo) or on any other host: the events come from
 * the store, not from this process.
 *
 *   npx tsx examples/document-progress/app.ts      # then open http://127.0.0.1:3000
 *
 * Routes: GET / (the page), POST /documents (enqueue; JSON { title, pages }), GET /documents/:id (status),
 * GET /documents/:id/events (SSE).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
// The package's two entry points, as source: "sluice" and "sluice/http" in an application.
import { openEventStream } from "../../src/http/index.js";
import { JobNotFoundError, Sluice, SluiceError, StoreTimeoutError, type Worker } from "../../src/index.js";

export interface DocumentApp {
  server: Server;
  url: string;
  sluice: Sluice;
  worker: Worker;
  close(): Promise<void>;
}

/** Starts the app (and a worker) on `port` (0: any free port), on the store at `storeUrl`. */
export async function startDocumentApp(options: {
  storeUrl: string;
  port?: number;
  pageDelayMs?: number;
}): Promise<DocumentApp> {
  const sluice = new Sluice({ url: options.storeUrl });
  const pageDelayMs = options.pageDelayMs ?? 300;
  const ingest = sluice.task<{ title: string; pages: number }, { pages: number }>("documents.ingest", {
    queue: "documents",
    timeoutMs: 15 * 60_000,
    attempts: 3,
    async run(doc, ctx) {
      for (let page = 1; page <= doc.pages; page++) {
        await new Promise((resolve) => setTimeout(resolve, pageDelayMs)); // parse, chunk, embed one page
        ctx.signal.throwIfAborted();
        await ctx.progress({ page, pages: doc.pages });
      }
      return { pages: doc.pages };
    },
  });
  const worker = sluice.worker({ queues: ["documents"], concurrency: 4 });
  await worker.start();

  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      const match = /^\/documents\/([^/]+)(\/events)?$/.exec(url.pathname);
      if (req.method === "GET" && url.pathname === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
      } else if (req.method === "POST" && url.pathname === "/documents") {
        const body = JSON.parse(await readBody(req)) as { title?: unknown; pages?: unknown };
        // The event cursor before the enqueue: a client that follows from it sees the job's every event,
        // however fast a worker takes it.
        const from = await sluice.eventCursor();
        const job = await ingest.enqueue({
          title: String(body.title ?? "untitled"),
          pages: Number(body.pages ?? 5),
        });
        const events = `/documents/${encodeURIComponent(job.id)}/events?after=${encodeURIComponent(from ?? "")}`;
        json(res, 202, { id: job.id, events });
      } else if (req.method === "GET" && match && !match[2]) {
        const job = await sluice.admin.getJob(decodeURIComponent(match[1] as string));
        json(res, 200, { id: job.id, state: job.state, progress: job.progress, result: job.result });
      } else if (req.method === "GET" && match?.[2]) {
        const abort = new AbortController();
        req.on("close", () => abort.abort());
        // EventSource sends Last-Event-ID on a reconnect; the first connection resumes from ?after
        // (empty: from the oldest event kept).
        const header = req.headers["last-event-id"];
        const after = typeof header === "string" && header !== "" ? header : url.searchParams.get("after");
        const stream = await openEventStream(sluice, {
          jobId: decodeURIComponent(match[1] as string),
          ...(after !== null ? { after: after === "" ? null : after } : {}),
          signal: abort.signal,
        });
        res.writeHead(stream.status, Object.fromEntries(stream.headers));
        for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) {
          if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
        }
        res.end();
      } else {
        json(res, 404, { error: { code: "NOT_FOUND", message: "no such route" } });
      }
    } catch (error) {
      if (res.headersSent) return void res.destroy();
      if (error instanceof JobNotFoundError)
        return json(res, 404, { error: { code: error.code, message: error.message } });
      if (error instanceof StoreTimeoutError)
        return json(res, 504, { error: { code: error.code, message: error.message } });
      if (error instanceof SluiceError)
        return json(res, 400, { error: { code: error.code, message: error.message } });
      if (error instanceof BodyTooLargeError)
        return json(res, 413, {
          error: { code: "BODY_TOO_LARGE", message: `send at most ${MAX_BODY} bytes of JSON` },
        });
      if (error instanceof SyntaxError)
        return json(res, 400, {
          error: { code: "INVALID_JSON", message: 'the body is not JSON: send { "title": …, "pages": … }' },
        });
      json(res, 500, { error: { code: "INTERNAL", message: "internal error" } });
    }
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 3000, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    sluice,
    worker,
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await sluice.close();
    },
  };
}

function json(res: import("node:http").ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

const MAX_BODY = 64 * 1024;

class BodyTooLargeError extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) {
    text += chunk;
    if (text.length > MAX_BODY) throw new BodyTooLargeError();
  }
  return text;
}

const PAGE = `<!doctype html>
<meta charset="utf-8"><title>Document ingestion</title>
<form id="f"><input name="title" value="Annual report"> <input name="pages" type="number" value="8" min="1" max="50">
<button>Upload</button></form>
<ul id="docs"></ul>
<script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const res = await fetch("/documents", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ title: form.get("title"), pages: Number(form.get("pages")) }) });
  const { id, events: eventsUrl } = await res.json();
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = form.get("title") + ": ";
  const bar = document.createElement("progress");
  bar.max = 1; bar.value = 0;
  const state = document.createElement("span");
  state.textContent = " waiting";
  li.append(label, bar, state);
  document.getElementById("docs").append(li);
  // EventSource reconnects by itself and sends Last-Event-ID: the server resumes without gaps.
  const events = new EventSource(eventsUrl);
  const show = (text) => (e) => { state.textContent = " " + text; };
  events.addEventListener("active", show("running"));
  events.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data).data.progress;
    bar.value = p.page / p.pages;
    state.textContent = " page " + p.page + " of " + p.pages;
  });
  events.addEventListener("retrying", show("retrying"));
  events.addEventListener("completed", () => { bar.value = 1; state.textContent = " done"; events.close(); });
  events.addEventListener("dead", () => { state.textContent = " failed"; events.close(); });
  events.addEventListener("reset", async () => {
    const job = await (await fetch("/documents/" + encodeURIComponent(id))).json();
    state.textContent = " " + job.state;
  });
};
</script>`;

// Run directly: start on SLUICE_URL (default: an embedded SQLite file) and port 3000.
if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await startDocumentApp({ storeUrl: process.env.SLUICE_URL ?? "sqlite:./documents.db" });
  process.stdout.write(`open ${app.url}\n`);
  const stop = () => void app.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
