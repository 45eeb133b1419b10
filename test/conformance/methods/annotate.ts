/** Method cases: `annotateAttempt`, the note a worker adds to the error lease recovery stored for its attempt. */
import { describe, expect, it } from "vitest";
import type { ConformanceContext } from "../context.js";
import { makeJob } from "./factory.js";

export function annotateMethodTests(ctx: ConformanceContext): void {
  describe("annotateAttempt", () => {
    it("sets a note on the error of the given attempt, whatever the state, and replaces an earlier note", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const dead = await makeJob(store, { state: "dead", queue });
      expect(dead.errors).toHaveLength(1);
      const [error] = dead.errors;
      expect(await store.annotateAttempt(dead.id, error!.attempt, "blocked for 2s")).toBe(true);
      const noted = await store.getJob(dead.id);
      expect(noted?.errors).toEqual([{ ...error, note: "blocked for 2s" }]);
      // Everything else about the job is as it was.
      expect({ ...noted, errors: dead.errors }).toEqual(dead);
      expect(
        await store.annotateAttempt(dead.id, error!.attempt, 'blocked for 3s — "quoted" / ünïcode'),
      ).toBe(true);
      expect((await store.getJob(dead.id))?.errors).toEqual([
        { ...error, note: 'blocked for 3s — "quoted" / ünïcode' },
      ]);
    });

    it("is false for an attempt without an error, a job without errors, and an unknown job", async () => {
      const store = await ctx.sluice().store();
      const queue = ctx.queue();
      const dead = await makeJob(store, { state: "dead", queue });
      const attempt = dead.errors[0]!.attempt;
      expect(await store.annotateAttempt(dead.id, attempt + 1, "x")).toBe(false);
      const waiting = await makeJob(store, { state: "waiting", queue: ctx.queue() });
      expect(await store.annotateAttempt(waiting.id, 1, "x")).toBe(false);
      expect(await store.annotateAttempt(`missing-${dead.id}`, 1, "x")).toBe(false);
      expect((await store.getJob(dead.id))?.errors).toEqual(dead.errors);
      expect((await store.getJob(waiting.id))?.errors).toEqual([]);
    });
  });
}
