/**
 * examples/document-progress (seed 001): a web app enqueues a document job and returns its id; a client
 * follows the job over SSE until it completes, and a reconnect with Last-Event-ID resumes exactly.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type DocumentApp, startDocumentApp } from "../../examples/document-progress/app.js";
import { ENGINE_NAMES, isolatedStore } from "../support/engines/index.js";
import { connectSse } from "../support/sse.js";

describe.each(ENGINE_NAMES)("document-progress example on %s", (engine) => {
  let app: DocumentApp | null = null;
  let dispose: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await app?.close();
    await dispose?.();
    app = null;
    dispose = null;
  });

  it("enqueues, returns the id at once, and streams progress until completed; resumes with Last-Event-ID", async () => {
    const store = isolatedStore(engine, "example");
    dispose = store.dispose;
    app = await startDocumentApp({ storeUrl: store.url, port: 0, pageDelayMs: 20 });
    const page = await fetch(`${app.url}/`);
    expect(await page.text()).toContain("new EventSource");
    const posted = await fetch(`${app.url}/documents`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title: "report", pages: 3 }),
    });
    expect(posted.status).toBe(202);
    const { id, events: eventsPath } = (await posted.json()) as { id: string; events: string };
    expect(eventsPath).toContain(encodeURIComponent(id));
    const events = await connectSse(`${app.url}${eventsPath}`);
    expect(events.status).toBe(200);
    expect(events.headers.get("content-type")).toContain("text/event-stream");
    const seen: { id: string | null; event: string; progress?: unknown }[] = [];
    for (;;) {
      const message = await events.next();
      const data = JSON.parse(message.data) as { jobId: string; data: { progress?: unknown } | null };
      expect(data.jobId).toBe(id);
      seen.push({ id: message.id, event: message.event, progress: data.data?.progress });
      if (message.event === "completed") break;
    }
    events.close();
    const status = (await (await fetch(`${app.url}/documents/${encodeURIComponent(id)}`)).json()) as {
      state: string;
      result: unknown;
    };
    expect(status).toMatchObject({ state: "completed", result: { pages: 3 } });
    expect(seen.map((s) => s.event)).toEqual([
      "enqueued",
      "active",
      "progress",
      "progress",
      "progress",
      "completed",
    ]);
    expect(seen.filter((s) => s.event === "progress").at(-1)?.progress).toEqual({ page: 3, pages: 3 });
    // Reconnect after the first message: the same messages again, none missing or repeated.
    const resumed = await connectSse(`${app.url}/documents/${encodeURIComponent(id)}/events`, {
      "last-event-id": seen[0]?.id as string,
    });
    const again: (string | null)[] = [];
    for (let i = 1; i < seen.length; i++) again.push((await resumed.next()).id);
    resumed.close();
    expect(again).toEqual(seen.slice(1).map((s) => s.id));
  });
});
