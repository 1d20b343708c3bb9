import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { parsePolicy, type Policy } from "../../shared/policy/Policy";
import { reconcileTwinChanges } from "../../shared/reconcile";
import type { Database, Queryable } from "../../shared/store/Database";
import { readFleetReport } from "../../shared/reports/readFleetReport";
import type { Twin } from "../../shared/twin/Twin";
import { FixtureTwin, SEED_POLICY, seedTutorialStream, telemetryEvent } from "../fixtures/twinEvents";
import { testDatabases, truncateAll } from "../support/testDatabases";

const seedPolicy = parsePolicy(SEED_POLICY);
const LATER = "2026-01-01T00:05:00.000Z";

async function run(db: Database, events: ReceivedEvent[], policy: Policy = seedPolicy, registry?: TwinRegistry) {
  const { messages, triggerMetadata } = await toTriggerInput(events);
  return reconcileTwinChanges(messages, triggerMetadata, { db, policy, registry, clock: () => new Date(LATER) });
}

/** What the report API (and replay) shows of the store at LATER. */
const fleetReport = (db: Queryable) => readFleetReport(db, { now: new Date(LATER) });

async function history(db: Queryable) {
  const rows = await db.query<{ device_id: string; path: string; from_state: string | null; to_state: string; cause: string }>(
    "SELECT device_id, path, from_state, to_state, cause FROM property_history ORDER BY id",
  );
  return rows.rows.map((r) => `${r.device_id} ${r.path}: ${r.from_state ?? "∅"}→${r.to_state} (${r.cause})`);
}

/**
 * Stands in for IoT Hub's twin registry behind the TwinRegistry port. Limits: serves whatever
 * FixtureTwin holds, counts calls, can be told to fail; no etags, throttling or network (the
 * emulator contract tests cover the real azure-iothub adapter).
 */
class FixtureRegistry implements TwinRegistry {
  calls = 0;
  failWith: Error | undefined;
  constructor(private twins: Map<string, FixtureTwin>) {}
  async getTwin(key: { deviceId: string }): Promise<Twin> {
    this.calls++;
    if (this.failWith) throw this.failWith;
    const twin = this.twins.get(key.deviceId);
    if (!twin) throw Object.assign(new Error("not found"), { name: "DeviceNotFoundError" });
    return twin.get();
  }
  async updateTwin(): Promise<Twin> {
    throw new Error("not used by reconcile");
  }
}

