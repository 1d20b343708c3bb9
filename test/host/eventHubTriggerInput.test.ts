/**
 * The one trigger-input converter, checked through @azure/functions' real conversion: the RPC input
 * is handed to functions registered with `app.eventHub` (cardinality many and one) and invoked by
 * the library's own programming model, and what their handlers receive is compared with tables
 * written by hand from the Event Hubs extension's binding data (EventHubTriggerBindingStrategy), the
 * host's typed-data rules (GrpcMessageConversionExtensions.ToRpc, no empty entries for the Node
 * worker) and a captured host payload: PartitionContext's four fields, offsets and x-opt-offset as
 * numbers, times as `2023-03-13T01:25:02.25`, PartitionKeyArray empty when no event had a key.
 */
import { app, type InvocationContext } from "@azure/functions";
import type { ReceivedEventData } from "@azure/event-hubs";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toRpcEventHubBatch, toRpcEventHubEvent, type PartitionInfo, type RpcEventHubInput } from "../../local/host/eventHubTriggerInput";
import { toFunctionRegistration, triggerOf } from "../../local/host/functionRegistration";
import { invokeFunction, toProgrammingModel } from "../../local/host/invokeFunction";
import { functionsCoreState } from "../../local/host/loadFunctions";
import { toReceivedEvent, toReceivedEventData } from "../../local/host/receivedEventData";
import { toTriggerInput } from "../../local/host/toTriggerInput";

const state = functionsCoreState();
const received: Record<string, { input: unknown; triggerMetadata: unknown }> = {};
for (const cardinality of ["many", "one"] as const) {
  app.eventHub(`capture-${cardinality}`, {
    connection: "TwinEvents",
    eventHubName: "twin-changes",
    consumerGroup: "$Default",
    cardinality,
    handler: (input: unknown, context: InvocationContext) => {
      received[cardinality] = { input, triggerMetadata: context.triggerMetadata };
    },
  });
}

/** What the handler of a `cardinality` function receives for this RPC input. */
async function handlerSees(cardinality: "many" | "one", rpc: RpcEventHubInput) {
  const registration = toFunctionRegistration(`capture-${cardinality}`, state.functions.get(`capture-${cardinality}`));
  delete received[cardinality];
  await invokeFunction(
    toProgrammingModel(state.programmingModel),
    registration,
    { inputData: [{ name: triggerOf(registration).name, data: rpc.data }], triggerMetadata: rpc.triggerMetadata },
    () => undefined,
  );
  return received[cardinality]!;
}

const partition: PartitionInfo = { fullyQualifiedNamespace: "twins.servicebus.windows.net", eventHubName: "twin-changes", consumerGroup: "$Default", partitionId: "2" };

/** A ReceivedEventData as @azure/event-hubs hands it to processEvents (fromRheaMessage's shape). */
function sdkEvent(fields: Omit<ReceivedEventData, "getRawAmqpMessage">): ReceivedEventData {
  return { ...fields, getRawAmqpMessage: () => ({ body: fields.body }) };
}

const twinChange = sdkEvent({
  body: { version: 3, properties: { desired: { fanOn: true, $version: 2 } } },
  properties: { deviceId: "boiler-7", hubName: "hub", opType: "updateTwin", Source: "route" },
  systemProperties: {
    "iothub-connection-device-id": "boiler-7",
    "iothub-message-source": "twinChangeEvents",
    "iothub-enqueuedtime": Date.UTC(2026, 2, 1, 8, 5, 2, 250),
    contentType: "application/json",
    contentEncoding: "utf-8",
  },
  enqueuedTimeUtc: new Date("2026-03-01T08:05:02.250Z"),
  sequenceNumber: 17,
  offset: "4096",
  partitionKey: null,
  contentType: "application/json",
});
const notJson = sdkEvent({
  body: Buffer.from("{ not json"),
  properties: {},
  systemProperties: { "iothub-connection-device-id": "fan-2" },
  enqueuedTimeUtc: new Date("2026-03-01T08:05:03.000Z"),
  sequenceNumber: 18,
  offset: "4608",
  partitionKey: "fan-2",
});
const emptyBody = sdkEvent({
  body: Buffer.alloc(0),
  properties: { deviceId: "fan-3" },
  systemProperties: {},
  enqueuedTimeUtc: new Date("2026-03-01T08:05:04.100Z"),
  sequenceNumber: 19,
  offset: "4700",
  partitionKey: null,
});

