import type { Queryable } from "../../shared/store/Database";
import type { ComplianceState } from "../../shared/reports/complianceStates";

export interface SeedRecord {
  path: string;
  state: ComplianceState;
  desired?: unknown;
  reported?: unknown;
  desiredVersion?: number;
  desiredSince?: string;
  stateSince?: string;
  /** Default: a day after desiredSince. */
  staleAt?: string;
}

export interface SeedDevice {
  deviceId: string;
  moduleId?: string;
  state: ComplianceState;
  stateSince?: string;
  staleAt?: string | null;
  tags?: Record<string, unknown>;
  records?: SeedRecord[];
}

export interface SeedHistory {
  deviceId: string;
  moduleId?: string;
  path: string;
  fromState: string | null;
  toState: string;
  at: string;
  desiredVersion?: number | null;
  cause?: string;
}

export const seedEpoch = "2026-11-20T00:00:00.000Z";

/** Writes devices and their property records straight into the tables the reconcile core fills. */
export async function seedDevices(db: Queryable, devices: SeedDevice[]): Promise<void> {
  for (const d of devices) {
    const counts: Record<string, number> = {};
    for (const r of d.records ?? []) counts[r.state] = (counts[r.state] ?? 0) + 1;
    await db.query(
      `INSERT INTO devices (device_id, module_id, state, state_since, stale_at, counts, tags, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $4)`,
      [d.deviceId, d.moduleId ?? "", d.state, d.stateSince ?? seedEpoch, d.staleAt ?? null, JSON.stringify(counts), JSON.stringify(d.tags ?? {})],
    );
    for (const r of d.records ?? []) {
      const desiredSince = r.desiredSince ?? seedEpoch;
      await db.query(
        `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired, reported,
                                       desired_version, desired_since, state_since, stale_at, updated_at)
         VALUES ($1, $2, $3, $3, 'equals', $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10, $9)`,
        [
          d.deviceId,
          d.moduleId ?? "",
          r.path,
          r.state,
          JSON.stringify(r.desired ?? null),
          r.reported === undefined ? null : JSON.stringify(r.reported),
          r.desiredVersion ?? 1,
          desiredSince,
          r.stateSince ?? desiredSince,
          r.staleAt ?? new Date(Date.parse(desiredSince) + 86400_000).toISOString(),
        ],
      );
    }
  }
}

export async function seedHistory(db: Queryable, entries: SeedHistory[]): Promise<void> {
  for (const h of entries) {
    await db.query(
      `INSERT INTO property_history (device_id, module_id, path, from_state, to_state, cause, at, desired_version)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [h.deviceId, h.moduleId ?? "", h.path, h.fromState, h.toState, h.cause ?? "event", h.at, h.desiredVersion ?? 1],
    );
  }
}
