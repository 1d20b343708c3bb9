/**
 * The one converter from what `EventHubConsumerClient.subscribe` hands `processEvents`
 * (`ReceivedEventData[]` of one partition) to the RPC invocation input the Functions host sends the
 * Node worker for an Event Hub trigger. @azure/functions turns that into the handler's arguments
 * (local/host/invokeFunction.ts runs the library's own programming model for it).
 *
 * What was checked, and where (read for this file, December 2026):
 * - Binding data names and values: Azure/azure-sdk-for-net,
 *   sdk/eventhub/Microsoft.Azure.WebJobs.Extensions.EventHubs/src/Triggers/EventHubTriggerBindingStrategy.cs
 *   (`GetBindingData`): `PartitionContext`; for a batch `PartitionKeyArray` (string[]),
 *   `OffsetArray` (string[], the offset's invariant string), `SequenceNumberArray` (long[]),
 *   `EnqueuedTimeUtcArray` (DateTime[], `EnqueuedTime.DateTime`), `PropertiesArray`,
 *   `SystemPropertiesArray`; for one event the same names without `Array` (`Offset`, a long, not
 *   a string). Each system-properties entry is the event's `SystemProperties` plus
 *   `SequenceNumber`, `Offset`, `PartitionKey`, `EnqueuedTimeUtc` (azure-webjobs-sdk#1849).
 *   (The older strategy also sent `CheckpointContext`; the current one does not, nor does it
 *   send `OffsetString…` or `TriggerPartitionContext`, which this project's previous shaper had.)
 * - Typed data: Azure/azure-functions-host, src/WebJobs.Script.Grpc/MessageExtensions/
 *   GrpcMessageConversionExtensions.cs (`ToRpc`): with the worker capability `TypedDataCollection`
 *   — which the Node worker declares (azure-functions-nodejs-worker's WorkerInitHandler) — a
 *   `string[]` becomes `collectionString` and `long[]` `collectionSint64`; everything else that is
 *   not a string/bytes becomes `json` via Newtonsoft (`ToRpcDefault`). `ToRpcStringArray` DROPS
 *   null and empty entries unless the worker declares `IncludeEmptyEntriesInMessagePayload`, which
 *   the Node worker does not: an event without a partition key is missing from
 *   `partitionKeyArray`, and an event with an empty body is missing from the messages (the arrays
 *   then no longer line up — as on Azure).
 * - Newtonsoft's DateTime text: `EnqueuedTime.DateTime` has Kind Unspecified, so it is written
 *   without a zone and without trailing zeros (`2023-03-13T01:25:02.25`); a DateTimeOffset
 *   (`x-opt-enqueued-time`) with its offset (`…02.25+00:00`). A third-party capture of the binding
 *   data a real host sent (PartitionContext with FullyQualifiedNamespace, EventHubName,
 *   ConsumerGroup, PartitionId; `x-opt-offset` and `Offset` as numbers; `PartitionKeyArray` empty)
 *   agrees; see test/host/eventHubTriggerInput.test.ts.
 * - The Node side: Azure/azure-functions-nodejs-library src/converters/fromRpcTypedData.ts
 *   (`collectionString` entries go through `tryJsonParse`, `json` through JSON.parse,
 *   `collectionSint64` passes as is) and fromRpcTriggerMetadata.ts (every key and nested key gets
 *   its first letter lower-cased). So a handler sees `offsetArray` as numbers when the offsets are
 *   digits, and each message JSON-parsed when it parses.
 * Not verified from source here (kept as the most likely, say so if you know better): that the
 * host binds a `cardinality: 'many'` trigger for an out-of-process worker as `string[]` (so the
 * bodies travel as `collectionString`); and how .NET names the AMQP properties in
 * `SystemProperties` — taken as the AMQP 1.0 names (`message-id`, `content-type`, …), which is
 * how the emulator and the replay lines name them.
 */
import type { ReceivedEventData } from "@azure/event-hubs";

/** RPC typed data as the host sends it to the Node worker (the variants an Event Hub trigger uses). */
export type RpcTypedData =
  | { json: string }
  | { string: string }
  | { bytes: Uint8Array }
  | { collectionString: { string: string[] } }
  | { collectionSint64: { sint64: number[] } }
  /** A null value (no field set): the library turns it into undefined. */
  | Record<string, never>;

/** The partition a batch came from, as the host's `PartitionContext` names it. */
export interface PartitionInfo {
  partitionId: string;
  eventHubName: string;
  consumerGroup: string;
  fullyQualifiedNamespace: string;
}

export interface RpcEventHubInput {
  /** The trigger binding's input (`inputData[].data`). */
  data: RpcTypedData;
  /** The binding data, under the extension's PascalCase names. */
  triggerMetadata: Record<string, RpcTypedData>;
}