// Written out by hand: what the handler must see for each event's entry.
const twinChangeSystemProperties = {
  "iothub-connection-device-id": "boiler-7",
  "iothub-message-source": "twinChangeEvents",
  "iothub-enqueuedtime": "2026-03-01T08:05:02.25Z",
  "content-type": "application/json",
  "content-encoding": "utf-8",
  "x-opt-sequence-number": 17,
  "x-opt-offset": 4096,
  "x-opt-enqueued-time": "2026-03-01T08:05:02.25+00:00",
  sequenceNumber: 17,
  offset: 4096,
  partitionKey: null,
  enqueuedTimeUtc: "2026-03-01T08:05:02.25",
};
const partitionContext = { fullyQualifiedNamespace: "twins.servicebus.windows.net", eventHubName: "twin-changes", consumerGroup: "$Default", partitionId: "2" };

describe("toRpcEventHubBatch through @azure/functions (cardinality many)", () => {
  it("gives the handler the bodies JSON-parsed and the binding data camel-cased, as on Azure", async () => {
    const seen = await handlerSees("many", toRpcEventHubBatch([twinChange, notJson], partition));
    expect(seen.input).toEqual([{ version: 3, properties: { desired: { fanOn: true, $version: 2 } } }, "{ not json"]);
    expect(seen.triggerMetadata).toEqual({
      partitionContext,
      // Only the event that had a key: the host leaves null entries out of a string collection.
      partitionKeyArray: ["fan-2"],
      offsetArray: [4096, 4608],
      sequenceNumberArray: [17, 18],
      enqueuedTimeUtcArray: ["2026-03-01T08:05:02.25", "2026-03-01T08:05:03"],
      // The library lower-cases the first letter of every key, application properties included.
      propertiesArray: [{ deviceId: "boiler-7", hubName: "hub", opType: "updateTwin", source: "route" }, {}],
      systemPropertiesArray: [
        twinChangeSystemProperties,
        {
          "iothub-connection-device-id": "fan-2",
          "x-opt-sequence-number": 18,
          "x-opt-offset": 4608,
          "x-opt-enqueued-time": "2026-03-01T08:05:03+00:00",
          "x-opt-partition-key": "fan-2",
          sequenceNumber: 18,
          offset: 4608,
          partitionKey: "fan-2",
          enqueuedTimeUtc: "2026-03-01T08:05:03",
        },
      ],
    });
  });

  it("leaves an empty body out of the messages while the metadata arrays keep its entry, as the host does for the Node worker", async () => {
    const seen = await handlerSees("many", toRpcEventHubBatch([twinChange, emptyBody], partition));
    expect(seen.input).toEqual([{ version: 3, properties: { desired: { fanOn: true, $version: 2 } } }]);
    expect(seen.triggerMetadata).toMatchObject({ sequenceNumberArray: [17, 19], enqueuedTimeUtcArray: ["2026-03-01T08:05:02.25", "2026-03-01T08:05:04.1"] });
  });
});

describe("toRpcEventHubEvent through @azure/functions (cardinality one)", () => {
  it("gives the handler one parsed body and the singular binding data", async () => {
    const seen = await handlerSees("one", toRpcEventHubEvent(twinChange, partition));
    expect(seen.input).toEqual({ version: 3, properties: { desired: { fanOn: true, $version: 2 } } });
    expect(seen.triggerMetadata).toEqual({
      partitionContext,
      partitionKey: undefined,
      offset: 4096,
      sequenceNumber: 17,
      enqueuedTimeUtc: "2026-03-01T08:05:02.25",
      properties: { deviceId: "boiler-7", hubName: "hub", opType: "updateTwin", source: "route" },
      systemProperties: twinChangeSystemProperties,
    });
  });
});

