import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";

/** RPC typed data as the host sends it to the Node worker (only the variants the local host uses). */
export type RpcTypedData = { json: string } | { string: string } | { bytes: Uint8Array };

export interface PartitionInfo {
  partitionId: string;
  eventHubName: string;
  consumerGroup: string;
  fullyQualifiedNamespace: string;
}

export interface RpcEventHubInput {
  data: RpcTypedData;
  triggerMetadata: Record<string, RpcTypedData>;
}

const json = (value: unknown): RpcTypedData => ({ json: JSON.stringify(value) });

/**
 * A batch of events as the Functions host sends it to the Node worker for an Event Hub trigger
 * with `cardinality: 'many'`: the bodies as one JSON array, and the binding data under the host's
 * PascalCase names (Microsoft.Azure.WebJobs.Extensions.EventHubs `EventHubTriggerBindingStrategy`).
 * @azure/functions camel-cases these keys (first letter only, recursively), so the handler sees
 * `propertiesArray`, `systemPropertiesArray[i].sequenceNumber`, `partitionContext.partitionId`…
 */
export function toRpcEventHubBatch(events: readonly ReceivedEvent[], partition: PartitionInfo): RpcEventHubInput {
  const partitionContext = pascalPartitionContext(partition);
  return {
    data: json(events.map((e) => e.body)),
    triggerMetadata: {
      PartitionContext: json(partitionContext),
      TriggerPartitionContext: json(partitionContext),
      PartitionKeyArray: json(events.map(partitionKeyOf)),
      OffsetArray: json(events.map((e) => e.offset)),
      OffsetStringArray: json(events.map((e) => e.offset)),
      SequenceNumberArray: json(events.map((e) => e.sequenceNumber)),
      EnqueuedTimeUtcArray: json(events.map((e) => e.enqueuedTimeUtc)),
      PropertiesArray: json(events.map((e) => e.properties)),
      SystemPropertiesArray: json(events.map(systemPropertiesOf)),
    },
  };
}

/** One event as the host sends it for `cardinality: 'one'` (singular binding-data names). */
export function toRpcEventHubEvent(event: ReceivedEvent, partition: PartitionInfo): RpcEventHubInput {
  const partitionContext = pascalPartitionContext(partition);
  return {
    data: json(event.body),
    triggerMetadata: {
      PartitionContext: json(partitionContext),
      TriggerPartitionContext: json(partitionContext),
      PartitionKey: json(partitionKeyOf(event)),
      Offset: json(event.offset),
      OffsetString: json(event.offset),
      SequenceNumber: json(event.sequenceNumber),
      EnqueuedTimeUtc: json(event.enqueuedTimeUtc),
      Properties: json(event.properties),
      SystemProperties: json(systemPropertiesOf(event)),
    },
  };
}

function pascalPartitionContext(p: PartitionInfo): Record<string, string> {
  return {
    FullyQualifiedNamespace: p.fullyQualifiedNamespace,
    EventHubName: p.eventHubName,
    ConsumerGroup: p.consumerGroup,
    PartitionId: p.partitionId,
  };
}

function partitionKeyOf(event: ReceivedEvent): string | null {
  const key = event.systemProperties["x-opt-partition-key"];
  return typeof key === "string" ? key : null;
}

/** The AMQP properties and annotations, plus the fields the host adds to each entry. */
function systemPropertiesOf(event: ReceivedEvent): Record<string, unknown> {
  return {
    ...event.systemProperties,
    SequenceNumber: event.sequenceNumber,
    Offset: event.offset,
    PartitionKey: partitionKeyOf(event),
    EnqueuedTimeUtc: event.enqueuedTimeUtc,
  };
}
