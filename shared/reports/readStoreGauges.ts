import { z } from "zod";
import type { Queryable } from "../store/Database";
import type { StoreGauges } from "../telemetry/storeGauges";
import { getComplianceSummary } from "./getComplianceSummary";

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
