import { z } from "zod";
import type { Queryable } from "../store/Database";
import { readSyncPasses, resyncQueueStats, type SyncPass } from "../sync/fleetSyncStore";
import {
  complianceStates,
  effectiveDeviceStateSql,
  effectiveRecordStateSql,
  emptyStateCounts,
  type ComplianceState,
  type StateCounts,
} from "./complianceStates";
import type { ReportFilters } from "./reportQuery";
import { deviceFilterSql, recordFilterSql, SqlParams, tagFilterSql, whereSql } from "./reportSql";

export interface ComplianceSummary {
  generatedAt: string;
  /** Devices (and module twins) the filters select. */
  devices: number;
  /** Property records the filters select. */
  properties: number;
  /** Devices by their state. */
  byState: StateCounts;
  /** Property records by their state. */
  propertiesByState: StateCounts;
  byProperty: { path: string; total: number; byState: StateCounts }[];
  timeToCompliance: { sinceSeconds: number; count: number; p50: number | null; p95: number | null };
  /** The fleet sync: the last complete pass and the one in progress (whole store, whatever the filters). */
  fleetSync: { lastComplete: FleetSyncPassReport | null; inProgress: FleetSyncPassReport | null };
  /** Twins flagged for the resync queue (whole store, whatever the filters). */
  resyncNeeded: { count: number; oldestSince: string | null; oldestAgeSeconds: number | null };
}

export type FleetSyncPassReport = Omit<SyncPass, "continuation">;

export interface SummaryOptions {
  now?: Date;
  /** Look-back window of time-to-compliance, seconds (default 24h). */
  sinceSeconds?: number;
  /**
   * Without filters, read the counters 003_reports.sql maintains instead of counting every record
   * (default true; false = count live, the benchmark's baseline).
   */
  useCounters?: boolean;
}

type PathCount = { path: string; state: ComplianceState; n: number };

const countRow = z.object({ state: z.enum(complianceStates), n: z.coerce.number() });
const pathCountRow = countRow.extend({ path: z.string() });
const ttcRow = z.object({ count: z.coerce.number(), p50: z.coerce.number().nullable(), p95: z.coerce.number().nullable() });

/** Fleet compliance: devices and property records by state, by property, and time-to-compliance percentiles. */
export async function getComplianceSummary(db: Queryable, filters: ReportFilters, options: SummaryOptions = {}): Promise<ComplianceSummary> {
  const now = options.now ?? new Date();
  const sinceSeconds = options.sinceSeconds ?? 86400;
  const unfiltered = filters.tags.length === 0 && filters.state === undefined && filters.property === undefined;
  const { byState, byPath } =
    unfiltered && options.useCounters !== false
      ? await readCounters(db, now)
      : { byState: await countDevices(db, filters, now), byPath: await countRecords(db, filters, now) };
  const timeToCompliance = await timeToCompliancePercentiles(db, filters, now, sinceSeconds);
  const passes = await readSyncPasses(db);
  const resync = await resyncQueueStats(db);

  const propertiesByState = emptyStateCounts();
  const byProperty = new Map<string, StateCounts>();
  for (const row of byPath) {
    const counts = byProperty.get(row.path) ?? emptyStateCounts();
    counts[row.state] += row.n;
    propertiesByState[row.state] += row.n;
    byProperty.set(row.path, counts);
  }
  const sum = (c: StateCounts) => complianceStates.reduce((n, s) => n + c[s], 0);
  return {
    generatedAt: now.toISOString(),
    devices: sum(byState),
    properties: sum(propertiesByState),
    byState,
    propertiesByState,
    byProperty: [...byProperty.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([path, counts]) => ({ path, total: sum(counts), byState: counts })),
    timeToCompliance: { sinceSeconds, ...timeToCompliance },
    fleetSync: { lastComplete: passReport(passes.lastComplete), inProgress: passReport(passes.inProgress) },
    resyncNeeded: {
      ...resync,
      oldestAgeSeconds: resync.oldestSince === null ? null : Math.max(0, Math.round((now.getTime() - Date.parse(resync.oldestSince)) / 1000)),
    },
  };
}

function passReport(pass: SyncPass | null): FleetSyncPassReport | null {
  if (pass === null) return null;
  const { continuation: _continuation, ...report } = pass;
  return report;
}

async function countDevices(db: Queryable, filters: ReportFilters, now: Date): Promise<StateCounts> {
  const params = new SqlParams();
  const nowSql = params.add(now.toISOString(), "::timestamptz");
  const where = whereSql(deviceFilterSql("d", filters, params, nowSql));
  const { rows } = await db.query(
    `SELECT ${effectiveDeviceStateSql("d", nowSql)} AS state, count(*) AS n FROM devices d ${where} GROUP BY 1`,
    params.values,
  );
  const counts = emptyStateCounts();
  for (const row of z.array(countRow).parse(rows)) counts[row.state] += row.n;
  return counts;
}

const counterRow = z.object({
  src: z.enum(["count", "overdue"]),
  kind: z.enum(["record", "device"]),
  path: z.string().nullable(),
  path_key: z.string(),
  state: z.enum(complianceStates),
  n: z.coerce.number(),
});

