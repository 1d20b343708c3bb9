import { createHmac } from "node:crypto";
import { connect as connectTcp } from "node:net";
import {
  EventHubConsumerClient,
  EventHubProducerClient,
  type Checkpoint,
  type CheckpointStore,
  type PartitionOwnership,
  earliestEventPosition,
  latestEventPosition,
  type EventPosition,
  type LastEnqueuedEventProperties,
  type ReceivedEventData,
} from "@azure/event-hubs";
import { Client, type Twin as DeviceTwin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { connect as connectAmqp, types, type Connection, type Message, type Receiver } from "rhea";
import { startEmulator, type Emulator } from "../../local/emulator";
import { startEventHubsEndpoint, type EventHubsEndpoint } from "../../local/emulator/startEventHubsEndpoint";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { InMemoryEventStream } from "../host/InMemoryEventStream";

// The unmodified @azure/event-hubs consumer against the emulator's AMQP endpoint. The truth each
// received event is compared with is the emulator's stream itself (`emulator.events.read`), or,
// for the in-memory stream, the values the test appended. The SDK's view of an AMQP message is
// written out by hand below from @azure/event-hubs' `fromRheaMessage`: AMQP properties become
// camel-cased system properties (`contentType`, `userId`, …; `user-id` is binary, so a Buffer that
// the SDK copies key by key), timestamps become epoch milliseconds, `x-opt-*` become fields.

const sdkPropertyName: Record<string, string> = {
  "content-type": "contentType",
  "content-encoding": "contentEncoding",
  "correlation-id": "correlationId",
  "message-id": "messageId",
  "user-id": "userId",
};

function sdkView(event: ReceivedEvent): Record<string, unknown> {
  const systemProperties: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event.systemProperties)) {
    if (name.startsWith("x-opt-")) continue;
    if (name === "iothub-enqueuedtime") systemProperties[name] = Date.parse(String(value));
    else if (name === "user-id") systemProperties.userId = { ...Buffer.from(String(value)) };
    else systemProperties[sdkPropertyName[name] ?? name] = value;
  }
  return {
    body: event.body,
    properties: event.properties,
    systemProperties,
    sequenceNumber: event.sequenceNumber,
    offset: event.offset,
    enqueuedTimeUtc: new Date(event.enqueuedTimeUtc),
    partitionKey: event.systemProperties["iothub-connection-device-id"],
  };
}

function received(event: ReceivedEventData): Record<string, unknown> {
  return {
    body: event.body,
    properties: event.properties,
    systemProperties: event.systemProperties,
    sequenceNumber: event.sequenceNumber,
    offset: event.offset,
    enqueuedTimeUtc: event.enqueuedTimeUtc,
    partitionKey: event.partitionKey,
  };
}

interface ReceiveOptions {
  consumerGroup?: string;
  startPosition: EventPosition;
  /** Stop once this many events arrived and a wait of `maxWaitTimeInSeconds` brought nothing more. */
  count: number;
  maxBatchSize?: number;
  trackLastEnqueuedEventProperties?: boolean;
  /** Called once the link is open (after the first empty wait). */
  onIdle?: () => void;
}

