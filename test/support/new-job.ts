/** A minimal valid NewJob for store-level tests (what the producer API would hand an engine). */
import { randomUUID } from "node:crypto";
import type { NewJob } from "../../src/index.js";

export function newJob(overrides: Partial<NewJob> = {}): NewJob {
  return {
    id: randomUUID(),
    idempotent: false,
    task: "t",
    queue: "q",
    payload: "{}",
    priority: 0,
    runAt: Date.now(),
    maxAttempts: 3,
    backoff: null,
    timeoutMs: null,
    uniqueKey: null,
    uniqueStates: [],
    uniqueUntil: null,
    tags: [],
    retention: true,
    parentId: null,
    dependsOn: [],
    batchId: null,
    limitKey: null,
    ...overrides,
  };
}
