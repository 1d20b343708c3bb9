import { Cron } from "croner";
import { triggerOf, type FunctionRegistration } from "./functionRegistration";
import type { RpcInvocationRequest } from "./invokeFunction";

export interface TimerCounters {
  runs: number;
  failures: number;
  /** Occurrences skipped because the previous run was still going. */
  skipped: number;
}

export interface TimerJob {
  readonly functionName: string;
  readonly schedule: string;
  readonly counters: TimerCounters;
  nextRun(): Date | null;
  /** Fires the function now (after the running one, if any, finishes). Rejects if it throws. */
  runNow(): Promise<void>;
  stop(): Promise<void>;
}

export interface TimerJobOptions {
  registration: FunctionRegistration;
  /** The binding's schedule with `%SETTING%` already resolved. */
  schedule: string;
  invoke: (request: RpcInvocationRequest) => Promise<unknown>;
  error: (message: string) => void;
  /** Time zone of the schedule: Azure uses UTC unless WEBSITE_TIME_ZONE says otherwise. */
  timezone?: string | undefined;
  /** False: validate the schedule but fire only through `runNow` (tests). */
  scheduled?: boolean;
}

/** Azure's TimeSpan form of a schedule (`hh:mm:ss`, App Service plans): run every interval. */
const timeSpan = /^(\d{1,2}):(\d{2}):(\d{2})$/;

/**
 * Fires a timer function on its NCRONTAB schedule (six fields, seconds first, as Azure Functions
 * reads them) through croner. A run never overlaps the previous run of the same timer: an
 * occurrence that comes while it runs is skipped (and counted).
 */
export function startTimer(options: TimerJobOptions): TimerJob {
  const { registration, schedule } = options;
  const trigger = triggerOf(registration);
  const counters: TimerCounters = { runs: 0, failures: 0, skipped: 0 };
  let running: Promise<void> | undefined;
  let stopped = false;

  const input = (isPastDue: boolean): RpcInvocationRequest => ({
    inputData: [
      { name: trigger.name, data: { json: JSON.stringify({ Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: isPastDue }) } },
    ],
  });

  const run = (isPastDue: boolean): Promise<void> => {
    const current = (async () => {
      try {
        await options.invoke(input(isPastDue));
        counters.runs++;
      } catch (error) {
        counters.failures++;
        throw error;
      } finally {
        running = undefined;
      }
    })();
    running = current;
    return current;
  };

  const onSchedule = () => {
    if (stopped) return;
    if (running) {
      counters.skipped++;
      return;
    }
    run(false).catch((error: unknown) => {
      options.error(`timer ${registration.name} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  };

  let cron: Cron | undefined;
  let interval: NodeJS.Timeout | undefined;
  let intervalNext: Date | null = null;
  const span = timeSpan.exec(schedule);
  const scheduled = options.scheduled !== false;
  if (span) {
    const ms = ((Number(span[1]) * 60 + Number(span[2])) * 60 + Number(span[3])) * 1000;
    if (ms <= 0) throw new Error(`timer ${registration.name}: schedule "${schedule}" is an empty interval`);
    intervalNext = scheduled ? new Date(Date.now() + ms) : null;
    if (scheduled) interval = setInterval(() => {
      intervalNext = new Date(Date.now() + ms);
      onSchedule();
    }, ms);
  } else {
    try {
      cron = new Cron(schedule, { mode: "6-part", timezone: options.timezone ?? "UTC", paused: !scheduled }, onSchedule);
    } catch (error) {
      throw new Error(
        `timer ${registration.name}: schedule "${schedule}" is not an NCRONTAB expression with six fields ` +
          `({second} {minute} {hour} {day} {month} {day-of-week}): ${(error as Error).message}`,
      );
    }
  }
  if (scheduled && trigger.binding.runOnStartup === true) onSchedule();

  return {
    functionName: registration.name,
    schedule,
    counters,
    nextRun: () => (!scheduled ? null : cron ? cron.nextRun() : intervalNext),
    async runNow() {
      while (running) await running.catch(() => undefined);
      if (stopped) throw new Error(`timer ${registration.name} is stopped`);
      await run(false);
    },
    async stop() {
      stopped = true;
      cron?.stop();
      if (interval) clearInterval(interval);
      while (running) await running.catch(() => undefined);
    },
  };
}
