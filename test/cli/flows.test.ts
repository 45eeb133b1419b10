/** `sluice jobs show` with a flow, `sluice batches list/show`, and `--batch` on a bulk command, on every engine. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BatchRecord, FlowView, JobDetail, Sluice } from "../../src/index.js";
import { newJob } from "../support/new-job.js";
import { ENGINES, runCli, type TestStore, testStore } from "./helpers.js";
import { open } from "./seed.js";

describe.each(ENGINES)("sluice flow commands on %s", (engine) => {
  let store: TestStore;
  let sluice: Sluice;
  let chain: string[];
  let batchId: string;
  beforeAll(async () => {
    store = testStore(engine);
    sluice = open(store.url);
    sluice.task("parse", { queue: "cli_flow" });
    sluice.task("index", { queue: "cli_flow" });
    sluice.task("done", { queue: "cli_flow" });
    chain = (
      await sluice.chain([
        { task: "parse", payload: { docId: 1 } },
        { task: "index", payload: { docId: 1 } },
      ])
    ).map((j) => j.id);
    batchId = (
      await sluice.batch(
        [1, 2, 3].map((n) => ({ task: "parse", payload: { n } })),
        { description: "doc 1 chunks", onComplete: "done" },
      )
    ).batchId;
  });
  afterAll(async () => {
    await sluice?.close();
    await store?.dispose();
  });

  it("jobs show prints the dependencies and dependents (and --json carries the flow)", async () => {
    const human = await runCli(["jobs", "show", chain[1] as string, "--url", store.url]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(
      /dependencies \(1\)\n\s+\S+\s+parse\s+waiting\s+on failure: fail\s+\(unresolved\)/,
    );
    const json = await runCli(["jobs", "show", chain[0] as string, "--json", "--url", store.url]);
    const shown = JSON.parse(json.stdout) as JobDetail & { flow: FlowView };
    expect(shown.flow.dependents.map((d) => d.id)).toEqual([chain[1]]);
  });

  it("jobs show lists 20 children, counts the rest, and prints the command that lists them all", async () => {
    const raw = await sluice.store();
    const parent = (await sluice.enqueue("parse", { docId: 2 })).id;
    await raw.enqueue(
      Array.from({ length: 23 }, (_, n) =>
        newJob({ queue: "cli_flow_kids", task: "parse", parentId: parent, payload: `{"n":${n}}` }),
      ),
    );
    const shown = await runCli(["jobs", "show", parent, "--url", store.url]);
    expect(shown.stdout).toContain("children (23: 23 waiting)");
    const hint = `npx sluice jobs list --parent ${parent}`;
    expect(shown.stdout).toContain(`… 3 more: ${hint}`);
    const listed = await runCli([...hint.split(" ").slice(2), "--json", "--url", store.url]);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { jobs: unknown[] }).jobs).toHaveLength(23);
  });

  it("batches list and show report progress and callbacks; cancel --batch cancels the members", async () => {
    const list = await runCli(["batches", "list", "--open", "--json", "--url", store.url]);
    expect(list.code, list.stderr).toBe(0);
    const open = JSON.parse(list.stdout) as { batches: (BatchRecord & { pending: number })[] };
    expect(open.batches.find((b) => b.id === batchId)).toMatchObject({ total: 3, pending: 3 });
    const show = await runCli(["batches", "show", batchId, "--url", store.url]);
    expect(show.stdout).toContain("progress   0/3  (3 pending)");
    expect(show.stdout).toMatch(/complete\s+done \(queue cli_flow\)\s+not fired/);
    const cancel = await runCli(["cancel", "--batch", batchId, "--yes", "--url", store.url]);
    expect(cancel.code, cancel.stderr).toBe(0);
    const after = JSON.parse(
      (await runCli(["batches", "show", batchId, "--json", "--url", store.url])).stdout,
    ) as BatchRecord & { members: { state: string }[] };
    expect(after).toMatchObject({ total: 3, cancelled: 3, pending: 0 });
    expect(after.callbacks[0]?.firedAt).not.toBeNull();
    expect(after.members.map((m) => m.state)).toEqual(["cancelled", "cancelled", "cancelled"]);
  });

  it("an unknown batch exits 1 with BATCH_NOT_FOUND; --open with --finished is a usage error", async () => {
    const missing = await runCli(["batches", "show", "no-such-batch", "--url", store.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("BATCH_NOT_FOUND");
    const both = await runCli(["batches", "list", "--open", "--finished", "--url", store.url]);
    expect(both.code).toBe(2);
  });
});