/** Subscribes to one partition with the SDK and returns what it delivered (nothing more arrives after `count`). */
async function receive(connectionString: string, partitionId: string, options: ReceiveOptions): Promise<{ events: ReceivedEventData[]; batchSizes: number[]; last: LastEnqueuedEventProperties }> {
  const client = new EventHubConsumerClient(options.consumerGroup ?? "$Default", connectionString);
  const events: ReceivedEventData[] = [];
  const batchSizes: number[] = [];
  let last: LastEnqueuedEventProperties = {};
  let idled = false;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out with ${events.length} of ${options.count} events`)), 30_000);
      const subscription = client.subscribe(
        partitionId,
        {
          processEvents: async (batch, context) => {
            events.push(...batch);
            if (batch.length > 0) batchSizes.push(batch.length);
            last = { ...context.lastEnqueuedEventProperties };
            if (batch.length === 0 && !idled) {
              idled = true;
              options.onIdle?.();
            }
            if (batch.length === 0 && events.length >= options.count) {
              clearTimeout(timer);
              await subscription.close();
              resolve();
            }
          },
          processError: async (error) => {
            clearTimeout(timer);
            await subscription.close();
            reject(error);
          },
        },
        {
          startPosition: options.startPosition,
          maxBatchSize: options.maxBatchSize ?? 50,
          maxWaitTimeInSeconds: 0.4,
          ...(options.trackLastEnqueuedEventProperties === true ? { trackLastEnqueuedEventProperties: true } : {}),
        },
      );
    });
  } finally {
    await client.close();
  }
  return { events, batchSizes, last };
}

/** The first error the SDK's subscription reports for a partition. */
async function subscribeError(connectionString: string, partitionId: string): Promise<Error & { code?: string }> {
  const client = new EventHubConsumerClient("$Default", connectionString);
  try {
    return await new Promise((resolve) => {
      const subscription = client.subscribe(partitionId, {
        processEvents: async () => undefined,
        processError: async (error) => {
          await subscription.close();
          resolve(error as Error & { code?: string });
        },
      });
    });
  } finally {
    await client.close();
  }
}

function parseConnectionString(connectionString: string): Record<string, string> {
  return Object.fromEntries(connectionString.split(";").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
}

function withKey(connectionString: string, key: string): string {
  return connectionString.replace(/SharedAccessKey=[^;]*/, `SharedAccessKey=${key}`);
}

/** The SAS token Service Bus expects: HMAC-SHA256 keyed with the key's UTF-8 bytes over `encodeURIComponent(audience) + "\n" + expiry`. */
function sasToken(audience: string, signingKey: string): string {
  const expiry = Math.floor(Date.now() / 1000) + 600;
  const sr = encodeURIComponent(audience);
  const sig = createHmac("sha256", signingKey).update(`${sr}\n${expiry}`).digest("base64");
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}&skn=RootManageSharedAccessKey`;
}

async function openAmqp(port: number): Promise<Connection> {
  const connection = connectAmqp({ host: "127.0.0.1", port, username: "RootManageSharedAccessKey", reconnect: false });
  await new Promise((resolve) => connection.once("connection_open", resolve));
  return connection;
}

async function closeAmqp(connection: Connection): Promise<void> {
  const closed = new Promise((resolve) => connection.once("connection_close", resolve));
  connection.close();
  await closed;
}

/** CBS put-token over raw AMQP; returns the reply's application properties (status code, condition). */
async function putToken(connection: Connection, audience: string, signingKey: string): Promise<Record<string, unknown>> {
  const replies = connection.open_receiver({ source: { address: "$cbs" }, target: { address: "cbs-replies" } });
  const requests = connection.open_sender({ target: { address: "$cbs" } });
  const answer = new Promise<Message>((resolve) => replies.once("message", (context) => resolve(context.message!)));
  requests.send({
    body: sasToken(audience, signingKey),
    message_id: "put-1",
    reply_to: "cbs-replies",
    application_properties: { operation: "put-token", name: audience, type: "servicebus.windows.net:sastoken" },
  });
  const reply = await answer;
  expect(reply.correlation_id).toBe("put-1");
  return reply.application_properties as Record<string, unknown>;
}

/** A receiver link with no credit until the test gives some. */
async function openPartitionReceiver(connection: Connection, address: string, filter: string, onMessage: (message: Message) => void): Promise<Receiver> {
  const receiver = connection.open_receiver({
    credit_window: 0,
    source: { address, filter: { "apache.org:selector-filter:string": types.wrap_described(filter, 0x468c00000004) } },
  });
  receiver.on("message", (context) => onMessage(context.message!));
  await new Promise((resolve) => receiver.once("receiver_open", resolve));
  return receiver;
}

