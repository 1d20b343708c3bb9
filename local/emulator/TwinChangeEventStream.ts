import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { isJsonObject, type Json } from "../../shared/twin/json";
import type { EventStream } from "../EventStream";
import { partitionForDevice } from "./partitionForDevice";
import { seededRandom } from "./seededRandom";
import type { RoutedTwinChange } from "./twinChangeEvent";

/**
 * What routing may do to delivery (iothub-facts §1: ordered, at least once, possibly combined).
 * Probabilities are per appended event and drawn from a PRNG seeded with `seed`, so a run is
 * reproducible: the same seed and the same changes give the same stream.
 */
export interface FaultInjection {
  seed?: number;
  /** Re-send the partition's last 2..`resendMaxLength` events after this one (`1,2,1,2,3`). */
  resendProbability?: number;
  resendMaxLength?: number;
  /** Append this event twice in a row. */
  duplicateProbability?: number;
  /** Merge this event into the previous one when that is the same device's and not yet read. */
  coalesceProbability?: number;
}

export interface EventStreamCounters {
  /** Twin changes the hub produced. */
  emitted: number;
  /** Events written to partitions (including injected copies). */
  appended: number;
  duplicated: number;
  /** Events re-sent as part of a series, and how many series. */
  resent: number;
  resendSeries: number;
  /** Changes merged into an earlier, unread event instead of getting their own. */
  coalesced: number;
}

export interface TwinChangeEventStreamOptions {
  partitionCount?: number;
  faults?: FaultInjection;
}

interface StoredEvent {
  event: ReceivedEvent;
  key: string;
  /** Only an original event that nobody has read can absorb a later change. */
  mergeable: boolean;
}

/**
 * The emulator's Event-Hub-like stream of twin-change events: partitions chosen by a stable hash
 * of the device id, sequence numbers from 0 per partition, events kept forever (no retention).
 * Limits of this fake: in-memory only, no consumer groups or checkpoints (readers keep their own
 * positions), offsets are byte counts of the JSON bodies.
 */
export class TwinChangeEventStream implements EventStream {
  readonly partitionIds: readonly string[];
  private readonly partitions: StoredEvent[][];
  private readonly bytes: number[];
  private readonly readUpTo: number[];
  private readonly waiters: Array<Array<{ from: number; resolve: () => void }>>;
  private readonly stats: EventStreamCounters = { emitted: 0, appended: 0, duplicated: 0, resent: 0, resendSeries: 0, coalesced: 0 };
  private faults: Required<FaultInjection> = normalizeFaults({});
  private random: () => number = seededRandom(1);

  constructor(options: TwinChangeEventStreamOptions = {}) {
    const count = options.partitionCount ?? 4;
    if (!Number.isInteger(count) || count < 1 || count > 32) throw new RangeError("partitionCount must be an integer from 1 to 32");
    this.partitionIds = Array.from({ length: count }, (_, i) => String(i));
    this.partitions = this.partitionIds.map(() => []);
    this.bytes = this.partitionIds.map(() => 0);
    this.readUpTo = this.partitionIds.map(() => -1);
    this.waiters = this.partitionIds.map(() => []);
    this.setFaults(options.faults ?? {});
  }

  /** Replaces the fault injection settings and re-seeds the PRNG. */
  setFaults(faults: FaultInjection): void {
    this.faults = normalizeFaults(faults);
    this.random = seededRandom(this.faults.seed);
  }

  get counters(): EventStreamCounters {
    return { ...this.stats };
  }

  partitionOf(deviceId: string): string {
    return String(partitionForDevice(deviceId, this.partitionIds.length));
  }

  /** Routes one twin change into its device's partition, applying any configured faults. */
  append(change: RoutedTwinChange): void {
    this.stats.emitted += 1;
    const p = partitionForDevice(change.deviceId, this.partitionIds.length);
    const log = this.partitions[p]!;
    const key = `${change.deviceId}/${String(change.properties.moduleId ?? "")}`;
    const [coalesceDraw, duplicateDraw, resendDraw, lengthDraw] = [this.random(), this.random(), this.random(), this.random()];

    const last = log[log.length - 1];
    if (
      last !== undefined &&
      last.mergeable &&
      last.key === key &&
      last.event.sequenceNumber > this.readUpTo[p]! &&
      last.event.properties.opType === "updateTwin" &&
      change.properties.opType === "updateTwin" &&
      coalesceDraw < this.faults.coalesceProbability
    ) {
      this.stats.coalesced += 1;
      this.bytes[p]! -= byteLength(last.event.body);
      const body = mergeBodies(last.event.body, change.body);
      last.event = this.stamp(p, last.event.sequenceNumber, { ...change, body });
      this.bytes[p]! += byteLength(body);
      return;
    }

    this.push(p, change, key, true);
    if (duplicateDraw < this.faults.duplicateProbability) {
      this.stats.duplicated += 1;
      this.push(p, change, key, false);
    }
    if (resendDraw < this.faults.resendProbability && log.length >= 2) {
      const length = Math.min(log.length, 2 + Math.floor(lengthDraw * (this.faults.resendMaxLength - 1)));
      const series = log.slice(log.length - length);
      this.stats.resendSeries += 1;
      for (const stored of series) {
        this.stats.resent += 1;
        this.push(p, fromReceived(stored.event), stored.key, false);
      }
    }
  }

