import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { isJsonObject, type Json, type JsonObject } from "../../shared/twin/json";
import { isAtOrAfter, type EnqueuedPosition, type EventStream, type StreamPosition } from "../EventStream";
import { partitionForDevice } from "./partitionForDevice";
import { seededRandom } from "./seededRandom";
import type { RoutedEvent } from "./routedEvent";
import { ownValue, setOwn } from "./TwinSection";

/** An instant: epoch milliseconds, an ISO-8601 string or a Date. */
export type Instant = number | string | Date;

/**
 * What routing may do to delivery (iothub-facts §1: ordered, at least once, possibly combined),
 * and what a consumer may miss. Probabilities are per routed event and drawn from PRNGs seeded
 * with `seed`, so a run is reproducible: the same seed and the same changes give the same stream.
 */
export interface FaultInjection {
  seed?: number;
  /** Re-send the partition's last 2..`resendMaxLength` events after this one (`1,2,1,2,3`). */
  resendProbability?: number;
  resendMaxLength?: number;
  /** Append this event twice in a row. */
  duplicateProbability?: number;
  /** Merge this twin change into the previous one when that is the same twin's and not yet read. */
  coalesceProbability?: number;
  /**
   * Fraction (0 ≤ rate < 1) of routed twin-change events that are never delivered. Lifecycle events
   * are not dropped. Drawn from a PRNG of its own (seeded from `seed`), so setting it leaves the
   * other faults of a seed where they were.
   */
  dropRate?: number;
  /**
   * Every routed event — twin changes and lifecycle events — whose enqueue time (the hub's clock)
   * falls in [`from`, `to`) is lost, as when Event Hubs retention expired before the consumer read
   * them. Applies to events routed while it is set.
   */
  lostWindow?: { from: Instant; to: Instant };
}

export interface EventStreamCounters {
  /** Events the hub routed: twin changes and lifecycle events (including those dropped or lost). */
  emitted: number;
  /** Lifecycle events among `emitted`. */
  lifecycle: number;
  /** Events written to partitions (including injected copies). */
  appended: number;
  duplicated: number;
  /** Events re-sent as part of a series, and how many series. */
  resent: number;
  resendSeries: number;
  /** Changes merged into an earlier, unread event instead of getting their own. */
  coalesced: number;
  /** Twin-change events never delivered (`dropRate`). */
  dropped: number;
  /** Events lost in `lostWindow`. */
  lost: number;
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

interface Faults {
  seed: number;
  resendProbability: number;
  resendMaxLength: number;
  duplicateProbability: number;
  coalesceProbability: number;
  dropRate: number;
  lostWindow: { from: number; to: number } | null;
}

/**
 * The emulator's Event-Hub-like stream of routed events (twin changes and lifecycle events):
 * partitions chosen by a stable hash of the device id, sequence numbers from 0 per partition,
 * events kept forever (no retention; `lostWindow` simulates what expiry takes).
 * Limits of this fake: in-memory only, no consumer groups or checkpoints (readers keep their own
 * positions), offsets are byte counts of the JSON bodies.
 */
export class TwinChangeEventStream implements EventStream {
  readonly partitionIds: readonly string[];
  private readonly partitions: StoredEvent[][];
  private readonly bytes: number[];
  private readonly readUpTo: number[];
  private readonly waiters: Array<Array<{ from: number; resolve: () => void }>>;
  private readonly stats: EventStreamCounters = {
    emitted: 0,
    lifecycle: 0,
    appended: 0,
    duplicated: 0,
    resent: 0,
    resendSeries: 0,
    coalesced: 0,
    dropped: 0,
    lost: 0,
  };
  private faults: Faults = normalizeFaults({});
  private random: () => number = seededRandom(1);
  private dropRandom: () => number = seededRandom(dropSeed(1));

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

  /** Replaces the fault injection settings and re-seeds the PRNGs; a setting out of range throws a RangeError naming it. */
  setFaults(faults: FaultInjection): void {
    this.faults = normalizeFaults(faults);
    this.random = seededRandom(this.faults.seed);
    this.dropRandom = seededRandom(dropSeed(this.faults.seed));
  }

