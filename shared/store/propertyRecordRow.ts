import { z } from "zod";
import { COMPLIANCE_STATES } from "../compliance/ComplianceState";
import { COMPARE_MODES } from "../policy/compareMode";
import type { Json } from "../twin/json";
import { isoTime } from "./isoTime";

const json = z.custom<Json>(() => true);

/**
 * A property_records row as read back (001_initial.sql): the one schema of the table's columns.
 * Readers select the columns they need and parse with `propertyRecordRow.pick(...)`; times are
 * selected through `isoTimeSql`. A report that selects a record's state at a time (pending aged into
 * stale) names it `state` / `state_since`, as the stored ones: the same shape.
 */
export const propertyRecordRow = z.object({
  device_id: z.string(),
  module_id: z.string(),
  path: z.string(),
  reported_path: z.string(),
  // Rules with compare "ignore" make no record (resolveProperties).
  compare: z.enum(COMPARE_MODES).exclude(["ignore"]),
  state: z.enum(COMPLIANCE_STATES),
  desired: json,
  reported: json.nullable(),
  desired_version: z.coerce.number(),
  desired_since: isoTime,
  state_since: isoTime,
  stale_at: isoTime,
  repush_drift: z.boolean(),
  attempts: z.coerce.number().int(),
  next_attempt_at: isoTime.nullable(),
});

export type PropertyRecordRow = z.infer<typeof propertyRecordRow>;
