/** Collects the doctor's snapshot from the public API (Sluice, Admin) in one pass. */
import type { JobRecord, Sluice, StoreInfo } from "../index.js";
import { engineOf, redactUrl } from "../index.js";
import type { DoctorInput } from "./types.js";

/** How the snapshot is taken. */
export interface GatherOptions {
  windowMs: number;
  staleAfterMs: number;
  /** Give up connecting after this long and report the store unreachable. Default 10 s. */
  connectTimeoutMs?: number;
  commandSuffix?: string;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Takes the snapshot. Never throws for an unreachable store: that becomes the first finding. */
export async function gatherDoctorInput(sluice: Sluice, options: GatherOptions): Promise<DoctorInput> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const base = {
    now: Date.now(),
    windowMs: options.windowMs,
    staleAfterMs: options.staleAfterMs,
    commandSuffix: options.commandSuffix ?? "",
    queues: [],
    workers: [],
    stats: [],
    active: [],
  };
  let info: StoreInfo;
  try {
    // The first call connects (and migrates); its answer names the engine for the findings.
    info = await withTimeout(sluice.admin.storeInfo(), connectTimeoutMs, "connect");
  } catch (error) {
    return {
      ...base,
      store: {
        reachable: false,
        error: (error as Error).message,
        location: redactUrl(sluice.url),
        engine: engineOf(sluice.url),
      },
    };
  }
  const pings: number[] = [];
  try {
    for (let i = 0; i < 3; i++)
      pings.push((await withTimeout(sluice.admin.ping(), connectTimeoutMs, "ping")).rttMs);
  } catch (error) {
    return {
      ...base,
      store: {
        reachable: false,
        error: (error as Error).message,
        location: redactUrl(sluice.url),
        engine: info.engine,
      },
    };
  }
  pings.sort((a, b) => a - b);
  const admin = sluice.admin;
  const [queues, workers, stats, active] = await Promise.all([
    admin.queues(),
    admin.workers({ staleAfterMs: options.staleAfterMs }),
    admin.stats({ sinceMs: options.windowMs }),
    activeJobs(sluice),
  ]);
  return {
    ...base,
    now: Date.now(),
    store: { reachable: true, pingMs: pings[1] ?? pings[0] ?? 0, info },
    queues,
    workers,
    stats,
    active,
  };
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
