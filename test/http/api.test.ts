/**
 * The HTTP API against a real store on every engine, over a real server on 127.0.0.1: read routes,
 * actions (single and bulk), enqueue opt-in, and hostile input (each refused with a typed 4xx, the store
 * unchanged).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Json, Sluice, silentLogger } from "../../src/index.js";
import { ENGINE_NAMES, type IsolatedStore, isolatedStore } from "../support/engines/index.js";
import { until } from "../support/wait.js";
import { type ApiServer, call, codeOf, READ_TOKEN, startApi } from "./helpers.js";
import { responseSchema, shapeProblems } from "./schema-check.js";

interface Listed {
  jobs: { id: string; state: string; queue: string; payload: Json; priority: number }[];
  nextCursor: string | null;
}

describe.each(ENGINE_NAMES)("HTTP API on %s", (engine) => {
  let store: IsolatedStore;
  let sluice: Sluice;
  let api: ApiServer;
  let open: ApiServer;
  const q = `http_${engine}`;
  const ids: string[] = [];

  beforeAll(async () => {
    store = isolatedStore(engine, "http");
    sluice = new Sluice({ url: store.url, logger: silentLogger() });
    for (let i = 0; i < 7; i++) {
      const job = await sluice.enqueue(
        "send",
        { docId: i, user: { name: `u${i}`, password: "hunter2" }, apiKey: "k-secret" },
        { queue: q, jobId: `${q}-job-${i}` },
      );
      ids.push(job.id);
    }
    api = await startApi(sluice);
    open = await startApi(sluice, { allowEnqueue: true });
  });
  afterAll(async () => {
    await api?.close();
    await open?.close();
    await sluice?.close();
    await store?.dispose();
  });

  /** Every job in the store, counted through the admin API. */
  async function total(): Promise<number> {
    const queues = await sluice.admin.queues();
    return queues.reduce((sum, s) => sum + Object.values(s.counts).reduce((a, n) => a + n, 0), 0);
  }

  it("lists queues with counts, latency and pause state", async () => {
    const answer = await call(api.base, "GET", "/queues", { token: READ_TOKEN });
    expect(answer.status).toBe(200);
    const queue = (
      answer.body as {
        queues: { queue: string; counts: Record<string, number>; paused: boolean; latencyMs: number }[];
      }
    ).queues.find((s) => s.queue === q);
    expect(queue?.counts.waiting).toBe(7);
    expect(queue?.paused).toBe(false);
    expect(typeof queue?.latencyMs).toBe("number");
  });

  it("pages through jobs with a cursor, filtered by queue and state, secrets masked", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const path: string = `/jobs?queue=${q}&state=waiting&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const answer = await call(api.base, "GET", path, { token: READ_TOKEN });
      expect(answer.status).toBe(200);
      const page = answer.body as Listed;
      expect(page.jobs.length).toBeLessThanOrEqual(3);
      for (const job of page.jobs) {
        expect(job.queue).toBe(q);
        expect(job.payload).toMatchObject({ apiKey: "***", user: { password: "***" } });
        seen.push(job.id);
      }
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect([...seen].sort()).toEqual([...ids].sort());
    expect(JSON.stringify(seen)).not.toContain("hunter2");
  });

  it("filters by id prefix and by a payload field (JSON-typed values)", async () => {
    const byPrefix = (await call(api.base, "GET", `/jobs?idPrefix=${encodeURIComponent(`${q}-job-1`)}`))
      .body as Listed;
    const number = await call(api.base, "GET", `/jobs?queue=${q}&payload.docId=3`);
    const string = await call(api.base, "GET", `/jobs?queue=${q}&payload.docId=%223%22`);
    const nested = await call(api.base, "GET", `/jobs?queue=${q}&payload.user.name=%22u5%22`);
    expect([number.status, string.status, nested.status]).toEqual([200, 200, 200]);
    expect(byPrefix.jobs.map((j) => j.id)).toEqual([`${q}-job-1`]);
    expect((number.body as Listed).jobs.map((j) => j.id)).toEqual([`${q}-job-3`]);
    expect((string.body as Listed).jobs).toEqual([]);
    expect((nested.body as Listed).jobs.map((j) => j.id)).toEqual([`${q}-job-5`]);
  });

  it("shows one job with its logs, and 404 JOB_NOT_FOUND for an unknown id", async () => {
    const answer = await call(api.base, "GET", `/jobs/${ids[0]}`, { token: READ_TOKEN });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: ids[0], state: "waiting", logs: [], payload: { apiKey: "***" } });
    const missing = await call(api.base, "GET", "/jobs/no-such-job", { token: READ_TOKEN });
    expect(missing.status).toBe(404);
    expect(codeOf(missing)).toBe("JOB_NOT_FOUND");
  });

  it("cancels, refuses to cancel again (409), retries, reprioritizes, moves and deletes one job", async () => {
    const id = ids[6] as string;
    expect((await call(api.base, "POST", `/jobs/${id}/cancel`)).status).toBe(200);
    const again = await call(api.base, "POST", `/jobs/${id}/cancel`);
    expect(again.status).toBe(409);
    expect(codeOf(again)).toBe("JOB_STATE_CONFLICT");
    expect((await call(api.base, "POST", `/jobs/${id}/retry`)).status).toBe(200);
    expect((await sluice.admin.getJob(id)).state).toBe("waiting");
    expect(
      (await call(api.base, "POST", `/jobs/${id}/reprioritize`, { body: { priority: -5 } })).status,
    ).toBe(200);
    expect((await sluice.admin.getJob(id)).priority).toBe(-5);
    expect((await call(api.base, "POST", `/jobs/${id}/move`, { body: { queue: `${q}_other` } })).status).toBe(
      200,
    );
    expect((await sluice.admin.getJob(id)).queue).toBe(`${q}_other`);
    // Asking for what the job already has changes nothing and is no conflict.
    expect(
      (await call(api.base, "POST", `/jobs/${id}/reprioritize`, { body: { priority: -5 } })).status,
    ).toBe(200);
    expect((await call(api.base, "POST", `/jobs/${id}/move`, { body: { queue: `${q}_other` } })).status).toBe(
      200,
    );
    expect((await call(api.base, "DELETE", `/jobs/${id}`)).status).toBe(200);
    expect((await call(api.base, "GET", `/jobs/${id}`)).status).toBe(404);
    expect((await call(api.base, "POST", "/jobs/missing/retry")).status).toBe(404);
  });

  it("pauses and resumes a queue", async () => {
    expect((await call(api.base, "POST", `/queues/${q}/pause`)).status).toBe(200);
    expect((await sluice.admin.queues()).find((s) => s.queue === q)?.paused).toBe(true);
    expect((await call(api.base, "POST", `/queues/${q}/resume`)).status).toBe(200);
    expect((await sluice.admin.queues()).find((s) => s.queue === q)?.paused).toBe(false);
  });

  it("runs bulk actions by filter, answers counts, and refuses an unfiltered one without all: true", async () => {
    const bq = `${q}_bulk`;
    for (let i = 0; i < 5; i++) await sluice.enqueue("send", { i }, { queue: bq });
    const before = await total();
    const refused = await call(api.base, "POST", "/jobs/cancel", { body: {} });
    expect(refused.status).toBe(400);
    expect(codeOf(refused)).toBe("INVALID_OPTION");
    expect(await total()).toBe(before);
    const cancelled = await call(api.base, "POST", "/jobs/cancel", { body: { filter: { queue: bq } } });
    expect(cancelled.body).toEqual({ action: "cancel", count: 5 });
    const reprio = await call(api.base, "POST", "/jobs/reprioritize", {
      body: { filter: { queue: bq, state: "cancelled" }, priority: 3 },
    });
    expect(reprio.status).toBe(400); // reprioritize acts on scheduled, waiting, blocked
    const retried = await call(api.base, "POST", "/jobs/retry", {
      body: { filter: { queue: bq, state: ["cancelled"] } },
    });
    expect(retried.body).toEqual({ action: "retry", count: 5 });
    const moved = await call(api.base, "POST", "/jobs/move", {
      body: { filter: { queue: bq }, queue: `${bq}_2` },
    });
    expect(moved.body).toEqual({ action: "move", count: 5 });
    const deleted = await call(api.base, "POST", "/jobs/delete", { body: { filter: { queue: `${bq}_2` } } });
    expect(deleted.body).toEqual({ action: "delete", count: 5 });
    expect(await total()).toBe(before - 5);
  });

  it("requeues dead jobs by filter", async () => {
    const dq = `${q}_dead`;
    const worker = sluice.worker({ queues: [dq], concurrency: 2, pollMs: 50 });
    sluice.task("always-fails", {
      queue: dq,
      attempts: 1,
      run: () => {
        throw new Error("boom");
      },
    });
    for (let i = 0; i < 3; i++) await sluice.enqueue("always-fails", { i });
    await worker.start();
    await until(
      "3 dead jobs",
      async () => (await sluice.admin.queues()).find((s) => s.queue === dq)?.counts.dead === 3,
    );
    await worker.stop();
    const refused = await call(api.base, "POST", "/jobs/requeue-dead", { body: {} });
    expect(refused.status).toBe(400);
    const answer = await call(api.base, "POST", "/jobs/requeue-dead", { body: { filter: { queue: dq } } });
    expect(answer.body).toEqual({ action: "requeue-dead", count: 3 });
    expect((await sluice.admin.queues()).find((s) => s.queue === dq)?.counts.waiting).toBe(3);
    const detail = (await call(api.base, "GET", `/jobs?queue=${dq}&limit=1`)).body as Listed;
    const job = await call(api.base, "GET", `/jobs/${detail.jobs[0]?.id}`);
    expect(job.text).not.toContain("hunter2");
    expect((job.body as { errors: { message: string }[] }).errors[0]?.message).toBe("boom");
  });

  it("recovers with a dry run, and answers workers, schedules, doctor, stats and the document", async () => {
    const recover = await call(api.base, "POST", "/recover", { body: { dryRun: true } });
    expect(recover.status).toBe(200);
    expect(recover.body).toMatchObject({ dryRun: true, count: 0 });
    await sluice.schedule(`${q}-nightly`, {
      task: "send",
      cron: "0 3 * * *",
      payload: { token: "t" },
      options: { queue: q },
    });
    const schedules = await call(api.base, "GET", "/schedules", { token: READ_TOKEN });
    expect(schedules.status).toBe(200);
    const schedule = (
      schedules.body as { schedules: { name: string; template: { payload: unknown } }[] }
    ).schedules.find((s) => s.name === `${q}-nightly`);
    expect(schedule?.template.payload).toEqual({ token: "***" });
    for (const path of ["/workers", "/doctor", "/stats?since=2h", "/openapi.json"]) {
      const answer = await call(api.base, "GET", path, { token: READ_TOKEN });
      expect(answer.status, path).toBe(200);
    }
    const doctor = (await call(api.base, "GET", "/doctor")).body as {
      findings: unknown[];
      store: { engine: string };
    };
    expect(doctor.store.engine).toBe(engine);
    expect(doctor.findings.length).toBeGreaterThan(0);
  });

  it("filters jobs by tag, alone and with a queue", async () => {
    const tq = `${q}_tags`;
    const red = await sluice.enqueue("send", {}, { queue: tq, tags: ["red"] });
    const both = await sluice.enqueue("send", {}, { queue: tq, tags: ["red", "blue"] });
    const blue = await sluice.enqueue("send", {}, { queue: `${tq}_2`, tags: ["blue"] });
    const idsOf = async (path: string) => {
      const answer = await call(api.base, "GET", path, { token: READ_TOKEN });
      expect(answer.status, answer.text).toBe(200);
      return (answer.body as Listed).jobs.map((j) => j.id).sort();
    };
    expect(await idsOf("/jobs?tag=red")).toEqual([red.id, both.id].sort());
    expect(await idsOf("/jobs?tag=blue")).toEqual([both.id, blue.id].sort());
    expect(await idsOf(`/jobs?tag=blue&queue=${tq}`)).toEqual([both.id]);
    expect(await idsOf("/jobs?tag=green")).toEqual([]);
    // A tag is matched whole, not as a prefix or substring.
    expect(await idsOf("/jobs?tag=re")).toEqual([]);
  });

  it("shows a queue's limits, limited active count and held keys after sluice.limits()", async () => {
    const lq = `${q}_limited`;
    await sluice.enqueue("send", {}, { queue: lq });
    await sluice.limits(lq, { concurrency: 3, rate: { max: 10, windowMs: 60_000 }, keyConcurrency: 1 });
    const answer = await call(api.base, "GET", "/queues", { token: READ_TOKEN });
    const queues = (answer.body as { queues: Record<string, unknown>[] }).queues;
    expect(queues.find((s) => s.queue === lq)).toMatchObject({
      limits: { concurrency: 3, rate: { max: 10, windowMs: 60_000 }, keyConcurrency: 1, keyRate: null },
      limitedActive: 0,
      heldKeys: 0,
    });
    // A queue without limits says so.
    expect(queues.find((s) => s.queue === q)).toMatchObject({ limits: null });
  });

  it("shows the lines a handler logged in the job's detail, in order, with their attempt", async () => {
    const lq = `${q}_logs`;
    sluice.task("logs-lines", {
      queue: lq,
      async run(payload: { pages: number }, ctx) {
        for (let page = 1; page <= payload.pages; page++) await ctx.log(`page ${page} of ${payload.pages}`);
        await ctx.log(JSON.stringify({ step: "done", apiKey: "k-log-secret" }));
        return { pages: payload.pages };
      },
    });
    const job = await sluice.enqueue("logs-lines", { pages: 2 });
    const worker = sluice.worker({ queues: [lq], pollMs: 50 });
    await worker.start();
    try {
      await until(
        "the job to complete",
        async () => (await sluice.admin.getJob(job.id)).state === "completed",
      );
    } finally {
      await worker.stop();
    }
    const answer = await call(api.base, "GET", `/jobs/${job.id}`, { token: READ_TOKEN });
    const detail = answer.body as {
      logs: { at: number; attempt: number; message: string }[];
      result: unknown;
    };
    expect(detail.logs.map((l) => [l.attempt, l.message])).toEqual([
      [1, "page 1 of 2"],
      [1, "page 2 of 2"],
      [1, JSON.stringify({ step: "done", apiKey: "***" })],
    ]);
    for (const line of detail.logs) expect(typeof line.at).toBe("number");
    expect(detail.result).toEqual({ pages: 2 });
    expect(answer.text).not.toContain("k-log-secret");
    // logLimit bounds the lines answered.
    const limited = await call(api.base, "GET", `/jobs/${job.id}?logLimit=1`, { token: READ_TOKEN });
    expect((limited.body as { logs: unknown[] }).logs).toHaveLength(1);
  });

  it("recovers a job whose lease expired (dryRun false) and answers the count", async () => {
    const rq = `${q}_orphan`;
    const job = await sluice.enqueue("send", { n: 1 }, { queue: rq, attempts: 3 });
    const store = await sluice.store();
    // A worker that claimed the job and died: a short lease nobody renews.
    const [claimed] = await store.claim({ queues: [rq], limit: 1, workerId: "gone/1/x", leaseMs: 100 });
    expect(claimed?.id).toBe(job.id);
    expect((await sluice.admin.getJob(job.id)).state).toBe("active");
    // Poll the dry run until the lease has run out: it lists the job and changes nothing.
    const dry = await until("the lease to expire", async () => {
      const answer = await call(api.base, "POST", "/recover", { body: { dryRun: true } });
      const body = answer.body as { count: number; jobs: { id: string }[] };
      return body.count > 0 ? body : null;
    });
    expect(dry.jobs.map((j) => j.id)).toEqual([job.id]);
    expect((await sluice.admin.getJob(job.id)).state).toBe("active");
    const recovered = await call(api.base, "POST", "/recover", { body: { dryRun: false } });
    expect(recovered.status).toBe(200);
    expect(recovered.body).toMatchObject({ dryRun: false, count: 1, jobs: [{ id: job.id }] });
    const after = await sluice.admin.getJob(job.id);
    expect(after.state).not.toBe("active");
    expect(after.errors.at(-1)?.outcome).toBe("lease-expired");
    // Nothing is left to recover.
    expect((await call(api.base, "POST", "/recover", { body: {} })).body).toMatchObject({ count: 0 });
  });

  it("answers /queues, /jobs and /jobs/{id} with only the properties the OpenAPI document declares", async () => {
    const queues = await call(api.base, "GET", "/queues", { token: READ_TOKEN });
    expect(shapeProblems(queues.body, responseSchema("GET", "/queues"))).toEqual([]);
    const listing = await call(api.base, "GET", "/jobs?limit=500", { token: READ_TOKEN });
    expect(shapeProblems(listing.body, responseSchema("GET", "/jobs"))).toEqual([]);
    const listed = (listing.body as Listed).jobs;
    // Every kind of job this file made: waiting, completed with a result and logs, recovered, requeued
    // after dying (with errors), tagged, cancelled and retried.
    const states = new Set(listed.map((j) => j.state));
    expect(states.has("completed") && states.has("waiting")).toBe(true);
    for (const job of listed) {
      const detail = await call(api.base, "GET", `/jobs/${encodeURIComponent(job.id)}`, {
        token: READ_TOKEN,
      });
      expect(detail.status).toBe(200);
      expect(shapeProblems(detail.body, responseSchema("GET", "/jobs/{id}")), job.id).toEqual([]);
    }
  });

  it("enqueues only when allowEnqueue is on", async () => {
    const refused = await call(api.base, "POST", "/jobs", {
      body: { task: "send", payload: {}, options: { queue: q } },
    });
    expect(refused.status).toBe(403);
    expect(codeOf(refused)).toBe("ENQUEUE_DISABLED");
    const created = await call(open.base, "POST", "/jobs", {
      body: { task: "send", payload: { x: 1 }, options: { queue: `${q}_enq`, jobId: `${q}-enq-1` } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: `${q}-enq-1`, state: "waiting", created: true });
    const bad = await call(open.base, "POST", "/jobs", {
      body: { task: "send", options: { priority: "high" } },
    });
    expect(bad.status).toBe(400);
    expect(codeOf(bad)).toBe("INVALID_OPTION");
  });

  it("refuses hostile query strings and bodies with typed 4xx errors and leaves the store intact", async () => {
    const before = await total();
    const hostile = [
      "/jobs?queue=' OR 1=1 --",
      "/jobs?queue=a;DROP TABLE jobs",
      "/jobs?state=dead' OR '1'='1",
      "/jobs?payload.a\"b=1' OR 1=1",
      "/jobs?payload.=1",
      "/jobs?payload.a..b=1",
      "/jobs?payload.a=unquoted",
      "/jobs?payload.a={}",
      "/jobs?cursor=%00%00garbage",
      "/jobs?cursor=' OR 1=1 --",
      "/jobs?cursor=eyJzIjoiYSJ9",
      "/jobs?limit=-1",
      "/jobs?limit=NaN",
      "/jobs?limit=1e9",
      "/jobs?limit=501",
      "/jobs?limit=0",
      "/jobs?order=sideways",
      "/jobs?queue=a&queue=b",
      "/jobs?token=x",
      "/jobs?olderThan=forever",
      "/jobs/x/../../etc/passwd",
      "/stats?since=-5",
      "/jobs/abc?logLimit=1e9",
    ];
    for (const path of hostile) {
      const answer = await call(api.base, "GET", encodeURI(path).replace(/%25/g, "%"), { token: READ_TOKEN });
      expect([400, 404], `${path} → ${answer.text}`).toContain(answer.status);
      expect(codeOf(answer), path).toMatch(/^(INVALID_OPTION|NOT_FOUND|JOB_NOT_FOUND)$/);
      expect(answer.text, path).not.toMatch(/at .*\.(ts|js):\d+/);
    }
    // A quoted hostile payload value is data, not SQL: it simply matches nothing.
    const quoted = await call(
      api.base,
      "GET",
      `/jobs?queue=${q}&payload.a%22b=${encodeURIComponent(`"' OR 1=1 --"`)}`,
    );
    expect(quoted.status).toBe(200);
    const bodies: [string, string, string | undefined][] = [
      ["/jobs/cancel", "{not json", undefined],
      ["/jobs/cancel", "[1,2]", undefined],
      ["/jobs/cancel", JSON.stringify({ filter: { queue: "' OR 1=1 --" } }), undefined],
      ["/jobs/cancel", JSON.stringify({ filter: { payload: { "a.b": { $ne: 1 } } } }), undefined],
      ["/jobs/delete", JSON.stringify({ filter: { queue: q }, all: "yes" }), undefined],
      ["/jobs/delete", JSON.stringify({ filtr: { queue: q } }), undefined],
      ["/jobs/delete", JSON.stringify({ ids: "everything" }), undefined],
      ["/jobs/move", JSON.stringify({ filter: { queue: q }, queue: "../x" }), undefined],
      ["/recover", JSON.stringify({ limit: -1 }), undefined],
      ["/jobs/cancel", "queue=x", "application/x-www-form-urlencoded"],
      ["/jobs/cancel", JSON.stringify({ filter: { queue: q } }), "text/plain"],
    ];
    for (const [path, raw, type] of bodies) {
      const answer = await call(api.base, "POST", path, {
        raw,
        ...(type ? { headers: { "content-type": type } } : {}),
      });
      expect(type ? 415 : 400, `${path} ${raw} → ${answer.text}`).toBe(answer.status);
    }
    const huge = await call(api.base, "POST", "/jobs/cancel", {
      raw: JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) }),
    });
    expect(huge.status).toBe(413);
    expect(codeOf(huge)).toBe("BODY_TOO_LARGE");
    expect(await total()).toBe(before);
  });
});
