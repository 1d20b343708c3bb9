import fc from "fast-check";
import { decodeTwinChanges, parseTime, type DeadLetter } from "../../shared/events/decodeTwinChanges";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { FixtureTwin, telemetryEvent } from "../fixtures/twinEvents";

function decode(events: Awaited<ReturnType<typeof toTriggerInput>>) {
  return decodeTwinChanges(events.messages, events.triggerMetadata);
}

describe("decodeTwinChanges", () => {
  const twin = new FixtureTwin("boiler-7");
  const desired = twin.setDesired({ fanOn: true, components: { climate: { maxTemperature: 76 } } });
  const reported = twin.report({ fanOn: true });

  test("decodes a desired update with its metadata, version and device", async () => {
    const { events, ignored, deadLetters } = decode(await toTriggerInput([desired]));
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
  ])("accepts the body as %s", async (_name, wrap) => {
    const input = structuredClone(await toTriggerInput([reported]));
    input.messages = [wrap(reported.body)];
    expect(decode(input).events[0]).toMatchObject({ version: 3, reported: { fanOn: true } });
  });

  test("a module twin is its own twin", async () => {
    const module = new FixtureTwin("gateway-1", undefined, { moduleId: "modbus" });
    expect(decode(await toTriggerInput([module.setDesired({ poll: 5 })])).events[0]?.key).toEqual({ deviceId: "gateway-1", moduleId: "modbus" });
  });

  test("takes the device id from the system properties when the application properties lack it", async () => {
    const input = structuredClone(await toTriggerInput([desired]));
    delete (input.triggerMetadata.propertiesArray as Array<Record<string, unknown>>)[0]!.deviceId;
    expect(decode(input).events[0]?.key.deviceId).toBe("boiler-7");
  });

  test("counts events from other sources as ignored", async () => {
    const result = decode(await toTriggerInput([telemetryEvent("boiler-7"), desired]));
    expect(result.ignored).toBe(1);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]?.index).toBe(1);
  });

  test.each<[string, (e: Awaited<ReturnType<typeof toTriggerInput>>) => void, RegExp]>([
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
  ])("dead-letters %s with its reason", async (_name, spoil, reason) => {
    const input = structuredClone(await toTriggerInput([desired]));
    spoil(input);
    const result = decode(input);
    expect(result.events).toEqual([]);
    expect(result.deadLetters).toEqual([expect.objectContaining({ index: 0, reason: expect.stringMatching(reason) })]);
    expect(() => JSON.stringify(result.deadLetters[0]?.raw)).not.toThrow();
  });

  test("a bad event does not spoil the rest of the batch", async () => {
    const input = structuredClone(await toTriggerInput([desired, reported]));
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
  ])("reads %j", async (input, expected) => expect(parseTime(input)).toBe(expected));
  test.each([["yesterday"], [""], [-5], [null], ["1970-01-01T00:00:00Z"]])("refuses %j", async (input) => expect(parseTime(input)).toBeUndefined());
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

  test("every generated input ends as an event, an ignored count or a dead letter — never an exception", async () => {
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
          expect(result.events.length + result.lifecycle.length + result.ignored + result.deadLetters.length).toBe(items.length);
          for (const letter of result.deadLetters) expect(() => JSON.stringify(letter.raw)).not.toThrow();
        },
      ),
      { numRuns: 3000 },
    );
  });

  test("garbage trigger metadata of any shape never throws", async () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (messages, metadata) => {
        const result = decodeTwinChanges(messages, metadata);
        expect(result.events.length + result.lifecycle.length + result.ignored + result.deadLetters.length).toBe(Array.isArray(messages) ? messages.length : 1);
      }),
      { numRuns: 2000 },
    );
  });
});

type TriggerInput = Awaited<ReturnType<typeof toTriggerInput>>;
const appProperties = (input: TriggerInput): Record<string, unknown> => (input.triggerMetadata.propertiesArray as Array<Record<string, unknown>>)[0]!;
const systemProperties = (input: TriggerInput): Record<string, unknown> => (input.triggerMetadata.systemPropertiesArray as Array<Record<string, unknown>>)[0]!;
/** Sets (or, with undefined, deletes) the body field at a dot path: the way each case spoils one thing. */
function spoilBody(input: TriggerInput, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = input.messages[0] as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  if (value === undefined) delete node[keys.at(-1)!];
  else node[keys.at(-1)!] = value;
}

