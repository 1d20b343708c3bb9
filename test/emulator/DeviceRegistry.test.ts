import type { JsonObject } from "../../shared/twin/json";
import { createManualClock, hubTimestamp } from "../../local/emulator/Clock";
import { DeviceRegistry, opaqueEtag, type TwinChange } from "../../local/emulator/DeviceRegistry";

function setup() {
  const clock = createManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  const changes: TwinChange[] = [];
  const notifications: JsonObject[] = [];
  let key = 0;
  const registry = new DeviceRegistry({
    clock,
    generateKey: () => Buffer.alloc(32, ++key).toString("base64"),
    onTwinChange: (change) => changes.push(change),
    onDesiredChange: (_address, notification) => notifications.push(notification),
  });
  registry.createDevice("d1");
  return { clock, registry, changes, notifications };
}

type Section = Record<string, unknown>;
const desiredOf = (twin: JsonObject): Section => (twin.properties as { desired: Section }).desired;
const reportedOf = (twin: JsonObject): Section => (twin.properties as { reported: Section }).reported;
const strip = ({ $metadata: _m, $version: _v, ...values }: Section): Section => values;

describe("merge patches on desired properties", () => {
  const cases: Array<{ name: string; start: JsonObject; patch: JsonObject; expected: JsonObject }> = [
    { name: "adds a new key", start: { a: 1 }, patch: { b: 2 }, expected: { a: 1, b: 2 } },
    { name: "overwrites an existing key", start: { a: 1 }, patch: { a: 5 }, expected: { a: 5 } },
    { name: "deletes a key set to null", start: { a: 1, b: 2 }, patch: { a: null }, expected: { b: 2 } },
    { name: "merges nested objects key by key", start: { o: { x: 1, y: 2 } }, patch: { o: { y: 3, z: 4 } }, expected: { o: { x: 1, y: 3, z: 4 } } },
    { name: "deletes a nested key set to null", start: { o: { x: 1, y: 2 } }, patch: { o: { x: null } }, expected: { o: { y: 2 } } },
    { name: "replaces arrays whole", start: { list: [1, 2, 3] }, patch: { list: [9] }, expected: { list: [9] } },
    { name: "replaces a scalar with an object", start: { a: 1 }, patch: { a: { b: 1 } }, expected: { a: { b: 1 } } },
    { name: "replaces an object with a scalar", start: { a: { b: 1 } }, patch: { a: 2 }, expected: { a: 2 } },
    { name: "leaves keys the patch does not mention", start: { a: 1, o: { x: 1 } }, patch: { o: {} }, expected: { a: 1, o: { x: 1 } } },
  ];
  test.each(cases)("$name", ({ start, patch, expected }) => {
    const { registry } = setup();
    registry.updateTwin("d1", { properties: { desired: start } });
    const twin = registry.updateTwin("d1", { properties: { desired: patch } });
    expect(strip(desiredOf(twin))).toEqual(expected);
  });
});

