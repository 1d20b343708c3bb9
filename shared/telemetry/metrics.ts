/**
 * What the product records, as plain calls: the reconcile, re-push, resync and sync code records
 * through this interface and never touches OpenTelemetry (startTelemetry.ts installs the one
 * implementation that does). Until telemetry is started every call is a no-op, so tests and tools
 * that never start it pay nothing.
 */

export type EventOutcome = "applied" | "duplicate" | "ignored" | "dead_lettered";
export type BatchOutcome = "success" | "failure";
export type ResyncOutcome = "succeeded" | "failed";
/** 412 = `precondition_failed`, 429 = `throttled`, 404 = `not_found`. */
export type RepushOutcome = "pushed" | "resolved" | "precondition_failed" | "throttled" | "not_found" | "escalated" | "failed";
export type TokenBucketName = "twin_ops" | "queries";

export interface Metrics {
  /** Events of a committed reconcile batch, by outcome. */
  events(outcome: EventOutcome, count: number): void;
  /** Seconds from an event's enqueued time to the commit that applied it. */
  eventAge(seconds: number, partition: string | undefined): void;
  /** One reconcile batch: its size (events) and wall time, decode to commit (or to the failure). */
  batch(size: number, seconds: number, outcome: BatchOutcome): void;
  /** Twins read again from the hub (getTwin), by outcome. */
  resyncs(outcome: ResyncOutcome, count: number): void;
  repushes(outcome: RepushOutcome, count: number): void;
  /** Seconds a caller waited for a token of the hub's rate limiter. */
  tokenWait(seconds: number, bucket: TokenBucketName): void;
  /** Twins read by a fleet sync pass's query pages. */
  syncTwinsRead(count: number): void;
}

const noop: Metrics = {
  events: () => undefined,
  eventAge: () => undefined,
  batch: () => undefined,
  resyncs: () => undefined,
  repushes: () => undefined,
  tokenWait: () => undefined,
  syncTwinsRead: () => undefined,
};

let current: Metrics = noop;

/** The process's metrics: forwards to the implementation installed by startTelemetry (no-op before). */
export const metrics: Metrics = {
  events: (outcome, count) => {
    if (count > 0) current.events(outcome, count);
  },
  eventAge: (seconds, partition) => current.eventAge(Math.max(0, seconds), partition),
  batch: (size, seconds, outcome) => current.batch(size, Math.max(0, seconds), outcome),
  resyncs: (outcome, count) => {
    if (count > 0) current.resyncs(outcome, count);
  },
  repushes: (outcome, count) => {
    if (count > 0) current.repushes(outcome, count);
  },
  tokenWait: (seconds, bucket) => current.tokenWait(Math.max(0, seconds), bucket),
  syncTwinsRead: (count) => {
    if (count > 0) current.syncTwinsRead(count);
  },
};

/** Installs the implementation `metrics` forwards to (undefined: back to no-op). */
export function setMetrics(implementation: Metrics | undefined): void {
  current = implementation ?? noop;
}
