import type { JsonObject } from "../../shared/twin/json";
import { createManualClock } from "../../local/emulator/Clock";
import { IotHub } from "../../local/emulator/IotHub";
import { canonicalJson, prototypeIsClean } from "../fixtures/twinMergeCases";

// A consumer keeps a replica of each twin by applying every event body as a merge patch (IoT Hub's
// rule: null deletes, objects merge, everything else replaces). Whatever the stream coalesced, the
// replica must end equal to the hub's twin: a coalesced body may never bring back a deleted key.
// The merge below is the test's own, independent of the emulator's.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const define = (target: Obj, key: string, value: unknown): void => {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
};

function applyPatch(target: Obj, patch: Obj): void {
  for (const key of Object.keys(patch)) {
    if (key.startsWith("$")) continue;
    const value = patch[key];
    if (value === null) {
      delete target[key];
    } else if (isObj(value)) {
      const existing = Object.hasOwn(target, key) ? target[key] : undefined;
      const child: Obj = isObj(existing) ? existing : {};
      applyPatch(child, value);
      define(target, key, child);
    } else {
      define(target, key, structuredClone(value));
    }
  }
}

const at = Date.UTC(2026, 0, 1);

function desiredReplica(h: IotHub, deviceId: string): { replica: Obj; events: number } {
  const replica: Obj = {};
  const events = h.events.read(h.events.partitionOf(deviceId), 0, 10_000).filter((e) => e.properties.deviceId === deviceId);
  for (const event of events) {
    const desired = (event.body as { properties?: { desired?: Obj } }).properties?.desired;
    if (desired !== undefined) applyPatch(replica, desired);
  }
  return { replica, events: events.length };
}

const desiredOf = (h: IotHub, deviceId: string): unknown => (h.registry.getTwin(deviceId).properties as { desired: unknown }).desired;
const json = (text: string): JsonObject => JSON.parse(text) as JsonObject;

test("a key set to null in a later change stays null in the coalesced body, without metadata", () => {
  const h = new IotHub({ clock: createManualClock(at), partitionCount: 1, faults: { coalesceProbability: 1 } });
  h.registry.createDevice("d");
  h.events.read("0", 0, 10);
  h.registry.updateTwin("d", { properties: { desired: { o: { w: 1 }, k: 1 } } });
  h.registry.updateTwin("d", { properties: { desired: { o: null } } });
  const [event, ...rest] = h.events.read("0", 1, 10);
  expect(rest).toEqual([]);
  const desired = (event!.body as { properties: { desired: Obj } }).properties.desired;
  expect(desired.o).toBeNull();
  expect(desired.k).toBe(1);
  expect(Object.keys(desired.$metadata as Obj).sort()).toEqual(["$lastUpdated", "$lastUpdatedVersion", "k"]);
});

test("a __proto__ key set to null later stays null in the coalesced body", () => {
  const h = new IotHub({ clock: createManualClock(at), partitionCount: 1, faults: { coalesceProbability: 1 } });
  h.registry.createDevice("d");
  h.events.read("0", 0, 10);
  h.registry.updateTwin("d", { properties: { desired: json('{"__proto__":{"a":1},"k":1}') } });
  h.registry.updateTwin("d", { properties: { desired: json('{"__proto__":null}') } });
  const events = h.events.read("0", 1, 10);
  expect(events).toHaveLength(1);
  const desired = (events[0]!.body as { properties: { desired: Obj } }).properties.desired;
  expect(Object.hasOwn(desired, "__proto__")).toBe(true);
  expect(Object.getOwnPropertyDescriptor(desired, "__proto__")!.value).toBeNull();
  expect(prototypeIsClean()).toBe(true);
});

test("a key replaced by a value and then set to an object is not merged with its old children", () => {
  const h = new IotHub({ clock: createManualClock(at), partitionCount: 1, faults: { coalesceProbability: 1 } });
  h.registry.createDevice("d");
  h.registry.updateTwin("d", { properties: { desired: { o: { w: 1 } } } });
  h.events.read("0", 0, 10);
  h.registry.updateTwin("d", { properties: { desired: { o: 5 } } });
  h.registry.updateTwin("d", { properties: { desired: { o: { t: 1 } } } });
  const { replica } = desiredReplica(h, "d");
  expect(replica).toEqual({ o: { t: 1 } });
  expect(canonicalJson(desiredOf(h, "d"))).toBe(canonicalJson(replica));
});

