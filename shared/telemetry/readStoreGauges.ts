import { z } from "zod";
import { getComplianceSummary } from "../reports/getComplianceSummary";
import type { StateCounts } from "../reports/complianceStates";
import type { Queryable } from "../store/Database";

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
 * Reads the gauges: the unfiltered compliance summary (the counters of 003/006, not a count of every
 * record) and a count of dead letters. Callers cache it (storeGaugeReader): a collection never
 * queries more than once, and collections close together share one read.
 */
export async function readStoreGauges(db: Queryable, now: Date = new Date()): Promise<StoreGauges> {
  const summary = await getComplianceSummary(db, { tags: [] }, { now });
  const { rows } = await db.query("SELECT count(*) AS n FROM dead_letters");
  const deadLetters = z.object({ n: z.coerce.number() }).parse(rows[0]).n;
  const finished = summary.fleetSync.lastComplete?.finishedAt;
  return {
    propertyRecords: summary.propertiesByState,
    devices: summary.byState,
    deadLetters,
    resyncPending: summary.resyncNeeded.count,
    syncAgeSeconds: finished ? Math.max(0, (now.getTime() - Date.parse(finished)) / 1000) : null,
  };
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
