/**
 * The replay line (`ReceivedEvent`, shared/events/ReceivedEvent.ts: the JSONL format of
 * `twin-reconciler replay`) and the SDK's `ReceivedEventData` (what `EventHubConsumerClient`
 * hands `processEvents`), each way. A replay line keeps its system properties under the AMQP names
 * with the x-opt annotations in them (`content-type`, `x-opt-sequence-number`, …), as a Functions
 * host shows them; the SDK lifts the x-opt annotations into fields and names the AMQP properties
 * in camelCase (`contentType`), as @azure/event-hubs' `fromRheaMessage` does.
 */
import type { ReceivedEventData } from "@azure/event-hubs";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";

/** AMQP property name → the SDK's name for it (@azure/event-hubs eventData.ts `messagePropertiesMap`). */
const sdkPropertyNames: Record<string, string> = {
  "message-id": "messageId",
  "user-id": "userId",
  to: "to",
  subject: "subject",
  "reply-to": "replyTo",
  "correlation-id": "correlationId",
  "content-type": "contentType",
  "content-encoding": "contentEncoding",
  "absolute-expiry-time": "absoluteExpiryTime",
  "creation-time": "creationTime",
  "group-id": "groupId",
  "group-sequence": "groupSequence",
  "reply-to-group-id": "replyToGroupId",
};
const amqpPropertyNames: Record<string, string> = Object.fromEntries(Object.entries(sdkPropertyNames).map(([amqp, sdk]) => [sdk, amqp]));

/** The annotations the SDK turns into fields of ReceivedEventData. */
const liftedAnnotations = new Set(["x-opt-sequence-number", "x-opt-offset", "x-opt-enqueued-time", "x-opt-partition-key"]);

/** A replay line as the SDK would have handed it over. */
export function toReceivedEventData(event: ReceivedEvent): ReceivedEventData {
  const systemProperties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event.systemProperties)) {
    if (liftedAnnotations.has(key)) continue;
    // The SDK turns AMQP timestamps into epoch milliseconds.
    systemProperties[sdkPropertyNames[key] ?? key] = key === "iothub-enqueuedtime" ? epochMs(value) : value;
  }
  const partitionKey = event.systemProperties["x-opt-partition-key"];
  // A time without a zone is UTC (as the decoder reads it), not local time.
  const enqueuedTimeUtc = new Date(/([zZ]|[+-]\d\d:?\d\d)$/.test(event.enqueuedTimeUtc) ? event.enqueuedTimeUtc : `${event.enqueuedTimeUtc}Z`);
  if (Number.isNaN(enqueuedTimeUtc.getTime())) throw new TypeError(`enqueuedTimeUtc is not a time: ${JSON.stringify(event.enqueuedTimeUtc)}`);
  const data: ReceivedEventData = {
    body: event.body,
    properties: { ...event.properties },
    systemProperties,
    enqueuedTimeUtc,
    sequenceNumber: event.sequenceNumber,
    offset: event.offset,
    partitionKey: typeof partitionKey === "string" ? partitionKey : null,
    getRawAmqpMessage: () => ({
      body: event.body,
      applicationProperties: { ...event.properties },
      messageAnnotations: {
        ...systemProperties,
        "x-opt-sequence-number": event.sequenceNumber,
        "x-opt-offset": event.offset,
        "x-opt-enqueued-time": enqueuedTimeUtc,
        ...(typeof partitionKey === "string" ? { "x-opt-partition-key": partitionKey } : {}),
      },
    }),
  };
  for (const [sdkName, field] of [["contentType", "contentType"], ["correlationId", "correlationId"], ["messageId", "messageId"]] as const) {
    const value = systemProperties[sdkName];
    if (typeof value === "string" || typeof value === "number") Object.assign(data, { [field]: value });
  }
  return data;
}

/** What the SDK handed over, as a replay line (what `twin-reconciler capture` writes). */
export function toReceivedEvent(data: ReceivedEventData, partitionId: string): ReceivedEvent {
  const systemProperties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data.systemProperties ?? {})) {
    systemProperties[amqpPropertyNames[key] ?? key] = Buffer.isBuffer(value) ? value.toString("utf8") : value;
  }
  const enqueuedTimeUtc = data.enqueuedTimeUtc.toISOString();
  systemProperties["x-opt-sequence-number"] = data.sequenceNumber;
  systemProperties["x-opt-offset"] = data.offset;
  systemProperties["x-opt-enqueued-time"] = enqueuedTimeUtc;
  if (data.partitionKey != null) systemProperties["x-opt-partition-key"] = data.partitionKey;
  const body: unknown = data.body;
  return {
    // Bytes that were not JSON (the SDK keeps them as a Buffer) are kept as their UTF-8 text.
    body: body instanceof Uint8Array ? Buffer.from(body).toString("utf8") : body,
    properties: { ...(data.properties ?? {}) },
    systemProperties,
    enqueuedTimeUtc,
    sequenceNumber: data.sequenceNumber,
    offset: data.offset,
    partitionId,
  };
}

function epochMs(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? value : ms;
}
