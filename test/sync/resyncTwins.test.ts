/**
 * The resync queue against the IoT Hub emulator through the official SDK, on PGlite and (with
 * DATABASE_URL) PostgreSQL, with one fake clock for the hub, the token bucket and the runs.
 */
import { HubRequestError } from "../../shared/hub/iothubTwinRegistry";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import type { Database } from "../../shared/store/Database";
import { resyncTwins, type ResyncDeps } from "../../shared/sync/resyncTwins";
import { syncFleetTwins } from "../../shared/sync/syncFleetTwins";
import type { TwinKey } from "../../shared/twin/Twin";
import { testDatabases } from "../support/testDatabases";
import { clearSyncStore, createFleet, expectedStates, sdkTwin, startSyncHub, storedStates, syncDeps, syncPolicy, type SyncHub } from "./syncSupport";

const SECOND = 1000;

/**
 * A hub that fails: the TwinRegistry port over the emulator-backed adapter, whose getTwin of the
 * devices in `failing` throws (a 503 named as azure-iothub names it) for as many calls as their
 * count, then reads through. Limits: only getTwin fails; the failure happens before any request
 * reaches the hub; updateTwin passes through untouched.
 */
function failingRegistry(inner: TwinRegistry, failing: Map<string, number>, name = "ServiceUnavailableError"): TwinRegistry {
  return {
    async getTwin(key: TwinKey, options) {
      const left = failing.get(key.deviceId) ?? 0;
      if (left > 0) {
        failing.set(key.deviceId, left - 1);
        throw new HubRequestError(name, `IoT Hub: get twin ${key.deviceId} failed: ${name}`, name === "ThrottlingError" ? 429 : 503, undefined);
      }
      return inner.getTwin(key, options);
    },
    updateTwin: (key, patch, etag, options) => inner.updateTwin(key, patch, etag, options),
  };
}

