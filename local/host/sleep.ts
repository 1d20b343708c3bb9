import { sleep as sleepOrReject } from "../../shared/sleep";

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects): for loops that check the
 * signal themselves after the wait (the local host's retry and poll loops, the simulated fleet).
 * The timer itself is the one in shared/sleep.ts; only the abort is swallowed here.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return sleepOrReject(ms, signal).catch(() => undefined);
}