test("a replica built from a coalesced stream equals the hub's twin, over random patches with deletes, replacements and hostile keys", () => {
  let state = 12345;
  const next = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  const keys = ["a", "o", "__proto__", "constructor"];
  const value = (depth: number): unknown => {
    switch (next(depth > 1 ? 3 : 5)) {
      case 0:
        return next(10);
      case 1:
        return null;
      case 2:
        return [next(3)];
      default: {
        const out: Obj = {};
        for (const key of ["x", "__proto__", "y"]) if (next(2) === 0) define(out, key, value(depth + 1));
        return out;
      }
    }
  };
  const h = new IotHub({ clock: createManualClock(at), partitionCount: 4, faults: { seed: 2, coalesceProbability: 1 } });
  let combined = 0;
  for (let d = 0; d < 150; d++) {
    const deviceId = `dev-${d}`;
    h.registry.createDevice(deviceId);
    for (let i = 0; i < 6; i++) {
      const patch: Obj = {};
      for (const key of keys) if (next(2) === 0) define(patch, key, value(0));
      h.registry.updateTwin(deviceId, { properties: { desired: patch as JsonObject } });
    }
    const { replica, events } = desiredReplica(h, deviceId);
    combined += 7 - events;
    expect({ deviceId, desired: canonicalJson(replica) }).toEqual({ deviceId, desired: canonicalJson(desiredOf(h, deviceId)) });
    const { metadata } = desiredReplicaWithMetadata(h, deviceId);
    expect({ deviceId, metadata: canonicalWithMetadata(metadata) }).toEqual({ deviceId, metadata: canonicalWithMetadata((desiredOf(h, deviceId) as Obj).$metadata) });
  }
  expect(prototypeIsClean()).toBe(true);
  // Coalescing happened, and was refused where it would have been wrong.
  expect(h.events.counters.coalesced).toBe(combined);
  expect(combined).toBeGreaterThan(150);
  expect(combined).toBeLessThan(150 * 5);
});

// The replica's `$metadata`, built the way a careful consumer does from each body: the section stamp
// from the body, a deleted key loses its metadata, a value or array takes the body's metadata whole,
// an object merges into the metadata of the object it merges into (or starts anew).
function applyMetadata(values: Obj, meta: Obj, patch: Obj, patchMeta: Obj): void {
  for (const key of Object.keys(patchMeta)) if (key.startsWith("$")) define(meta, key, patchMeta[key]);
  for (const key of Object.keys(patch)) {
    if (key.startsWith("$")) continue;
    const value = patch[key];
    const pm = Object.hasOwn(patchMeta, key) ? patchMeta[key] : undefined;
    const before = Object.hasOwn(values, key) ? values[key] : undefined;
    if (value === null) {
      delete meta[key];
      delete values[key];
    } else if (isObj(value)) {
      const child: Obj = isObj(before) ? before : {};
      const existing = Object.hasOwn(meta, key) ? meta[key] : undefined;
      const childMeta: Obj = isObj(before) && isObj(existing) ? existing : {};
      applyMetadata(child, childMeta, value, isObj(pm) ? pm : {});
      define(values, key, child);
      define(meta, key, childMeta);
    } else {
      define(values, key, structuredClone(value));
      if (pm === undefined) delete meta[key];
      else define(meta, key, structuredClone(pm));
    }
  }
}

test("a null followed by a change that does not mention the key coalesces to null, and the coalesced $metadata matches the hub's", () => {
  const clock = createManualClock(at);
  const h = new IotHub({ clock, partitionCount: 1, faults: { coalesceProbability: 1 } });
  h.registry.createDevice("d");
  h.registry.updateTwin("d", { properties: { desired: { o: { w: 1 }, g: 1, k: 1 } } });
  h.events.read("0", 0, 10);
  clock.advance(1000);
  h.registry.updateTwin("d", { properties: { desired: { o: null, g: null } } });
  clock.advance(1000);
  h.registry.updateTwin("d", { properties: { desired: { k: 2, n: { x: 1 } } } });
  const events = h.events.read("0", 2, 10);
  expect(events).toHaveLength(1);
  const desired = (events[0]!.body as { properties: { desired: Obj } }).properties.desired;
  expect(desired.o).toBeNull();
  expect(desired.g).toBeNull();
  const meta = desired.$metadata as Obj;
  expect(Object.hasOwn(meta, "o") || Object.hasOwn(meta, "g")).toBe(false);
  expect(Object.keys(meta).sort()).toEqual(["$lastUpdated", "$lastUpdatedVersion", "k", "n"]);
  const { metadata } = desiredReplicaWithMetadata(h, "d");
  expect(canonicalWithMetadata(metadata)).toBe(canonicalWithMetadata((desiredOf(h, "d") as Obj).$metadata));
});

function desiredReplicaWithMetadata(h: IotHub, deviceId: string): { values: Obj; metadata: Obj } {
  const values: Obj = {};
  const metadata: Obj = {};
  for (const event of h.events.read(h.events.partitionOf(deviceId), 0, 10_000).filter((e) => e.properties.deviceId === deviceId)) {
    const desired = (event.body as { properties?: { desired?: Obj } }).properties?.desired;
    if (desired !== undefined) applyMetadata(values, metadata, desired, isObj(desired.$metadata) ? desired.$metadata : {});
  }
  return { values, metadata };
}

/** JSON with keys sorted at every level, `$` keys kept. */
function canonicalWithMetadata(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (!isObj(v)) return v;
    const out: Obj = Object.create(null) as Obj;
    for (const key of Object.keys(v).sort()) define(out, key, sort(v[key]));
    return out;
  };
  return JSON.stringify(sort(value));
}