/** A batch, as the host sends it for `cardinality: 'many'`. */
export function toRpcEventHubBatch(events: readonly ReceivedEventData[], partition: PartitionInfo): RpcEventHubInput {
  return {
    data: stringCollection(events.map(bodyText)),
    triggerMetadata: {
      PartitionContext: json(partitionContext(partition)),
      PartitionKeyArray: stringCollection(events.map((e) => e.partitionKey)),
      OffsetArray: stringCollection(events.map((e) => e.offset)),
      SequenceNumberArray: { collectionSint64: { sint64: events.map((e) => e.sequenceNumber) } },
      EnqueuedTimeUtcArray: json(events.map((e) => dotNetDateTime(e.enqueuedTimeUtc))),
      PropertiesArray: json(events.map((e) => e.properties ?? {})),
      SystemPropertiesArray: json(events.map(systemProperties)),
    },
  };
}

/** One event, as the host sends it for `cardinality: 'one'`. */
export function toRpcEventHubEvent(event: ReceivedEventData, partition: PartitionInfo): RpcEventHubInput {
  return {
    data: { string: bodyText(event) },
    triggerMetadata: {
      PartitionContext: json(partitionContext(partition)),
      PartitionKey: event.partitionKey == null ? {} : { string: event.partitionKey },
      Offset: json(dotNetOffset(event.offset)),
      SequenceNumber: json(event.sequenceNumber),
      EnqueuedTimeUtc: json(dotNetDateTime(event.enqueuedTimeUtc)),
      Properties: json(event.properties ?? {}),
      SystemProperties: json(systemProperties(event)),
    },
  };
}

const json = (value: unknown): RpcTypedData => ({ json: JSON.stringify(value) });

/** `ToRpcStringArray` without `IncludeEmptyEntriesInMessagePayload`: null and empty entries are left out. */
function stringCollection(values: readonly (string | null | undefined)[]): RpcTypedData {
  return { collectionString: { string: values.filter((v): v is string => typeof v === "string" && v !== "") } };
}

function partitionContext(p: PartitionInfo): Record<string, string> {
  return {
    FullyQualifiedNamespace: p.fullyQualifiedNamespace,
    EventHubName: p.eventHubName,
    ConsumerGroup: p.consumerGroup,
    PartitionId: p.partitionId,
  };
}

/**
 * The body as the host has it: the event's bytes as UTF-8 text. The SDK hands JSON bodies over
 * parsed (re-serialised here), other bytes as a Buffer; a string is taken as the text itself.
 */
function bodyText(event: ReceivedEventData): string {
  const body: unknown = event.body;
  if (body === undefined || body === null) return "";
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString("utf8");
  return JSON.stringify(body);
}

/** Newtonsoft's text for a DateTime of Kind Unspecified: no zone, fraction without trailing zeros. */
function dotNetDateTime(date: Date): string {
  return date.toISOString().replace(/Z$/, "").replace(/\.?0+$/, "");
}

/** Newtonsoft's text for a UTC DateTimeOffset. */
function dotNetDateTimeOffset(date: Date): string {
  return `${dotNetDateTime(date)}+00:00`;
}

/** .NET's `EventData.Offset` is a long: a number when the offset is one. */
function dotNetOffset(offset: string): number | string {
  return /^\d{1,15}$/.test(offset) ? Number(offset) : offset;
}

/** The SDK's names for the AMQP message properties it copies into systemProperties → the AMQP names. */
const amqpPropertyNames: Record<string, string> = {
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

/** IoT Hub's AMQP timestamp annotations (the SDK turns them into epoch milliseconds; .NET into DateTime). */
const timestampAnnotations = new Set(["iothub-enqueuedtime"]);

/**
 * `GetSystemPropertiesForBinding`: the message annotations (the SDK lifts the four x-opt ones out
 * of systemProperties; they are put back) and AMQP properties, plus the four PascalCase fields.
 */
function systemProperties(event: ReceivedEventData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event.systemProperties ?? {})) {
    const amqpName = amqpPropertyNames[key];
    if (amqpName !== undefined) {
      out[amqpName] = value instanceof Uint8Array ? Buffer.from(value).toString("utf8") : value;
    } else if (timestampAnnotations.has(key) && typeof value === "number") {
      out[key] = `${dotNetDateTime(new Date(value))}Z`;
    } else {
      out[key] = value;
    }
  }
  out["x-opt-sequence-number"] = event.sequenceNumber;
  out["x-opt-offset"] = dotNetOffset(event.offset);
  out["x-opt-enqueued-time"] = dotNetDateTimeOffset(event.enqueuedTimeUtc);
  if (event.partitionKey != null) out["x-opt-partition-key"] = event.partitionKey;
  out.SequenceNumber = event.sequenceNumber;
  out.Offset = dotNetOffset(event.offset);
  out.PartitionKey = event.partitionKey ?? null;
  out.EnqueuedTimeUtc = dotNetDateTime(event.enqueuedTimeUtc);
  return out;
}
