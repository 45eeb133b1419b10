/**
 * examples/pdf-pipeline (seed 002) on every engine: a material's questions are embedded and put in the
 * graph; the batch's report runs once, after every job, with exact counts (one question's embedding is
 * dead); Rails' perform_now / wait / wait_until map to runNow / delayMs / runAt.
 */
import { afterEach, describe, expect, it } from "vitest";
import { definePipeline, type MaterialReport, startWorkers } from "../../examples/pdf-pipeline/pipeline.js";
import { Sluice, silentLogger } from "../../src/index.js";
import { ENGINE_NAMES, isolatedStore } from "../support/engines/index.js";
import { until } from "../support/wait.js";

describe.each(ENGINE_NAMES)("pdf-pipeline example on %s", (engine) => {
  let sluice: Sluice | null = null;
  let dispose: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await sluice?.close();
    await dispose?.();
    sluice = null;
    dispose = null;
  });

  it("embeds every question, updates the graph, and reports once with exact counts", async () => {
    const store = isolatedStore(engine, "pdfpipe");
    dispose = store.dispose;
    const s = new Sluice({ url: store.url, logger: silentLogger() });
    sluice = s;
    const reports: MaterialReport[] = [];
    const graph: string[] = [];
    const processPdf = definePipeline(s, {
      extractQuestions: async (id) => (id === "m1" ? ["q1", "q2", "q3", "broken"] : ["q9"]),
      embed: async (q) => {
        if (q === "broken") throw new Error("embedding API answered 400: input too long");
        return [q.length];
      },
      updateGraph: async (q) => void graph.push(q),
      report: (r) => void reports.push(r),
    });
    await processPdf.enqueue({ materialId: "m1" }); // perform_later
    await processPdf.enqueue({ materialId: "m2" });
    const later = await processPdf.enqueue({ materialId: "m3" }, { delayMs: "1h" }); // set(wait: 1.hour)
    const noon = await processPdf.enqueue({ materialId: "m4" }, { runAt: Date.now() + 86_400_000 }); // wait_until
    expect(later.state).toBe("scheduled");
    expect(noon.state).toBe("scheduled");
    const now = await processPdf.runNow({ materialId: "m-now" }); // perform_now
    expect(now).toEqual({ questions: 1 });
    await startWorkers(s);
    // perform_now ran the PDF step here; the embeddings it enqueued run on the workers like the others.
    await until("three reports", () => reports.length >= 3, 60_000);
    const byMaterial = Object.fromEntries(reports.map((r) => [r.materialId, r]));
    // m1: 4 questions; "broken" is dead at its first attempt (only timeouts are retried), so its graph
    // update never exists: 4 embeddings + 3 graph updates, 6 completed, 1 failed.
    expect(byMaterial.m1).toEqual({ materialId: "m1", jobs: 7, completed: 6, failed: 1 });
    expect(byMaterial.m2).toEqual({ materialId: "m2", jobs: 2, completed: 2, failed: 0 });
    expect(byMaterial["m-now"]).toEqual({ materialId: "m-now", jobs: 2, completed: 2, failed: 0 });
    expect(reports).toHaveLength(3);
    expect(graph.sort()).toEqual(["q1", "q2", "q3", "q9", "q9"]);
    const batches = (await s.admin.batches({ finished: true })).batches;
    expect(batches.map((b) => b.description).sort()).toEqual([
      "material m-now",
      "material m1",
      "material m2",
    ]);
  }, 90_000);
});
