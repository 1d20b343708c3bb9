import { z } from "zod";
import type { Queryable } from "../store/Database";
import { isoTimeSql } from "../store/isoTime";
import { propertyRecordRow } from "../store/propertyRecordRow";
import type { TwinKey } from "../twin/Twin";
import { effectiveRecordSinceSql, effectiveRecordStateSql, type ComplianceState } from "./complianceStates";
import type { JsonValue } from "./jsonValue";

/** A property record as the reports show it: its state at the report's time (pending aged into stale). */
export interface PropertyRecordView {
  path: string;
  reportedPath: string;
  compare: string;
  state: ComplianceState;
  stateSince: string;
  desired: JsonValue;
  reported: JsonValue;
  desiredVersion: number;
  desiredSince: string;
  staleAt: string;
  attempts: number;
  nextAttemptAt: string | null;
}

/** A record with its twin's key. */
export interface KeyedPropertyRecordView {
  deviceId: string;
  moduleId: string | null;
  record: PropertyRecordView;
}

const viewRow = propertyRecordRow.omit({ repush_drift: true });

/**
 * The property records of one twin (`key`), or of every twin (`key` undefined), states taken at
 * `now`, in (deviceId, moduleId, path) order. Every twin's records in one query: meant for one twin
 * (the device detail) and replay-sized stores (the CLI); fleet-sized reports page with listDevices.
 */
export async function listPropertyRecords(
  db: Queryable,
  key: TwinKey | undefined,
  options: { now?: Date } = {},
): Promise<KeyedPropertyRecordView[]> {
  const now = (options.now ?? new Date()).toISOString();
  const where = key ? "WHERE r.device_id = $2 AND r.module_id = $3" : "";
  const { rows } = await db.query(
    `SELECT r.device_id, r.module_id, r.path, r.reported_path, r.compare, ${effectiveRecordStateSql("r", "$1::timestamptz")} AS state,
            ${isoTimeSql(effectiveRecordSinceSql("r", "$1::timestamptz"))} AS state_since, r.desired, r.reported, r.desired_version,
            ${isoTimeSql("r.desired_since")} AS desired_since, ${isoTimeSql("r.stale_at")} AS stale_at, r.attempts,
            ${isoTimeSql("r.next_attempt_at")} AS next_attempt_at
       FROM property_records r ${where}
      ORDER BY r.device_id, r.module_id, r.path`,
    key ? [now, key.deviceId, key.moduleId ?? ""] : [now],
  );
  return z.array(viewRow).parse(rows).map((r) => ({
    deviceId: r.device_id,
    moduleId: r.module_id === "" ? null : r.module_id,
    record: {
      path: r.path,
      reportedPath: r.reported_path,
      compare: r.compare,
      state: r.state,
      stateSince: r.state_since,
      desired: r.desired,
      reported: r.reported,
      desiredVersion: r.desired_version,
      desiredSince: r.desired_since,
      staleAt: r.stale_at,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
    },
  }));
}
