import { z } from "zod";
import type { Queryable } from "./Database";

/**
 * The report counters (report_state_deltas, 003_reports.sql): summed by the summary, equal to
 * count(*) of property_records by (path, state) and of devices by state. The SQL lives in
 * 006_report_counters.sql, where migrations call it too; each function is one statement, so one
 * transaction, and takes its lock inside.
 */

/** A key whose summed deltas differed from the tables. */
export interface CounterDrift {
  kind: "record" | "device";
  path: string;
  state: string;
  /** What the deltas summed to. */
  counted: number;
  /** count(*) in the table. */
  actual: number;
}

const driftRow = z.object({
  kind: z.enum(["record", "device"]),
  path: z.string(),
  state: z.string(),
  counted: z.coerce.number(),
  actual: z.coerce.number(),
});

/**
 * Recounts the counters from the tables, with property_records, devices and report_state_deltas
 * locked IN SHARE ROW EXCLUSIVE MODE (writers wait a moment; reads go on). Returns what differed
 * before: empty when the counters were right.
 */
export async function repairReportCounters(db: Queryable): Promise<CounterDrift[]> {
  const { rows } = await db.query("SELECT kind, path, state, counted, actual FROM repair_report_counters() ORDER BY kind, path, state");
  return z.array(driftRow).parse(rows);
}

/**
 * Folds report_state_deltas into one row per key, under a lock that waits for every writer with
 * uncommitted deltas and keeps new ones out while it runs (milliseconds), so no delta is lost or
 * folded twice. Returns the number of delta rows folded.
 */
export async function compactReportCounters(db: Queryable): Promise<number> {
  const { rows } = await db.query("SELECT compact_report_counters() AS n");
  return z.object({ n: z.coerce.number() }).parse(rows[0]).n;
}
