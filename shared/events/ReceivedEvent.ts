/**
 * One Event Hubs event as a consumer receives it — the line format of `twin-reconciler replay`
 * and what the local emulator's event stream yields. local/host/receivedEventData.ts converts it
 * to and from the SDK's ReceivedEventData; local/host/toTriggerInput.ts gives the handler-level
 * form of a batch.
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
