/** Collects the doctor's snapshot from the public API (Sluice, Admin) in one pass. */
import type { JobRecord, Sluice, StoreInfo } from "../index.js";
import { engineOf, redactUrl } from "../index.js";
import { hourStart } from "./checks.js";
import { storeTarget } from "./target.js";
import type { DoctorInput } from "./types.js";

/** How the snapshot is taken. */
export interface GatherOptions {
  windowMs: number;
  staleAfterMs: number;
  /** Give up connecting after this long and report the store unreachable. Default 10 s. */
  connectTimeoutMs?: number;
  commandSuffix?: string;
}

/** The last completion of a queue is looked up this far back (at least the window), for the evidence. */
const COMPLETION_LOOKBACK_MS = 24 * 3_600_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function engineName(url: string): string {
  try {
    return engineOf(url);
  } catch {
    return "unknown";
  }
}

/** Takes the snapshot. Never throws for an unreachable store: that becomes the first finding. */
export async function gatherDoctorInput(sluice: Sluice, options: GatherOptions): Promise<DoctorInput> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const now = Date.now();
  const completionsLookbackMs = Math.max(options.windowMs, COMPLETION_LOOKBACK_MS);
  const base = {
    now,
    windowMs: options.windowMs,
    staleAfterMs: options.staleAfterMs,
    commandSuffix: options.commandSuffix ?? "",
    target: storeTarget(sluice.url),
    queues: [],
    workers: [],
    stats: [],
    rollupSince: hourStart(now - options.windowMs),
    lastCompletions: new Map<string, number>(),
    completionsLookbackMs,
    active: [],
    stuckBlocked: [],
    keyHolds: [],
  };
  const unreachable = (error: unknown, engine: string): DoctorInput => ({
    ...base,
    store: {
      reachable: false,
      error: (error as Error)?.message ?? String(error),
      location: redactUrl(sluice.url),
      engine,
    },
  });
  let info: StoreInfo;
  try {
    // The first call connects (and migrates); its answer names the engine for the findings.
    info = await withTimeout(sluice.admin.storeInfo(), connectTimeoutMs, "connect");
  } catch (error) {
    return unreachable(error, engineName(sluice.url));
  }
  try {
    const pings: number[] = [];
    for (let i = 0; i < 3; i++)
      pings.push((await withTimeout(sluice.admin.ping(), connectTimeoutMs, "ping")).rttMs);
    pings.sort((a, b) => a - b);
    const admin = sluice.admin;
    const at = Date.now();
    const rollupSince = hourStart(at - options.windowMs);
    const [queues, workers, stats, lastCompletions, active, stuckBlocked, keyHolds] = await withTimeout(
      Promise.all([
        admin.queues(),
        admin.workers({ staleAfterMs: options.staleAfterMs }),
        // Asks from a little earlier and keeps the hours from rollupSince, so the coverage is exact.
        admin.stats({ sinceMs: at - rollupSince + 1_000 }),
        admin.lastCompletions({ sinceMs: completionsLookbackMs }),
        activeJobs(sluice),
        admin.stuckBlocked(100),
        // One check's input: a store that cannot list them skips that check, not the whole report.
        admin
          .keyHolds(1_000)
          .catch((error: unknown) => ({ error: (error as Error)?.message ?? String(error) })),
      ]),
      Math.max(connectTimeoutMs, 30_000),
      "reading the store",
    );
    return {
      ...base,
      now: Date.now(),
      store: { reachable: true, pingMs: pings[1] ?? pings[0] ?? 0, info },
      queues,
      workers,
      stats: stats.filter((r) => r.hour >= rollupSince),
      rollupSince,
      lastCompletions,
      active,
      stuckBlocked,
      keyHolds,
    };
  } catch (error) {
    // Reachable a moment ago, failing now: report it as unreachable rather than half a picture.
    return unreachable(error, info.engine);
  }
}

async function activeJobs(sluice: Sluice): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  let cursor: string | null = null;
  do {
    const page = await sluice.admin.listJobs({ state: "active" }, { limit: 1_000, cursor });
    out.push(...page.jobs);
    cursor = page.nextCursor;
  } while (cursor !== null && out.length < 10_000);
  return out;
}
