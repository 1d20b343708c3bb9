/**
 * The re-push timer against the local IoT Hub emulator through the real azure-iothub Registry
 * (HTTPS, SAS, the SDK's error translation), on PGlite, with one fake clock for the hub, the
 * token bucket and the timer.
 */
import { iothubTwinRegistry } from "../../shared/hub/iothubTwinRegistry";
import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { repushStaleDesired, type RepushDeps, type RepushSettings } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { startEmulator, type Emulator } from "../../local/emulator";
import { openTestPglite } from "../support/testDatabases";
import { clearStore, device, fakeClock, history, MINUTE, recordOf, seedFromHub, testPolicy, testSettings, type FakeClock } from "./repushSupport";

let db: Database;
let emulator: Emulator;
let clock: FakeClock;
let registry: TwinRegistry;

beforeAll(async () => {
  clock = fakeClock();
  [db, emulator] = await Promise.all([openTestPglite(), startEmulator({ clock, throttling: "off" })]);
  registry = iothubTwinRegistry(emulator.createRegistryClient());
});
afterAll(async () => {
  await emulator?.stop();
  await db?.close();
});
beforeEach(() => clearStore(db));

function run(settings: Partial<RepushSettings> = {}, extra: Partial<RepushDeps> = {}) {
  return repushStaleDesired({
    db,
    policy: testPolicy,
    registry: rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 100, burst: 10, clock })),
    settings: { ...testSettings, ...settings },
    clock: () => clock.date(),
    random: () => 0.5,
    concurrency: 1,
    ...extra,
  });
}

/** Devices with `desired` set now that never report (their desired notifications are lost). */
async function lossyDevices(ids: readonly string[], desired: Record<string, unknown> = { interval: 30 }): Promise<void> {
  for (const id of ids) {
    emulator.createDevice(id);
    emulator.updateDesired(id, desired as never);
  }
  await seedFromHub(db, registry, testPolicy, ids.map(device), clock.date().toISOString());
}

const desiredOf = (id: string) => (emulator.getTwin(id).properties as { desired: Record<string, unknown> }).desired;
const pushes = async (id: string) => (await history(db, id)).filter((h) => h.cause === "repush" && h.detail?.outcome === "pushed");

/** Moves the clock to the earliest time a record of `id` is due (its next attempt, else its stale time). */
async function advanceToDue(id: string): Promise<void> {
  const result = await db.query<{ due: Date | null }>(
    "SELECT min(coalesce(next_attempt_at, stale_at)) AS due FROM property_records WHERE device_id = $1",
    [id],
  );
  const due = result.rows[0]?.due;
  if (due) clock.set(Math.max(clock.now(), new Date(due).getTime()));
}