describe("versions and etags", () => {
  test("a new twin starts at version 2, etag AAAAAAAAAAE= and both section $versions at 1, as in IoT Hub's lifecycle event samples", () => {
    const { registry, clock } = setup();
    const twin = registry.getTwin("d1");
    const at = hubTimestamp(clock.now());
    expect(twin).toMatchObject({ version: 2, etag: "AAAAAAAAAAE=", properties: { desired: { $version: 1 }, reported: { $version: 1 } } });
    expect(twin.properties).toEqual({ desired: { $metadata: { $lastUpdated: at }, $version: 1 }, reported: { $metadata: { $lastUpdated: at }, $version: 1 } });
    expect(twin.etag).toBe(opaqueEtag(1));
    expect(twin.tags).toBeUndefined();
  });

  const steps: Array<{ name: string; apply: (r: DeviceRegistry) => void; version: number; desired: number; reported: number }> = [
    { name: "desired update", apply: (r) => r.updateTwin("d1", { properties: { desired: { a: 1 } } }), version: 3, desired: 2, reported: 1 },
    { name: "reported update", apply: (r) => r.updateReported("d1", { a: 1 }), version: 3, desired: 1, reported: 2 },
    { name: "tags update (bumps desired $version too, iothub-facts §1)", apply: (r) => r.updateTwin("d1", { tags: { site: "x" } }), version: 3, desired: 2, reported: 1 },
    { name: "two tags updates", apply: (r) => { r.updateTwin("d1", { tags: { site: "x" } }); r.updateTwin("d1", { tags: { site: "y" } }); }, version: 4, desired: 3, reported: 1 },
    { name: "tags and desired in one patch", apply: (r) => r.updateTwin("d1", { tags: { s: 1 }, properties: { desired: { a: 1 } } }), version: 3, desired: 2, reported: 1 },
    { name: "replace", apply: (r) => r.replaceTwin("d1", { properties: { desired: { a: 1 } } }), version: 3, desired: 2, reported: 1 },
    { name: "identical desired value again", apply: (r) => { r.updateTwin("d1", { properties: { desired: { a: 1 } } }); r.updateTwin("d1", { properties: { desired: { a: 1 } } }); }, version: 4, desired: 3, reported: 1 },
    { name: "identical reported value again", apply: (r) => { r.updateReported("d1", { a: 1 }); r.updateReported("d1", { a: 1 }); }, version: 4, desired: 1, reported: 3 },
  ];
  test.each(steps)("$name moves twin version, section $versions and etag as IoT Hub does", ({ apply, version, desired, reported }) => {
    const { registry } = setup();
    const before = registry.getTwin("d1").etag;
    apply(registry);
    const twin = registry.getTwin("d1");
    expect(twin.version).toBe(version);
    expect(desiredOf(twin).$version).toBe(desired);
    expect(reportedOf(twin).$version).toBe(reported);
    expect(twin.etag).not.toBe(before);
    expect(twin.etag).toMatch(/^[A-Za-z0-9+/]{11}=$/);
  });

  test("a stale etag is refused with 412 PreconditionFailed and changes nothing", () => {
    const { registry } = setup();
    const stale = String(registry.getTwin("d1").etag);
    registry.updateReported("d1", { x: 1 });
    expect(() => registry.updateTwin("d1", { properties: { desired: { a: 1 } } }, `"${stale}"`)).toThrow(
      expect.objectContaining({ status: 412, code: "PreconditionFailed", name: "InvalidEtagError" }),
    );
    expect(registry.getTwin("d1").version).toBe(3);
  });

  test.each(['"*"', "*", undefined])("etag %p forces the write", (etag) => {
    const { registry } = setup();
    registry.updateReported("d1", { x: 1 });
    expect(() => registry.updateTwin("d1", { properties: { desired: { a: 1 } } }, etag)).not.toThrow();
  });

  test("the current etag, quoted or not, is accepted", () => {
    const { registry } = setup();
    const etag = String(registry.getTwin("d1").etag);
    registry.updateTwin("d1", { tags: { a: 1 } }, `"${etag}"`);
    const next = String(registry.getTwin("d1").etag);
    expect(() => registry.updateTwin("d1", { tags: { a: 2 } }, next)).not.toThrow();
  });
});

describe("$metadata", () => {
  test("stamps $lastUpdated and $lastUpdatedVersion at every desired level the patch touches", () => {
    const { registry, clock } = setup();
    registry.updateTwin("d1", { properties: { desired: { keep: 1, o: { x: 1 } } } });
    const first = hubTimestamp(clock.now());
    clock.advance(5000);
    const second = hubTimestamp(clock.now());
    const twin = registry.updateTwin("d1", { properties: { desired: { o: { y: 2 } } } });
    expect(desiredOf(twin).$metadata).toEqual({
      $lastUpdated: second,
      $lastUpdatedVersion: 3,
      keep: { $lastUpdated: first, $lastUpdatedVersion: 2 },
      o: {
        $lastUpdated: second,
        $lastUpdatedVersion: 3,
        x: { $lastUpdated: first, $lastUpdatedVersion: 2 },
        y: { $lastUpdated: second, $lastUpdatedVersion: 3 },
      },
    });
  });

  test("reported metadata carries $lastUpdated only", () => {
    const { registry, clock } = setup();
    registry.updateReported("d1", { o: { x: 1 } });
    const at = hubTimestamp(clock.now());
    expect(reportedOf(registry.getTwin("d1")).$metadata).toEqual({ $lastUpdated: at, o: { $lastUpdated: at, x: { $lastUpdated: at } } });
  });

  test("a deleted key loses its metadata", () => {
    const { registry } = setup();
    registry.updateTwin("d1", { properties: { desired: { a: 1, b: 2 } } });
    const twin = registry.updateTwin("d1", { properties: { desired: { a: null } } });
    expect(Object.keys(desiredOf(twin).$metadata as object)).toEqual(["$lastUpdated", "$lastUpdatedVersion", "b"]);
  });

  test("timestamps have IoT Hub's seven fractional digits", () => {
    expect(hubTimestamp(Date.UTC(2021, 1, 14, 18, 5, 38, 582))).toBe("2021-02-14T18:05:38.5820000Z");
  });
});

