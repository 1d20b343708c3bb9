import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { startEmulator } from "../../local/emulator";
import { createManualClock } from "../../local/emulator/Clock";
import { IotHub } from "../../local/emulator/IotHub";

// Expected shapes are written by hand from Microsoft's non-telemetry event schema (the module
// creation example: application properties hubName, deviceId, operationTimestamp, moduleId, opType
// createDeviceIdentity, iothub-message-schema deviceLifecycleNotification; annotations
// iothub-connection-device-id, iothub-connection-module-id, iothub-enqueuedtime,
// iothub-message-source deviceLifecycleEvents; payload deviceId, moduleId, etag "AAAAAAAAAAE=",
// version 2, desired and reported each {$metadata: {$lastUpdated}, $version: 1}).

const at = Date.UTC(2026, 0, 1, 12, 0, 0, 250);
const hubTime = "2026-01-01T12:00:00.2500000Z";
const isoTime = "2026-01-01T12:00:00.250Z";

function hub(routeLifecycleEvents?: boolean) {
  const clock = createManualClock(at);
  return {
    clock,
    hub: new IotHub({ clock, hubName: "contoso-routing-hub", partitionCount: 2, ...(routeLifecycleEvents === undefined ? {} : { routeLifecycleEvents }) }),
  };
}

function eventsOf(h: IotHub, deviceId: string): ReceivedEvent[] {
  return h.events.read(h.events.partitionOf(deviceId), 0, 10_000).filter((e) => e.properties.deviceId === deviceId);
}

const freshSections = {
  desired: { $metadata: { $lastUpdated: hubTime }, $version: 1 },
  reported: { $metadata: { $lastUpdated: hubTime }, $version: 1 },
};

test("creating a device routes createDeviceIdentity with IoT Hub's properties and the new twin as body", () => {
  const { hub: h } = hub();
  h.registry.createDevice("contoso-device-1");
  const [event, ...rest] = eventsOf(h, "contoso-device-1");
  expect(rest).toEqual([]);
  expect(event!.properties).toEqual({
    hubName: "contoso-routing-hub",
    deviceId: "contoso-device-1",
    operationTimestamp: hubTime,
    "iothub-message-schema": "deviceLifecycleNotification",
    opType: "createDeviceIdentity",
  });
  expect(event!.systemProperties).toEqual({
    "iothub-connection-device-id": "contoso-device-1",
    "iothub-enqueuedtime": isoTime,
    "iothub-message-source": "deviceLifecycleEvents",
    "content-type": "application/json",
    "content-encoding": "utf-8",
    "correlation-id": expect.any(String),
    "user-id": "contoso-routing-hub",
    "x-opt-sequence-number": 0,
    "x-opt-offset": "0",
    "x-opt-enqueued-time": isoTime,
  });
  expect(event!.body).toEqual({ deviceId: "contoso-device-1", etag: "AAAAAAAAAAE=", version: 2, properties: freshSections });
});

test("creating a module routes createDeviceIdentity with moduleId and iothub-connection-module-id", () => {
  const { hub: h } = hub();
  h.registry.createDevice("contoso-device-2");
  h.registry.createModule("contoso-device-2", "module-1");
  const event = eventsOf(h, "contoso-device-2")[1]!;
  expect(event.properties).toEqual({
    hubName: "contoso-routing-hub",
    deviceId: "contoso-device-2",
    moduleId: "module-1",
    operationTimestamp: hubTime,
    "iothub-message-schema": "deviceLifecycleNotification",
    opType: "createDeviceIdentity",
  });
  expect(event.systemProperties).toMatchObject({
    "iothub-connection-device-id": "contoso-device-2",
    "iothub-connection-module-id": "module-1",
    "iothub-message-source": "deviceLifecycleEvents",
  });
  expect(event.body).toEqual({ deviceId: "contoso-device-2", moduleId: "module-1", etag: "AAAAAAAAAAE=", version: 2, properties: freshSections });
});

test("deleting a device routes deleteDeviceIdentity carrying the twin as it was", () => {
  const { hub: h, clock } = hub();
  h.registry.createDevice("d-del");
  clock.advance(1000);
  h.registry.updateTwin("d-del", { tags: { site: "north" }, properties: { desired: { mode: "eco" } } });
  h.registry.updateReported("d-del", { mode: "eco" });
  clock.advance(1000);
  h.registry.deleteDevice("d-del");
  const events = eventsOf(h, "d-del");
  expect(events.map((e) => e.properties.opType)).toEqual(["createDeviceIdentity", "updateTwin", "updateTwin", "deleteDeviceIdentity"]);
  const deleted = events[3]!;
  expect(deleted.properties).toMatchObject({ opType: "deleteDeviceIdentity", operationTimestamp: "2026-01-01T12:00:02.2500000Z" });
  expect(deleted.properties).not.toHaveProperty("moduleId");
  const changed = "2026-01-01T12:00:01.2500000Z";
  expect(deleted.body).toEqual({
    deviceId: "d-del",
    etag: "AAAAAAAAAAM=",
    version: 4,
    tags: { site: "north" },
    properties: {
      desired: {
        mode: "eco",
        $metadata: { $lastUpdated: changed, $lastUpdatedVersion: 2, mode: { $lastUpdated: changed, $lastUpdatedVersion: 2 } },
        $version: 2,
      },
      reported: { mode: "eco", $metadata: { $lastUpdated: changed, mode: { $lastUpdated: changed } }, $version: 2 },
    },
  });
});

