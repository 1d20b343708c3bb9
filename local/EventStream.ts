import type { ReceivedEvent } from "../shared/events/ReceivedEvent";

/** Where an event sits in its partition, and when it was enqueued. */
export interface EnqueuedPosition {
  sequenceNumber: number;
  offset: string;
  enqueuedTimeUtc: string;
}

/**
 * A start position other than a sequence number, as Event Hubs' selector filters give it: after
 * (or at, when `inclusive`) an offset, or strictly after an enqueue instant (epoch milliseconds).
 */
export type StreamPosition = { offset: string; inclusive: boolean } | { enqueuedAfterMs: number };

/**
 * An Event-Hub-like stream of twin-change events: partitions, each an ordered log addressed by
 * sequence number. The local IoT Hub emulator produces one; the local functions host consumes it
 * and feeds the Event Hub functions in batches per partition, in order. `lastEnqueued` and `seek`
 * only look: they do not count as reading (the emulator lets an unread event absorb a later change).
 */
export interface EventStream {
  readonly partitionIds: readonly string[];
  /** Events of `partitionId` with sequenceNumber >= `fromSequenceNumber`, oldest first, at most `maxCount`. */
  read(partitionId: string, fromSequenceNumber: number, maxCount: number): ReceivedEvent[];
  /** Resolves once the partition holds an event with sequenceNumber >= `fromSequenceNumber`, or when `signal` aborts. */
  waitFor(partitionId: string, fromSequenceNumber: number, signal?: AbortSignal): Promise<void>;
  /** The partition's newest event's position, or undefined when the partition is empty. */
  lastEnqueued(partitionId: string): EnqueuedPosition | undefined;
  /** The sequence number of the first event at `position` (in partition order), or the next sequence number when none is. */
  seek(partitionId: string, position: StreamPosition): number;
}

/** True when an event at `offset` / `enqueuedTimeUtc` is at or after `position`; shared by the stream implementations. */
export function isAtOrAfter(event: { offset: string; enqueuedTimeUtc: string }, position: StreamPosition): boolean {
  if ("offset" in position) {
    const offset = Number(event.offset);
    const from = Number(position.offset);
    return position.inclusive ? offset >= from : offset > from;
  }
  return Date.parse(event.enqueuedTimeUtc) > position.enqueuedAfterMs;
}