describe("replace (PUT semantics)", () => {
  test("replaces desired and tags wholesale and keeps reported", () => {
    const { registry } = setup();
    registry.updateTwin("d1", { tags: { old: 1 }, properties: { desired: { a: 1, b: 2 } } });
    registry.updateReported("d1", { r: 1 });
    const twin = registry.replaceTwin("d1", { tags: { fresh: true }, properties: { desired: { c: 3 } } });
    expect(twin.tags).toEqual({ fresh: true });
    expect(strip(desiredOf(twin))).toEqual({ c: 3 });
    expect(strip(reportedOf(twin))).toEqual({ r: 1 });
  });
});

describe("twin changes and desired notifications", () => {
  test("a desired patch produces an updateTwin change carrying only the patch, its metadata and $version", () => {
    const { registry, changes, notifications, clock } = setup();
    registry.updateTwin("d1", { properties: { desired: { keep: 1 } } });
    const twin = registry.updateTwin("d1", { properties: { desired: { o: { y: 2 }, gone: null } } });
    const at = hubTimestamp(clock.now());
    expect(changes[1]).toEqual({
      deviceId: "d1",
      moduleId: null,
      generationId: registry.getDevice("d1").generationId,
      opType: "updateTwin",
      timestampMs: clock.now(),
      body: {
        version: twin.version,
        properties: {
          desired: {
            o: { y: 2 },
            gone: null,
            $metadata: { $lastUpdated: at, $lastUpdatedVersion: 3, o: { $lastUpdated: at, $lastUpdatedVersion: 3, y: { $lastUpdated: at, $lastUpdatedVersion: 3 } } },
            $version: 3,
          },
        },
      },
    });
    expect(notifications[1]).toEqual({ o: { y: 2 }, gone: null, $version: 3 });
  });

  test("a tags patch carries tags and the desired section's new $version only; desired values and metadata are unchanged", () => {
    const { registry, changes, notifications } = setup();
    registry.updateTwin("d1", { properties: { desired: { a: 1 } } });
    const before = desiredOf(registry.getTwin("d1"));
    registry.updateTwin("d1", { tags: { site: "north" } });
    expect(changes[1]!.body).toEqual({ version: 4, tags: { site: "north" }, properties: { desired: { $version: 3 } } });
    expect(desiredOf(registry.getTwin("d1"))).toEqual({ ...before, $version: 3 });
    expect(notifications).toHaveLength(1);
  });

  test("a replace carries whole sections with deviceId, etag and version", () => {
    const { registry, changes } = setup();
    registry.updateReported("d1", { r: 1 });
    const twin = registry.replaceTwin("d1", { tags: { t: 1 }, properties: { desired: { a: 1 } } });
    const body = changes[1]!.body;
    expect(changes[1]!.opType).toBe("replaceTwin");
    expect(body).toMatchObject({ deviceId: "d1", etag: twin.etag, version: twin.version, tags: { t: 1 } });
    expect(body.properties).toEqual(twin.properties);
  });

  test("module twins are separate twins keyed by device and module id", () => {
    const { registry, changes } = setup();
    registry.createModule("d1", "m1");
    registry.updateReported({ deviceId: "d1", moduleId: "m1" }, { a: 1 });
    expect(registry.getTwin({ deviceId: "d1", moduleId: "m1" })).toMatchObject({ moduleId: "m1", version: 3 });
    expect(registry.getTwin("d1").version).toBe(2);
    expect(changes[0]).toMatchObject({ deviceId: "d1", moduleId: "m1" });
  });
});

describe("registry", () => {
  test("generates distinct base64 keys and refuses duplicates with 409", () => {
    const { registry } = setup();
    const device = registry.createDevice("d2");
    expect(device.authentication.symmetricKey.primaryKey).not.toBe(device.authentication.symmetricKey.secondaryKey);
    expect(() => registry.createDevice("d2")).toThrow(expect.objectContaining({ status: 409, name: "DeviceAlreadyExistsError" }));
  });

  test("an unknown device is 404 DeviceNotFound", () => {
    const { registry } = setup();
    expect(() => registry.getTwin("nope")).toThrow(expect.objectContaining({ status: 404, code: "DeviceNotFound", name: "DeviceNotFoundError" }));
  });

  test("deleting a device deletes its modules", () => {
    const { registry } = setup();
    registry.createModule("d1", "m1");
    registry.deleteDevice("d1");
    expect(registry.hasDevice({ deviceId: "d1", moduleId: "m1" })).toBe(false);
  });

  test("status can be disabled and device ids are validated", () => {
    const { registry } = setup();
    expect(registry.updateDevice("d1", { status: "disabled" }).status).toBe("disabled");
    expect(() => registry.createDevice("has space")).toThrow(expect.objectContaining({ status: 400 }));
  });

  test("the service cannot write reported properties", () => {
    const { registry } = setup();
    expect(() => registry.updateTwin("d1", { properties: { reported: { a: 1 } } })).toThrow(expect.objectContaining({ status: 400 }));
  });
});
