/**
 * Device lifecycle on the event path (issue #14): deleteDeviceIdentity removes a twin (history
 * kept), createDeviceIdentity starts a new twin under the id, in batch order with the twin-change
 * events; and without lifecycle events, a resync that reads a lower version than stored. Lifecycle
 * notifications are built here in IoT Hub's routed shape (Microsoft's non-telemetry event schema)
 * and go through the decoder with the twin-change events, as the trigger delivers them.
 */
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges, type ReconcileResult } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import type { Twin } from "../../shared/twin/Twin";
import { FixtureTwin } from "../fixtures/twinEvents";
import { testDatabases, truncateAll } from "../support/testDatabases";

const policy = parsePolicy({ staleAfter: "10m" });
const clock = () => new Date("2026-01-01T01:00:00.000Z");

/** An item of a batch: a twin-change event, or a lifecycle notification (of `twin`, for a create). */
type Item = ReceivedEvent | { lifecycle: "createDeviceIdentity" | "deleteDeviceIdentity"; deviceId: string; moduleId?: string; twin?: Twin; at: string };

/**
 * Numbers the items as one partition delivers them (sequence numbers from `first`) and reconciles
 * them as one batch through the trigger's input: twin-change events as they are, lifecycle ones as
 * IoT Hub routes them (application properties, `deviceLifecycleEvents` source, the twin as body).
 */
async function deliver(db: Database, items: Item[], first: number, registry?: TwinRegistry): Promise<ReconcileResult> {
  const received: ReceivedEvent[] = items.map((item, index) => {
    if (!("lifecycle" in item)) return { ...item, sequenceNumber: first + index, partitionId: "0" };
    const twin = item.twin ?? { deviceId: item.deviceId, moduleId: item.moduleId ?? null, version: 2, etag: "AAAAAAAAAAE=", tags: {}, desired: { $version: 1 }, reported: { $version: 1 } };
    return {
      body: {
        deviceId: item.deviceId,
        ...(item.moduleId === undefined ? {} : { moduleId: item.moduleId }),
        etag: twin.etag ?? "AAAAAAAAAAE=",
        version: twin.version,
        tags: twin.tags,
        properties: { desired: twin.desired, reported: twin.reported },
      },
      properties: {
        hubName: "contoso-hub",
        deviceId: item.deviceId,
        ...(item.moduleId === undefined ? {} : { moduleId: item.moduleId }),
        operationTimestamp: item.at,
        "iothub-message-schema": "deviceLifecycleNotification",
        opType: item.lifecycle,
      },
      systemProperties: {
        "iothub-connection-device-id": item.deviceId,
        ...(item.moduleId === undefined ? {} : { "iothub-connection-module-id": item.moduleId }),
        "iothub-enqueuedtime": item.at,
        "iothub-message-source": "deviceLifecycleEvents",
        "content-type": "application/json",
        "content-encoding": "utf-8",
        "user-id": "contoso-hub",
      },
      enqueuedTimeUtc: item.at,
      sequenceNumber: first + index,
      offset: String(first + index),
      partitionId: "0",
    };
  });
  const { messages, triggerMetadata } = await toTriggerInput(received);
  return reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock, ...(registry ? { registry } : {}) });
}

/** The issue's device: `mode` rolled out four times, the device complying each time — stored at v9. */
function oldDevice(deviceId: string, clockRef = { now: Date.parse("2026-01-01T00:00:00Z") }): { twin: FixtureTwin; events: ReceivedEvent[] } {
  const twin = new FixtureTwin(deviceId, clockRef);
  const events = [twin.replace()];
  for (let n = 1; n <= 4; n++) events.push(twin.tick(1000).setDesired({ mode: `old-${n}` }), twin.tick(1000).report({ mode: `old-${n}` }));
  return { twin, events };
}

/** The same id created again: a new twin, version 1, with nothing set. */
function newDevice(deviceId: string, clockRef: { now: number }): FixtureTwin {
  const twin = new FixtureTwin(deviceId, clockRef);
  twin.version = 1;
  return twin;
}