  read(partitionId: string, fromSequenceNumber: number, maxCount: number): ReceivedEvent[] {
    const p = this.partitionIndex(partitionId);
    const events = this.partitions[p]!.slice(Math.max(0, fromSequenceNumber), Math.max(0, fromSequenceNumber) + Math.max(0, maxCount));
    const lastRead = events[events.length - 1];
    if (lastRead !== undefined) this.readUpTo[p] = Math.max(this.readUpTo[p]!, lastRead.event.sequenceNumber);
    return events.map((s) => structuredClone(s.event));
  }

  waitFor(partitionId: string, fromSequenceNumber: number, signal?: AbortSignal): Promise<void> {
    const p = this.partitionIndex(partitionId);
    if (this.partitions[p]!.length > fromSequenceNumber || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        from: fromSequenceNumber,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const list = this.waiters[p]!;
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters[p]!.push(waiter);
    });
  }

  /** Number of events in a partition (the next sequence number). */
  length(partitionId: string): number {
    return this.partitions[this.partitionIndex(partitionId)]!.length;
  }

  private push(p: number, change: RoutedTwinChange, key: string, mergeable: boolean): void {
    const log = this.partitions[p]!;
    const event = this.stamp(p, log.length, change);
    log.push({ event, key, mergeable });
    this.bytes[p]! += byteLength(change.body);
    this.stats.appended += 1;
    const ready = this.waiters[p]!.filter((w) => w.from < log.length);
    this.waiters[p] = this.waiters[p]!.filter((w) => w.from >= log.length);
    for (const w of ready) w.resolve();
  }

  private stamp(p: number, sequenceNumber: number, change: RoutedTwinChange): ReceivedEvent {
    const offset = String(this.bytes[p]!);
    const enqueuedTimeUtc = new Date(change.enqueuedTimeMs).toISOString();
    return {
      body: structuredClone(change.body),
      properties: { ...change.properties },
      systemProperties: {
        ...change.systemProperties,
        "x-opt-sequence-number": sequenceNumber,
        "x-opt-offset": offset,
        "x-opt-enqueued-time": enqueuedTimeUtc,
      },
      enqueuedTimeUtc,
      sequenceNumber,
      offset,
      partitionId: String(p),
    };
  }

  private partitionIndex(partitionId: string): number {
    const p = this.partitionIds.indexOf(partitionId);
    if (p < 0) throw new RangeError(`Unknown partition '${partitionId}': partitions are ${this.partitionIds.join(", ")}`);
    return p;
  }
}

function normalizeFaults(faults: FaultInjection): Required<FaultInjection> {
  return {
    seed: faults.seed ?? 1,
    resendProbability: faults.resendProbability ?? 0,
    resendMaxLength: Math.max(2, faults.resendMaxLength ?? 3),
    duplicateProbability: faults.duplicateProbability ?? 0,
    coalesceProbability: faults.coalesceProbability ?? 0,
  };
}

function fromReceived(event: ReceivedEvent): RoutedTwinChange {
  const systemProperties = { ...event.systemProperties };
  delete systemProperties["x-opt-sequence-number"];
  delete systemProperties["x-opt-offset"];
  delete systemProperties["x-opt-enqueued-time"];
  return {
    deviceId: String(event.properties.deviceId),
    body: event.body,
    properties: event.properties,
    systemProperties,
    enqueuedTimeMs: Date.parse(event.enqueuedTimeUtc),
  };
}

/** Combines two patches as one notification would carry them: later values win, objects merge. */
export function mergeBodies(earlier: unknown, later: unknown): Json {
  if (!isJsonObject(earlier) || !isJsonObject(later)) return structuredClone(later as Json);
  const out = structuredClone(earlier);
  for (const [key, value] of Object.entries(later)) {
    const existing = out[key];
    out[key] = isJsonObject(existing) && isJsonObject(value) ? mergeBodies(existing, value) : structuredClone(value);
  }
  return out;
}

function byteLength(body: unknown): number {
  return Buffer.byteLength(JSON.stringify(body) ?? "", "utf8");
}
