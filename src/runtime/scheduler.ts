/**
 * Fires recurring schedules. Runs inside maintenance (the leader of a fleet), with a timer for the next
 * tick so a schedule fires within milliseconds of its time rather than at the next maintenance pass.
 *
 * Once per tick does not depend on leadership: every firing is a compare-and-set on the schedule's next
 * tick in the same transaction (script) as the tick's job, and the job id is derived from the schedule
 * and the tick, so two schedulers racing on one tick produce one job.
 */
import { planFiring, scheduleJobId, type Timing } from "../core/cron.js";
import type { Logger } from "../core/logger.js";
import type { NewJob, ScheduleRecord, Store } from "../store/contract.js";
import { emitEnqueued, type SluiceEventEmitter } from "./events.js";

/** The tick timing of a stored schedule. */
export function timingOf(schedule: ScheduleRecord): Timing {
  if (schedule.everyMs !== null) return { everyMs: schedule.everyMs };
  return { cron: schedule.cron ?? "", timezone: schedule.timezone ?? "UTC" };
}

/**
 * A job built from a schedule's stored template. Templates stored before flows and limits existed lack
 * `dependsOn`, `batchId` and `limitKey`; a schedule's jobs have no dependencies and no batch in any case.
 */
export function jobFromTemplate(schedule: ScheduleRecord, id: string, runAt: number): NewJob {
  return {
    ...schedule.template,
    dependsOn: [],
    batchId: null,
    limitKey: schedule.template.limitKey ?? null,
    id,
    idempotent: true,
    runAt,
  };
}

/** The job of one tick. Its run time is the tick, so a late firing still runs in tick order. */
export function tickJob(schedule: ScheduleRecord, tick: number): NewJob {
  return jobFromTemplate(schedule, scheduleJobId(schedule.name, tick), tick);
}

export class Scheduler {
  constructor(
    private readonly store: Store,
    private readonly events: SluiceEventEmitter,
    private readonly logger: Logger,
  ) {}

  /**
   * Fires every schedule whose next tick is at or before `now`; returns the earliest next tick of all
   * schedules (to arm a timer), or null when none is pending. Paused schedules are skipped (and
   * `fireSchedule` refuses them too, should one be paused between this read and its firing); their ticks
   * do not arm the timer.
   */
  async fireDue(now = Date.now()): Promise<number | null> {
    let earliest: number | null = null;
    const keep = (at: number | null) => {
      if (at !== null && (earliest === null || at < earliest)) earliest = at;
    };
    for (const schedule of await this.store.listSchedules()) {
      if (schedule.nextAt === null || schedule.paused) continue;
      if (schedule.nextAt > now) {
        keep(schedule.nextAt);
        continue;
      }
      let plan: ReturnType<typeof planFiring>;
      try {
        plan = planFiring(timingOf(schedule), schedule.missed, schedule.nextAt, now);
      } catch (error) {
        // Written by another version with a syntax this one rejects: leave it for that version.
        this.logger.error({ err: error, schedule: schedule.name }, "schedule cannot be evaluated; skipped");
        continue;
      }
      const jobs = plan.ticks.map((tick) => tickJob(schedule, tick));
      const results = await this.store.fireSchedule({
        name: schedule.name,
        queue: schedule.queue,
        dueAt: schedule.nextAt,
        nextAt: plan.nextAt,
        lastTickAt: plan.lastTick,
        jobs,
      });
      if (results === null) continue; // another scheduler fired this tick
      keep(plan.nextAt);
      const skipped = plan.ticks.length === 0;
      this.logger.info(
        {
          schedule: schedule.name,
          queue: schedule.queue,
          ticks: plan.ticks.length,
          late: skipped ? undefined : now - (plan.ticks.at(-1) as number),
          nextAt: plan.nextAt,
        },
        skipped ? "schedule missed its ticks (policy skip): nothing enqueued" : "schedule fired",
      );
      emitEnqueued(this.events, jobs, results);
    }
    return earliest;
  }
}