/**
 * Stored-state counts from report_state_deltas, and — in the same snapshot — the pending records and
 * the devices whose stale_at has passed, which move to 'stale'. Overdue records are counted by
 * path_key (index-only: 004_integrity.sql keeps paths out of indexes) and named by the counters'
 * rows of the same key: a path with pending records has a pending count. Reads only: the retention
 * timer folds the deltas (compactReportCounters).
 */
async function readCounters(db: Queryable, now: Date): Promise<{ byState: StateCounts; byPath: PathCount[] }> {
  const { rows } = await db.query(
    `SELECT 'count' AS src, kind, path, md5(path) AS path_key, state, sum(n) AS n FROM report_state_deltas GROUP BY kind, path, state
     UNION ALL
     SELECT 'overdue', 'record', NULL, path_key, 'pending', count(*) FROM property_records
      WHERE state = 'pending' AND stale_at <= $1::timestamptz GROUP BY path_key
     UNION ALL
     SELECT 'overdue', 'device', '', '', state, count(*) FROM devices
      WHERE stale_at IS NOT NULL AND state IN ('compliant', 'pending', 'drifted') AND stale_at <= $1::timestamptz GROUP BY state`,
    [now.toISOString()],
  );
  const parsed = z.array(counterRow).parse(rows);
  const pathOf = new Map(parsed.filter((r) => r.src === "count" && r.kind === "record").map((r) => [r.path_key, r.path as string]));
  const missing = parsed.filter((r) => r.kind === "record" && r.path === null && !pathOf.has(r.path_key)).map((r) => r.path_key);
  if (missing.length > 0) {
    // Only if the counters lost a path (they are repaired elsewhere): name it from a record.
    const named = await db.query(
      "SELECT DISTINCT ON (path_key) path_key, path FROM property_records WHERE path_key IN (SELECT jsonb_array_elements_text($1::jsonb))",
      [JSON.stringify(missing)],
    );
    for (const row of z.array(z.object({ path_key: z.string(), path: z.string() })).parse(named.rows)) pathOf.set(row.path_key, row.path);
  }
  const byState = emptyStateCounts();
  const byKey = new Map<string, PathCount>();
  const add = (path: string, state: ComplianceState, n: number) => {
    const key = `${state}\u0000${path}`;
    const entry = byKey.get(key) ?? { path, state, n: 0 };
    entry.n += n;
    byKey.set(key, entry);
  };
  for (const row of parsed) {
    const moves: [ComplianceState, number][] = row.src === "count" ? [[row.state, row.n]] : [[row.state, -row.n], ["stale", row.n]];
    for (const [state, n] of moves) {
      if (row.kind === "device") byState[state] += n;
      else add(row.path ?? (pathOf.get(row.path_key) as string), state, n);
    }
  }
  return { byState, byPath: [...byKey.values()].filter((c) => c.n !== 0) };
}

async function countRecords(db: Queryable, filters: ReportFilters, now: Date): Promise<PathCount[]> {
  const params = new SqlParams();
  const nowSql = params.add(now.toISOString(), "::timestamptz");
  const join = filters.tags.length > 0 ? "JOIN devices d ON d.device_id = r.device_id AND d.module_id = r.module_id" : "";
  const where = whereSql(recordFilterSql("r", "d", filters, params, nowSql));
  const { rows } = await db.query(
    `SELECT r.path, ${effectiveRecordStateSql("r", nowSql)} AS state, count(*) AS n FROM property_records r ${join} ${where} GROUP BY 1, 2`,
    params.values,
  );
  return z.array(pathCountRow).parse(rows);
}

/**
 * Seconds from a desired change to compliance, over the transitions to 'compliant' in the window:
 * report_compliance_times (003_reports.sql) holds each one's duration, taken when it was written.
 */
async function timeToCompliancePercentiles(db: Queryable, filters: ReportFilters, now: Date, sinceSeconds: number) {
  const params = new SqlParams();
  const nowSql = params.add(now.toISOString(), "::timestamptz");
  const fromSql = params.add(new Date(now.getTime() - sinceSeconds * 1000).toISOString(), "::timestamptz");
  const where = [`t.at > ${fromSql}`, `t.at <= ${nowSql}`];
  if (filters.property !== undefined) where.push(`t.path_key = md5(${params.add(filters.property)})`);
  const join =
    filters.tags.length > 0
      ? `JOIN devices d ON d.device_id = t.device_id AND d.module_id = t.module_id AND ${filters.tags.map((tag) => tagFilterSql("d", tag, params)).join(" AND ")}`
      : "";
  const { rows } = await db.query(
    `SELECT count(*) AS count,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY t.seconds) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY t.seconds) AS p95
       FROM report_compliance_times t ${join}
      WHERE ${where.join(" AND ")}`,
    params.values,
  );
  const row = ttcRow.parse(rows[0]);
  // Millisecond precision: percentile_cont's float arithmetic differs in the last bits between builds.
  const round = (s: number | null) => (s === null ? null : Math.round(s * 1000) / 1000);
  return { count: row.count, p50: round(row.p50), p95: round(row.p95) };
}
