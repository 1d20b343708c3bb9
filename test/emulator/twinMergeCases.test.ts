import type { JsonObject } from "../../shared/twin/json";
import { startEmulator, type Emulator } from "../../local/emulator";
import { canonicalJson, prototypeIsClean, twinMergeCases } from "../fixtures/twinMergeCases";

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
