/**
 * The HTTP API's flow routes on every engine: a job's flow (dependencies, dependents, parent, children,
 * batch; results redacted), batches listed and read, the batchId / parentId filters, and 404 for an
 * unknown batch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sluice, silentLogger } from "../../src/index.js";
import { ENGINE_NAMES, type IsolatedStore, isolatedStore } from "../support/engines/index.js";
import { type ApiServer, call, codeOf, READ_TOKEN, startApi } from "./helpers.js";

describe.each(ENGINE_NAMES)("HTTP flow routes on %s", (engine) => {
  let store: IsolatedStore;
  let sluice: Sluice;
  let api: ApiServer;
  const q = `httpflow_${engine}`;

  beforeAll(async () => {
    store = isolatedStore(engine, "httpflow");
    sluice = new Sluice({ url: store.url, logger: silentLogger() });
    sluice.task("step", { queue: q });
    sluice.task("done", { queue: q });
    api = await startApi(sluice, { redact: ["password"] });
  });
  afterAll(async () => {
    await api?.close();
    await sluice?.close();
    await store?.dispose();
  });

  it("shows a job's dependencies and dependents, and filters by batch", async () => {
    const [a, b] = await sluice.chain([
      { task: "step", payload: { n: 1 } },
      { task: "step", payload: { n: 2 } },
    ]);
    const flow = await call(api.base, "GET", `/jobs/${b?.id}/flow`, { token: READ_TOKEN });
    expect(flow.status).toBe(200);
    expect(flow.body).toMatchObject({
      dependencies: [{ id: a?.id, task: "step", state: "waiting", onFailure: "fail", resolved: false }],
      dependents: [],
      children: [],
      parent: null,
      batch: null,
    });
    const upstream = await call(api.base, "GET", `/jobs/${a?.id}/flow`, { token: READ_TOKEN });
    expect((upstream.body as { dependents: { id: string }[] }).dependents.map((d) => d.id)).toEqual([b?.id]);
    const { batchId } = await sluice.batch(
      [1, 2, 3].map((n) => ({ task: "step", payload: { n } })),
      { description: "three", onComplete: "done" },
    );
    const members = await call(api.base, "GET", `/jobs?batchId=${encodeURIComponent(batchId)}`, {
      token: READ_TOKEN,
    });
    expect((members.body as { jobs: unknown[] }).jobs).toHaveLength(3);
    const one = await call(api.base, "GET", `/batches/${encodeURIComponent(batchId)}`, { token: READ_TOKEN });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: batchId, total: 3, pending: 3, completed: 0, description: "three" });
    expect((one.body as { callbacks: { event: string; firedAt: null }[] }).callbacks).toEqual([
      expect.objectContaining({ event: "complete", task: "done", firedAt: null }),
    ]);
    const open = await call(api.base, "GET", "/batches?finished=false", { token: READ_TOKEN });
    expect((open.body as { batches: { id: string }[] }).batches.map((x) => x.id)).toContain(batchId);
    const finished = await call(api.base, "GET", "/batches?finished=true", { token: READ_TOKEN });
    expect((finished.body as { batches: { id: string }[] }).batches.map((x) => x.id)).not.toContain(batchId);
  });

  it("answers 404 BATCH_NOT_FOUND, 404 for a missing job's flow, 400 for a bad finished", async () => {
    const missing = await call(api.base, "GET", "/batches/no-such-batch", { token: READ_TOKEN });
    expect(missing.status).toBe(404);
    expect(codeOf(missing)).toBe("BATCH_NOT_FOUND");
    expect((await call(api.base, "GET", "/jobs/no-such-job/flow", { token: READ_TOKEN })).status).toBe(404);
    const bad = await call(api.base, "GET", "/batches?finished=maybe", { token: READ_TOKEN });
    expect(bad.status).toBe(400);
    expect(codeOf(bad)).toBe("INVALID_OPTION");
  });
});