describe.each(testDatabases)("resyncTwins on $name", ({ open }) => {
  let db: Database;
  let h: SyncHub;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    await clearSyncStore(db);
    h = await startSyncHub();
    createFleet(h, 4, 0);
    await syncFleetTwins(syncDeps(db, h), { startNew: true });
  });
  afterEach(async () => {
    await h?.stop();
  });

  /** The event path missed a change of `deviceId` and flagged the twin (as a failed resync does). */
  async function missChange(deviceId: string, desired: Record<string, unknown>): Promise<void> {
    h.hub.registry.updateTwin(deviceId, { properties: { desired: desired as never } });
    await db.query("UPDATE twins SET resync_needed = true, updated_at = $2::timestamptz WHERE device_id = $1", [deviceId, h.clock.date().toISOString()]);
    await db.query("UPDATE devices SET resync_needed = true WHERE device_id = $1", [deviceId]);
  }

  const queueRow = async (deviceId: string) =>
    (
      await db.query<{ resync_needed: boolean; resync_attempts: number; resync_next_at: Date | null; resync_since: Date | null }>(
        "SELECT resync_needed, resync_attempts, resync_next_at, resync_since FROM twins WHERE device_id = $1",
        [deviceId],
      )
    ).rows[0];

  const deps = (registry: TwinRegistry = syncDeps(db, h).registry): ResyncDeps => ({
    db,
    policy: syncPolicy,
    registry,
    settings: { resyncBackoffBaseMs: 60 * SECOND, resyncBackoffCapMs: 240 * SECOND },
    clock: () => h.clock.date(),
    random: () => 0.5,
  });

  it("heals a flagged twin from the hub and clears the flag", async () => {
    await missChange("dev-01", { mode: "night" });
    expect(await queueRow("dev-01")).toMatchObject({ resync_needed: true, resync_attempts: 0 });

    expect(await resyncTwins(deps())).toEqual({ claimed: 1, healed: 1, removed: 0, failed: 0, leftDue: 0 });
    expect(await queueRow("dev-01")).toEqual({ resync_needed: false, resync_attempts: 0, resync_next_at: null, resync_since: null });
    expect((await storedStates(db))["dev-01"]).toEqual(expectedStates(await sdkTwin(h.sdk, "dev-01", null)));
    expect((await storedStates(db))["dev-01"]?.["mode"]).toBe("pending");
    // Nothing left in the queue.
    expect(await resyncTwins(deps())).toMatchObject({ claimed: 0 });
  });

  it("backs off a twin whose reads fail, doubling up to the cap, until the hub answers", async () => {
    await missChange("dev-02", { mode: "night" });
    const flaggedAt = h.clock.now();
    const registry = failingRegistry(syncDeps(db, h).registry, new Map([["dev-02", 4]]));
    // Base 1 min, cap 4 min, jitter fixed at the middle of [½, 1]: ¾ of 1, 2, 4, 4 minutes.
    const expectedDelays = [45, 90, 180, 180];
    let at = flaggedAt;
    for (const [i, delay] of expectedDelays.entries()) {
      h.clock.set(at);
      expect(await resyncTwins(deps(registry))).toMatchObject({ claimed: 1, failed: 1 });
      const row = await queueRow("dev-02");
      expect({ attempts: row?.resync_attempts, next: row?.resync_next_at?.getTime() }).toEqual({ attempts: i + 1, next: at + delay * SECOND });
      // Not due before its time.
      h.clock.set(at + delay * SECOND - 1);
      expect(await resyncTwins(deps(registry))).toMatchObject({ claimed: 0 });
      at += delay * SECOND;
    }
    // The flag's age shows in the meantime.
    expect((await queueRow("dev-02"))?.resync_since?.getTime()).toBe(flaggedAt);

    h.clock.set(at);
    expect(await resyncTwins(deps(registry))).toMatchObject({ claimed: 1, healed: 1 });
    expect(await queueRow("dev-02")).toEqual({ resync_needed: false, resync_attempts: 0, resync_next_at: null, resync_since: null });
    expect((await storedStates(db))["dev-02"]).toEqual(expectedStates(await sdkTwin(h.sdk, "dev-02", null)));
  });

  it("leaves the queue due when the hub throttles (429 is not the twin's failure)", async () => {
    await missChange("dev-01", { mode: "a" });
    await missChange("dev-03", { mode: "b" });
    const registry = failingRegistry(syncDeps(db, h).registry, new Map([["dev-01", 1]]), "ThrottlingError");
    expect(await resyncTwins(deps(registry))).toMatchObject({ claimed: 2, healed: 0, failed: 0, leftDue: 2 });
    expect(await queueRow("dev-01")).toMatchObject({ resync_needed: true, resync_attempts: 0 });
    expect(await resyncTwins(deps(registry))).toMatchObject({ claimed: 2, healed: 2 });
  });

  it("removes a flagged twin the hub no longer has, keeping its history (cause deleted)", async () => {
    await missChange("dev-03", { mode: "gone" });
    const before = (await db.query("SELECT count(*) AS n FROM property_history WHERE device_id = 'dev-03'")).rows[0] as { n: unknown };
    h.hub.registry.deleteDevice("dev-03");

    expect(await resyncTwins(deps())).toMatchObject({ claimed: 1, removed: 1 });
    for (const table of ["twins", "devices", "property_records"]) {
      expect((await db.query(`SELECT 1 FROM ${table} WHERE device_id = 'dev-03'`)).rows).toEqual([]);
    }
    const history = await db.query<{ path: string; to_state: string; cause: string }>(
      "SELECT path, to_state, cause FROM property_history WHERE device_id = 'dev-03' ORDER BY id",
    );
    expect(history.rows.length).toBe(Number(before.n) + 2);
    expect(history.rows.slice(-2)).toEqual([
      { path: "interval", to_state: "removed", cause: "deleted" },
      { path: "mode", to_state: "removed", cause: "deleted" },
    ]);
  });
});
