import type { Queryable } from "../store/Database";
import { getComplianceSummary, type ComplianceSummary } from "./getComplianceSummary";
import { listDevices, type DeviceListItem } from "./listDevices";
import { listPropertyRecords, type PropertyRecordView } from "./listPropertyRecords";

/** A twin as the device list shows it, with every one of its property records. */
export interface FleetDevice extends DeviceListItem {
  properties: PropertyRecordView[];
}

export interface FleetReport {
  summary: ComplianceSummary;
  /** Every twin, in the device list's (deviceId, moduleId) order. */
  devices: FleetDevice[];
}

const pageSize = 1000;

/**
 * The whole store through the report API's own reads: the unfiltered summary, every page of the
 * device list, and every property record — what `twin-reconciler replay` prints. Separate queries,
 * no snapshot over them: meant for a store nothing else writes meanwhile (replay, tests) and for
 * replay-sized stores; fleet-sized reports are paged by the report API.
 */
export async function readFleetReport(db: Queryable, options: { now?: Date } = {}): Promise<FleetReport> {
  const now = options.now ?? new Date();
  const summary = await getComplianceSummary(db, { tags: [] }, { now });
  const byTwin = new Map<string, PropertyRecordView[]>();
  for (const { deviceId, moduleId, record } of await listPropertyRecords(db, undefined, { now })) {
    const key = twinId(deviceId, moduleId);
    const records = byTwin.get(key) ?? [];
    records.push(record);
    byTwin.set(key, records);
  }
  const devices: FleetDevice[] = [];
  let after: { deviceId: string; moduleId: string } | undefined;
  for (;;) {
    const page = await listDevices(db, { tags: [] }, { now, limit: pageSize, ...(after ? { after } : {}) });
    for (const item of page.items) devices.push({ ...item, properties: byTwin.get(twinId(item.deviceId, item.moduleId)) ?? [] });
    const last = page.items.at(-1);
    if (page.nextCursor === null || !last) return { summary, devices };
    after = { deviceId: last.deviceId, moduleId: last.moduleId ?? "" };
  }
}

const twinId = (deviceId: string, moduleId: string | null): string => `${deviceId}\u0000${moduleId ?? ""}`;
