/**
 * One Event Hubs event as a consumer receives it — the line format of `twin-reconciler replay`
 * and what the local emulator's event stream yields. `toTriggerInput` turns a batch of these into
 * exactly what the Functions Event Hub trigger hands a `cardinality: 'many'` handler.
 */
export interface ReceivedEvent {
  body: unknown;
  properties: Record<string, unknown>;
  systemProperties: Record<string, unknown>;
  enqueuedTimeUtc: string;
  sequenceNumber: number;
  offset: string;
  partitionId: string;
}

/** The trigger's input for `cardinality: 'many'`: the messages array plus the trigger metadata. */
export interface EventHubTriggerInput {
  messages: unknown[];
  triggerMetadata: Record<string, unknown>;
}

/**
 * Shapes a batch the way the Functions host does (keys camel-cased on the first letter only, as
 * @azure/functions converts them): `propertiesArray`, `systemPropertiesArray`,
 * `enqueuedTimeUtcArray`, `sequenceNumberArray`, `offsetArray`, `partitionContext`.
 */
export function toTriggerInput(events: readonly ReceivedEvent[], eventHubName = "twin-changes", consumerGroup = "$Default"): EventHubTriggerInput {
  return {
    messages: events.map((e) => e.body),
    triggerMetadata: {
      propertiesArray: events.map((e) => e.properties),
      systemPropertiesArray: events.map((e) => ({
        ...e.systemProperties,
        sequenceNumber: e.sequenceNumber,
        offset: e.offset,
        enqueuedTimeUtc: e.enqueuedTimeUtc,
      })),
      enqueuedTimeUtcArray: events.map((e) => e.enqueuedTimeUtc),
      sequenceNumberArray: events.map((e) => e.sequenceNumber),
      offsetArray: events.map((e) => e.offset),
      partitionContext: { partitionId: events[0]?.partitionId ?? "0", eventHubName, consumerGroup },
    },
  };
}
