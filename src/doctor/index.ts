/**
 * `sluice doctor`: the stalled-queue runbook, automated. Gather a snapshot from the admin API,
 * run pure checks over it, report findings with severity, evidence and the exact fix.
 */
import { CHECKS, skipped } from "./checks.js";
import type { DoctorInput, DoctorReport, Finding, Severity } from "./types.js";

export * from "./checks.js";
export { type GatherOptions, gatherDoctorInput } from "./gather.js";
export { storeTarget } from "./target.js";
export type { CheckId, DoctorInput, DoctorReport, Finding, Severity, StoreTarget } from "./types.js";

/**
 * Runs every check over the snapshot. When the store is unreachable, only `store-reachable` runs; every
 * other check is reported `skipped` (it saw no data, so it can say neither ok nor wrong).
 */
export function runChecks(input: DoctorInput): Finding[] {
  if (!input.store.reachable) {
    return CHECKS.flatMap((check) =>
      check.id === "store-reachable" ? check.run(input) : [skipped(check.id)],
    );
  }
  return CHECKS.flatMap((check) => check.run(input));
}

/** Findings plus the summary and store identity (`sluice doctor --json`). */
export function buildReport(input: DoctorInput, findings: readonly Finding[]): DoctorReport {
  const summary: Record<Severity, number> = { ok: 0, warn: 0, critical: 0, skipped: 0 };
  for (const f of findings) summary[f.severity]++;
  const s = input.store;
  return {
    ok: summary.critical === 0,
    summary,
    store: s.reachable
      ? {
          engine: s.info.engine,
          location: s.info.location,
          version: s.info.version,
          pingMs: Math.round(s.pingMs * 100) / 100,
        }
      : { engine: s.engine, location: s.location, version: null, pingMs: null },
    windowMs: input.windowMs,
    findings: [...findings],
  };
}
