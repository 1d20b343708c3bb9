import fc from "fast-check";
import { decodeTwinChanges, parseTime } from "../../shared/events/decodeTwinChanges";
import { toTriggerInput } from "../../shared/events/ReceivedEvent";
import { FixtureTwin, telemetryEvent } from "../fixtures/twinEvents";

function decode(events: ReturnType<typeof toTriggerInput>) {
  return decodeTwinChanges(events.messages, events.triggerMetadata);
}

describe("decodeTwinChanges", () => {
  const twin = new FixtureTwin("boiler-7");
  const desired = twin.setDesired({ fanOn: true, components: { climate: { maxTemperature: 76 } } });
  const reported = twin.report({ fanOn: true });

  test("decodes a desired update with its metadata, version and device", () => {
    const { events, ignored, deadLetters } = decode(toTriggerInput([desired]));
    expect({ ignored, deadLetters }).toEqual({ ignored: 0, deadLetters: [] });
    expect(events[0]).toMatchObject({
      key: { deviceId: "boiler-7", moduleId: null },
      opType: "updateTwin",
      version: 2,
      desired: { fanOn: true, $version: 2, $metadata: expect.objectContaining({ $lastUpdatedVersion: 2 }) },
      reported: undefined,
      enqueuedTime: "2026-01-01T00:00:00.000Z",
      sequenceNumber: 0,
      partitionId: "0",
      index: 0,
    });
  });

  test.each([
    ["an object", (b: unknown) => b],
    ["a JSON string", (b: unknown) => JSON.stringify(b)],
    ["a Buffer", (b: unknown) => Buffer.from(JSON.stringify(b))],
  ])("accepts the body as %s", (_name, wrap) => {
    const input = structuredClone(toTriggerInput([reported]));
    input.messages = [wrap(reported.body)];
    expect(decode(input).events[0]).toMatchObject({ version: 3, reported: { fanOn: true } });
  });

  test("a module twin is its own twin", () => {
    const module = new FixtureTwin("gateway-1", undefined, { moduleId: "modbus" });
    expect(decode(toTriggerInput([module.setDesired({ poll: 5 })])).events[0]?.key).toEqual({ deviceId: "gateway-1", moduleId: "modbus" });
  });

  test("takes the device id from the system properties when the application properties lack it", () => {
    const input = structuredClone(toTriggerInput([desired]));
    delete (input.triggerMetadata.propertiesArray as Array<Record<string, unknown>>)[0]!.deviceId;
    expect(decode(input).events[0]?.key.deviceId).toBe("boiler-7");
  });

  test("counts events from other sources as ignored", () => {
    const result = decode(toTriggerInput([telemetryEvent("boiler-7"), desired]));
    expect(result.ignored).toBe(1);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]?.index).toBe(1);
  });

  test.each<[string, (e: ReturnType<typeof toTriggerInput>) => void, RegExp]>([
    ["a body that is not JSON", (e) => (e.messages[0] = "{not json"), /body is not JSON/],
    ["a body that is an array", (e) => (e.messages[0] = [1, 2]), /JSON object/],
    ["a body without a version", (e) => (e.messages[0] = { properties: { desired: { a: 1 } } }), /version/],
    ["a negative version", (e) => (e.messages[0] = { version: -1 }), /version/],
    ["an unknown opType", (e) => ((e.triggerMetadata.propertiesArray as Array<Record<string, unknown>>)[0]!.opType = "mergeTwin"), /opType/],
    [
      "no device id anywhere",
      (e) => {
        delete (e.triggerMetadata.propertiesArray as Array<Record<string, unknown>>)[0]!.deviceId;
        delete (e.triggerMetadata.systemPropertiesArray as Array<Record<string, unknown>>)[0]!["iothub-connection-device-id"];
      },
      /no deviceId/,
    ],
    ["a NUL character PostgreSQL cannot store", (e) => (e.messages[0] = { version: 9, properties: { desired: { a: "x\u0000y" } } }), /cannot store/],
    [
      "a body nested deeper than any twin",
      (e) => {
        let deep: Record<string, unknown> = { leaf: 1 };
        for (let i = 0; i < 100; i++) deep = { n: deep };
        e.messages[0] = { version: 9, properties: { desired: deep } };
      },
      /nested/,
    ],
  ])("dead-letters %s with its reason", (_name, spoil, reason) => {
    const input = structuredClone(toTriggerInput([desired]));
    spoil(input);
    const result = decode(input);
    expect(result.events).toEqual([]);
    expect(result.deadLetters).toEqual([expect.objectContaining({ index: 0, reason: expect.stringMatching(reason) })]);
    expect(() => JSON.stringify(result.deadLetters[0]?.raw)).not.toThrow();
  });

  test("a bad event does not spoil the rest of the batch", () => {
    const input = structuredClone(toTriggerInput([desired, reported]));
    input.messages[0] = "garbage";
    const result = decode(input);
    expect(result.deadLetters.map((d) => d.index)).toEqual([0]);
    expect(result.events.map((e) => e.index)).toEqual([1]);
  });
});

