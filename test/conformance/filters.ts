/**
 * Job filters the HTTP API exposes beyond the CLI's: an id prefix and a payload field, on listing and on
 * bulk actions, on every engine. Filter text is data, never syntax: LIKE / glob / JSON-path characters in
 * it match themselves.
 */
import { describe, expect, it } from "vitest";
import type { Store } from "../../src/index.js";
import type { JobFilter } from "../../src/store/contract.js";
import { newJob } from "../support/new-job.js";
import type { ConformanceContext } from "./context.js";

async function ids(store: Store, filter: JobFilter): Promise<string[]> {
  const page = await store.listJobs({ filter, limit: 100, order: "asc" });
  return page.jobs.map((j) => j.id);
}

export function filterTests(ctx: ConformanceContext): void {
  describe("job filters", () => {
    it("filters by id prefix, taking %, _, * and other pattern characters literally", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const names = ["doc-1", "doc-2", "doc_3", "doc%4", "docx", "other-doc-1", "do*c"];
      await store.enqueue(names.map((id) => newJob({ id: `${queue}:${id}`, queue })));
      const p = (s: string) => `${queue}:${s}`;
      expect(await ids(store, { queue, idPrefix: p("doc-") })).toEqual([p("doc-1"), p("doc-2")]);
      expect(await ids(store, { queue, idPrefix: p("doc_") })).toEqual([p("doc_3")]);
      expect(await ids(store, { queue, idPrefix: p("doc%") })).toEqual([p("doc%4")]);
      expect(await ids(store, { queue, idPrefix: p("do*") })).toEqual([p("do*c")]);
      expect(await ids(store, { queue, idPrefix: p("doc") })).toHaveLength(5);
      expect(await ids(store, { queue, idPrefix: p("zzz") })).toEqual([]);
      expect(await ids(store, { idPrefix: p("doc-1") })).toEqual([p("doc-1")]);
    });

    it("filters by a payload field, by type and value, nested, and hostile text stays data", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const payloads = [
        { docId: 7, user: { name: "ann" } },
        { docId: "7", user: { name: "bob" } },
        { docId: 8, user: { name: "ann" }, flag: true },
        { docId: null, user: { name: "o'brien\" OR 1=1 --" } },
        { other: 1 },
      ];
      const jobs = payloads.map((p) => newJob({ queue, payload: JSON.stringify(p) }));
      await store.enqueue(jobs);
      const id = (i: number) => jobs[i]?.id as string;
      expect(await ids(store, { queue, payloadField: { path: ["docId"], equals: 7 } })).toEqual([id(0)]);
      expect(await ids(store, { queue, payloadField: { path: ["docId"], equals: "7" } })).toEqual([id(1)]);
      expect(await ids(store, { queue, payloadField: { path: ["docId"], equals: null } })).toEqual([id(3)]);
      expect(await ids(store, { queue, payloadField: { path: ["flag"], equals: true } })).toEqual([id(2)]);
      expect(await ids(store, { queue, payloadField: { path: ["user", "name"], equals: "ann" } })).toEqual([
        id(0),
        id(2),
      ]);
      const hostile = "o'brien\" OR 1=1 --";
      expect(await ids(store, { queue, payloadField: { path: ["user", "name"], equals: hostile } })).toEqual([
        id(3),
      ]);
      for (const path of [["no'such"], ['a"b'], ["$.x"], ["*"], ["user", "name", "deeper"]]) {
        expect(await ids(store, { queue, payloadField: { path, equals: "ann" } })).toEqual([]);
      }
      // Bulk actions take the same filter.
      const removed = await store.remove(
        { queue, payloadField: { path: ["user", "name"], equals: "ann" } },
        { limit: 100 },
      );
      expect(removed.count).toBe(2);
      expect(await ids(store, { queue })).toEqual([id(1), id(3), id(4)]);
    });

    it("lists several states in one order, page by page (held jobs as waiting)", async () => {
      const sluice = ctx.sluice();
      const store = await sluice.store();
      const queue = ctx.queue();
      const jobs = Array.from({ length: 7 }, () => newJob({ queue }));
      await store.enqueue(jobs);
      const id = (i: number) => jobs[i]?.id as string;
      await sluice.admin.cancel({ ids: [id(1), id(4)] });
      // 0 is claimed and held (not started: listed as waiting); 2 runs (active).
      const claimed = await store.claim({
        queues: [queue],
        limit: 2,
        workerId: "w",
        leaseMs: 60_000,
        start: 0,
      });
      expect(claimed.map((j) => j.id)).toEqual([id(0), id(2)]);
      expect(await store.start([{ id: id(2), token: claimed[1]?.leaseToken as number }])).toEqual([true]);
      const pages: string[][] = [];
      let cursor: string | null = null;
      do {
        const page = await store.listJobs({
          filter: { queue, states: ["waiting", "cancelled"] },
          limit: 2,
          cursor,
        });
        pages.push(page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
      } while (cursor !== null && pages.length < 10);
      expect(pages.flat()).toEqual([6, 5, 4, 3, 1, 0].map(id));
      expect(pages.every((p) => p.length <= 2)).toBe(true);
      const active = await store.listJobs({ filter: { queue, states: ["active"] }, limit: 10 });
      expect(active.jobs.map((j) => j.id)).toEqual([id(2)]);
      const ascending = await store.listJobs({
        filter: { queue, states: ["cancelled", "active"] },
        limit: 10,
        order: "asc",
      });
      expect(ascending.jobs.map((j) => j.id)).toEqual([1, 2, 4].map(id));
    });
  });
}