const at = (clockRef: { now: number }) => new Date(clockRef.now).toISOString();

describe.each(testDatabases)("device lifecycle on $name", ({ open }) => {
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

  const records = async (deviceId: string) =>
    (
      await db.query<{ module_id: string; path: string; state: string; desired: unknown }>(
        "SELECT module_id, path, state, desired FROM property_records WHERE device_id = $1 ORDER BY module_id, path",
        [deviceId],
      )
    ).rows;
  const history = async (deviceId: string) =>
    (
      await db.query<{ module_id: string; path: string; from_state: string | null; to_state: string; cause: string }>(
        "SELECT module_id, path, from_state, to_state, cause FROM property_history WHERE device_id = $1 ORDER BY id",
        [deviceId],
      )
    ).rows.map((h) => `${h.module_id ? `${h.module_id}:` : ""}${h.path} ${h.from_state ?? "∅"}→${h.to_state} (${h.cause})`);
  const rowsOf = async (table: string, deviceId: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE device_id = $1`, [deviceId])).rows[0]?.n;

  test("tracks a device deleted and created again in one batch: the new twin's desired value is applied, not a duplicate", async () => {
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const { events } = oldDevice("life-1", ref);
    await deliver(db, events, 0);
    expect(await records("life-1")).toEqual([{ module_id: "", path: "mode", state: "compliant", desired: "old-4" }]);

    const fresh = newDevice("life-1", ref);
    ref.now += 60_000;
    const batch: Item[] = [
      { lifecycle: "deleteDeviceIdentity", deviceId: "life-1", at: at(ref) },
      { lifecycle: "createDeviceIdentity", deviceId: "life-1", twin: { ...fresh.get(), moduleId: null }, at: at(ref) },
      fresh.tick(1000).setDesired({ mode: "new" }),
    ];
    const result = await deliver(db, batch, 100);

    expect(result).toMatchObject({ applied: 1, duplicates: 0, deleted: 1, created: 1, deadLettered: 0 });
    expect(await records("life-1")).toEqual([{ module_id: "", path: "mode", state: "pending", desired: "new" }]);
    expect((await history("life-1")).slice(-2)).toEqual(["mode compliant→removed (deleted)", "mode ∅→pending (event)"]);
    const twin = await db.query<{ version: string }>("SELECT version::text FROM twins WHERE device_id = 'life-1'");
    expect(twin.rows).toEqual([{ version: String(fresh.version) }]);
  });

  test("applies the old twin's events, the delete, the create and the new twin's events in batch order", async () => {
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const old = new FixtureTwin("life-2", ref);
    const first = [old.replace(), old.tick(1000).setDesired({ mode: "a" })];
    await deliver(db, first, 0);
    const late = old.tick(1000).report({ mode: "a" });
    ref.now += 1000;
    const fresh = newDevice("life-2", ref);
    const batch: Item[] = [
      late,
      { lifecycle: "deleteDeviceIdentity", deviceId: "life-2", at: at(ref) },
      { lifecycle: "createDeviceIdentity", deviceId: "life-2", twin: { ...fresh.get(), moduleId: null }, at: at(ref) },
      fresh.tick(1000).setDesired({ mode: "b" }),
    ];
    const result = await deliver(db, batch, 10);
    expect(result).toMatchObject({ applied: 2, deleted: 1, created: 1 });
    expect(await history("life-2")).toEqual(["mode ∅→pending (event)", "mode pending→compliant (event)", "mode compliant→removed (deleted)", "mode ∅→pending (event)"]);
    expect(await records("life-2")).toEqual([{ module_id: "", path: "mode", state: "pending", desired: "b" }]);
  });

  test("a re-delivered batch with a delete and a create changes nothing, and the deleted twin's events do not bring it back", async () => {
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const { events } = oldDevice("life-3", ref);
    ref.now += 60_000;
    const fresh = newDevice("life-3", ref);
    const batch: Item[] = [
      ...events,
      { lifecycle: "deleteDeviceIdentity", deviceId: "life-3", at: at(ref) },
      { lifecycle: "createDeviceIdentity", deviceId: "life-3", twin: { ...fresh.get(), moduleId: null }, at: at(ref) },
      fresh.tick(1000).setDesired({ mode: "new" }),
    ];
    await deliver(db, batch, 0);
    const before = { records: await records("life-3"), history: await history("life-3") };
    const again = await deliver(db, batch, 0);
    expect(again).toMatchObject({ applied: 0, transitions: 0, deleted: 0, created: 0 });
    expect({ records: await records("life-3"), history: await history("life-3") }).toEqual(before);
    // Just the old twin's events again (the stream replayed from an older checkpoint).
    await deliver(db, events, 0);
    expect({ records: await records("life-3"), history: await history("life-3") }).toEqual(before);
  });

  test("a delete removes records, device and twin rows (with its modules), keeps history, and is applied once", async () => {
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const device = new FixtureTwin("life-4", ref);
    const module = new FixtureTwin("life-4", ref, { moduleId: "m1" });
    await deliver(db, [device.replace(), module.replace(), device.tick(1000).setDesired({ a: 1 }), module.tick(1000).setDesired({ b: 2 })], 0);
    expect((await records("life-4")).map((r) => `${r.module_id}:${r.path}`)).toEqual([":a", "m1:b"]);
    ref.now += 1000;
    const result = await deliver(db, [{ lifecycle: "deleteDeviceIdentity", deviceId: "life-4", at: at(ref) }], 10);
    expect(result).toMatchObject({ deleted: 1 });
    expect(await records("life-4")).toEqual([]);
    expect(await rowsOf("twins", "life-4")).toBe(0);
    expect(await rowsOf("devices", "life-4")).toBe(0);
    expect((await history("life-4")).slice(-2)).toEqual(["a pending→removed (deleted)", "m1:b pending→removed (deleted)"]);
    const again = await deliver(db, [{ lifecycle: "deleteDeviceIdentity", deviceId: "life-4", at: at(ref) }], 10);
    expect(again).toMatchObject({ deleted: 0, duplicates: 1 });
  });

  test("a re-delivered device create in the batch keeps the records its modules' events of the same batch wrote", async () => {
    // Event Hubs re-delivers with new sequence numbers: the device's create arrives twice in a row
    // (the emulator's duplicate fault). The copy replaces the device twin only; the module (a twin
    // of its own, created after the device, with events in the same batch) keeps what they say.
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const device = newDevice("life-m", ref);
    const module = new FixtureTwin("life-m", ref, { moduleId: "agent" });
    module.version = 1;
    const create = { lifecycle: "createDeviceIdentity" as const, deviceId: "life-m", twin: { ...device.get(), moduleId: null }, at: at(ref) };
    ref.now += 1000;
    const batch: Item[] = [
      create,
      create,
      device.tick(1000).setDesired({ mode: "eco" }),
      { lifecycle: "createDeviceIdentity", deviceId: "life-m", moduleId: "agent", twin: { ...module.get(), moduleId: "agent" }, at: at(ref) },
      module.tick(1000).setDesired({ mode: "fast" }),
      module.tick(1000).report({ mode: "fast" }),
    ];
    await deliver(db, batch, 0);

    // Hand-written: the module reported what it was asked; the device was asked and has not reported.
    expect(await records("life-m")).toEqual([
      { module_id: "", path: "mode", state: "pending", desired: "eco" },
      { module_id: "agent", path: "mode", state: "compliant", desired: "fast" },
    ]);
    expect(await rowsOf("twins", "life-m")).toBe(2);
  });

  test("a create replaces a stored twin even when its delete never arrived", async () => {
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const { events } = oldDevice("life-5", ref);
    await deliver(db, events, 0);
    ref.now += 60_000;
    const fresh = newDevice("life-5", ref);
    fresh.desired = { mode: "from-create" };
    const result = await deliver(db, [{ lifecycle: "createDeviceIdentity", deviceId: "life-5", twin: { ...fresh.get(), moduleId: null }, at: at(ref) }], 50);
    expect(result).toMatchObject({ created: 1, deleted: 0 });
    expect(await records("life-5")).toEqual([{ module_id: "", path: "mode", state: "pending", desired: "from-create" }]);
    expect((await history("life-5")).slice(-2)).toEqual(["mode compliant→removed (deleted)", "mode ∅→pending (event)"]);
  });

  test("without lifecycle events, a resync that reads a lower version than stored starts the new twin", async () => {
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const { events } = oldDevice("life-6", ref);
    await deliver(db, events, 0);
    await db.query("UPDATE twins SET resync_needed = true WHERE device_id = 'life-6'"); // a gap it could not heal then
    ref.now += 60_000;
    const fresh = newDevice("life-6", ref);
    const event = fresh.tick(1000).setDesired({ mode: "new" });
    const registry: TwinRegistry = {
      getTwin: async () => fresh.get(),
      updateTwin: async () => {
        throw new Error("not used by reconcile");
      },
    };
    const { messages, triggerMetadata } = await toTriggerInput([{ ...event, sequenceNumber: 100 }]);
    const result = await reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock, registry });
    expect(result).toMatchObject({ resyncs: 1, recreated: 1 });
    expect(await records("life-6")).toEqual([{ module_id: "", path: "mode", state: "pending", desired: "new" }]);
    expect((await history("life-6")).slice(-2)).toEqual(["mode compliant→removed (deleted)", "mode ∅→pending (resync)"]);
    const twin = await db.query<{ version: string; resync_needed: boolean }>("SELECT version::text, resync_needed FROM twins WHERE device_id = 'life-6'");
    expect(twin.rows).toEqual([{ version: String(fresh.version), resync_needed: false }]);
  });

  test("gives the same result when the batch is written twin by twin because the store refused another twin", async () => {
    const build = (deviceId: string) => {
      const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
      const { events } = oldDevice(deviceId, ref);
      ref.now += 60_000;
      const fresh = newDevice(deviceId, ref);
      const poison = new FixtureTwin(`${deviceId}-poison`, ref).setDesired({ interval: 30 });
      ((poison.body as { properties: { desired: { $metadata: { interval: Record<string, unknown> } } } }).properties.desired.$metadata.interval).$lastUpdatedVersion = 1e20;
      const items: Item[] = [
        ...events,
        { lifecycle: "deleteDeviceIdentity", deviceId, at: at(ref) },
        poison,
        { lifecycle: "createDeviceIdentity", deviceId, twin: { ...fresh.get(), moduleId: null }, at: at(ref) },
        fresh.tick(1000).setDesired({ mode: "new" }),
      ];
      return { items, clean: items.filter((item) => item !== poison) };
    };
    const isolated = build("life-7");
    const result = await deliver(db, isolated.items, 0);
    expect(result).toMatchObject({ deleted: 1, created: 1, deadLettered: 1 });
    const clean = build("life-8");
    await deliver(db, clean.clean, 0);
    expect(await history("life-7")).toEqual(await history("life-8"));
    expect(await records("life-7")).toEqual(await records("life-8"));
    expect(await records("life-7")).toEqual([{ module_id: "", path: "mode", state: "pending", desired: "new" }]);
  });

  test("dead-letters a lifecycle event whose id the store cannot hold, and commits the rest", async () => {
    const ref = { now: Date.parse("2026-01-01T00:00:00Z") };
    const good = new FixtureTwin("life-9", ref);
    const result = await deliver(db, [{ lifecycle: "deleteDeviceIdentity", deviceId: "bad\u0000id", at: at(ref) }, good.replace(), good.tick(1000).setDesired({ a: 1 })], 0);
    expect(result).toMatchObject({ deadLettered: 1, applied: 2, deleted: 0 });
    expect(result.deadLetters[0]).toMatchObject({ index: 0, reason: expect.stringContaining("deviceId is not an IoT Hub id") });
    expect(await records("life-9")).toEqual([{ module_id: "", path: "a", state: "pending", desired: 1 }]);
  });
});
