/**
 * What the reports show of the fleet sync and the resync queue: the summary's `fleetSync` and
 * `resyncNeeded`, and the device list's `resyncNeeded` filter and flag age, through the HTTP routes.
 */
import { useStore } from "../../shared/reports/getStore";
import type { Database } from "../../shared/store/Database";
import { syncFleetTwins } from "../../shared/sync/syncFleetTwins";
import { invokeComplianceApi } from "../reports/invokeComplianceApi";
import { testDatabases } from "../support/testDatabases";
import { clearSyncStore, createFleet, startSyncHub, syncDeps, type SyncHub } from "./syncSupport";

async function getJson(url: string): Promise<{ status: number; type: string | null; body: Record<string, unknown> }> {
  const response = await invokeComplianceApi("GET", url);
  return { status: response.status, type: response.headers.get("content-type"), body: (await response.json()) as Record<string, unknown> };
}

describe.each(testDatabases)("fleet sync in the reports on $name", ({ open }) => {
  let db: Database;
  let h: SyncHub;
  beforeAll(async () => {
    db = await open();
    useStore(db);
  });
  afterAll(async () => {
    useStore(undefined);
    await db?.close();
  });
  beforeEach(async () => {
    await clearSyncStore(db);
    h = await startSyncHub();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("reports no pass and an empty queue on a new store", async () => {
    const { body } = await getJson("/api/compliance/summary");
    expect(body.fleetSync).toEqual({ lastComplete: null, inProgress: null });
    expect(body.resyncNeeded).toEqual({ count: 0, oldestSince: null, oldestAgeSeconds: null });
  });

  it("reports the last complete pass and the one in progress", async () => {
    createFleet(h, 7, 2);
    const startedAt = h.clock.date().toISOString();
    await syncFleetTwins(syncDeps(db, h, { pageSize: 3 }), { startNew: true });
    const finishedAt = h.clock.date().toISOString();
    h.hub.registry.deleteDevice("dev-05");
    h.clock.advance(60_000);
    await syncFleetTwins(syncDeps(db, h, { pageSize: 3 }), { startNew: true });
    const secondEnd = h.clock.date().toISOString();
    h.clock.advance(60_000);
    await syncFleetTwins(syncDeps(db, h, { pageSize: 3, queriesPerMinute: 60, runBudgetMs: 500 }), { startNew: true });

    const { body } = await getJson("/api/compliance/summary");
    const sync = body.fleetSync as { lastComplete: Record<string, unknown>; inProgress: Record<string, unknown> };
    // Second pass: 6 devices (2 pages of 3) and 2 modules (1 page), dev-05 confirmed gone with getTwin.
    expect(sync.lastComplete).toEqual({
      id: 2,
      startedAt: new Date(Date.parse(finishedAt) + 60_000).toISOString(),
      finishedAt: secondEnd,
      phase: "done",
      runs: 1,
      twinsRead: 8,
      twinsChanged: 0,
      twinsRemoved: 1,
      twinsConfirmed: 0,
      queriesUsed: 3,
      errors: 0,
    });
    expect(startedAt < finishedAt).toBe(true);
    expect(sync.inProgress).toMatchObject({ id: 3, finishedAt: null, runs: 1 });
    expect(["devices", "modules", "confirm"]).toContain(sync.inProgress.phase);
  });

  it("counts flagged twins with the oldest flag's age, and filters the device list by the flag", async () => {
    createFleet(h, 5, 0);
    await syncFleetTwins(syncDeps(db, h), { startNew: true });
    const flaggedAt = "2026-01-01T07:00:00.000Z";
    await db.query("UPDATE twins SET resync_needed = true, updated_at = $1::timestamptz WHERE device_id = 'dev-03'", [flaggedAt]);
    await db.query("UPDATE twins SET resync_needed = true, updated_at = $1::timestamptz WHERE device_id = 'dev-01'", ["2026-01-01T07:30:00.000Z"]);

    const before = Date.now();
    const { body } = await getJson("/api/compliance/summary");
    const resync = body.resyncNeeded as { count: number; oldestSince: string; oldestAgeSeconds: number };
    expect({ count: resync.count, oldestSince: resync.oldestSince }).toEqual({ count: 2, oldestSince: flaggedAt });
    expect(Math.abs(resync.oldestAgeSeconds - (before - Date.parse(flaggedAt)) / 1000)).toBeLessThan(5);

    const flagged = await getJson("/api/compliance/devices?resyncNeeded=true");
    expect((flagged.body.items as Array<{ deviceId: string; resyncNeededSince: string | null }>).map((d) => [d.deviceId, d.resyncNeededSince])).toEqual([
      ["dev-01", "2026-01-01T07:30:00.000Z"],
      ["dev-03", flaggedAt],
    ]);
    const others = await getJson("/api/compliance/devices?resyncNeeded=false");
    expect((others.body.items as Array<{ deviceId: string; resyncNeededSince: string | null }>).map((d) => [d.deviceId, d.resyncNeededSince])).toEqual([
      ["dev-00", null],
      ["dev-02", null],
      ["dev-04", null],
    ]);
    const bad = await getJson("/api/compliance/devices?resyncNeeded=yes");
    expect(bad.status).toBe(400);
    expect(bad.type).toBe("application/problem+json");
    expect(bad.body["invalid-params"]).toEqual([{ name: "resyncNeeded", reason: "must be true or false" }]);
  });
});