describe("parseTime", () => {
  test.each([
    ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000Z"],
    ["2026-01-01T00:00:00.2612586Z", "2026-01-01T00:00:00.261Z"],
    ["2026-01-01T00:00:00", "2026-01-01T00:00:00.000Z"],
    [1767225600000, "2026-01-01T00:00:00.000Z"],
    ["1767225600000", "2026-01-01T00:00:00.000Z"],
  ])("reads %j", (input, expected) => expect(parseTime(input)).toBe(expected));
  test.each([["yesterday"], [""], [-5], [null], ["1970-01-01T00:00:00Z"]])("refuses %j", (input) => expect(parseTime(input)).toBeUndefined());
});

describe("decodeTwinChanges on hostile input (fuzz)", () => {
  const anything = fc.oneof(
    fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true }),
    fc.string(),
    fc.uint8Array().map((a) => Buffer.from(a)),
    fc.json().map((j) => Buffer.from(j)),
    fc.json(),
  );
  const twinish = fc.record(
    {
      version: fc.oneof(fc.integer(), fc.double(), fc.string()),
      properties: fc.oneof(fc.anything(), fc.record({ desired: fc.anything(), reported: fc.anything() })),
      tags: fc.anything(),
    },
    { requiredKeys: [] },
  );
  const properties = fc.oneof(
    fc.anything(),
    fc.record({ deviceId: fc.oneof(fc.string(), fc.anything()), opType: fc.constantFrom("updateTwin", "replaceTwin", "x"), moduleId: fc.anything() }, { requiredKeys: [] }),
  );
  const systemProperties = fc.oneof(
    fc.anything(),
    fc.record(
      { "iothub-message-source": fc.constantFrom("twinChangeEvents", "Telemetry"), "iothub-enqueuedtime": fc.anything(), "iothub-connection-device-id": fc.string() },
      { requiredKeys: ["iothub-message-source"] },
    ),
  );

  test("every generated input ends as an event, an ignored count or a dead letter — never an exception", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.oneof(anything, twinish), properties, systemProperties, fc.anything()), { maxLength: 5 }),
        fc.anything(),
        (items, partitionContext) => {
          const metadata = {
            propertiesArray: items.map((i) => i[1]),
            systemPropertiesArray: items.map((i) => i[2]),
            enqueuedTimeUtcArray: items.map((i) => i[3]),
            partitionContext,
          };
          const result = decodeTwinChanges(items.map((i) => i[0]), metadata);
          expect(result.events.length + result.ignored + result.deadLetters.length).toBe(items.length);
          for (const letter of result.deadLetters) expect(() => JSON.stringify(letter.raw)).not.toThrow();
        },
      ),
      { numRuns: 3000 },
    );
  });

  test("garbage trigger metadata of any shape never throws", () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (messages, metadata) => {
        const result = decodeTwinChanges(messages, metadata);
        expect(result.events.length + result.ignored + result.deadLetters.length).toBe(Array.isArray(messages) ? messages.length : 1);
      }),
      { numRuns: 2000 },
    );
  });
});