describe("replay lines and ReceivedEventData", () => {
  // A replay line as the emulator and `capture` write them.
  const line: ReceivedEvent = {
    body: { version: 3 },
    properties: { deviceId: "boiler-7", opType: "updateTwin" },
    systemProperties: {
      "iothub-connection-device-id": "boiler-7",
      "content-type": "application/json",
      "correlation-id": "boiler-7-3",
      "x-opt-sequence-number": 17,
      "x-opt-offset": "4096",
      "x-opt-enqueued-time": "2026-03-01T08:05:02.250Z",
      "x-opt-partition-key": "boiler-7",
    },
    enqueuedTimeUtc: "2026-03-01T08:05:02.250Z",
    sequenceNumber: 17,
    offset: "4096",
    partitionId: "2",
  };

  it("turns a replay line into what the SDK hands processEvents", () => {
    const { getRawAmqpMessage, ...data } = toReceivedEventData(line);
    expect(typeof getRawAmqpMessage).toBe("function");
    expect(data).toEqual({
      body: { version: 3 },
      properties: { deviceId: "boiler-7", opType: "updateTwin" },
      systemProperties: { "iothub-connection-device-id": "boiler-7", contentType: "application/json", correlationId: "boiler-7-3" },
      enqueuedTimeUtc: new Date("2026-03-01T08:05:02.250Z"),
      sequenceNumber: 17,
      offset: "4096",
      partitionKey: "boiler-7",
      contentType: "application/json",
      correlationId: "boiler-7-3",
    });
  });

  it("writes back the same replay line from what the SDK handed over", () => {
    expect(toReceivedEvent(toReceivedEventData(line), "2")).toEqual(line);
  });

  it("keeps a body the SDK left as bytes as its text", () => {
    expect(toReceivedEvent(notJson, "2")).toMatchObject({ body: "{ not json", partitionId: "2", offset: "4608", sequenceNumber: 18 });
  });

  it("refuses a replay line whose enqueuedTimeUtc is not a time, naming the field", () => {
    expect(() => toReceivedEventData({ ...line, enqueuedTimeUtc: "yesterday" })).toThrow(/enqueuedTimeUtc/);
  });
});

describe("toTriggerInput (the handler-level form for replay, bench and tests)", () => {
  it("gives what the handler receives for a batch of replay lines", async () => {
    const line: ReceivedEvent = {
      body: { version: 1 },
      properties: { deviceId: "d1" },
      systemProperties: { "iothub-connection-device-id": "d1" },
      enqueuedTimeUtc: "2026-01-01T00:00:00.000Z",
      sequenceNumber: 5,
      offset: "500",
      partitionId: "3",
    };
    expect(await toTriggerInput([line], "hub-a", "cg-a")).toEqual({
      messages: [{ version: 1 }],
      triggerMetadata: {
        partitionContext: { fullyQualifiedNamespace: "localhost", eventHubName: "hub-a", consumerGroup: "cg-a", partitionId: "3" },
        partitionKeyArray: [],
        offsetArray: [500],
        sequenceNumberArray: [5],
        enqueuedTimeUtcArray: ["2026-01-01T00:00:00"],
        propertiesArray: [{ deviceId: "d1" }],
        systemPropertiesArray: [
          {
            "iothub-connection-device-id": "d1",
            "x-opt-sequence-number": 5,
            "x-opt-offset": 500,
            "x-opt-enqueued-time": "2026-01-01T00:00:00+00:00",
            sequenceNumber: 5,
            offset: 500,
            partitionKey: null,
            enqueuedTimeUtc: "2026-01-01T00:00:00",
          },
        ],
      },
    });
  });
});
