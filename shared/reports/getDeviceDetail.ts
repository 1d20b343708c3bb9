import { z } from "zod";
import type { Queryable } from "../store/Database";
import { isoTime, isoTimeSql } from "../store/isoTime";
import { complianceStates, effectiveDeviceSinceSql, effectiveDeviceStateSql, type ComplianceState } from "./complianceStates";
import type { JsonValue } from "./jsonValue";
import { jsonValue } from "./jsonValue";
import { listPropertyRecords, type PropertyRecordView } from "./listPropertyRecords";

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
  state_since: isoTime,
  stale_at: isoTime.nullable(),
  tags: z.record(z.string(), jsonValue),
});
const historyRow = z.object({
  id: z.coerce.number(),
  path: z.string(),
  from_state: z.string().nullable(),
  to_state: z.string(),
  cause: z.string(),
  at: isoTime,
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
    `SELECT ${effectiveDeviceStateSql("d", "$3::timestamptz")} AS state, ${isoTimeSql(effectiveDeviceSinceSql("d", "$3::timestamptz"))} AS state_since,
            ${isoTimeSql("d.stale_at")} AS stale_at, d.tags
       FROM devices d WHERE d.device_id = $1 AND d.module_id = $2`,
    [...key, now],
  );
  if (device.rows.length === 0) return undefined;
  const d = deviceRow.parse(device.rows[0]);
  const records = (await listPropertyRecords(db, { deviceId, moduleId }, options)).map((r) => r.record);
  const history = z.array(historyRow).parse(
    (
      await db.query(
        `SELECT id, path, from_state, to_state, cause, ${isoTimeSql("at")} AS at, desired_version, desired, reported, detail
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
    stateSince: d.state_since,
    staleAt: d.stale_at,
    counts,
    tags: d.tags,
    properties: records,
    history: history.map((h) => ({
      id: h.id,
      path: h.path,
      fromState: h.from_state,
      toState: h.to_state,
      cause: h.cause,
      at: h.at,
      desiredVersion: h.desired_version,
      desired: h.desired,
      reported: h.reported,
      detail: h.detail,
    })),
  };
}