test("deleting a device with modules routes only the device's deleteDeviceIdentity", () => {
  const { hub: h } = hub();
  h.registry.createDevice("d-mods");
  h.registry.createModule("d-mods", "m1");
  h.registry.createModule("d-mods", "m2");
  h.registry.deleteDevice("d-mods");
  const lifecycle = eventsOf(h, "d-mods").map((e) => [e.properties.opType, e.properties.moduleId ?? null]);
  expect(lifecycle).toEqual([
    ["createDeviceIdentity", null],
    ["createDeviceIdentity", "m1"],
    ["createDeviceIdentity", "m2"],
    ["deleteDeviceIdentity", null],
  ]);
  expect(h.registry.hasDevice({ deviceId: "d-mods", moduleId: "m1" })).toBe(false);
});

test("deleting a module routes deleteDeviceIdentity with its moduleId", () => {
  const { hub: h } = hub();
  h.registry.createDevice("d-m");
  h.registry.createModule("d-m", "m1");
  h.registry.deleteDevice({ deviceId: "d-m", moduleId: "m1" });
  const last = eventsOf(h, "d-m").pop()!;
  expect(last.properties).toMatchObject({ opType: "deleteDeviceIdentity", moduleId: "m1" });
  expect(last.systemProperties).toMatchObject({ "iothub-connection-module-id": "m1", "iothub-message-source": "deviceLifecycleEvents" });
  expect(last.body).toMatchObject({ deviceId: "d-m", moduleId: "m1", version: 2 });
});

test("a device deleted and created again starts a new twin at version 2; its events keep their order in one partition", () => {
  const { hub: h } = hub();
  h.registry.createDevice("d-again");
  for (let i = 0; i < 5; i++) h.registry.updateTwin("d-again", { properties: { desired: { mode: `old-${i}` } } });
  h.registry.deleteDevice("d-again");
  h.registry.createDevice("d-again");
  h.registry.updateTwin("d-again", { properties: { desired: { mode: "new" } } });
  const events = eventsOf(h, "d-again");
  expect(events.map((e) => [e.properties.opType, (e.body as { version: number }).version])).toEqual([
    ["createDeviceIdentity", 2],
    ["updateTwin", 3],
    ["updateTwin", 4],
    ["updateTwin", 5],
    ["updateTwin", 6],
    ["updateTwin", 7],
    ["deleteDeviceIdentity", 7],
    ["createDeviceIdentity", 2],
    ["updateTwin", 3],
  ]);
  const sequence = events.map((e) => e.sequenceNumber);
  expect(sequence).toEqual([...sequence].sort((a, b) => a - b));
  expect(new Set(events.map((e) => e.partitionId)).size).toBe(1);
  expect(h.registry.getTwin("d-again")).toMatchObject({ version: 3, properties: { desired: { mode: "new", $version: 2 } } });
});

test("coalescing never merges a deleted twin's change into the new twin's, even without the lifecycle route", () => {
  const clock = createManualClock(at);
  const h = new IotHub({ clock, partitionCount: 1, routeLifecycleEvents: false, faults: { coalesceProbability: 1 } });
  h.registry.createDevice("d-co");
  h.registry.updateTwin("d-co", { properties: { desired: { a: 1 } } });
  h.registry.deleteDevice("d-co");
  h.registry.createDevice("d-co");
  h.registry.updateTwin("d-co", { properties: { desired: { b: 2 } } });
  const bodies = h.events.read("0", 0, 10).map((e) => e.body as { version: number; properties: { desired: Record<string, unknown> } });
  expect(bodies.map((b) => [b.version, Object.keys(b.properties.desired).filter((k) => !k.startsWith("$"))])).toEqual([
    [3, ["a"]],
    [3, ["b"]],
  ]);
});

test("with routeLifecycleEvents false, only twin changes are routed", () => {
  const { hub: h } = hub(false);
  h.registry.createDevice("d-off");
  h.registry.updateTwin("d-off", { properties: { desired: { a: 1 } } });
  h.registry.deleteDevice("d-off");
  expect(eventsOf(h, "d-off").map((e) => e.properties.opType)).toEqual(["updateTwin"]);
  expect(h.events.counters).toMatchObject({ emitted: 1, lifecycle: 0 });
});

test("devices created and deleted through the azure-iothub Registry over HTTPS route lifecycle events", async () => {
  const emulator = await startEmulator({ throttling: "off" });
  try {
    const registry = emulator.createRegistryClient();
    await registry.create({ deviceId: "svc-life" });
    await registry.addModule({ deviceId: "svc-life", moduleId: "m1" });
    await registry.delete("svc-life");
    const events = emulator.events.read(emulator.events.partitionOf("svc-life"), 0, 100).filter((e) => e.properties.deviceId === "svc-life");
    expect(events.map((e) => [e.properties.opType, e.properties.moduleId ?? null, e.systemProperties["iothub-message-source"]])).toEqual([
      ["createDeviceIdentity", null, "deviceLifecycleEvents"],
      ["createDeviceIdentity", "m1", "deviceLifecycleEvents"],
      ["deleteDeviceIdentity", null, "deviceLifecycleEvents"],
    ]);
    expect(emulator.counters.events).toMatchObject({ emitted: 3, lifecycle: 3, appended: 3 });
  } finally {
    await emulator.stop();
  }
});