/** A window in which nothing more should arrive. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));

async function waitUntil(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("against the emulator's routed stream", () => {
  let emulator: Emulator;
  const startedAt = Date.now();

  beforeAll(async () => {
    emulator = await startEmulator({ throttling: "off", partitionCount: 4 });
    for (const id of ["eh-a", "eh-b", "eh-c", "eh-d", "eh-e"]) emulator.createDevice(id);
    emulator.createModule("eh-a", "agent");
    const registry = emulator.createRegistryClient();
    for (const id of ["eh-a", "eh-b", "eh-c"]) {
      const { responseBody: twin } = await registry.getTwin(id);
      await registry.updateTwin(id, { tags: { site: "north" }, properties: { desired: { interval: 30 } } }, twin.etag);
    }
    const device = Client.fromConnectionString(emulator.deviceConnectionString("eh-d"), Mqtt);
    await device.setOptions({ ca: emulator.caPem });
    try {
      const twin: DeviceTwin = await device.getTwin();
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: "1.2.3" }, (error?: Error) => (error ? reject(error) : resolve())));
    } finally {
      await device.close();
    }
    emulator.updateReported({ deviceId: "eh-a", moduleId: "agent" }, { level: 3 });
    emulator.deleteDevice("eh-e");
  });

  afterAll(() => emulator.stop());

  test("the connection string has the shape of Microsoft's Event Hubs emulator, for the app's hub name", () => {
    const fields = parseConnectionString(emulator.eventHubs.connectionString);
    expect(fields).toEqual({
      Endpoint: `sb://localhost:${emulator.eventHubs.port}`,
      SharedAccessKeyName: "RootManageSharedAccessKey",
      SharedAccessKey: expect.stringMatching(/^[A-Za-z0-9+/=]{40,}$/),
      EntityPath: "twin-changes",
      UseDevelopmentEmulator: "true",
    });
    expect(emulator.eventHubs.eventHubName).toBe("twin-changes");
  });

  test("getPartitionIds and getEventHubProperties give the stream's partitions and the hub's name", async () => {
    const client = new EventHubConsumerClient("$Default", emulator.eventHubs.connectionString);
    try {
      expect(await client.getPartitionIds()).toEqual(["0", "1", "2", "3"]);
      const properties = await client.getEventHubProperties();
      expect(properties).toEqual({ name: "twin-changes", partitionIds: ["0", "1", "2", "3"], createdOn: expect.any(Date), isGeoDrEnabled: false });
      expect(properties.createdOn.getTime()).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(properties.createdOn.getTime()).toBeLessThanOrEqual(Date.now());
    } finally {
      await client.close();
    }
  });

  test("getPartitionProperties gives each partition's runtime info: last enqueued sequence number, offset and time", async () => {
    const client = new EventHubConsumerClient("$Default", emulator.eventHubs.connectionString);
    try {
      for (const partitionId of emulator.events.partitionIds) {
        const log = emulator.events.read(partitionId, 0, 10_000);
        const last = log.at(-1);
        expect(await client.getPartitionProperties(partitionId)).toEqual({
          eventHubName: "twin-changes",
          partitionId,
          beginningSequenceNumber: 0,
          lastEnqueuedSequenceNumber: last?.sequenceNumber ?? -1,
          lastEnqueuedOffset: last?.offset ?? "-1",
          lastEnqueuedOnUtc: new Date(last === undefined ? 0 : Date.parse(last.enqueuedTimeUtc)),
          isEmpty: last === undefined,
        });
      }
    } finally {
      await client.close();
    }
  });

  test("every routed event reaches each of two consumer groups exactly once, with its position, time, properties and body", async () => {
    let total = 0;
    for (const partitionId of emulator.events.partitionIds) {
      const truth = emulator.events.read(partitionId, 0, 10_000);
      total += truth.length;
      for (const consumerGroup of ["$Default", "reconciler"]) {
        const { events } = await receive(emulator.eventHubs.connectionString, partitionId, { consumerGroup, startPosition: earliestEventPosition, count: truth.length });
        expect(events.map(received)).toEqual(truth.map(sdkView));
      }
    }
    // 5 creations, 1 module creation, 3 back-end updates, 1 device and 1 module reported update, 1 deletion.
    expect(total).toBe(12);
  });

  test("start positions by offset and by enqueued time find the routed events after them", async () => {
    const partitionId = emulator.events.partitionIds.find((id) => emulator.events.read(id, 0, 10_000).length >= 3)!;
    const truth = emulator.events.read(partitionId, 0, 10_000);
    const pivot = truth[1]!;
    const after = truth.filter((e) => e.sequenceNumber > pivot.sequenceNumber);
    const byOffset = await receive(emulator.eventHubs.connectionString, partitionId, { startPosition: { offset: pivot.offset, isInclusive: true }, count: after.length + 1 });
    expect(byOffset.events.map((e) => e.sequenceNumber)).toEqual([pivot, ...after].map((e) => e.sequenceNumber));
    const laterThanPivot = truth.filter((e) => Date.parse(e.enqueuedTimeUtc) > Date.parse(pivot.enqueuedTimeUtc));
    const byTime = await receive(emulator.eventHubs.connectionString, partitionId, { startPosition: { enqueuedOn: new Date(pivot.enqueuedTimeUtc) }, count: laterThanPivot.length });
    expect(byTime.events.map((e) => e.sequenceNumber)).toEqual(laterThanPivot.map((e) => e.sequenceNumber));
  });

  test("a twin change as the SDK gives it: IoT Hub's application and system properties, JSON body decoded", async () => {
    const partitionId = emulator.events.partitionOf("eh-d");
    const truth = emulator.events.read(partitionId, 0, 10_000).find((e) => e.properties.deviceId === "eh-d" && e.properties.opType === "updateTwin")!;
    const { events } = await receive(emulator.eventHubs.connectionString, partitionId, { startPosition: { sequenceNumber: truth.sequenceNumber, isInclusive: true }, count: 1 });
    const event = events[0]!;
    expect(event.properties).toEqual({
      hubName: "local-hub",
      deviceId: "eh-d",
      operationTimestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/),
      "iothub-message-schema": "twinChangeNotification",
      opType: "updateTwin",
    });
    expect(event.systemProperties).toEqual({
      "iothub-connection-device-id": "eh-d",
      "iothub-enqueuedtime": event.enqueuedTimeUtc.getTime(),
      "iothub-message-source": "twinChangeEvents",
      contentType: "application/json",
      contentEncoding: "utf-8",
      correlationId: truth.systemProperties["correlation-id"],
      userId: { ...Buffer.from("local-hub") },
    });
    expect(event.contentType).toBe("application/json");
    expect(event.body).toMatchObject({ properties: { reported: { firmware: "1.2.3" } } });
    expect(event.getRawAmqpMessage().bodyType).toBe("data");
  });

  test("an event delivered over AMQP can no longer absorb a coalesced change: the next change arrives as its own event", async () => {
    emulator.events.setFaults({ coalesceProbability: 1 });
    try {
      const partitionId = emulator.events.partitionOf("eh-b");
      const before = emulator.events.length(partitionId);
      const { events } = await receive(emulator.eventHubs.connectionString, partitionId, {
        startPosition: latestEventPosition,
        count: 1,
        onIdle: () => {
          // Latest: the link starts after the last event; this change is read as soon as it lands.
          emulator.updateDesired("eh-b", { interval: 50 });
        },
      });
      expect(events.map((e) => e.sequenceNumber)).toEqual([before]);
      expect(events[0]!.body).toMatchObject({ properties: { desired: { interval: 50 } } });
      emulator.updateDesired("eh-b", { interval: 60 });
      expect(emulator.events.length(partitionId)).toBe(before + 2);
    } finally {
      emulator.events.setFaults({});
    }
  });

  test("an event stays in the stream until the consumer gives credit, so it can still absorb a coalesced change; a delivered one cannot", async () => {
    emulator.events.setFaults({ coalesceProbability: 1 });
    const connection = await openAmqp(emulator.eventHubs.port);
    try {
      const { SharedAccessKey: key } = parseConnectionString(emulator.eventHubs.connectionString);
      const partitionId = emulator.events.partitionOf("eh-c");
      const address = `twin-changes/ConsumerGroups/$default/Partitions/${partitionId}`;
      expect(await putToken(connection, `sb://localhost:${emulator.eventHubs.port}/${address}`, key!)).toMatchObject({ "status-code": 202 });
      // Reading what is there makes every earlier event "read": only the new ones can coalesce.
      const before = emulator.events.read(partitionId, 0, 10_000).length;
      const got: Message[] = [];
      const receiver = await openPartitionReceiver(connection, address, "amqp.annotation.x-opt-offset > '@latest'", (m) => got.push(m));
      emulator.updateDesired("eh-c", { interval: 70 });
      await settle();
      emulator.updateDesired("eh-c", { interval: 80 });
      await settle();
      expect(got).toEqual([]);
      expect(emulator.events.length(partitionId)).toBe(before + 1);
      receiver.add_credit(5);
      await waitUntil("one event arrived", () => got.length >= 1);
      await settle();
      expect(got.map((m) => m.message_annotations!["x-opt-sequence-number"])).toEqual([before]);
      emulator.updateDesired("eh-c", { interval: 90 });
      await waitUntil("the next event arrived", () => got.length >= 2);
      expect(emulator.events.length(partitionId)).toBe(before + 2);
      expect(got.map((m) => JSON.parse(Buffer.from(m.body.content as Buffer).toString("utf8")).properties.desired.interval)).toEqual([80, 90]);
    } finally {
      emulator.events.setFaults({});
      await closeAmqp(connection);
    }
  });

  test("a wrong key is refused with the SDK's UnauthorizedError", async () => {
    const client = new EventHubConsumerClient("$Default", withKey(emulator.eventHubs.connectionString, Buffer.from("wrong").toString("base64")), { retryOptions: { maxRetries: 0 } });
    try {
      await expect(client.getPartitionIds()).rejects.toMatchObject({ code: "UnauthorizedError" });
    } finally {
      await client.close();
    }
  });

  test("an unknown hub is MessagingEntityNotFoundError", async () => {
    const other = emulator.eventHubs.connectionString.replace("EntityPath=twin-changes", "EntityPath=no-such-hub");
    const client = new EventHubConsumerClient("$Default", other, { retryOptions: { maxRetries: 0 } });
    try {
      await expect(client.getPartitionIds()).rejects.toMatchObject({ code: "MessagingEntityNotFoundError" });
    } finally {
      await client.close();
    }
  });

  test("sending is refused: the endpoint serves consumers only", async () => {
    const producer = new EventHubProducerClient(emulator.eventHubs.connectionString, { retryOptions: { maxRetries: 0 } });
    const before = emulator.events.partitionIds.map((id) => emulator.events.length(id));
    try {
      await expect(producer.sendBatch([{ body: { injected: true } }])).rejects.toMatchObject({ code: "NotImplementedError" });
    } finally {
      await producer.close();
    }
    expect(emulator.events.partitionIds.map((id) => emulator.events.length(id))).toEqual(before);
  });

  test("an unknown partition is ArgumentOutOfRangeError, for properties and for receiving", async () => {
    const client = new EventHubConsumerClient("$Default", emulator.eventHubs.connectionString, { retryOptions: { maxRetries: 0 } });
    try {
      await expect(client.getPartitionProperties("9")).rejects.toMatchObject({ code: "ArgumentOutOfRangeError" });
    } finally {
      await client.close();
    }
    expect(await subscribeError(emulator.eventHubs.connectionString, "9")).toMatchObject({ code: "ArgumentOutOfRangeError" });
  });
});

describe("against an in-memory stream with hand-picked positions", () => {
  // InMemoryEventStream: sequence numbers 0.., offsets sequenceNumber * 1000, enqueued at
  // 2026-01-01T00:00:0<sequenceNumber>Z.
  const key = "contoso-test-key";
  let stream: InMemoryEventStream;
  let endpoint: EventHubsEndpoint;

  beforeAll(async () => {
    stream = new InMemoryEventStream(2);
    for (let i = 0; i < 5; i += 1) stream.append("0", { n: i }, { index: i }, { "iothub-connection-device-id": "dev" });
    endpoint = await startEventHubsEndpoint(stream, { eventHubName: "contoso-events", key });
  });

  afterAll(() => endpoint.close());

  const startPositions: Array<[string, EventPosition, number[]]> = [
    ["earliest", earliestEventPosition, [0, 1, 2, 3, 4]],
    ["sequence number, exclusive (the default)", { sequenceNumber: 2 }, [3, 4]],
    ["sequence number, inclusive", { sequenceNumber: 2, isInclusive: true }, [2, 3, 4]],
    ["offset of an event, exclusive", { offset: "2000" }, [3, 4]],
    ["offset of an event, inclusive", { offset: "2000", isInclusive: true }, [2, 3, 4]],
    ["offset between events", { offset: "1500" }, [2, 3, 4]],
    ["enqueued time of an event (strictly after it)", { enqueuedOn: new Date("2026-01-01T00:00:02Z") }, [3, 4]],
    ["enqueued time between events", { enqueuedOn: Date.parse("2026-01-01T00:00:01.500Z") }, [2, 3, 4]],
    ["enqueued time before all", { enqueuedOn: new Date("2025-12-31T00:00:00Z") }, [0, 1, 2, 3, 4]],
    ["sequence number of the last event, exclusive: nothing yet", { sequenceNumber: 4 }, []],
  ];

  test.each(startPositions)("start position %s", async (_name, startPosition, expected) => {
    const { events } = await receive(endpoint.connectionString, "0", { startPosition, count: expected.length });
    expect(events.map((e) => [e.sequenceNumber, e.offset, e.body, e.properties])).toEqual(expected.map((n) => [n, String(n * 1000), { n }, { index: n }]));
  });

  test("latest receives only events appended after the link opened, as they arrive", async () => {
    const { events } = await receive(endpoint.connectionString, "1", {
      startPosition: latestEventPosition,
      count: 2,
      onIdle: () => {
        stream.append("1", { late: 1 });
        setTimeout(() => stream.append("1", { late: 2 }), 100);
      },
    });
    expect(events.map((e) => [e.sequenceNumber, e.body])).toEqual([
      [0, { late: 1 }],
      [1, { late: 2 }],
    ]);
  });

  test("a 64 KB body (a twin near IoT Hub's 32 KB limit in both sections) arrives whole", async () => {
    const large = new InMemoryEventStream(1);
    const body = { properties: { desired: { blob: "d".repeat(32_000) }, reported: { blob: "r".repeat(32_000) } } };
    large.append("0", body);
    const other = await startEventHubsEndpoint(large, { eventHubName: "large-hub", key });
    try {
      const { events } = await receive(other.connectionString, "0", { startPosition: earliestEventPosition, count: 1 });
      expect(events.map((e) => e.body)).toEqual([body]);
    } finally {
      await other.close();
    }
  });

  test("an empty partition reports isEmpty with sequence number -1", async () => {
    const empty = new InMemoryEventStream(1);
    const other = await startEventHubsEndpoint(empty, { eventHubName: "empty-hub", key });
    const client = new EventHubConsumerClient("$Default", other.connectionString);
    try {
      expect(await client.getPartitionProperties("0")).toEqual({
        eventHubName: "empty-hub",
        partitionId: "0",
        beginningSequenceNumber: 0,
        lastEnqueuedSequenceNumber: -1,
        lastEnqueuedOffset: "-1",
        lastEnqueuedOnUtc: new Date(0),
        isEmpty: true,
      });
    } finally {
      await client.close();
      await other.close();
    }
  });

  test("many events with a small batch size all arrive once and in order, in batches no larger than the size", async () => {
    const big = new InMemoryEventStream(1);
    for (let i = 0; i < 400; i += 1) big.append("0", { i });
    const other = await startEventHubsEndpoint(big, { eventHubName: "big-hub", key });
    try {
      const { events, batchSizes, last } = await receive(other.connectionString, "0", { startPosition: earliestEventPosition, count: 400, maxBatchSize: 7, trackLastEnqueuedEventProperties: true });
      expect(events.map((e) => e.body)).toEqual(Array.from({ length: 400 }, (_, i) => ({ i })));
      expect(Math.max(...batchSizes)).toBeLessThanOrEqual(7);
      expect(last).toMatchObject({ sequenceNumber: 399, offset: "399000", enqueuedOn: new Date(Date.UTC(2026, 0, 1, 0, 0, 399)) });
    } finally {
      await other.close();
    }
  });

  test("a receiver with a higher owner level takes the partition from a lower one (ReceiverDisconnectedError)", async () => {
    const first = new EventHubConsumerClient("$Default", endpoint.connectionString);
    const second = new EventHubConsumerClient("$Default", endpoint.connectionString);
    try {
      const lost = new Promise<Error & { code?: string }>((resolve) => {
        first.subscribe("0", { processEvents: async () => undefined, processError: async (error) => resolve(error as Error & { code?: string }) }, { ownerLevel: 1, maxWaitTimeInSeconds: 0.2 });
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const taken = new Promise<void>((resolve, reject) => {
        second.subscribe("0", { processEvents: async () => resolve(), processError: async (error) => reject(error) }, { ownerLevel: 2, maxWaitTimeInSeconds: 0.2 });
      });
      await taken;
      expect(await lost).toMatchObject({ code: "ReceiverDisconnectedError" });
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  test("two consumers sharing a checkpoint store split the partitions through owner levels; the survivor takes over from the checkpoints", async () => {
    const shared = new InMemoryEventStream(4);
    const append = (round: number): void => {
      for (const partitionId of shared.partitionIds) for (let i = 0; i < 3; i += 1) shared.append(partitionId, { round, i });
    };
    append(0);
    const hubEndpoint = await startEventHubsEndpoint(shared, { eventHubName: "shared-hub", key });
    const store = new TestCheckpointStore();
    const processed: Array<{ consumer: string; partitionId: string; sequenceNumber: number }> = [];
    const errors: string[] = [];
    const consume = (consumer: string): { client: EventHubConsumerClient; close: () => Promise<void> } => {
      const client = new EventHubConsumerClient("$Default", hubEndpoint.connectionString, store, { loadBalancingOptions: { updateIntervalInMs: 200, partitionOwnershipExpirationIntervalInMs: 3000 } });
      const subscription = client.subscribe(
        {
          processEvents: async (events, context) => {
            for (const e of events) processed.push({ consumer, partitionId: context.partitionId, sequenceNumber: e.sequenceNumber });
            if (events.length > 0) await context.updateCheckpoint(events.at(-1)!);
          },
          processError: async (error) => {
            errors.push((error as { code?: string }).code ?? error.name);
          },
        },
        { startPosition: earliestEventPosition, maxBatchSize: 10, maxWaitTimeInSeconds: 0.2 },
      );
      return { client, close: async () => { await subscription.close(); await client.close(); } };
    };
    const unique = (): number => new Set(processed.map((p) => `${p.partitionId}/${p.sequenceNumber}`)).size;
    const a = consume("A");
    const b = { close: async () => undefined } as { close: () => Promise<void> };
    try {
      await waitUntil("A read round 0", () => unique() === 12);
      Object.assign(b, consume("B"));
      await waitUntil("each consumer owns two partitions", () => {
        const owners = store.owners();
        return owners.filter((o) => o === a.client.identifier).length === 2 && owners.length === 4 && !owners.includes(undefined);
      });
      append(1);
      await waitUntil("round 1 read", () => unique() === 24);
      await a.close();
      const handover = processed.length;
      const checkpointed = new Map((await store.listCheckpoints()).map((c) => [c.partitionId, c.sequenceNumber]));
      expect([...checkpointed.values()]).toEqual([5, 5, 5, 5]);
      append(2);
      await waitUntil("round 2 read", () => unique() === 36);
      const afterHandover = processed.slice(handover);
      expect(new Set(afterHandover.map((p) => p.consumer))).toEqual(new Set(["B"]));
      // Nothing at or before a checkpoint is delivered again.
      expect(afterHandover.filter((p) => p.sequenceNumber <= checkpointed.get(p.partitionId)!)).toEqual([]);
      for (const partitionId of shared.partitionIds) {
        const seen = processed.filter((p) => p.partitionId === partitionId).map((p) => p.sequenceNumber);
        // Every event at least once; a re-delivery only of what a consumer had not checkpointed when it lost the partition.
        expect([...new Set(seen)].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      }
      // B's owner-level-0 links took A's partitions: A saw them stolen, and nothing else went wrong.
      expect(errors).toContain("ReceiverDisconnectedError");
      expect(errors.filter((code) => code !== "ReceiverDisconnectedError")).toEqual([]);
    } finally {
      await a.close();
      await b.close();
      await hubEndpoint.close();
    }
  });

  describe("over raw AMQP (rhea), where the link credit is visible", () => {
    let connection: Connection;

    beforeEach(async () => {
      connection = await openAmqp(endpoint.port);
    });

    afterEach(() => closeAmqp(connection));

    const audience = (): string => `sb://localhost:${endpoint.port}/contoso-events/ConsumerGroups/$default/Partitions/0`;

    test("the endpoint never sends beyond the link credit, and continues when credit is added", async () => {
      expect(await putToken(connection, audience(), key)).toMatchObject({ "status-code": 202 });
      const got: number[] = [];
      const receiver = await openPartitionReceiver(connection, "contoso-events/ConsumerGroups/$default/Partitions/0", "amqp.annotation.x-opt-offset > '-1'", (m) => got.push(Number(m.message_annotations!["x-opt-sequence-number"])));
      await settle();
      expect(got).toEqual([]);
      receiver.add_credit(2);
      await waitUntil("two events arrived", () => got.length >= 2);
      await settle();
      expect(got).toEqual([0, 1]);
      receiver.add_credit(10);
      await waitUntil("five events arrived", () => got.length >= 5);
      await settle();
      expect(got).toEqual([0, 1, 2, 3, 4]);
      stream.append("0", { n: 5 });
      await waitUntil("the appended event arrived", () => got.length >= 6);
      expect(got).toEqual([0, 1, 2, 3, 4, 5]);
    });

    test("a drain sends what the partition holds, then gives back the rest of the credit", async () => {
      const small = new InMemoryEventStream(1);
      for (let i = 0; i < 3; i += 1) small.append("0", { i });
      const other = await startEventHubsEndpoint(small, { eventHubName: "drain-hub", key });
      const own = await openAmqp(other.port);
      try {
        expect(await putToken(own, `sb://localhost:${other.port}/drain-hub`, key)).toMatchObject({ "status-code": 202 });
        const got: unknown[] = [];
        const receiver = await openPartitionReceiver(own, "drain-hub/ConsumerGroups/$default/Partitions/0", "amqp.annotation.x-opt-offset > '-1'", (m) => got.push(m.message_annotations!["x-opt-sequence-number"]));
        const drained = new Promise((resolve) => receiver.once("receiver_drained", resolve));
        receiver.add_credit(10);
        receiver.drain_credit();
        await drained;
        expect(got).toEqual([0, 1, 2]);
        expect((receiver as Receiver & { credit: number }).credit).toBe(0);
      } finally {
        await closeAmqp(own);
        await other.close();
      }
    });

    test("a token signed with another key is answered 401 amqp:unauthorized-access, and a link without a token is refused", async () => {
      expect(await putToken(connection, audience(), "another-key")).toMatchObject({ "status-code": 401, "error-condition": "amqp:unauthorized-access" });
      const receiver = connection.open_receiver({ source: { address: "contoso-events/ConsumerGroups/$default/Partitions/0" } });
      const error = await new Promise<{ condition: string }>((resolve) => receiver.once("receiver_error", (context) => resolve(context.receiver!.error as { condition: string })));
      expect(error.condition).toBe("amqp:unauthorized-access");
    });
  });

  test("close ends every connection and stops listening", async () => {
    const own = await startEventHubsEndpoint(new InMemoryEventStream(1), { eventHubName: "closing-hub", key });
    const client = new EventHubConsumerClient("$Default", own.connectionString);
    await client.getPartitionIds();
    await own.close();
    const refused = await new Promise<string>((resolve) => {
      const socket = connectTcp(own.port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve("connected");
      });
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
    await client.close();
  });
});

/** A checkpoint store in memory with etags, as the SDK's contract asks (a claim with a stale etag is not granted). */
class TestCheckpointStore implements CheckpointStore {
  private readonly ownership = new Map<string, PartitionOwnership>();
  private readonly checkpoints = new Map<string, Checkpoint>();
  private version = 0;

  owners(): Array<string | undefined> {
    return [...this.ownership.values()].filter((o) => Date.now() - (o.lastModifiedTimeInMs ?? 0) < 3000).map((o) => o.ownerId);
  }

  async listOwnership(): Promise<PartitionOwnership[]> {
    return [...this.ownership.values()].map((o) => ({ ...o }));
  }

  async claimOwnership(claims: PartitionOwnership[]): Promise<PartitionOwnership[]> {
    const granted: PartitionOwnership[] = [];
    for (const claim of claims) {
      const current = this.ownership.get(claim.partitionId);
      if (current !== undefined && current.etag !== claim.etag) continue;
      this.version += 1;
      const next = { ...claim, etag: String(this.version), lastModifiedTimeInMs: Date.now() };
      this.ownership.set(claim.partitionId, next);
      granted.push({ ...next });
    }
    return granted;
  }

  async updateCheckpoint(checkpoint: Checkpoint): Promise<void> {
    this.checkpoints.set(checkpoint.partitionId, { ...checkpoint });
  }

  async listCheckpoints(): Promise<Checkpoint[]> {
    return [...this.checkpoints.values()].map((c) => ({ ...c }));
  }
}
