/** Redis has no transaction to join: a transaction handle is refused with a code and what to do instead. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sluice, SluiceError, silentLogger } from "../../src/index.js";
import { newJob } from "../support/new-job.js";
import { sharedStore } from "./helpers.js";

let shared: Awaited<ReturnType<typeof sharedStore>>;
beforeAll(async () => {
  shared = await sharedStore();
});
afterAll(async () => {
  await shared?.dispose();
});

describe("redis transactional enqueue", () => {
  it("refuses a transaction handle with TRANSACTION_UNSUPPORTED and writes nothing", async () => {
    const handle = { query: async () => ({ rows: [] }) }; // e.g. the application's pg client
    const error = await shared.store
      .enqueue([newJob({ queue: "txn" })], { transaction: handle })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: "TRANSACTION_UNSUPPORTED" });
    expect((error as Error).message).toMatch(/after your transaction commits/);
    expect((error as Error).message).toMatch(/jobId/);

    const sluice = new Sluice({ url: shared.url, logger: silentLogger() });
    try {
      sluice.task("t", { queue: "txn" });
      await expect(sluice.withTransaction(handle).enqueue("t", {})).rejects.toMatchObject({
        code: "TRANSACTION_UNSUPPORTED",
      });
      expect(await shared.store.queueStats()).toEqual([]);
    } finally {
      await sluice.close();
    }
  });
});
