import { z } from "zod";
import { COMPLIANCE_STATES, emptyStateCounts, recordStateAt, worstState, type ComplianceState } from "../compliance/ComplianceState";
import { COMPARE_MODES } from "../policy/compareMode";
import type { Json } from "../twin/json";
import type { Queryable } from "./Database";

export interface SnapshotProperty {
  path: string;
  reportedPath: string;
  compare: string;
  state: ComplianceState;
  desired: Json;
  reported: Json | null;
  desiredVersion: number;
  desiredSince: string;
  stateSince: string;
}

export interface SnapshotDevice {
  deviceId: string;
  moduleId: string | null;
  state: ComplianceState;
  resyncNeeded: boolean;
  properties: SnapshotProperty[];
}

export interface Snapshot {
  devices: SnapshotDevice[];
  properties: number;
  byState: Record<ComplianceState, number>;
  deadLetters: number;
}

const time = z.coerce.date().transform((d) => d.toISOString());
const row = z.object({
  device_id: z.string(),
  module_id: z.string(),
  resync_needed: z.boolean(),
  path: z.string().nullable(),
  reported_path: z.string().nullable(),
  compare: z.enum(COMPARE_MODES).nullable(),
  state: z.enum(COMPLIANCE_STATES).nullable(),
  desired: z.custom<Json>(() => true).nullable(),
  reported: z.custom<Json>(() => true).nullable(),
  desired_version: z.coerce.number().nullable(),
  desired_since: time.nullable(),
  state_since: time.nullable(),
  stale_at: time.nullable(),
});

/**
 * Every device with its records, states taken at `now` (pending ages into stale), devices sorted by
 * id and properties by path — what `twin-reconciler replay` prints. Meant for replay-sized stores;
 * fleet-sized reports are paged by the report API.
 */
export async function readSnapshot(db: Queryable, now: string): Promise<Snapshot> {
  const result = await db.query(
    `SELECT d.device_id, d.module_id, d.resync_needed, p.path, p.reported_path, p.compare, p.state, p.desired, p.reported,
            p.desired_version, p.desired_since, p.state_since, p.stale_at
       FROM devices d LEFT JOIN property_records p ON p.device_id = d.device_id AND p.module_id = d.module_id
      ORDER BY d.device_id COLLATE "C", d.module_id COLLATE "C", p.path COLLATE "C"`,
  );
  const devices: SnapshotDevice[] = [];
  const byState = emptyStateCounts();
  let properties = 0;
  for (const raw of result.rows) {
    const r = row.parse(raw);
    const moduleId = r.module_id === "" ? null : r.module_id;
    let device = devices[devices.length - 1];
    if (!device || device.deviceId !== r.device_id || device.moduleId !== moduleId) {
      device = { deviceId: r.device_id, moduleId, state: "compliant", resyncNeeded: r.resync_needed, properties: [] };
      devices.push(device);
    }
    if (r.path === null || r.state === null) continue;
    const state = recordStateAt(r.state, r.stale_at ?? undefined, now);
    byState[state]++;
    properties++;
    device.properties.push({
      path: r.path,
      reportedPath: r.reported_path ?? r.path,
      compare: r.compare ?? "equals",
      state,
      desired: r.desired,
      reported: r.reported,
      desiredVersion: r.desired_version ?? 0,
      desiredSince: r.desired_since ?? "",
      stateSince: r.state_since ?? "",
    });
  }
  for (const device of devices) device.state = worstState(device.properties.map((p) => p.state));
  const dead = await db.query<{ n: unknown }>("SELECT count(*) AS n FROM dead_letters");
  return { devices, properties, byState, deadLetters: Number(dead.rows[0]?.n ?? 0) };
}
