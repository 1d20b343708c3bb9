import { z } from "zod";
import type { Queryable } from "../store/Database";
import { isoTime, isoTimeSql } from "../store/isoTime";
import {
  complianceStates,
  effectiveDeviceSinceSql,
  effectiveDeviceStateSql,
  effectiveRecordStateSql,
  type ComplianceState,
} from "./complianceStates";
import { encodeDeviceCursor } from "./deviceCursor";
import type { ReportFilters } from "./reportQuery";
import { deviceFilterSql, SqlParams, whereSql } from "./reportSql";

export interface DeviceListItem {
  deviceId: string;
  moduleId: string | null;
  state: ComplianceState;
  stateSince: string;
  /** Property records by state (only states present). */
  counts: Partial<Record<ComplianceState, number>>;
  /** When the twin was flagged for the resync queue (null: not flagged). */
  resyncNeededSince: string | null;
}

export interface DeviceList {
  items: DeviceListItem[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface ListDevicesOptions {
  limit?: number;
  /** An opaque cursor from a previous page (already validated by `parseDeviceCursor`). */
  after?: { deviceId: string; moduleId: string };
  /** Device id prefix (the dashboard's search box). */
  deviceIdPrefix?: string;
  /** Only twins flagged for the resync queue (true) or only twins not flagged (false). */
  resyncNeeded?: boolean;
  now?: Date;
}

const row = z.object({
  device_id: z.string(),
  module_id: z.string(),
  state: z.enum(complianceStates),
  state_since: isoTime,
  counts: z.partialRecord(z.enum(complianceStates), z.coerce.number()).nullable(),
  resync_since: isoTime.nullable(),
});

/**
 * One page of devices in (deviceId, moduleId) order. Keyset pagination: the cursor is the last key
 * returned, so devices written or removed meanwhile never shift a page (no duplicates, no gaps among
 * devices that exist throughout).
 */
export async function listDevices(db: Queryable, filters: ReportFilters, options: ListDevicesOptions = {}): Promise<DeviceList> {
  const limit = options.limit ?? 100;
  const params = new SqlParams();
  const nowSql = params.add((options.now ?? new Date()).toISOString(), "::timestamptz");
  const where = deviceFilterSql("d", filters, params, nowSql);
  if (options.after) where.push(`(d.device_id, d.module_id) > (${params.add(options.after.deviceId)}, ${params.add(options.after.moduleId)})`);
  if (options.deviceIdPrefix) where.push(`starts_with(d.device_id, ${params.add(options.deviceIdPrefix)})`);
  if (options.resyncNeeded !== undefined) where.push(`${options.resyncNeeded ? "" : "NOT "}coalesce(t.resync_needed, false)`);
  const { rows } = await db.query(
    `SELECT d.device_id, d.module_id, ${effectiveDeviceStateSql("d", nowSql)} AS state, ${isoTimeSql(effectiveDeviceSinceSql("d", nowSql))} AS state_since,
            (SELECT jsonb_object_agg(c.state, c.n)
               FROM (SELECT ${effectiveRecordStateSql("r", nowSql)} AS state, count(*) AS n
                       FROM property_records r
                      WHERE r.device_id = d.device_id AND r.module_id = d.module_id
                      GROUP BY 1) c) AS counts,
            ${isoTimeSql("CASE WHEN t.resync_needed THEN coalesce(t.resync_since, t.updated_at) END")} AS resync_since
       FROM devices d
       LEFT JOIN twins t ON t.device_id = d.device_id AND t.module_id = d.module_id
       ${whereSql(where)}
      ORDER BY d.device_id, d.module_id
      LIMIT ${params.add(limit + 1)}`,
    params.values,
  );
  const parsed = z.array(row).parse(rows);
  const page = parsed.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      deviceId: r.device_id,
      moduleId: r.module_id === "" ? null : r.module_id,
      state: r.state,
      stateSince: r.state_since,
      counts: r.counts ?? {},
      resyncNeededSince: r.resync_since,
    })),
    nextCursor: parsed.length > limit && last ? encodeDeviceCursor({ deviceId: last.device_id, moduleId: last.module_id }) : null,
  };
}


