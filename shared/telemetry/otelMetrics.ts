import type { Attributes, Meter, ObservableGauge } from "@opentelemetry/api";
import { COMPLIANCE_STATES } from "../compliance/ComplianceState";
import { METRICS } from "./metricNames";
import type { Metrics } from "./metrics";
import type { StoreGauges } from "./storeGauges";

// Bucket boundaries per histogram (OpenTelemetry's defaults, 0…10 000, suit milliseconds, not these).
const AGE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const SIZE_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000];
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The instruments of METRICS on `meter`, behind the Metrics interface the product records through. */
export function createOtelMetrics(meter: Meter): Metrics {
  const counter = (m: { name: string; unit: string }, description: string) => meter.createCounter(m.name, { unit: m.unit, description });
  const histogram = (m: { name: string; unit: string }, description: string, buckets: number[]) =>
    meter.createHistogram(m.name, { unit: m.unit, description, advice: { explicitBucketBoundaries: buckets } });

  const events = counter(METRICS.events, "Events of committed reconcile batches, by outcome");
  const eventAge = histogram(METRICS.eventAge, "Enqueued (Event Hubs) to committed (store), per event", AGE_BUCKETS);
  const batchSize = histogram(METRICS.batchSize, "Events per reconcile batch", SIZE_BUCKETS);
  const batchDuration = histogram(METRICS.batchDuration, "Wall time of one reconcile batch, decode to commit", DURATION_BUCKETS);
  const resyncs = counter(METRICS.resyncs, "Twins read again from IoT Hub (getTwin), by outcome");
  const repushes = counter(METRICS.repushes, "Re-push outcomes");
  const tokenWait = histogram(METRICS.tokenWait, "Time waited for a token of the hub's rate limiter", WAIT_BUCKETS);
  const syncTwins = counter(METRICS.syncTwins, "Twins read by fleet sync query pages");

  return {
    events: (outcome, count) => events.add(count, { outcome }),
    eventAge: (seconds, partition) => eventAge.record(seconds, partition === undefined ? {} : { partition }),
    batch: (size, seconds, outcome) => {
      batchSize.record(size);
      batchDuration.record(seconds, { outcome });
    },
    resyncs: (outcome, count) => resyncs.add(count, { outcome }),
    repushes: (outcome, count) => repushes.add(count, { outcome }),
    tokenWait: (seconds, bucket) => tokenWait.record(seconds, { bucket }),
    syncTwinsRead: (count) => syncTwins.add(count),
  };
}

/**
 * The observable gauges, all observed by one batch callback that reads the store once per
 * collection (`read` is expected to cache; undefined: no store yet, nothing observed).
 */
export function observeStoreGauges(meter: Meter, read: () => Promise<StoreGauges | undefined>): void {
  const gauge = (m: { name: string; unit: string }, description: string): ObservableGauge => meter.createObservableGauge(m.name, { unit: m.unit, description });
  const propertyRecords = gauge(METRICS.propertyRecords, "Property records by compliance state");
  const devices = gauge(METRICS.devices, "Devices (and module twins) by their worst state");
  const deadLetters = gauge(METRICS.deadLetters, "Stored dead letters");
  const resyncPending = gauge(METRICS.resyncPending, "Twins waiting for a resync");
  const syncAge = gauge(METRICS.syncAge, "Seconds since the last complete fleet sync pass ended");
  meter.addBatchObservableCallback(
    async (result) => {
      const gauges = await read();
      if (!gauges) return;
      for (const state of COMPLIANCE_STATES) {
        const attributes: Attributes = { state };
        result.observe(propertyRecords, gauges.propertyRecords[state], attributes);
        result.observe(devices, gauges.devices[state], attributes);
      }
      result.observe(deadLetters, gauges.deadLetters);
      result.observe(resyncPending, gauges.resyncPending);
      if (gauges.syncAgeSeconds !== null) result.observe(syncAge, gauges.syncAgeSeconds);
    },
    [propertyRecords, devices, deadLetters, resyncPending, syncAge],
  );
}