/**
 * Independent of the product: what PostgreSQL refuses in text and jsonb (NUL, lone surrogates),
 * the id length the store's keys assume, and a size bound on what a dead-letter row keeps.
 */
function expectStorable(letter: DeadLetter): void {
  const texts: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === "string") texts.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        texts.push(k);
        walk(v);
      }
    }
  };
  walk([letter.reason, letter.deviceId ?? "", letter.partitionId ?? "", letter.raw]);
  for (const text of texts) {
    expect(text.includes("\u0000")).toBe(false);
    expect(text.isWellFormed()).toBe(true);
  }
  expect((letter.deviceId ?? "").length).toBeLessThanOrEqual(128);
  expect(JSON.stringify(letter.raw).length).toBeLessThan(1_200_000);
}

describe("decodeTwinChanges on the adversarial events of the integrity issue", () => {
  const twin = new FixtureTwin("boiler-7");
  twin.replace();
  const desired = twin.setDesired({ fanOn: true });
  const fresh = async (): Promise<TriggerInput> => structuredClone(await toTriggerInput([desired]));
  const moduleEvent = async (): Promise<TriggerInput> => structuredClone(await toTriggerInput([new FixtureTwin("gateway-1", undefined, { moduleId: "modbus" }).setDesired({ poll: 5 })]));

  test.each<[string, (input: TriggerInput) => void, RegExp, "device" | "module"]>([
    [
      "a 10 KB iothub-connection-device-id",
      (i) => {
        delete appProperties(i).deviceId;
        systemProperties(i)["iothub-connection-device-id"] = "d".repeat(10_240);
      },
      /system property iothub-connection-device-id is not an IoT Hub id.*10240 characters/,
      "device",
    ],
    ["a 10 KB application deviceId", (i) => (appProperties(i).deviceId = "d".repeat(10_240)), /application property deviceId is not an IoT Hub id/, "device"],
    ["a NUL in the deviceId", (i) => (appProperties(i).deviceId = "boiler\u00007"), /application property deviceId is not an IoT Hub id \(.*\): "boiler\\u00007"/, "device"],
    ["a lone surrogate in the deviceId", (i) => (appProperties(i).deviceId = "boiler\uD8007"), /application property deviceId is not an IoT Hub id \(.*\): "boiler\\ud8007"/, "device"],
    ["a NUL in the moduleId", (i) => (appProperties(i).moduleId = "mod\u0000bus"), /application property moduleId is not an IoT Hub id/, "module"],
    ["a lone surrogate in the moduleId", (i) => (appProperties(i).moduleId = "mod\uDC00bus"), /application property moduleId is not an IoT Hub id/, "module"],
    [
      "a lone surrogate in iothub-connection-module-id",
      (i) => {
        delete appProperties(i).moduleId;
        systemProperties(i)["iothub-connection-module-id"] = "mod\uDC00bus";
      },
      /system property iothub-connection-module-id is not an IoT Hub id/,
      "module",
    ],
    ["a deviceId with a character IoT Hub does not allow", (i) => (appProperties(i).deviceId = "boiler 7/x"), /deviceId is not an IoT Hub id/, "device"],
    [
      "a $lastUpdatedVersion of 1.5",
      (i) => spoilBody(i, "properties.desired.$metadata.$lastUpdatedVersion", 1.5),
      /\$lastUpdatedVersion that is not a non-negative safe integer at properties\.desired\.\$metadata\.\$lastUpdatedVersion: 1\.5/,
      "device",
    ],
    ["a $lastUpdatedVersion of 1e20", (i) => spoilBody(i, "properties.desired.$metadata.fanOn.$lastUpdatedVersion", 1e20), /at properties\.desired\.\$metadata\.fanOn\.\$lastUpdatedVersion: 100000000000000000000/, "device"],
    ["a $lastUpdatedVersion of -1", (i) => spoilBody(i, "properties.desired.$metadata.fanOn.$lastUpdatedVersion", -1), /\$lastUpdatedVersion that is not/, "device"],
    ["a desired $version of 2.5", (i) => spoilBody(i, "properties.desired.$version", 2.5), /\$version that is not a non-negative safe integer at properties\.desired\.\$version: 2\.5/, "device"],
    ["a twin version of 1e20", (i) => spoilBody(i, "version", 1e20), /^body: version/, "device"],
    ["a $lastUpdated of year -1", (i) => spoilBody(i, "properties.desired.$metadata.$lastUpdated", "-000001-01-01T00:00:00Z"), /\$lastUpdated that is not a date within years 0001–9999 at properties\.desired\.\$metadata\.\$lastUpdated/, "device"],
    ["a $lastUpdated of year +200000", (i) => spoilBody(i, "properties.desired.$metadata.fanOn.$lastUpdated", "+200000-01-01T00:00:00Z"), /\$lastUpdated that is not a date.* at properties\.desired\.\$metadata\.fanOn\.\$lastUpdated/, "device"],
    ["a $lastUpdated of +275760-09-13", (i) => spoilBody(i, "properties.desired.$metadata.$lastUpdated", "+275760-09-13T00:00:00Z"), /\$lastUpdated that is not a date/, "device"],
    ["a $lastUpdated that is no date", (i) => spoilBody(i, "properties.desired.$metadata.$lastUpdated", "soon"), /\$lastUpdated that is not a date/, "device"],
    [
      "a reported $lastUpdated of year 10000",
      (i) => spoilBody(i, "properties.reported", { a: 1, $metadata: { $lastUpdated: "+010000-01-01T00:00:00Z" }, $version: 2 }),
      /properties\.reported\.\$metadata\.\$lastUpdated/,
      "device",
    ],
    ["a NUL in the etag", (i) => spoilBody(i, "etag", "AAAA\u0000"), /cannot store at etag/, "device"],
  ])("dead-letters an event with %s, naming what and where", async (_name, spoil, reason, twinKind) => {
    const input = twinKind === "device" ? await fresh() : await moduleEvent();
    spoil(input);
    const result = decode(input);
    expect(result.events).toEqual([]);
    expect(result.ignored).toBe(0);
    expect(result.deadLetters).toEqual([expect.objectContaining({ index: 0, reason: expect.stringMatching(reason) })]);
    expectStorable(result.deadLetters[0]!);
  });

  test("a dead letter's 10 KB device id hint is cut to 128 characters and the letter says so", async () => {
    const input = await fresh();
    delete appProperties(input).deviceId;
    systemProperties(input)["iothub-connection-device-id"] = "d".repeat(10_240);
    const [letter] = decode(input).deadLetters;
    expect(letter).toMatchObject({ deviceId: "d".repeat(128), truncated: true, escaped: false });
    expect(letter!.reason).toMatch(/\[stored altered: device id cut to 128 of 10240 characters\]$/);
    expect((letter!.raw.systemProperties as Record<string, unknown>)["iothub-connection-device-id"]).toHaveLength(10_240);
  });

  test("a dead letter's NUL and lone surrogates are escaped everywhere and the letter says so", async () => {
    const input = await fresh();
    appProperties(input).deviceId = "a\u0000b";
    appProperties(input)["x\u0000"] = "\uD800";
    input.triggerMetadata.partitionContext = { partitionId: "0" };
    const [letter] = decode(input).deadLetters;
    expect(letter).toMatchObject({ deviceId: "a\\u0000b", escaped: true, truncated: false });
    expect(letter!.raw.properties).toMatchObject({ deviceId: "a\\u0000b", "x\\u0000": "\uFFFD" });
    expect(letter!.reason).toMatch(/\[stored altered: NUL escaped as \\u0000 and lone surrogates replaced by U\+FFFD\]$/);
    expectStorable(letter!);
  });

  test("a dead letter keeps a body over 256 KB as the start of its JSON text and says so", async () => {
    const input = await fresh();
    spoilBody(input, "properties.desired.blob", "x".repeat(300_000));
    appProperties(input).opType = "mergeTwin";
    const [letter] = decode(input).deadLetters;
    expect(typeof letter!.raw.body).toBe("string");
    expect((letter!.raw.body as string).length).toBe(256 * 1024);
    expect((letter!.raw.body as string).startsWith('{"version":3,')).toBe(true);
    expect(letter).toMatchObject({ truncated: true });
    expect(letter!.reason).toMatch(/raw\.body \(\d+ characters of JSON\) kept as the first 262144 characters/);
  });

  test("a dead letter keeps a body key named __proto__ as a key", async () => {
    const input = await fresh();
    input.messages[0] = `{"version":"x","__proto__":{"a":1}}`;
    const [letter] = decode(input).deadLetters;
    expect(letter!.raw.body).toBe(`{"version":"x","__proto__":{"a":1}}`);
    input.messages[0] = JSON.parse(`{"version":"x","__proto__":{"a":1}}`);
    const [again] = decode(input).deadLetters;
    expect(JSON.stringify(again!.raw.body)).toBe(`{"version":"x","__proto__":{"a":1}}`);
  });

  test.each([
    ["0001-01-01T00:00:00Z", "as IoT Hub stamps a new twin"],
    ["9999-12-31T23:59:59.9999999Z", "the last storable instant"],
  ])("accepts a $lastUpdated of %s (%s)", async (when) => {
    const input = await fresh();
    spoilBody(input, "properties.desired.$metadata.$lastUpdated", when);
    const result = decode(input);
    expect(result.deadLetters).toEqual([]);
    expect(result.events).toHaveLength(1);
  });

  test.each([
    ["a JSON string", (body: unknown) => `\uFEFF${JSON.stringify(body)}`],
    ["a Buffer", (body: unknown) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(body))])],
  ])("accepts a body as %s starting with a UTF-8 byte order mark", async (_name, wrap) => {
    const input = await fresh();
    input.messages[0] = wrap(desired.body);
    const result = decode(input);
    expect(result.deadLetters).toEqual([]);
    expect(result.events[0]).toMatchObject({ version: 3, desired: { fanOn: true, $version: 2 } });
  });

  test("decodes twin-change events whose partitionContext has partitionId null, partition unknown", async () => {
    const input = structuredClone(await toTriggerInput([desired, twin.report({ fanOn: true })]));
    input.triggerMetadata.partitionContext = { partitionId: null };
    const result = decode(input);
    expect({ ignored: result.ignored, dead: result.deadLetters.length }).toEqual({ ignored: 0, dead: 0 });
    expect(result.events.map((e) => [e.version, e.partitionId])).toEqual([
      [3, undefined],
      [4, undefined],
    ]);
  });

  test.each<[string, unknown]>([
    ["a string", "garbage"],
    ["an object partitionId", { partitionId: {} }],
    ["a partitionId holding NUL", { partitionId: "0\u0000" }],
    ["a negative partitionId", { partitionId: -1 }],
  ])("a partitionContext that is %s leaves only the partition unknown", async (_name, partitionContext) => {
    const input = await fresh();
    input.triggerMetadata.partitionContext = partitionContext;
    expect(decode(input).events).toEqual([expect.objectContaining({ version: 3, partitionId: undefined, sequenceNumber: 1 })]);
  });

  test("a malformed sequenceNumberArray leaves only the sequence numbers unknown", async () => {
    const input = await fresh();
    input.triggerMetadata.sequenceNumberArray = "many";
    // The host puts the number in each system-properties entry twice: SequenceNumber and the x-opt annotation.
    delete systemProperties(input).sequenceNumber;
    delete systemProperties(input)["x-opt-sequence-number"];
    expect(decode(input).events).toEqual([expect.objectContaining({ version: 3, partitionId: "0", sequenceNumber: undefined })]);
  });

  test.each<[string, (input: TriggerInput) => void]>([
    ["no systemPropertiesArray", (i) => delete i.triggerMetadata.systemPropertiesArray],
    ["a systemPropertiesArray that is not an array", (i) => (i.triggerMetadata.systemPropertiesArray = { 0: systemProperties(i) })],
    ["system properties that are not an object", (i) => (i.triggerMetadata.systemPropertiesArray = ["twinChangeEvents"])],
    ["no iothub-message-source", (i) => delete systemProperties(i)["iothub-message-source"]],
    ["an iothub-message-source that is not a string", (i) => (systemProperties(i)["iothub-message-source"] = 7)],
    ["an empty iothub-message-source", (i) => (systemProperties(i)["iothub-message-source"] = "")],
    ["trigger metadata that is not an object", (i) => (i.triggerMetadata = "metadata" as never)],
  ])("dead-letters an event that cannot be attributed (%s), never counts it ignored", async (_name, spoil) => {
    const input = await fresh();
    spoil(input);
    const result = decode(input);
    expect(result.ignored).toBe(0);
    expect(result.events).toEqual([]);
    expect(result.deadLetters).toEqual([expect.objectContaining({ index: 0, reason: expect.stringMatching(/cannot attribute the event/) })]);
  });

  test("an unattributable event's dead letter keeps its partition and sequence number", async () => {
    const input = await fresh();
    delete input.triggerMetadata.systemPropertiesArray;
    expect(decode(input).deadLetters).toEqual([expect.objectContaining({ partitionId: "0", sequenceNumber: 1 })]);
  });

  test("an event whose properties throw when read is a dead letter, and decoding does not throw", async () => {
    const input = await fresh();
    const hostile = new Proxy(appProperties(input), {
      get: () => {
        throw new Error("trap");
      },
      ownKeys: () => {
        throw new Error("trap");
      },
    });
    input.triggerMetadata.propertiesArray = [hostile];
    const result = decode(input);
    expect(result.deadLetters).toEqual([expect.objectContaining({ index: 0, reason: expect.stringMatching(/could not decode the event: trap/), raw: { unreadable: "the event could not be copied (Error)" } })]);
  });

  test("a twin-change event whose propertiesArray is unusable is a dead letter, not ignored", async () => {
    const input = await fresh();
    input.triggerMetadata.propertiesArray = null as never;
    const result = decode(input);
    expect(result.ignored).toBe(0);
    expect(result.deadLetters).toEqual([expect.objectContaining({ reason: expect.stringMatching(/opType/) })]);
  });

  test("a system property inherited from Object.prototype does not attribute an event", async () => {
    const input = await fresh();
    input.triggerMetadata.systemPropertiesArray = [Object.create({ "iothub-message-source": "twinChangeEvents" })];
    expect(decode(input).deadLetters).toEqual([expect.objectContaining({ reason: expect.stringMatching(/no iothub-message-source/) })]);
  });
});