describe("repushStaleDesired against the IoT Hub emulator", () => {
  it("makes a lossy device compliant with one re-push", async () => {
    await lossyDevices(["lossy-1"]);
    clock.advance(11 * MINUTE);

    const first = await run();
    expect(first).toMatchObject({ claimed: 1, pushed: 1, accepted: 1, attempts: 1 });
    // the device gets the re-sent value this time and reports it
    emulator.updateReported("lossy-1", { interval: 30 });
    await advanceToDue("lossy-1");
    const second = await run();

    expect(second).toMatchObject({ claimed: 1, resolved: 1, pushed: 0 });
    expect(await recordOf(db, "lossy-1", "interval")).toMatchObject({ state: "compliant", attempts: 0, next_attempt_at: null });
    expect(await pushes("lossy-1")).toHaveLength(1);
    expect((await history(db, "lossy-1")).at(-1)).toMatchObject({ to_state: "compliant", cause: "resync" });
  });

  it("never overwrites a desired value an operator changed between our read and our write (412)", async () => {
    await lossyDevices(["operator-1"]);
    clock.advance(11 * MINUTE);
    const racing: TwinRegistry = {
      getTwin: (key, options) => registry.getTwin(key, options),
      updateTwin: (key, patch, etag, options) => {
        emulator.updateDesired(key.deviceId, { interval: 45 });
        return registry.updateTwin(key, patch, etag, options);
      },
    };

    const first = await run({}, { registry: racing });
    expect(first).toMatchObject({ etagMismatches: 1, attempts: 0, accepted: 0 });
    expect(desiredOf("operator-1").interval).toBe(45);
    expect((await history(db, "operator-1")).at(-1)).toMatchObject({ cause: "repush", detail: { outcome: "etagMismatch", attempt: null } });
    expect(await recordOf(db, "operator-1", "interval")).toMatchObject({ attempts: 0 });

    // the next run re-reads: desired is new (not stale yet), so nothing is sent
    clock.advance(MINUTE);
    const second = await run();
    expect(second).toMatchObject({ claimed: 1, pushed: 0 });
    expect(desiredOf("operator-1").interval).toBe(45);
    expect(await pushes("operator-1")).toHaveLength(0);
  });

  it("stops the run at the first 429, leaves the rest due and loses nothing", async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `throttled-${String(i).padStart(2, "0")}`);
    await lossyDevices(ids);
    clock.advance(11 * MINUTE);
    emulator.setThrottling("S1"); // 100 reads/s, 50 updates/s
    const bucket = new TokenBucket({ ratePerSecond: 100_000, burst: 100_000, clock }); // no real limit: the hub's quota is hit
    try {
      const first = await run({}, { registry: rateLimitedTwinRegistry(registry, bucket) });
      expect(first).toMatchObject({ claimed: 60, accepted: 50, throttled: true, leftDue: 10 });
      expect(bucket.currentRatePerSecond()).toBeLessThan(100_000);
      const leased = await db.query("SELECT count(*)::int AS n FROM devices WHERE repush_lease_owner IS NOT NULL");
      expect(leased.rows[0]).toEqual({ n: 0 });

      const second = await run({}, { registry: rateLimitedTwinRegistry(registry, bucket) });
      expect(second).toMatchObject({ claimed: 10, accepted: 10, throttled: false });
      for (const id of ids) expect(await pushes(id)).toHaveLength(1);
    } finally {
      emulator.setThrottling("off");
    }
  });

  it("removes a deleted device's records and keeps its history", async () => {
    await lossyDevices(["deleted-1"], { interval: 30, mode: "eco" });
    const before = (await history(db, "deleted-1")).length;
    emulator.deleteDevice("deleted-1");
    clock.advance(11 * MINUTE);

    expect(await run()).toMatchObject({ claimed: 1, deleted: 1, pushed: 0 });

    for (const table of ["property_records", "devices", "twins"]) {
      const rows = await db.query(`SELECT 1 FROM ${table} WHERE device_id = 'deleted-1'`);
      expect({ table, rows: rows.rows.length }).toEqual({ table, rows: 0 });
    }
    const rows = await history(db, "deleted-1");
    expect(rows).toHaveLength(before + 2);
    expect(rows.slice(before).map((r) => [r.path, r.from_state, r.to_state, r.cause])).toEqual([
      ["interval", "stale", "removed", "deleted"],
      ["mode", "stale", "removed", "deleted"],
    ]);
  });

  it("escalates a device that never complies after exactly the maximum attempts, backing off between them", async () => {
    await lossyDevices(["never-1"]);
    const versionBefore = desiredOf("never-1").$version as number;
    for (let i = 0; i < 8; i++) {
      await advanceToDue("never-1");
      await run({ maxAttempts: 5 });
    }

    const rows = (await history(db, "never-1")).filter((h) => h.cause === "repush");
    const pushed = rows.filter((r) => r.detail?.outcome === "pushed");
    expect(pushed.map((r) => r.detail?.attempt)).toEqual([1, 2, 3, 4, 5]);
    const gaps = pushed.slice(1).map((r, i) => (r.at.getTime() - pushed[i]!.at.getTime()) / MINUTE);
    expect(gaps).toEqual([1.5, 3, 6, 12]); // 2m base doubling, jitter 0.5 ⇒ ¾ of nominal
    const escalated = rows.filter((r) => r.to_state === "escalated");
    expect(escalated).toHaveLength(1);
    expect((escalated[0]!.at.getTime() - pushed[4]!.at.getTime()) / MINUTE).toBe(24);
    expect(await recordOf(db, "never-1", "interval")).toMatchObject({ state: "escalated", attempts: 5, next_attempt_at: null });
    const deviceRow = await db.query("SELECT state FROM devices WHERE device_id = 'never-1'");
    expect(deviceRow.rows[0]).toEqual({ state: "escalated" });
    expect(desiredOf("never-1").$version).toBe(versionBefore + 5); // five patches reached the hub, no more
  });
});
