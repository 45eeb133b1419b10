/** A schedule's job built from its stored template, including a template stored before flows and limits. */
import { describe, expect, it } from "vitest";
import { jobFromTemplate, tickJob } from "../../src/runtime/scheduler.js";
import type { ScheduleRecord } from "../../src/store/contract.js";

function schedule(template: Record<string, unknown>): ScheduleRecord {
  return {
    name: "nightly",
    task: "t",
    queue: "q",
    cron: "0 3 * * *",
    timezone: "UTC",
    everyMs: null,
    missed: "once",
    template: template as unknown as ScheduleRecord["template"],
    version: "v",
    nextAt: null,
    lastTickAt: null,
    paused: false,
    updatedAt: 0,
  };
}

const OLD_TEMPLATE = {
  task: "t",
  queue: "q",
  payload: "{}",
  priority: 0,
  maxAttempts: 3,
  backoff: null,
  timeoutMs: null,
  uniqueKey: null,
  uniqueStates: [],
  uniqueUntil: null,
  tags: ["schedule:nightly"],
  retention: true,
  parentId: null,
};

describe("jobs from a schedule's template", () => {
  it("fills the fields a template stored before flows and limits lacks", () => {
    const job = tickJob(schedule(OLD_TEMPLATE), 1_000);
    expect(job).toMatchObject({ id: "schedule:nightly:1000", idempotent: true, runAt: 1_000 });
    expect(job.dependsOn).toEqual([]);
    expect(job.batchId).toBeNull();
    expect(job.limitKey).toBeNull();
  });

  it("keeps the template's limit key and never its dependencies or batch", () => {
    const job = jobFromTemplate(
      schedule({
        ...OLD_TEMPLATE,
        limitKey: "tenant-a",
        dependsOn: [{ id: "x", onFailure: "fail" }],
        batchId: "b",
      }),
      "manual",
      5,
    );
    expect(job).toMatchObject({ id: "manual", runAt: 5, limitKey: "tenant-a", batchId: null, dependsOn: [] });
  });
});
