import type { ComplianceState } from "../compliance/ComplianceState";

type StateCounts = Record<ComplianceState, number>;

/** What the observable gauges report, read from the store in one go. */
export interface StoreGauges {
  /** Property records by (effective) state: the trigger-kept counters, as the summary reads them. */
  propertyRecords: StateCounts;
  /** Devices (and module twins) by state, from the same counters. */
  devices: StateCounts;
  /** Rows in dead_letters (retention prunes them). */
  deadLetters: number;
  /** Twins flagged resyncNeeded. */
  resyncPending: number;
  /** Seconds since the last complete fleet sync pass finished; null before the first. */
  syncAgeSeconds: number | null;
}

/**
 * `read` behind a short cache: one read in flight at a time, its result reused for `ttlMs`. Azure
 * Monitor collects every 60 s and a Prometheus scrape every few seconds; neither hammers the store.
 */
export function cachedReader<T>(read: () => Promise<T>, ttlMs: number, clock: () => number = Date.now): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = clock();
    if (last && now - last.at < ttlMs) return last.value;
    const value = read();
    const entry = { at: now, value };
    last = entry;
    // A failed read is not kept: the next collection tries again.
    value.catch(() => {
      if (last === entry) last = undefined;
    });
    return value;
  };
}
