/** The emulator's notion of "now" (milliseconds since the epoch). Inject a manual clock in tests. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: for throttle and timestamp tests. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(ms: number): void;
}

export function createManualClock(startMs = Date.UTC(2026, 0, 1)): ManualClock {
  let current = startMs;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
    set: (ms) => {
      current = ms;
    },
  };
}

/** IoT Hub writes timestamps with 7 fractional digits (`2021-02-14T18:05:38.5825801Z`); so do we. */
export function hubTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "0000Z");
}