/** Device lifecycle notifications exactly as Microsoft's non-telemetry event schema shows them. */
function lifecycleEvent(opType: string, deviceId: string, moduleId?: string): ReceivedEvent {
  const at = "2026-01-01T00:00:05.0000000Z";
  const section = { $metadata: { $lastUpdated: "0001-01-01T00:00:00Z" }, $version: 1 };
  return {
    body: { deviceId, ...(moduleId ? { moduleId } : {}), etag: "AAAAAAAAAAE=", version: 2, properties: { desired: section, reported: section } },
    properties: { hubName: "contoso-hub", deviceId, ...(moduleId ? { moduleId } : {}), operationTimestamp: at, "iothub-message-schema": "deviceLifecycleNotification", opType },
    systemProperties: {
      "user-id": "contoso-hub",
      "correlation-id": "a1b2c3",
      "content-type": "application/json",
      "content-encoding": "utf-8",
      "iothub-connection-device-id": deviceId,
      ...(moduleId ? { "iothub-connection-module-id": moduleId } : {}),
      "iothub-enqueuedtime": Date.parse("2026-01-01T00:00:05Z"),
      "iothub-message-source": "deviceLifecycleEvents",
    },
    enqueuedTimeUtc: "2026-01-01T00:00:05.000Z",
    sequenceNumber: 41,
    offset: "4100",
    partitionId: "1",
  };
}

