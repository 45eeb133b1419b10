/**
 * `GET /events` through the API on every engine: a read token streams a job's events, resumable with
 * Last-Event-ID; progress is redacted like job detail (a secret reported as progress never reaches the
 * stream); a malformed Last-Event-ID is a 400 with the typed code.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Sluice, silentLogger } from "../../src/index.js";
import { ENGINE_NAMES, isolatedStore } from "../support/engines/index.js";
import { connectSse } from "../support/sse.js";
import { type ApiServer, READ_TOKEN, startApi } from "./helpers.js";

describe.each(ENGINE_NAMES)("GET /events on %s", (engine) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(): Promise<{ sluice: Sluice; api: ApiServer }> {
    const store = isolatedStore(engine, "events_route");
    cleanups.push(store.dispose);
    const sluice = new Sluice({ url: store.url, logger: silentLogger() });
    cleanups.push(() => sluice.close());
    const api = await startApi(sluice);
    cleanups.push(api.close);
    return { sluice, api };
  }

  it("streams a job's events with its progress redacted, and resumes after Last-Event-ID", async () => {
    const { sluice, api } = await setup();
    const task = sluice.task("report", {
      queue: "redact",
      async run(_payload, ctx) {
        await ctx.progress({ done: 1, apiKey: "sk-live-secret-value" });
      },
    });
    const from = await sluice.eventCursor();
    const job = await task.enqueue({});
    await sluice.worker({ queues: ["redact"] }).start();
    const auth = { authorization: `Bearer ${READ_TOKEN}` };
    const stream = await connectSse(`${api.base}/events?job=${job.id}&after=${from ?? ""}`, auth);
    cleanups.push(async () => stream.close());
    expect(stream.status).toBe(200);
    const seen: { id: string | null; event: string; data: string }[] = [];
    while (seen.at(-1)?.event !== "completed") seen.push(await stream.next());
    expect(seen.map((m) => m.event)).toEqual(["enqueued", "active", "progress", "completed"]);
    const progress = JSON.parse(seen[2]?.data ?? "{}") as { data: { progress: unknown } };
    expect(progress.data.progress).toEqual({ done: 1, apiKey: "***" });
    expect(seen.map((m) => m.data).join("\n")).not.toContain("sk-live-secret-value");

    const resumed = await connectSse(`${api.base}/events?job=${job.id}`, {
      ...auth,
      "last-event-id": seen[1]?.id as string,
    });
    cleanups.push(async () => resumed.close());
    expect([(await resumed.next()).id, (await resumed.next()).id]).toEqual([seen[2]?.id, seen[3]?.id]);
  });

  it("refuses a malformed Last-Event-ID with 400 INVALID_OPTION", async () => {
    const { api } = await setup();
    const res = await fetch(`${api.base}/events`, {
      headers: { authorization: `Bearer ${READ_TOKEN}`, "last-event-id": "not an id" },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID_OPTION");
  });
});
