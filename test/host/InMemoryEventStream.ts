import { isAtOrAfter, type EnqueuedPosition, type EventStream, type StreamPosition } from "../../local/EventStream";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";

/**
 * An in-memory EventStream for host tests: partitions are arrays, sequence numbers start at 0 and
 * rise by one per partition. Limits: no retention or size cap, no consumer groups of its own
 * (every reader sees everything), offsets are `String(sequenceNumber * 1000)`, and bodies and
 * properties are stored as given (no AMQP encoding). Not a model of IoT Hub routing: tests append
 * the events they want, with whatever properties they choose.
 */
export class InMemoryEventStream implements EventStream {
  readonly partitionIds: readonly string[];
  private readonly logs = new Map<string, ReceivedEvent[]>();
  private readonly waiters = new Set<{ partitionId: string; fromSequenceNumber: number; resolve: () => void }>();

  constructor(partitionCount = 2) {
    this.partitionIds = Array.from({ length: partitionCount }, (_, i) => String(i));
    for (const id of this.partitionIds) this.logs.set(id, []);
  }

  append(partitionId: string, body: unknown, properties: Record<string, unknown> = {}, systemProperties: Record<string, unknown> = {}): ReceivedEvent {
    const log = this.logs.get(partitionId);
    if (!log) throw new Error(`no partition "${partitionId}"; partitions: ${this.partitionIds.join(", ")}`);
    const sequenceNumber = log.length;
    const enqueuedTimeUtc = new Date(Date.UTC(2026, 0, 1, 0, 0, sequenceNumber)).toISOString();
    const event: ReceivedEvent = {
      body,
      properties,
      systemProperties: { "x-opt-sequence-number": sequenceNumber, "x-opt-offset": String(sequenceNumber * 1000), "x-opt-enqueued-time": enqueuedTimeUtc, ...systemProperties },
      enqueuedTimeUtc,
      sequenceNumber,
      offset: String(sequenceNumber * 1000),
      partitionId,
    };
    log.push(event);
    for (const waiter of [...this.waiters]) {
      if (waiter.partitionId === partitionId && waiter.fromSequenceNumber <= sequenceNumber) waiter.resolve();
    }
    return event;
  }

  read(partitionId: string, fromSequenceNumber: number, maxCount: number): ReceivedEvent[] {
    const log = this.logs.get(partitionId) ?? [];
    return log.slice(Math.max(0, fromSequenceNumber), Math.max(0, fromSequenceNumber) + maxCount);
  }

  lastEnqueued(partitionId: string): EnqueuedPosition | undefined {
    const last = this.logs.get(partitionId)?.at(-1);
    return last === undefined ? undefined : { sequenceNumber: last.sequenceNumber, offset: last.offset, enqueuedTimeUtc: last.enqueuedTimeUtc };
  }

  seek(partitionId: string, position: StreamPosition): number {
    const log = this.logs.get(partitionId) ?? [];
    const found = log.findIndex((e) => isAtOrAfter(e, position));
    return found < 0 ? log.length : found;
  }

  waitFor(partitionId: string, fromSequenceNumber: number, signal?: AbortSignal): Promise<void> {
    if ((this.logs.get(partitionId)?.length ?? 0) > fromSequenceNumber || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        partitionId,
        fromSequenceNumber,
        resolve: () => {
          this.waiters.delete(waiter);
          signal?.removeEventListener("abort", waiter.resolve);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener("abort", waiter.resolve, { once: true });
    });
  }
}
