/**
 * `sluice doctor`: the stalled-queue runbook (seed 000), automated. Gather a snapshot from the admin API,
 * run pure checks over it, report findings with severity, evidence and the exact fix.
 */
import { CHECKS } from "./checks.js";
import type { DoctorInput, DoctorReport, Finding, Severity } from "./types.js";

export * from "./checks.js";
export { type GatherOptions, gatherDoctorInput } from "./gather.js";
export type { DoctorInput, DoctorReport, Finding, Severity } from "./types.js";

/** Runs every check over the snapshot. */
export function runChecks(input: DoctorInput): Finding[] {
  return CHECKS.flatMap((check) => check(input));
}

/** Findings plus the summary and store identity (`sluice doctor --json`). */
export function buildReport(input: DoctorInput, findings: readonly Finding[]): DoctorReport {
  const summary: Record<Severity, number> = { ok: 0, warn: 0, critical: 0 };
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