describe.each(testDatabases)("reconcileTwinChanges on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  beforeEach(async () => {
    await truncateAll(db);
  });
  afterAll(async () => {
    await db.close();
  });

  test("follows the seed tutorial's rollout to compliance, with every transition in history", async () => {
    const { events } = seedTutorialStream();
    const result = await run(db, events);
    expect(result).toMatchObject({ applied: 9, duplicates: 0, ignored: 0, deadLettered: 0, resyncs: 0 });
    const snapshot = await fleetReport(db);
    expect(snapshot.devices).toHaveLength(1);
    const device = snapshot.devices[0]!;
    expect(device).toMatchObject({ deviceId: "myDeviceId", moduleId: null, state: "compliant", resyncNeededSince: null });
    expect(device.properties.map((p) => [p.path, p.reportedPath, p.state, p.desired, p.reported])).toEqual([
      ["components.climate.maxTemperature", "maxTemperature", "compliant", "77", "77"],
      ["components.climate.minTemperature", "minTemperature", "compliant", "69", "69"],
      ["fanOn", "fanOn", "compliant", "false", "false"],
      ["patchId", "lastPatchReceivedId", "compliant", "Remove wifi", "Remove wifi"],
    ]);
    expect(await history(db)).toEqual([
      "myDeviceId components.climate.maxTemperature: ∅→pending (event)",
      "myDeviceId components.climate.minTemperature: ∅→pending (event)",
      "myDeviceId fanOn: ∅→pending (event)",
      "myDeviceId patchId: ∅→pending (event)",
      "myDeviceId components.climate.maxTemperature: pending→compliant (event)",
      "myDeviceId components.climate.minTemperature: pending→compliant (event)",
      "myDeviceId fanOn: pending→compliant (event)",
      "myDeviceId patchId: pending→compliant (event)",
      "myDeviceId components.wifi.channel: ∅→pending (event)",
      "myDeviceId components.wifi.ssid: ∅→pending (event)",
      "myDeviceId patchId: compliant→pending (event)",
      "myDeviceId patchId: pending→compliant (event)",
      "myDeviceId components.climate.maxTemperature: compliant→pending (event)",
      "myDeviceId components.climate.minTemperature: compliant→pending (event)",
      "myDeviceId patchId: compliant→pending (event)",
      "myDeviceId components.climate.maxTemperature: pending→compliant (event)",
      "myDeviceId components.climate.minTemperature: pending→compliant (event)",
      "myDeviceId patchId: pending→compliant (event)",
      "myDeviceId patchId: compliant→pending (event)",
      "myDeviceId components.wifi.channel: pending→removed (event)",
      "myDeviceId components.wifi.ssid: pending→removed (event)",
      "myDeviceId patchId: pending→compliant (event)",
    ]);
  });

  test("the same batch delivered again changes nothing", async () => {
    const { events } = seedTutorialStream();
    await run(db, events);
    const before = { snapshot: await fleetReport(db), history: await history(db) };
    const again = await run(db, events);
    expect(again).toMatchObject({ applied: 0, duplicates: 9, transitions: 0 });
    expect({ snapshot: await fleetReport(db), history: await history(db) }).toEqual(before);
  });

  test("a re-sent series inside one batch is applied once, in version order", async () => {
    const { events } = seedTutorialStream();
    const resent = [...events.slice(0, 5), ...events.slice(2, 5), ...events.slice(5)];
    const result = await run(db, resent);
    expect(result).toMatchObject({ applied: 9, duplicates: 3 });
    const clean = await testDatabases[0]!.open();
    try {
      await run(clean, events);
      expect(await history(db)).toEqual(await history(clean));
      // The devices and their records; the summary's time-to-compliance window also sees earlier tests' rows in db.
      expect((await fleetReport(db)).devices).toEqual((await fleetReport(clean)).devices);
    } finally {
      await clean.close();
    }
  });

  test("sees drift when compliance and the drift arrive in the same batch", async () => {
    const twin = new FixtureTwin("fan-1");
    const events = [twin.replace(), twin.tick(1000).setDesired({ fanOn: true }), twin.tick(1000).report({ fanOn: true }), twin.tick(1000).report({ fanOn: false })];
    await run(db, events, parsePolicy({}));
    expect(await history(db)).toEqual(["fan-1 fanOn: ∅→pending (event)", "fan-1 fanOn: pending→compliant (event)", "fan-1 fanOn: compliant→drifted (event)"]);
    expect((await fleetReport(db)).devices[0]?.state).toBe("drifted");
  });

  test("flags an unseen device resyncNeeded when no hub is configured, and applies its patch", async () => {
    const twin = new FixtureTwin("new-1");
    twin.setDesired({ fanOn: true });
    const result = await run(db, [twin.tick(1000).report({ fanOn: true })], parsePolicy({}));
    expect(result).toMatchObject({ applied: 1, resyncs: 0 });
    const snapshot = await fleetReport(db);
    expect(snapshot.devices[0]).toMatchObject({ deviceId: "new-1", resyncNeededSince: expect.any(String), properties: [] });
  });

  test("resyncs an unseen device from the hub once, then works from patches alone", async () => {
    const twin = new FixtureTwin("new-2");
    twin.setDesired({ fanOn: true, level: 3 });
    const registry = new FixtureRegistry(new Map([["new-2", twin]]));
    const first = twin.tick(1000).report({ fanOn: true });
    const result = await run(db, [first], parsePolicy({}), registry);
    expect(result).toMatchObject({ applied: 1, resyncs: 1, resyncFailures: 0 });
    const snapshot = await fleetReport(db);
    expect(snapshot.devices[0]).toMatchObject({ resyncNeededSince: null });
    expect(snapshot.devices[0]?.properties.map((p) => [p.path, p.state])).toEqual([
      ["fanOn", "compliant"],
      ["level", "pending"],
    ]);
    expect(await history(db)).toEqual(["new-2 fanOn: ∅→compliant (resync)", "new-2 level: ∅→pending (resync)"]);
    await run(db, [twin.tick(1000).report({ level: 3 })], parsePolicy({}), registry);
    expect(registry.calls).toBe(1);
    expect((await fleetReport(db)).devices[0]?.state).toBe("compliant");
  });

  test("resyncs when a section's $version skips ahead (a change never seen)", async () => {
    const twin = new FixtureTwin("gap-1");
    const registry = new FixtureRegistry(new Map([["gap-1", twin]]));
    await run(db, [twin.replace()], parsePolicy({}), registry);
    twin.tick(1000).setDesired({ a: 1 }); // lost
    const result = await run(db, [twin.tick(1000).setDesired({ b: 2 })], parsePolicy({}), registry);
    expect(result).toMatchObject({ resyncs: 1 });
    expect((await fleetReport(db)).devices[0]?.properties.map((p) => p.path)).toEqual(["a", "b"]);
  });

  test("a failed resync leaves the device flagged and the batch still commits", async () => {
    const twin = new FixtureTwin("new-3");
    const registry = new FixtureRegistry(new Map([["new-3", twin]]));
    registry.failWith = Object.assign(new Error("throttled"), { name: "ThrottlingError" });
    const result = await run(db, [twin.setDesired({ fanOn: true })], parsePolicy({}), registry);
    expect(result).toMatchObject({ applied: 1, resyncs: 1, resyncFailures: 1 });
    expect((await fleetReport(db)).devices[0]).toMatchObject({ resyncNeededSince: expect.any(String), properties: [expect.objectContaining({ path: "fanOn" })] });
  });

  test("keeps module twins apart from their device's twin", async () => {
    const device = new FixtureTwin("gw-1");
    const module = new FixtureTwin("gw-1", undefined, { moduleId: "modbus" });
    await run(db, [device.replace(), module.replace(), device.setDesired({ a: 1 }), module.setDesired({ b: 2 })], parsePolicy({}));
    const snapshot = await fleetReport(db);
    expect(snapshot.devices.map((d) => [d.deviceId, d.moduleId, d.properties.map((p) => p.path)])).toEqual([
      ["gw-1", null, ["a"]],
      ["gw-1", "modbus", ["b"]],
    ]);
  });

  test("writes bad events as dead letters with their reason and goes on; counts other sources as ignored", async () => {
    const { events } = seedTutorialStream();
    const broken = { ...events[1]!, body: "{oops" };
    const result = await run(db, [events[0]!, broken, telemetryEvent("myDeviceId"), ...events.slice(2)]);
    expect(result).toMatchObject({ deadLettered: 1, ignored: 1 });
    const letters = await db.query<{ reason: string; device_id: string; raw: { body: unknown } }>("SELECT reason, device_id, raw FROM dead_letters");
    expect(letters.rows).toEqual([{ reason: "body is not JSON", device_id: "myDeviceId", raw: expect.objectContaining({ body: "{oops" }) }]);
  });

  test("a store failure in the middle of a batch leaves nothing half-written, and the retried batch succeeds", async () => {
    const { events } = seedTutorialStream();
    let failAt = 3;
    const flaky: Database = {
      kind: db.kind,
      query: (sql, params) => db.query(sql, params),
      close: () => db.close(),
      transaction: (work) =>
        db.transaction((tx) =>
          work({
            query: (sql, params) => {
              if (--failAt === 0) return Promise.reject(new Error("connection terminated unexpectedly"));
              return tx.query(sql, params);
            },
          }),
        ),
    };
    const { messages, triggerMetadata } = await toTriggerInput(events);
    await expect(reconcileTwinChanges(messages, triggerMetadata, { db: flaky, policy: seedPolicy })).rejects.toThrow("connection terminated");
    for (const table of ["twins", "devices", "property_records", "property_history"]) {
      expect((await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n).toEqual(db.kind === "postgres" ? "0" : 0);
    }
    const retried = await reconcileTwinChanges(messages, triggerMetadata, { db: flaky, policy: seedPolicy });
    expect(retried).toMatchObject({ applied: 9 });
    expect((await fleetReport(db)).devices[0]?.state).toBe("compliant");
  });
});
