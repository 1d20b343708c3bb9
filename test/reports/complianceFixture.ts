import type { Queryable } from "../../shared/store/Database";
import { seedDevices, seedHistory, type SeedDevice, type SeedHistory } from "./seedCompliance";

/**
 * A small fleet with one twin in every state, relative to `now`:
 * dev-a compliant · dev-b pending (not yet stale) · dev-c pending past stale_at (reported stale) ·
 * dev-d failed · dev-e/m1 escalated (a module twin) · dev-f drifted.
 */
export function complianceFleet(now: number): { devices: SeedDevice[]; history: SeedHistory[] } {
  const iso = (offsetSeconds: number) => new Date(now + offsetSeconds * 1000).toISOString();
  const changed = iso(-7200);
  const devices: SeedDevice[] = [
    {
      deviceId: "dev-a",
      state: "compliant",
      tags: { site: "berlin", floor: 3, env: { tier: "prod" } },
      records: [
        { path: "firmware.version", state: "compliant", desired: "2.1.0", reported: "2.1.0", desiredSince: changed },
        { path: "telemetry.interval", state: "compliant", desired: 30, reported: 30, desiredSince: changed },
      ],
    },
    {
      deviceId: "dev-b",
      state: "pending",
      staleAt: iso(3600),
      tags: { site: "berlin" },
      records: [
        { path: "firmware.version", state: "pending", desired: "2.1.0", reported: "2.0.0", desiredSince: changed, staleAt: iso(3600) },
        { path: "telemetry.interval", state: "compliant", desired: 30, reported: 30, desiredSince: changed },
      ],
    },
    {
      deviceId: "dev-c",
      state: "pending",
      stateSince: iso(-7000),
      staleAt: iso(-600),
      tags: { site: "paris" },
      records: [
        { path: "firmware.version", state: "pending", desired: "2.1.0", reported: "1.9.0", desiredSince: changed, staleAt: iso(-600) },
        { path: "telemetry.interval", state: "compliant", desired: 30, reported: 30, desiredSince: changed },
      ],
    },
    {
      deviceId: "dev-d",
      state: "failed",
      tags: { site: "paris", floor: "3" },
      records: [
        { path: "firmware.version", state: "failed", desired: { url: "https://x/fw,1.bin", note: 'say "hi"' }, reported: { status: "error" }, desiredSince: changed },
        { path: "telemetry.interval", state: "drifted", desired: 30, reported: "=1+2", desiredSince: changed },
      ],
    },
    {
      deviceId: "dev-e",
      moduleId: "m1",
      state: "escalated",
      tags: { site: "oslo" },
      records: [{ path: "firmware.version", state: "escalated", desired: "2.1.0", desiredSince: changed }],
    },
    {
      deviceId: "dev-f",
      state: "drifted",
      tags: {},
      records: [{ path: "telemetry.interval", state: "drifted", desired: 30, reported: 60, desiredSince: changed }],
    },
  ];
  const history: SeedHistory[] = [
    // Within the last 24h, still the current desired version: 60, 120, 180 and 240 seconds to comply.
    { deviceId: "dev-a", path: "firmware.version", fromState: "pending", toState: "compliant", at: iso(-7200 + 60) },
    { deviceId: "dev-a", path: "telemetry.interval", fromState: "pending", toState: "compliant", at: iso(-7200 + 120) },
    { deviceId: "dev-b", path: "telemetry.interval", fromState: "pending", toState: "compliant", at: iso(-7200 + 180) },
    { deviceId: "dev-c", path: "telemetry.interval", fromState: "pending", toState: "compliant", at: iso(-7200 + 240) },
    // Left out: older than the window; a desired version that has changed since.
    { deviceId: "dev-d", path: "telemetry.interval", fromState: "pending", toState: "compliant", at: iso(-3 * 86400) },
    { deviceId: "dev-b", path: "firmware.version", fromState: "pending", toState: "compliant", at: iso(-7300), desiredVersion: 0 },
    { deviceId: "dev-d", path: "firmware.version", fromState: "pending", toState: "failed", at: iso(-7000) },
    { deviceId: "dev-d", path: "telemetry.interval", fromState: "compliant", toState: "drifted", at: iso(-60) },
    { deviceId: "dev-d", path: "old.setting", fromState: "compliant", toState: "removed", at: iso(-30), cause: "deleted" },
  ];
  return { devices, history };
}

export async function seedComplianceFleet(db: Queryable, now: number): Promise<void> {
  const fleet = complianceFleet(now);
  await seedDevices(db, fleet.devices);
  await seedHistory(db, fleet.history);
}
