/** The failure policy, rule by rule: every branch of decideFailure and its order. */
import { describe, expect, it } from "vitest";
import {
  CancelledError,
  DiscardError,
  InvalidPayloadError,
  LeaseLostError,
  NoHandlerError,
  RateLimitedError,
  TimeoutError,
  WorkerStoppingError,
} from "../../src/core/errors.js";
import {
  attemptOutcome,
  cancelledBeforeStart,
  decideFailure,
  type FailureInput,
} from "../../src/core/failure-policy.js";
import { CANCELLED_BEFORE_START_REASON, CANCELLED_WHILE_ACTIVE_REASON } from "../../src/core/states.js";

const NOW = 1_700_000_000_000;
class UpstreamError extends Error {
  override name = "UpstreamError";
}
class BadDocument extends Error {
  override name = "BadDocument";
}

function decide(overrides: Partial<FailureInput> & { attempt?: number; maxAttempts?: number } = {}) {
  const { attempt = 1, maxAttempts = 3, ...rest } = overrides;
  return decideFailure({
    job: { attempt, maxAttempts, backoff: { type: "fixed", delayMs: 1_000 } },
    error: new UpstreamError("503 from upstream"),
    workerId: "host/1/abc",
    now: NOW,
    random: () => 0.5,
    ...rest,
  });
}

describe("failure policy", () => {
  it("schedules a retry after the job's backoff while attempts remain, recording the attempt", () => {
    expect(decide()).toEqual({
      kind: "fail",
      error: {
        attempt: 1,
        outcome: "error",
        name: "UpstreamError",
        message: "503 from upstream",
        stack: expect.any(String),
        at: NOW,
        workerId: "host/1/abc",
      },
      next: { state: "scheduled", runAt: NOW + 1_000 },
    });
  });

  it("uses the task's backoff when the job stores none, and passes the attempt and error to a function", () => {
    const seen: unknown[] = [];
    const error = new UpstreamError("x");
    const decision = decideFailure({
      job: { attempt: 2, maxAttempts: 5, backoff: null },
      error,
      rules: {
        backoff: (attempt, err) => {
          seen.push(attempt, err);
          return 7_000;
        },
      },
      workerId: "w",
      now: NOW,
    });
    expect(decision).toMatchObject({ kind: "fail", next: { state: "scheduled", runAt: NOW + 7_000 } });
    expect(seen).toEqual([2, error]);
  });

  it("sends the job to dead when its last attempt fails", () => {
    expect(decide({ attempt: 3, maxAttempts: 3 })).toMatchObject({
      kind: "fail",
      next: { state: "dead", reason: "attempts exhausted (3/3): UpstreamError: 503 from upstream" },
    });
    expect(decide({ attempt: 2, maxAttempts: 3 })).toMatchObject({ next: { state: "scheduled" } });
  });

  it("discards on DiscardError, discardOn (class or predicate), and errors outside retryOn", () => {
    const discarded = (d: ReturnType<typeof decide>) =>
      d.kind === "fail" && d.next.state === "dead" && d.next.reason.startsWith("discarded: ");
    expect(discarded(decide({ error: new DiscardError("no") }))).toBe(true);
    expect(discarded(decide({ error: new BadDocument("pdf"), rules: { discardOn: [BadDocument] } }))).toBe(
      true,
    );
    expect(
      discarded(
        decide({ error: new BadDocument("pdf"), rules: { discardOn: [(e) => e instanceof BadDocument] } }),
      ),
    ).toBe(true);
    expect(discarded(decide({ error: new BadDocument("pdf"), rules: { retryOn: [UpstreamError] } }))).toBe(
      true,
    );
    expect(discarded(decide({ error: new UpstreamError("503"), rules: { retryOn: [UpstreamError] } }))).toBe(
      false,
    );
    expect(decide({ error: new DiscardError("not worth it") })).toMatchObject({
      next: { reason: "discarded: DiscardError: not worth it" },
      error: { outcome: "error", code: "DISCARDED" },
    });
  });

  it("matches retryOn against the abort reason when the worker aborted the handler (a timeout)", () => {
    const timeout = new TimeoutError(50);
    const retried = decide({
      error: new Error("aborted"),
      abortReason: timeout,
      rules: { retryOn: [TimeoutError] },
    });
    expect(retried).toMatchObject({
      next: { state: "scheduled" },
      error: { outcome: "timeout", name: "TimeoutError" },
    });
    const discarded = decide({
      error: new Error("aborted"),
      abortReason: timeout,
      rules: { retryOn: [UpstreamError] },
    });
    expect(discarded).toMatchObject({ next: { state: "dead" }, error: { outcome: "timeout" } });
  });

  it("sends a job with an unusable stored payload straight to dead, whatever attempts remain", () => {
    expect(decide({ error: new InvalidPayloadError("bad json"), attempt: 1, maxAttempts: 10 })).toMatchObject(
      {
        kind: "fail",
        error: { outcome: "invalid-payload", name: "InvalidPayloadError", code: "INVALID_PAYLOAD" },
        next: { state: "dead", reason: "discarded: InvalidPayloadError: bad json" },
      },
    );
  });

  it("cancels a job an operator cancelled while it ran, before any retry or discard rule", () => {
    const decision = decide({
      error: new BadDocument("aborted mid-parse"),
      abortReason: new CancelledError("j1"),
      rules: { discardOn: [BadDocument] },
      attempt: 3,
      maxAttempts: 3,
    });
    expect(decision).toMatchObject({
      kind: "fail",
      error: { outcome: "cancelled", name: "CancelledError", code: "JOB_CANCELLED" },
      next: { state: "cancelled", reason: CANCELLED_WHILE_ACTIVE_REASON },
    });
  });

  it("holds the queue for a rate limit and charges nothing, even on the last attempt", () => {
    const error = new RateLimitedError(30_000);
    expect(decide({ error, attempt: 3, maxAttempts: 3 })).toEqual({
      kind: "rate-limited",
      until: NOW + 30_000,
      error,
    });
    expect(decide({ error: new RateLimitedError(-5) })).toMatchObject({ kind: "rate-limited", until: NOW });
  });

  it("writes nothing for a job the worker already released at shutdown or whose lease it lost", () => {
    const shutdown = decide({ abortReason: new WorkerStoppingError(25_000), error: new RateLimitedError(1) });
    expect(shutdown).toEqual({ kind: "none", why: "released" });
    expect(decide({ abortReason: new LeaseLostError("j1") })).toEqual({ kind: "none", why: "lease-lost" });
  });

  it("names the outcome of an attempt", () => {
    expect(attemptOutcome(new NoHandlerError("t", "w"), undefined)).toBe("no-handler");
    expect(attemptOutcome(new Error("x"), new TimeoutError(1))).toBe("timeout");
    expect(attemptOutcome(new Error("x"), new CancelledError("j"))).toBe("cancelled");
    expect(attemptOutcome(new InvalidPayloadError("x"), new TimeoutError(1))).toBe("invalid-payload");
    expect(attemptOutcome("a string", undefined)).toBe("error");
  });

  it("records a cancel that reached a job claimed ahead, before its handler started", () => {
    expect(cancelledBeforeStart({ id: "j9", attempt: 1 }, "w", NOW)).toMatchObject({
      error: { attempt: 1, outcome: "cancelled", name: "CancelledError", at: NOW, workerId: "w" },
      next: { state: "cancelled", reason: CANCELLED_BEFORE_START_REASON },
    });
  });
});
