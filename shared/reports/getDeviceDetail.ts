import { z } from "zod";
import type { Queryable } from "../store/Database";
import {
  complianceStates,
  effectiveDeviceSinceSql,
  effectiveDeviceStateSql,
  effectiveRecordSinceSql,
  effectiveRecordStateSql,
  type ComplianceState,
} from "./complianceStates";
import type { JsonValue } from "./jsonValue";
import { jsonValue } from "./jsonValue";

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

export interface HistoryEntry {
  id: number;
  path: string;
  fromState: string | null;
  /** A compliance state, or 'removed' when the desired property was deleted. */
  toState: string;
  cause: string;
  at: string;
  desiredVersion: number | null;
  desired: JsonValue;
  reported: JsonValue;
  detail: JsonValue;
}

export interface DeviceDetail {
  deviceId: string;
  moduleId: string | null;
  state: ComplianceState;
  stateSince: string;
  staleAt: string | null;
  counts: Partial<Record<ComplianceState, number>>;
  tags: { [key: string]: JsonValue };
  properties: PropertyRecordView[];
  /** The device's latest history entries over all its properties, newest first. */
  history: HistoryEntry[];
}

export const historyLimit = 100;

const deviceRow = z.object({
  state: z.enum(complianceStates),
  state_since: z.coerce.date(),
  stale_at: z.coerce.date().nullable(),
  tags: z.record(z.string(), jsonValue),
});
const recordRow = z.object({
  path: z.string(),
  reported_path: z.string(),
  compare: z.string(),
  state: z.enum(complianceStates),
  state_since: z.coerce.date(),
  desired: jsonValue,
  reported: jsonValue,
  desired_version: z.coerce.number(),
  desired_since: z.coerce.date(),
  stale_at: z.coerce.date(),
  attempts: z.coerce.number(),
  next_attempt_at: z.coerce.date().nullable(),
});
const historyRow = z.object({
  id: z.coerce.number(),
  path: z.string(),
  from_state: z.string().nullable(),
  to_state: z.string(),
  cause: z.string(),
  at: z.coerce.date(),
  desired_version: z.coerce.number().nullable(),
  desired: jsonValue,
  reported: jsonValue,
  detail: jsonValue,
});

/** One twin's compliance: its state, tags, every property record and its recent history; undefined when unknown. */
export async function getDeviceDetail(
  db: Queryable,
  deviceId: string,
  moduleId: string | null,
  options: { now?: Date } = {},
): Promise<DeviceDetail | undefined> {
  const now = (options.now ?? new Date()).toISOString();
  const key = [deviceId, moduleId ?? ""];
  const device = await db.query(
    `SELECT ${effectiveDeviceStateSql("d", "$3::timestamptz")} AS state, ${effectiveDeviceSinceSql("d", "$3::timestamptz")} AS state_since,
            d.stale_at, d.tags
       FROM devices d WHERE d.device_id = $1 AND d.module_id = $2`,
    [...key, now],
  );
  if (device.rows.length === 0) return undefined;
  const d = deviceRow.parse(device.rows[0]);
  const records = z.array(recordRow).parse(
    (
      await db.query(
        `SELECT r.path, r.reported_path, r.compare, ${effectiveRecordStateSql("r", "$3::timestamptz")} AS state,
                ${effectiveRecordSinceSql("r", "$3::timestamptz")} AS state_since, r.desired, r.reported, r.desired_version,
                r.desired_since, r.stale_at, r.attempts, r.next_attempt_at
           FROM property_records r WHERE r.device_id = $1 AND r.module_id = $2 ORDER BY r.path`,
        [...key, now],
      )
    ).rows,
  );
  const history = z.array(historyRow).parse(
    (
      await db.query(
        `SELECT id, path, from_state, to_state, cause, at, desired_version, desired, reported, detail
           FROM property_history WHERE device_id = $1 AND module_id = $2 ORDER BY id DESC LIMIT ${historyLimit}`,
        key,
      )
    ).rows,
  );
  const counts: Partial<Record<ComplianceState, number>> = {};
  for (const r of records) counts[r.state] = (counts[r.state] ?? 0) + 1;
  return {
    deviceId,
    moduleId,
    state: d.state,
    stateSince: d.state_since.toISOString(),
    staleAt: d.stale_at?.toISOString() ?? null,
    counts,
    tags: d.tags,
    properties: records.map((r) => ({
      path: r.path,
      reportedPath: r.reported_path,
      compare: r.compare,
      state: r.state,
      stateSince: r.state_since.toISOString(),
      desired: r.desired,
      reported: r.reported,
      desiredVersion: r.desired_version,
      desiredSince: r.desired_since.toISOString(),
      staleAt: r.stale_at.toISOString(),
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at?.toISOString() ?? null,
    })),
    history: history.map((h) => ({
      id: h.id,
      path: h.path,
      fromState: h.from_state,
      toState: h.to_state,
      cause: h.cause,
      at: h.at.toISOString(),
      desiredVersion: h.desired_version,
      desired: h.desired,
      reported: h.reported,
      detail: h.detail,
    })),
  };
}
