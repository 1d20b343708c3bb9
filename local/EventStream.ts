import type { ReceivedEvent } from "../shared/events/ReceivedEvent";

/**
 * An Event-Hub-like stream of twin-change events: partitions, each an ordered log addressed by
 * sequence number. The local IoT Hub emulator produces one; the local functions host consumes it
 * and feeds the Event Hub functions in batches per partition, in order.
 */
export interface EventStream {
  readonly partitionIds: readonly string[];
  /** Events of `partitionId` with sequenceNumber >= `fromSequenceNumber`, oldest first, at most `maxCount`. */
  read(partitionId: string, fromSequenceNumber: number, maxCount: number): ReceivedEvent[];
  /** Resolves once the partition holds an event with sequenceNumber >= `fromSequenceNumber`, or when `signal` aborts. */
  waitFor(partitionId: string, fromSequenceNumber: number, signal?: AbortSignal): Promise<void>;
}
