/**
 * The re-push timer, the resync queue and a fleet sync pass record their outcomes, token-bucket
 * waits and twins read — run for real against the IoT Hub emulator through the official SDK, with
 * scenarios whose outcomes are known by construction (a device gone, a desired value changed
 * between read and write) and hub calls counted by a wrapper of the test's own.
 */
import { iothubTwinRegistry } from "../../shared/hub/iothubTwinRegistry";
import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { repushStaleDesired } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { resyncTwins } from "../../shared/sync/resyncTwins";
import { syncFleetTwins } from "../../shared/sync/syncFleetTwins";
import { startTelemetry, stopTelemetry, type Telemetry } from "../../shared/telemetry/startTelemetry";
import { startEmulator, type Emulator } from "../../local/emulator";
import { clearStore, device, fakeClock, MINUTE, seedFromHub, testPolicy, testSettings, type FakeClock } from "../repush/repushSupport";
import { clearSyncStore, createFleet, startSyncHub, syncDeps, syncPolicy } from "../sync/syncSupport";
import { testDatabases } from "../support/testDatabases";
import { parsePrometheusText, sumOf, type Exposition } from "./prometheusText";

/** `inner` with every call counted (what reached the rate-limited registry's inner side). */
function counted(inner: TwinRegistry, calls: string[], onUpdate?: (deviceId: string) => void): TwinRegistry {
  return {
    getTwin: (key, options) => {
      calls.push(`get ${key.deviceId}`);
      return inner.getTwin(key, options);
    },
    updateTwin: (key, patch, etag, options) => {
      calls.push(`update ${key.deviceId}`);
      onUpdate?.(key.deviceId);
      return inner.updateTwin(key, patch, etag, options);
    },
  };
}

describe.each(testDatabases)("recorded runs on $name", ({ open }) => {
  let db: Database;
  let telemetry: Telemetry;
  const scrape = async (): Promise<Exposition> => parsePrometheusText((await telemetry.prometheusText()) as string);
  const delta = (after: Exposition, before: Exposition, name: string, labels: Record<string, string> = {}) => sumOf(after, name, labels) - sumOf(before, name, labels);

  beforeAll(async () => {
    db = await open();
    telemetry = startTelemetry({});
  });
  afterAll(async () => {
    await stopTelemetry();
    await db?.close();
  });

  describe("re-push", () => {
    let emulator: Emulator;
    let clock: FakeClock;
    beforeAll(async () => {
      clock = fakeClock();
      emulator = await startEmulator({ clock, throttling: "off" });
    });
    afterAll(async () => {
      await emulator?.stop();
    });

    it("counts devices pushed, gone (404) and overtaken (412), and one token wait per hub call", async () => {
      await clearStore(db);
      const registry = iothubTwinRegistry(emulator.createRegistryClient());
      // Devices that never report: stale after 10 minutes, then due for a re-push.
      for (const id of ["lossy-1", "lossy-2", "gone-1", "raced-1"]) {
        emulator.createDevice(id);
        emulator.updateDesired(id, { interval: 30 });
      }
      await seedFromHub(db, registry, testPolicy, ["lossy-1", "lossy-2", "gone-1", "raced-1"].map(device), clock.date().toISOString());
      emulator.deleteDevice("gone-1");
      clock.advance(11 * MINUTE);
      const calls: string[] = [];
      // An operator changes raced-1's desired value between the run's read and its write: 412.
      const hub = counted(registry, calls, (id) => (id === "raced-1" ? void emulator.updateDesired(id, { interval: 45 }) : undefined));

      const before = await scrape();
      await repushStaleDesired({
        db,
        policy: testPolicy,
        registry: rateLimitedTwinRegistry(hub, new TokenBucket({ ratePerSecond: 100, burst: 10, clock })),
        settings: testSettings,
        clock: () => clock.date(),
        random: () => 0.5,
        concurrency: 1,
      });
      const after = await scrape();

      const repushes = (outcome: string) => delta(after, before, "twin_reconciler_repushes_total", { outcome });
      expect({ pushed: repushes("pushed"), notFound: repushes("not_found"), preconditionFailed: repushes("precondition_failed"), resolved: repushes("resolved") }).toEqual({
        pushed: 2,
        notFound: 1,
        preconditionFailed: 1,
        resolved: 0,
      });
      // 4 reads, 3 writes (lossy-1, lossy-2, raced-1): each took one token.
      expect(calls).toHaveLength(7);
      expect(delta(after, before, "twin_reconciler_hub_token_wait_count", { bucket: "twin_ops" })).toBe(calls.length);
    });
  });

  describe("fleet sync and resync queue", () => {
    it("counts the twins a sync pass read, its queries' token waits, and resyncs by outcome", async () => {
      await clearSyncStore(db);
      const h = await startSyncHub();
      try {
        createFleet(h, 7, 0);
        const before = await scrape();
        const queriesBefore = h.calls.filter((c) => c.op === "query").length;
        await syncFleetTwins(syncDeps(db, h, { pageSize: 3 }), { startNew: true });
        const synced = await scrape();
        expect(delta(synced, before, "twin_reconciler_sync_twins_total")).toBe(7);
        expect(delta(synced, before, "twin_reconciler_hub_token_wait_count", { bucket: "queries" })).toBe(h.calls.filter((c) => c.op === "query").length - queriesBefore);

        // Two twins flagged for the resync queue; one of them is gone from the hub (404: removed, which the resync did).
        await db.query("UPDATE twins SET resync_needed = true, resync_since = $1::timestamptz WHERE device_id IN ('dev-01', 'dev-02')", [h.clock.date().toISOString()]);
        h.hub.registry.deleteDevice("dev-02");
        const failing: TwinRegistry = {
          getTwin: () => Promise.reject(Object.assign(new Error("IoT Hub: service unavailable"), { name: "ServiceUnavailableError" })),
          updateTwin: () => Promise.reject(new Error("not used")),
        };
        await db.query("UPDATE twins SET resync_needed = true, resync_since = $1::timestamptz WHERE device_id = 'dev-03'", [h.clock.date().toISOString()]);
        const reads: string[] = [];
        const registry = counted(h.registry, reads);
        await resyncTwins({
          db,
          policy: syncPolicy,
          registry: rateLimitedTwinRegistry({ getTwin: (key, o) => (key.deviceId === "dev-03" ? failing.getTwin(key, o) : registry.getTwin(key, o)), updateTwin: registry.updateTwin }, new TokenBucket({ ratePerSecond: 100, burst: 10, clock: h.clock })),
          settings: { resyncBackoffBaseMs: 60_000, resyncBackoffCapMs: 240_000 },
          clock: () => h.clock.date(),
          random: () => 0.5,
        });
        const resynced = await scrape();
        expect({
          succeeded: delta(resynced, synced, "twin_reconciler_resyncs_total", { outcome: "succeeded" }),
          failed: delta(resynced, synced, "twin_reconciler_resyncs_total", { outcome: "failed" }),
        }).toEqual({ succeeded: 2, failed: 1 });
        expect(delta(resynced, synced, "twin_reconciler_hub_token_wait_count", { bucket: "twin_ops" })).toBe(3);
      } finally {
        await h.stop();
      }
    });
  });
});