describe("decodeTwinChanges on device lifecycle events", () => {
  test("decodes createDeviceIdentity with the twin its body carries", async () => {
    const result = decode(await toTriggerInput([lifecycleEvent("createDeviceIdentity", "boiler-9")]));
    expect({ events: result.events, ignored: result.ignored, deadLetters: result.deadLetters }).toEqual({ events: [], ignored: 0, deadLetters: [] });
    expect(result.lifecycle).toEqual([
      {
        key: { deviceId: "boiler-9", moduleId: null },
        opType: "createDeviceIdentity",
        twin: {
          deviceId: "boiler-9",
          moduleId: null,
          version: 2,
          etag: "AAAAAAAAAAE=",
          tags: {},
          desired: { $metadata: { $lastUpdated: "0001-01-01T00:00:00Z" }, $version: 1 },
          reported: { $metadata: { $lastUpdated: "0001-01-01T00:00:00Z" }, $version: 1 },
        },
        enqueuedTime: "2026-01-01T00:00:05.000Z",
        sequenceNumber: 41,
        partitionId: "1",
        index: 0,
      },
    ]);
  });

  test("decodes deleteDeviceIdentity of a module as that module twin's event", async () => {
    const result = decode(await toTriggerInput([lifecycleEvent("deleteDeviceIdentity", "gateway-1", "modbus")]));
    expect(result.lifecycle).toEqual([expect.objectContaining({ key: { deviceId: "gateway-1", moduleId: "modbus" }, opType: "deleteDeviceIdentity", twin: expect.objectContaining({ version: 2 }) })]);
  });

  test("keeps lifecycle and twin-change events of one batch in their places", async () => {
    const twin = new FixtureTwin("boiler-9");
    const result = decode(await toTriggerInput([lifecycleEvent("createDeviceIdentity", "boiler-9"), twin.setDesired({ a: 1 }), telemetryEvent("boiler-9"), lifecycleEvent("deleteDeviceIdentity", "boiler-9")]));
    expect(result.lifecycle.map((e) => [e.index, e.opType])).toEqual([
      [0, "createDeviceIdentity"],
      [3, "deleteDeviceIdentity"],
    ]);
    expect(result.events.map((e) => e.index)).toEqual([1]);
    expect(result.ignored).toBe(1);
  });

  test("a delete whose body carries no version decodes without a twin", async () => {
    const input = structuredClone(await toTriggerInput([lifecycleEvent("deleteDeviceIdentity", "boiler-9")]));
    input.messages[0] = { deviceId: "boiler-9" };
    expect(decode(input).lifecycle).toEqual([expect.objectContaining({ opType: "deleteDeviceIdentity", twin: undefined })]);
  });

  test.each<[string, (input: TriggerInput) => void, RegExp]>([
    ["an unknown opType", (i) => (appProperties(i).opType = "updateDeviceIdentity"), /opType must be "createDeviceIdentity" or "deleteDeviceIdentity"/],
    ["a twin-change opType", (i) => (appProperties(i).opType = "updateTwin"), /opType/],
    ["a NUL in the deviceId", (i) => (appProperties(i).deviceId = "boiler\u00009"), /deviceId is not an IoT Hub id/],
    ["a lone surrogate in the moduleId", (i) => (appProperties(i).moduleId = "\uD800"), /moduleId is not an IoT Hub id/],
    ["a body that is not JSON", (i) => (i.messages[0] = "{"), /body is not JSON/],
    ["a created twin without a version", (i) => spoilBody(i, "version", undefined), /version/],
    ["a fractional twin version", (i) => spoilBody(i, "version", 2.5), /version/],
    ["a body for another device", (i) => spoilBody(i, "deviceId", "boiler-10"), /deviceId differs/],
    ["a $lastUpdated of year -1", (i) => spoilBody(i, "properties", { desired: { $metadata: { $lastUpdated: "-000001-01-01T00:00:00Z" }, $version: 1 } }), /\$lastUpdated/],
    ["a NUL in a tag", (i) => spoilBody(i, "tags", { site: "\u0000" }), /cannot store at tags\.site/],
  ])("dead-letters a lifecycle event with %s", async (_name, spoil, reason) => {
    const input = structuredClone(await toTriggerInput([lifecycleEvent("createDeviceIdentity", "boiler-9")]));
    spoil(input);
    const result = decode(input);
    expect({ lifecycle: result.lifecycle, ignored: result.ignored }).toEqual({ lifecycle: [], ignored: 0 });
    expect(result.deadLetters).toEqual([expect.objectContaining({ index: 0, reason: expect.stringMatching(reason) })]);
    expectStorable(result.deadLetters[0]!);
  });
});
