/** Recurring schedules: a tick fires once across any number of schedulers; missed ticks; definitions. */
import { describe, expect, it } from "vitest";
import { nextTick, ScheduleNotFoundError, silentLogger, ValidationError } from "../../src/index.js";
import { Scheduler, tickJob } from "../../src/runtime/scheduler.js";
import type { Store } from "../../src/store/contract.js";
import { overrideStore } from "../support/store-proxy.js";
import type { ConformanceContext } from "./context.js";
import { until } from "./context.js";

export function scheduleTests(ctx: ConformanceContext): void {
  describe("schedules", () => {
    it("fires a tick once when several schedulers race on it (compare-and-set with the tick's job)", async () => {
      const owner = ctx.sluice();
      const queue = ctx.queue();
      owner.task("report", { queue });
      const schedule = await owner.schedule(`race-${queue}`, { task: "report", every: "1h" });
      const dueAt = schedule.nextAt as number;
      const stores = await Promise.all([1, 2, 3, 4].map(() => ctx.sluice().store()));
      const results = await Promise.all(
        stores.map((store) =>
          store.fireSchedule({
            name: schedule.name,
            queue,
            dueAt,
            nextAt: dueAt + 3_600_000,
            lastTickAt: dueAt,
            jobs: [tickJob(schedule, dueAt)],
          }),
        ),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect(results.find((r) => r !== null)).toEqual([
        // The tick is an hour ahead here (fired early by hand), so its job waits for it.
        { id: `schedule:${schedule.name}:${dueAt}`, state: "scheduled", created: true },
      ]);
      const jobs = (await owner.admin.listJobs({ queue })).jobs;
      expect(jobs.map((j) => j.id)).toEqual([`schedule:${schedule.name}:${dueAt}`]);
      expect(jobs[0]).toMatchObject({ task: "report", runAt: dueAt, tags: [`schedule:${schedule.name}`] });
      const [stored] = (await owner.admin.schedules()).filter((s) => s.name === schedule.name);
      expect(stored).toMatchObject({ nextAt: dueAt + 3_600_000, lastTickAt: dueAt });
      // Schedules are store-wide: each test removes its own so later tests' schedulers do not fire them.
      await owner.unschedule(schedule.name);
    });

    it("enqueues exactly one job per tick while three schedulers fire the same schedule", async () => {
      const queue = ctx.queue();
      const owner = ctx.sluice();
      owner.task("tick", { queue });
      const name = `every-${queue}`;
      const first = await owner.schedule(name, { task: "tick", every: 100, missed: "all" });
      // Each scheduler's store counts the compare-and-sets that won: the tick's deterministic job id would
      // hide a broken CAS (a second firing of a tick enqueues nothing new), the count does not.
      const won: { dueAt: number; ticks: number[] }[] = [];
      const counting = (store: Store): Store =>
        overrideStore(store, {
          fireSchedule: async (request) => {
            const result = await store.fireSchedule(request);
            if (result !== null && request.name === name) {
              won.push({
                dueAt: request.dueAt,
                ticks: request.jobs.map((j) => Number(j.id.split(":").at(-1))),
              });
            }
            return result;
          },
        });
      const schedulers = [ctx.sluice(), ctx.sluice(), ctx.sluice()].map(
        async (sluice) => new Scheduler(counting(await sluice.store()), sluice.emitter, silentLogger()),
      );
      const racing = await Promise.all(schedulers);
      const start = first.nextAt as number;
      // Each scheduler fires whatever is due, as fast as it can, until ten ticks have fired (a slow runner
      // takes longer, it does not fire fewer); the deadline only bounds a broken scheduler.
      const fired = () => won.reduce((n, w) => n + w.ticks.length, 0);
      const deadline = Date.now() + 20_000;
      await Promise.all(
        racing.map(async (scheduler) => {
          while (fired() < 10 && Date.now() < deadline) await scheduler.fireDue();
        }),
      );
      await owner.unschedule(name);
      const ids = (await owner.admin.listJobs({ queue }, { limit: 100, order: "asc" })).jobs.map((j) => j.id);
      const ticks = ids.map((id) => Number(id.split(":").at(-1)));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ticks.length).toBeGreaterThanOrEqual(10);
      // Consecutive ticks, none missing, none twice.
      expect(ticks).toEqual(ticks.map((_, i) => start + i * 100));
      // Exactly one winning compare-and-set per tick: no tick's nextAt was taken twice, and the winners'
      // jobs cover every tick once (a late winner covers the ticks it missed, `missed: "all"`).
      const dueAts = won.map((w) => w.dueAt);
      expect(new Set(dueAts).size, `winning dueAts ${dueAts.join(", ")}`).toBe(dueAts.length);
      expect(won.flatMap((w) => w.ticks).sort((a, b) => a - b)).toEqual(ticks);
    });

    it("runs a scheduled job from a worker's maintenance, on time, with no separate scheduler process", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      const ran: number[] = [];
      sluice.task("heartbeat-report", { queue, run: (_p, job) => void ran.push(job.job.runAt) });
      const schedule = await sluice.schedule(`worker-${queue}`, { task: "heartbeat-report", every: 250 });
      await sluice.worker({ queues: [queue], maintenanceMs: 1_000 }).start();
      await until("three ticks ran", () => ran.length >= 3);
      await sluice.unschedule(schedule.name);
      // The first pass may come after a few ticks (missed: once fires the latest of them); from then on the
      // leader's timer fires every tick.
      expect(ran[0]).toBeGreaterThanOrEqual(schedule.nextAt as number);
      expect(ran.slice(0, 3).map((at) => at - (ran[0] as number))).toEqual([0, 250, 500]);
    });

    it("applies the missed-ticks policy after a time when nothing ran", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      sluice.task("nightly", { queue });
      const scheduler = new Scheduler(await sluice.store(), sluice.emitter, silentLogger());
      const jobsOf = async (name: string) =>
        (
          await sluice.admin.listJobs({ queue, tag: `schedule:${name}` }, { limit: 100, order: "asc" })
        ).jobs.map((j) => j.runAt);
      const missedFor = async (missed: "all" | "once" | "skip", late: number, every = "1s") => {
        const name = `${missed}-${late}-${queue}`;
        const s = await sluice.schedule(name, { task: "nightly", every, missed });
        const due = s.nextAt as number;
        await scheduler.fireDue(due + late); // as if nothing had run for `late` ms past the first tick
        const [after] = (await sluice.admin.schedules()).filter((x) => x.name === name);
        await sluice.unschedule(name);
        return { due, runAts: await jobsOf(name), nextAt: after?.nextAt };
      };
      const all = await missedFor("all", 3_500);
      expect(all.runAts).toEqual([all.due, all.due + 1_000, all.due + 2_000, all.due + 3_000]);
      expect(all.nextAt).toBe(all.due + 4_000);
      const once = await missedFor("once", 3_500);
      expect(once.runAts).toEqual([once.due + 3_000]);
      expect(once.nextAt).toBe(once.due + 4_000);
      // skip: hourly ticks, the scheduler back 2 h 2 min after the first: the latest tick is 2 minutes late,
      // past the 1-minute grace, so nothing runs; back 30 s after a tick, that tick still runs.
      const skipLate = await missedFor("skip", 7_320_000, "1h");
      expect(skipLate.runAts).toEqual([]);
      expect(skipLate.nextAt).toBe(skipLate.due + 3 * 3_600_000);
      const skipOnTime = await missedFor("skip", 30_000, "1h");
      expect(skipOnTime.runAts).toEqual([skipOnTime.due]);
    });

    it("keeps a schedule's clock when declared again unchanged, and restarts it when changed", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      sluice.task("digest", { queue });
      const name = `clock-${queue}`;
      const first = await sluice.schedule(name, { task: "digest", every: "1h", payload: { v: 1 } });
      const store = await sluice.store();
      // Fire its first tick, so the stored clock differs from what a fresh declaration would compute.
      await store.fireSchedule({
        name,
        queue,
        dueAt: first.nextAt as number,
        nextAt: (first.nextAt as number) + 3_600_000,
        lastTickAt: first.nextAt as number,
        jobs: [],
      });
      const again = await sluice.schedule(name, { task: "digest", every: "1h", payload: { v: 1 } });
      expect(again).toMatchObject({ nextAt: (first.nextAt as number) + 3_600_000, lastTickAt: first.nextAt });
      const changed = await sluice.schedule(name, { task: "digest", every: "1h", payload: { v: 2 } });
      expect(changed.version).not.toBe(first.version);
      expect(changed.nextAt).toBe(first.nextAt);
      expect(changed.template.payload).toBe('{"v":2}');
      expect(await sluice.unschedule(name)).toBe(true);
      expect(await sluice.unschedule(name)).toBe(false);
      expect((await sluice.admin.schedules()).some((s) => s.name === name)).toBe(false);
    });

    it("rejects bad schedule definitions with a typed error and stores nothing", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      sluice.task("checked", { queue });
      const name = `bad-${queue}`;
      const cases: [Record<string, unknown>, string, string][] = [
        [{ task: "checked", cron: "61 * * * *" }, "INVALID_CRON", "schedule.cron"],
        [{ task: "checked", cron: "* * *" }, "INVALID_CRON", "schedule.cron"],
        [{ task: "checked", cron: "0 0 30 2 *" }, "INVALID_CRON", "schedule.cron"],
        [
          { task: "checked", cron: "0 3 * * *", timezone: "Mars/Olympus" },
          "INVALID_CRON",
          "schedule.timezone",
        ],
        [{ task: "checked" }, "INVALID_CRON", "schedule.cron"],
        [{ task: "checked", cron: "* * * * *", every: "1m" }, "INVALID_OPTION", "schedule.every"],
        [{ task: "checked", every: 5 }, "INVALID_OPTION", "schedule.every"],
        [{ task: "checked", every: "1m", missed: "sometimes" }, "INVALID_OPTION", "schedule.missed"],
        [
          { task: "checked", every: "1m", options: { jobId: "x" } },
          "INVALID_OPTION",
          "schedule.options.jobId",
        ],
        [{ task: "checked", every: "1m", payload: { f: () => 1 } }, "INVALID_PAYLOAD", "schedule.payload.f"],
        [{ task: "checked", every: "1m", cronn: "x" }, "INVALID_OPTION", "schedule.cronn"],
      ];
      for (const [definition, code, field] of cases) {
        const error = await sluice.schedule(name, definition as never).catch((e: unknown) => e);
        expect(error, JSON.stringify(definition)).toBeInstanceOf(ValidationError);
        expect(error, JSON.stringify(definition)).toMatchObject({ code, field });
      }
      await expect(sluice.schedule(name, { task: "undefined-task", every: "1m" })).rejects.toMatchObject({
        code: "UNKNOWN_TASK",
      });
      expect((await sluice.admin.schedules()).some((s) => s.name === name)).toBe(false);
    });
    it("pauses a schedule: no tick fires, a redeploy keeps the pause, a resume drops the paused ticks", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      sluice.task("paused-report", { queue });
      const name = `pause-${queue}`;
      const definition = { task: "paused-report", every: "1s", missed: "all" } as const;
      const declared = await sluice.schedule(name, definition);
      expect(declared.paused).toBe(false);
      const due = declared.nextAt as number;
      const paused = await sluice.admin.pauseSchedule(name);
      expect(paused).toMatchObject({ name, paused: true, nextAt: due, lastTickAt: null });
      // Pausing again changes nothing.
      expect(await sluice.admin.pauseSchedule(name)).toMatchObject({ paused: true, nextAt: due });
      const store = await sluice.store();
      // The store refuses the firing itself (a scheduler that read the schedule before the pause).
      const fire = {
        name,
        queue,
        dueAt: due,
        nextAt: due + 1_000,
        lastTickAt: due,
        jobs: [tickJob(declared, due)],
      };
      expect(await store.fireSchedule(fire)).toBeNull();
      // A scheduler passing long after the tick (3.5 s: four ticks under missed: "all") fires nothing.
      const scheduler = new Scheduler(store, sluice.emitter, silentLogger());
      await scheduler.fireDue(due + 3_500);
      const jobsOf = async () => (await sluice.admin.listJobs({ queue }, { limit: 100 })).jobs;
      expect(await jobsOf()).toEqual([]);
      expect(await sluice.admin.getSchedule(name)).toMatchObject({
        paused: true,
        nextAt: due,
        lastTickAt: null,
      });
      // Declared again at a worker's start, unchanged: still paused, clock kept. Changed: still paused.
      expect(await sluice.schedule(name, definition)).toMatchObject({ paused: true, nextAt: due });
      const changed = await sluice.schedule(name, { ...definition, payload: { v: 2 } });
      expect(changed.version).not.toBe(declared.version);
      expect(changed.paused).toBe(true);
      expect((await sluice.admin.schedules()).find((s) => s.name === name)?.paused).toBe(true);
      // Resumed: from its next tick after now; the ticks that fell while paused are dropped, not caught up.
      const before = Date.now();
      const resumed = await sluice.admin.resumeSchedule(name);
      const after = Date.now();
      expect(resumed.paused).toBe(false);
      expect(resumed.nextAt).toBeGreaterThanOrEqual(nextTick({ everyMs: 1_000 }, before) as number);
      expect(resumed.nextAt).toBeLessThanOrEqual(nextTick({ everyMs: 1_000 }, after) as number);
      await scheduler.fireDue((resumed.nextAt as number) - 1);
      expect(await jobsOf()).toEqual([]);
      // From then on it fires again: its next tick, once.
      await scheduler.fireDue(resumed.nextAt as number);
      expect((await jobsOf()).map((j) => j.id)).toEqual([`schedule:${name}:${resumed.nextAt}`]);
      // Resuming a schedule that is not paused leaves its clock alone.
      const running = await sluice.admin.getSchedule(name);
      expect(await sluice.admin.resumeSchedule(name)).toMatchObject({
        paused: false,
        nextAt: running.nextAt,
        lastTickAt: running.lastTickAt,
      });
      await sluice.unschedule(name);
    });

    it("runs a schedule now: one job from its template, paused or not, its clock untouched", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      sluice.task("manual-report", { queue });
      const name = `now-${queue}`;
      const declared = await sluice.schedule(name, {
        task: "manual-report",
        every: "1h",
        payload: { scope: "all" },
        options: { priority: 7 },
      });
      await sluice.admin.pauseSchedule(name);
      const before = Date.now();
      const run = await sluice.admin.runScheduleNow(name);
      expect(run).toMatchObject({ schedule: name, state: "waiting", created: true });
      expect(run.id).toMatch(new RegExp(`^schedule:${name}:manual:\\d+$`));
      const job = await sluice.admin.getJob(run.id);
      expect(job).toMatchObject({
        task: "manual-report",
        queue,
        priority: 7,
        payload: { scope: "all" },
        tags: [`schedule:${name}`],
      });
      expect(job.runAt).toBeGreaterThanOrEqual(before);
      expect(await sluice.admin.getSchedule(name)).toMatchObject({
        paused: true,
        nextAt: declared.nextAt,
        lastTickAt: null,
      });
      await sluice.unschedule(name);
    });

    it("removes a schedule (a dry run only says what it would remove); unknown names are SCHEDULE_NOT_FOUND", async () => {
      const sluice = ctx.sluice();
      const queue = ctx.queue();
      sluice.task("removable", { queue });
      const name = `remove-${queue}`;
      await sluice.schedule(name, { task: "removable", cron: "0 3 * * *", timezone: "Asia/Seoul" });
      expect(await sluice.admin.removeSchedule(name, { dryRun: true })).toMatchObject({
        name,
        cron: "0 3 * * *",
        timezone: "Asia/Seoul",
      });
      expect((await sluice.admin.schedules()).some((s) => s.name === name)).toBe(true);
      expect(await sluice.admin.removeSchedule(name)).toMatchObject({ name });
      expect((await sluice.admin.schedules()).some((s) => s.name === name)).toBe(false);
      const missing = `missing-${queue}`;
      const calls: [string, () => Promise<unknown>][] = [
        ["getSchedule", () => sluice.admin.getSchedule(missing)],
        ["pauseSchedule", () => sluice.admin.pauseSchedule(missing)],
        ["resumeSchedule", () => sluice.admin.resumeSchedule(missing)],
        ["removeSchedule", () => sluice.admin.removeSchedule(missing)],
        ["removeSchedule dry run", () => sluice.admin.removeSchedule(missing, { dryRun: true })],
        ["runScheduleNow", () => sluice.admin.runScheduleNow(missing)],
        ["removed one", () => sluice.admin.pauseSchedule(name)],
      ];
      for (const [label, call] of calls) {
        const error = await call().catch((e: unknown) => e);
        expect(error, label).toBeInstanceOf(ScheduleNotFoundError);
        expect(error, label).toMatchObject({ code: "SCHEDULE_NOT_FOUND" });
      }
      // A pause never outlives its schedule: one declared again under the name starts unpaused.
      await sluice.schedule(name, { task: "removable", every: "1h" });
      await sluice.admin.pauseSchedule(name);
      await sluice.unschedule(name);
      expect((await sluice.schedule(name, { task: "removable", every: "1h" })).paused).toBe(false);
      await sluice.unschedule(name);
      await expect(sluice.admin.getSchedule("not a name!")).rejects.toMatchObject({ code: "INVALID_OPTION" });
      expect((await sluice.admin.listJobs({ queue })).jobs).toEqual([]);
    });
  });
}
