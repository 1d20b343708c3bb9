import type { ReceivedEventData } from "@azure/event-hubs";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";

/** The SDK's camel-cased AMQP message properties, under the names the Functions host gives them in system properties. */
const MESSAGE_PROPERTIES: Record<string, string> = {
  messageId: "message-id",
  userId: "user-id",
  to: "to",
  subject: "subject",
  replyTo: "reply-to",
  correlationId: "correlation-id",
  contentType: "content-type",
  contentEncoding: "content-encoding",
  absoluteExpiryTime: "absolute-expiry-time",
  creationTime: "creation-time",
  groupId: "group-id",
  groupSequence: "group-sequence",
  replyToGroupId: "reply-to-group-id",
};

/**
 * One event as `@azure/event-hubs` hands it over, as a replay line (`twin-reconciler replay`'s
 * format, `ReceivedEvent`): the body as the SDK decoded it (JSON bodies parsed; other bytes as
 * UTF-8 text), application properties, system properties (message annotations such as IoT Hub's
 * `iothub-*` as sent, AMQP message properties hyphenated as the host names them, the partition
 * key as `x-opt-partition-key`), enqueued time as ISO text, sequence number, offset, partition.
 */
export function toReplayLine(data: ReceivedEventData, partitionId: string): ReceivedEvent {
  const systemProperties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data.systemProperties ?? {})) {
    systemProperties[MESSAGE_PROPERTIES[key] ?? key] = plain(value);
  }
  if (data.partitionKey !== undefined && data.partitionKey !== null) systemProperties["x-opt-partition-key"] = data.partitionKey;
  return {
    body: plain(data.body),
    properties: Object.fromEntries(Object.entries(data.properties ?? {}).map(([key, value]) => [key, plain(value)])),
    systemProperties,
    enqueuedTimeUtc: data.enqueuedTimeUtc.toISOString(),
    sequenceNumber: data.sequenceNumber,
    offset: String(data.offset),
    partitionId,
  };
}

/** Bytes as text (JSON.stringify would make `{type:"Buffer",data:[…]}` of them), everything else as is. */
function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  return value;
}