  get counters(): EventStreamCounters {
    return { ...this.stats };
  }

  partitionOf(deviceId: string): string {
    return String(partitionForDevice(deviceId, this.partitionIds.length));
  }

  /** Routes one event (twin change or lifecycle) into its device's partition, applying any configured faults. */
  append(change: RoutedEvent): void {
    this.stats.emitted += 1;
    const twinChange = change.systemProperties["iothub-message-source"] === "twinChangeEvents";
    if (!twinChange) this.stats.lifecycle += 1;
    const p = partitionForDevice(change.deviceId, this.partitionIds.length);
    const log = this.partitions[p]!;
    const key = change.twinKey;
    const [coalesceDraw, duplicateDraw, resendDraw, lengthDraw] = [this.random(), this.random(), this.random(), this.random()];
    const dropDraw = twinChange ? this.dropRandom() : 1;

    const window = this.faults.lostWindow;
    if (window !== null && change.enqueuedTimeMs >= window.from && change.enqueuedTimeMs < window.to) {
      this.stats.lost += 1;
      return;
    }
    if (dropDraw < this.faults.dropRate) {
      this.stats.dropped += 1;
      return;
    }

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
      const body = mergeBodies(last.event.body, change.body);
      if (body !== undefined) {
        this.stats.coalesced += 1;
        this.bytes[p]! -= byteLength(last.event.body);
        last.event = this.stamp(p, last.event.sequenceNumber, { ...change, body });
        this.bytes[p]! += byteLength(body);
        return;
      }
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
        this.push(p, fromReceived(stored.event, stored.key), stored.key, false);
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

  lastEnqueued(partitionId: string): EnqueuedPosition | undefined {
    const last = this.partitions[this.partitionIndex(partitionId)]!.at(-1);
    if (last === undefined) return undefined;
    const { sequenceNumber, offset, enqueuedTimeUtc } = last.event;
    return { sequenceNumber, offset, enqueuedTimeUtc };
  }

  seek(partitionId: string, position: StreamPosition): number {
    const log = this.partitions[this.partitionIndex(partitionId)]!;
    const found = log.findIndex((s) => isAtOrAfter(s.event, position));
    return found < 0 ? log.length : found;
  }

  /** Number of events in a partition (the next sequence number). */
  length(partitionId: string): number {
    return this.partitions[this.partitionIndex(partitionId)]!.length;
  }

  private push(p: number, change: RoutedEvent, key: string, mergeable: boolean): void {
    const log = this.partitions[p]!;
    const event = this.stamp(p, log.length, change);
    log.push({ event, key, mergeable });
    this.bytes[p]! += byteLength(change.body);
    this.stats.appended += 1;
    const ready = this.waiters[p]!.filter((w) => w.from < log.length);
    this.waiters[p] = this.waiters[p]!.filter((w) => w.from >= log.length);
    for (const w of ready) w.resolve();
  }

  private stamp(p: number, sequenceNumber: number, change: RoutedEvent): ReceivedEvent {
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

function normalizeFaults(faults: FaultInjection): Faults {
  const fraction = (name: keyof FaultInjection, value: number | undefined, maxExclusive = false): number => {
    const v = value ?? 0;
    if (!Number.isFinite(v) || v < 0 || (maxExclusive ? v >= 1 : v > 1)) {
      throw new RangeError(`faults.${name} must be a number from 0 to ${maxExclusive ? "below " : ""}1, got ${String(value)}`);
    }
    return v;
  };
  let lostWindow: Faults["lostWindow"] = null;
  if (faults.lostWindow !== undefined) {
    const from = new Date(faults.lostWindow.from).getTime();
    const to = new Date(faults.lostWindow.to).getTime();
    if (!Number.isFinite(from) || !Number.isFinite(to) || to < from) {
      throw new RangeError("faults.lostWindow must have valid instants with from <= to");
    }
    lostWindow = { from, to };
  }
  return {
    seed: faults.seed ?? 1,
    resendProbability: fraction("resendProbability", faults.resendProbability),
    resendMaxLength: Math.max(2, faults.resendMaxLength ?? 3),
    duplicateProbability: fraction("duplicateProbability", faults.duplicateProbability),
    coalesceProbability: fraction("coalesceProbability", faults.coalesceProbability),
    dropRate: fraction("dropRate", faults.dropRate, true),
    lostWindow,
  };
}

/** The drop PRNG's seed: derived from `seed`, distinct from the other faults' sequence. */
function dropSeed(seed: number): number {
  return (seed ^ 0x5bd1e995) >>> 0;
}

function fromReceived(event: ReceivedEvent, twinKey: string): RoutedEvent {
  const systemProperties = { ...event.systemProperties };
  delete systemProperties["x-opt-sequence-number"];
  delete systemProperties["x-opt-offset"];
  delete systemProperties["x-opt-enqueued-time"];
  return {
    deviceId: String(event.properties.deviceId),
    twinKey,
    body: event.body,
    properties: event.properties,
    systemProperties,
    enqueuedTimeMs: Date.parse(event.enqueuedTimeUtc),
  };
}

/**
 * Combines two twin-change bodies into the one notification IoT Hub may send for both (iothub-facts
 * §1: "may send one notification that combines several changes"). Applying the result as a merge
 * patch must give what applying both in turn gives, so:
 * - later values win, objects merge, a key set to `null` later stays `null` (deleted);
 * - `$metadata` follows the values: a deleted key loses its metadata, a replaced value takes the
 *   later metadata whole (no stale children of an earlier object);
 * - where the earlier change set a non-object (a value, an array or `null`) and the later one sets an
 *   object, no single merge patch can say "start that object from empty": the result would merge
 *   into the consumer's old object and bring back keys that were gone. Then the bodies do not
 *   combine (`undefined`) and the events stay separate.
 * Every key is an ordinary key (`__proto__` too): own reads, defined writes.
 */
export function mergeBodies(earlier: unknown, later: unknown): Json | undefined {
  if (!isJsonObject(earlier) || !isJsonObject(later)) return undefined;
  return composeNode(earlier, later);
}

function composeNode(earlier: JsonObject, later: JsonObject): JsonObject | undefined {
  const out = structuredClone(earlier);
  const laterValues: JsonObject = {};
  for (const [key, value] of Object.entries(later)) {
    if (key === "$metadata") continue;
    if (key.startsWith("$")) {
      setOwn(out, key, structuredClone(value));
      continue;
    }
    setOwn(laterValues, key, value);
    const before = ownValue(out, key);
    if (isJsonObject(value)) {
      if (Object.hasOwn(out, key) && !isJsonObject(before)) return undefined;
      const merged = isJsonObject(before) ? composeNode(before, value) : structuredClone(value);
      if (merged === undefined) return undefined;
      setOwn(out, key, merged);
    } else {
      setOwn(out, key, structuredClone(value));
    }
  }
  const laterMetadata = ownValue(later, "$metadata");
  if (isJsonObject(laterMetadata)) {
    const earlierMetadata = ownValue(out, "$metadata");
    setOwn(out, "$metadata", composeMetadata(isJsonObject(earlierMetadata) ? earlierMetadata : {}, laterMetadata, laterValues));
  }
  return out;
}

function composeMetadata(earlier: JsonObject, later: JsonObject, laterValues: JsonObject): JsonObject {
  const out = structuredClone(earlier);
  for (const [key, value] of Object.entries(later)) if (key.startsWith("$")) setOwn(out, key, structuredClone(value));
  for (const [key, value] of Object.entries(laterValues)) {
    const before = ownValue(out, key);
    const after = ownValue(later, key);
    if (value === null || after === undefined) {
      delete out[key];
    } else if (isJsonObject(value) && isJsonObject(before) && isJsonObject(after)) {
      setOwn(out, key, composeMetadata(before, after, value));
    } else {
      setOwn(out, key, structuredClone(after));
    }
  }
  return out;
}

function byteLength(body: unknown): number {
  return Buffer.byteLength(JSON.stringify(body) ?? "", "utf8");
}
