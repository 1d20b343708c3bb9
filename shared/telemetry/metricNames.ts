/**
 * Every metric the product emits: the one list that the code (shared/telemetry), the alert rules
 * and the workbook (infra/) name. A test checks that each alert and workbook query names a metric
 * listed here, and that each metric listed here is emitted. Names follow OpenTelemetry's naming
 * rules (lowercase, dot-separated, namespaced; the unit lives in `unit`, not the name). The
 * Prometheus exporter (GET /api/metrics) turns dots into underscores, appends `_total` to counters
 * and `_bucket`/`_sum`/`_count` to histograms, and gives the unit only as `# UNIT` (e.g.
 * `twin_reconciler_events_total`, `twin_reconciler_event_age_bucket`). Application Insights keeps
 * the names as written here (customMetrics.name), attributes in customDimensions.
 */
export const METRICS = {
  /** Property records by compliance state, from the trigger-kept counters. Attribute `state`. */
  propertyRecords: { name: "twin_reconciler.property_records", kind: "gauge", unit: "{record}" },
  /** Devices by worst state, from the trigger-kept counters. Attribute `state`. */
  devices: { name: "twin_reconciler.devices", kind: "gauge", unit: "{device}" },
  /** Stored dead letters (not yet re-driven or pruned). */
  deadLetters: { name: "twin_reconciler.dead_letters", kind: "gauge", unit: "{event}" },
  /** Enqueued (Event Hubs) → committed (store), per event. Attribute `partition`. */
  eventAge: { name: "twin_reconciler.event.age", kind: "histogram", unit: "s" },
  /** Events per reconcile batch. */
  batchSize: { name: "twin_reconciler.batch.size", kind: "histogram", unit: "{event}" },
  /** Wall time of one reconcile batch, decode to commit. Attribute `outcome` = `success` | `failure`. */
  batchDuration: { name: "twin_reconciler.batch.duration", kind: "histogram", unit: "s" },
  /** Events by outcome: `applied` | `duplicate` | `ignored` | `dead_lettered`. */
  events: { name: "twin_reconciler.events", kind: "counter", unit: "{event}" },
  /** Twin resyncs (getTwin of one twin) by outcome: `succeeded` | `failed`. */
  resyncs: { name: "twin_reconciler.resyncs", kind: "counter", unit: "{twin}" },
  /** Twins waiting for a resync now. */
  resyncPending: { name: "twin_reconciler.resync.pending", kind: "gauge", unit: "{twin}" },
  /**
   * Re-push outcomes, attribute `outcome`: devices `pushed` | `resolved` (found compliant) |
   * `precondition_failed` (412) | `not_found` (404) | `failed`; properties `escalated`; `throttled`
   * (429) answers — a run stops at the first.
   */
  repushes: { name: "twin_reconciler.repushes", kind: "counter", unit: "{outcome}" },
  /** Time spent waiting for the hub's token bucket (twin operations or queries). Attribute `bucket` = `twin_ops` | `queries`. */
  tokenWait: { name: "twin_reconciler.hub.token_wait", kind: "histogram", unit: "s" },
  /** Twins read by fleet sync passes. */
  syncTwins: { name: "twin_reconciler.sync.twins", kind: "counter", unit: "{twin}" },
  /** Seconds since the last complete fleet sync pass ended (absent before the first). */
  syncAge: { name: "twin_reconciler.sync.last_complete_age", kind: "gauge", unit: "s" },
} as const;

export type MetricKey = keyof typeof METRICS;
export const METRIC_NAMES: readonly string[] = Object.values(METRICS).map((m) => m.name);
