import type { JsonObject } from "../../shared/twin/json";
import { startEmulator, type Emulator } from "../../local/emulator";
import { createManualClock, hubTimestamp } from "../../local/emulator/Clock";
import { IotHub } from "../../local/emulator/IotHub";
import { atTimes, canonicalJson, canonicalSection, newSection, prototypeIsClean, twinMergeCases, twinSectionCases } from "../fixtures/twinMergeCases";

// The shared table of merge cases (hostile keys included) against the emulator, the project's
// independent model of IoT Hub: through its in-process API and through the unmodified azure-iothub
// Registry over HTTPS. The twin is read back from the emulator (the SDK's Twin object is built with
// lodash `merge`, which drops `__proto__` on its own, so it cannot tell what the hub kept).

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ throttling: "off" });
});

afterAll(() => emulator.stop());

const parse = (text: string): JsonObject => JSON.parse(text) as JsonObject;
const desiredPatch = (section: string): { properties: { desired: JsonObject } } => parse(`{"properties":{"desired":${section}}}`) as { properties: { desired: JsonObject } };

function desiredOf(deviceId: string): string {
  return canonicalJson((emulator.getTwin(deviceId).properties as { desired: JsonObject }).desired);
}

describe("through the emulator's API (updateDesired, then updateTwin)", () => {
  test.each(twinMergeCases.map((c, i) => [c.name, c, i] as const))("%s", (_name, c, i) => {
    const deviceId = `merge-api-${i}`;
    emulator.createDevice(deviceId);
    emulator.updateDesired(deviceId, parse(c.base));
    emulator.updateTwin(deviceId, desiredPatch(c.patch));
    expect(desiredOf(deviceId)).toBe(canonicalJson(parse(c.expected)));
    expect(prototypeIsClean()).toBe(true);
  });
});

describe("through the azure-iothub Registry over HTTPS (updateTwin twice)", () => {
  test.each(twinMergeCases.map((c, i) => [c.name, c, i] as const))("%s", async (_name, c, i) => {
    const deviceId = `merge-https-${i}`;
    emulator.createDevice(deviceId);
    const registry = emulator.createRegistryClient();
    await registry.updateTwin(deviceId, desiredPatch(c.base), "*");
    await registry.updateTwin(deviceId, desiredPatch(c.patch), "*");
    expect(desiredOf(deviceId)).toBe(canonicalJson(parse(c.expected)));
    expect(prototypeIsClean()).toBe(true);
  });
});

test("the twin-change event of a __proto__ patch carries the key and its metadata as ordinary keys", () => {
  emulator.createDevice("merge-event");
  emulator.updateTwin("merge-event", desiredPatch('{"__proto__":{"a":1}}'));
  const p = emulator.events.partitionOf("merge-event");
  const event = emulator.events
    .read(p, 0, 10_000)
    .filter((e) => e.properties.deviceId === "merge-event" && e.properties.opType === "updateTwin")
    .pop();
  const desired = (event!.body as { properties: { desired: Record<string, unknown> } }).properties.desired;
  expect(Object.keys(desired).sort()).toEqual(["$metadata", "$version", "__proto__"]);
  expect(JSON.stringify(desired.__proto__)).toBe('{"a":1}');
  expect(Object.keys(desired.$metadata as object)).toContain("__proto__");
  expect(prototypeIsClean()).toBe(true);
});

describe("the shared table of whole sections ($metadata, $version): the emulator driven by each step", () => {
  test.each(twinSectionCases.map((c, i) => [c.name, c, i] as const))("%s", (_name, c, i) => {
    const t0 = Date.UTC(2026, 0, 1);
    const clock = createManualClock(t0);
    const hub = new IotHub({ clock, partitionCount: 1, throttling: "off" });
    const stamp = (step: number): string => hubTimestamp(t0 + step * 1000);
    const deviceId = `section-${i}`;
    hub.registry.createDevice(deviceId);
    const sectionOf = (twin: JsonObject): unknown => (twin.properties as Record<string, unknown>)[c.section];
    expect(canonicalSection(sectionOf(hub.registry.getTwin(deviceId)))).toBe(canonicalSection(JSON.parse(atTimes(newSection, stamp))));
    hub.events.read("0", 0, 100);
    c.steps.forEach((step, s) => {
      clock.set(t0 + (s + 1) * 1000);
      const patch = parse(step.patch);
      if (step.tags) hub.registry.updateTwin(deviceId, { tags: patch });
      else if (c.section === "desired") hub.registry.updateTwin(deviceId, { properties: { desired: patch } });
      else hub.registry.updateReported(deviceId, patch);
      const events = hub.events.read("0", s + 1, 100);
      expect(events).toHaveLength(1);
      const routed = (events[0]!.body as { properties: Record<string, unknown> }).properties[c.section];
      expect({ step: s + 1, event: canonicalSection(routed) }).toEqual({ step: s + 1, event: canonicalSection(JSON.parse(atTimes(step.event, stamp))) });
    });
    expect(canonicalSection(sectionOf(hub.registry.getTwin(deviceId)))).toBe(canonicalSection(JSON.parse(atTimes(c.expected, stamp))));
    expect(prototypeIsClean()).toBe(true);
  });
});
