import type { Database } from "../../shared/store/Database";
import { readStoreGauges } from "../../shared/reports/readStoreGauges";
import { metrics } from "../../shared/telemetry/metrics";
import { METRICS } from "../../shared/telemetry/metricNames";
import { observeStore, startTelemetry, stopTelemetry, type Telemetry } from "../../shared/telemetry/startTelemetry";
import { seedComplianceFleet } from "../reports/complianceFixture";
import { testDatabases } from "../support/testDatabases";
import { parsePrometheusText, promName, samplesOf, sumOf } from "./prometheusText";

// Every name of the shared contract (metricNames.ts) is emitted with its kind and unit, read back
// from the Prometheus text by the test's own parser; the gauges against the store's rows counted
// here with SQL of the test's own.

/** The Prometheus series a metric of each kind has (the exporter's conventions: `_total` on counters). */
function seriesOf(m: { name: string; kind: string }): string {
  const base = promName(m.name);
  if (m.kind === "counter") return `${base}_total`;
  if (m.kind === "histogram") return `${base}_count`;
  return base;
}

describe.each(testDatabases)("metrics on $name", ({ open }) => {
  let db: Database;
  let telemetry: Telemetry;

  beforeAll(async () => {
    db = await open();
    await seedComplianceFleet(db, Date.now());
    await db.query(
      `INSERT INTO fleet_sync_passes (started_at, finished_at, phase, twins_read, queries_used, updated_at)
       VALUES (now() - interval '1 hour', now() - interval '50 minutes', 'done', 5, 2, now())`,
    );
    await db.query("INSERT INTO twins (device_id, module_id, version, resync_needed, updated_at) VALUES ('resync-me', '', 1, true, now())");
    await db.query("INSERT INTO dead_letters (received_at, reason, raw) VALUES (now(), 'test', '{}'), (now(), 'test 2', '{\"n\": 2}')");
    telemetry = startTelemetry({}, { gaugeCacheMs: 0 });
    observeStore(db, readStoreGauges);
  });

  afterAll(async () => {
    observeStore(undefined, readStoreGauges);
    await stopTelemetry();
    await db?.close();
  });

  it("exports to Prometheus when no Application Insights connection string is set", () => {
    expect(telemetry.exporter).toBe("prometheus");
  });

  it("emits every metric of metricNames.ts, with its type and unit", async () => {
    metrics.events("applied", 3);
    metrics.events("dead_lettered", 1);
    metrics.eventAge(1.5, "0");
    metrics.batch(4, 0.2, "success");
    metrics.resyncs("failed", 2);
    metrics.repushes("precondition_failed", 1);
    metrics.tokenWait(0.01, "twin_ops");
    metrics.syncTwinsRead(5);

    const text = (await telemetry.prometheusText()) as string;
    const exposition = parsePrometheusText(text);
    const missing = Object.values(METRICS).filter((m) => samplesOf(exposition, seriesOf(m)).length === 0).map((m) => m.name);
    expect(missing).toEqual([]);
    for (const m of Object.values(METRICS)) {
      expect({ name: m.name, type: exposition.types.get(promName(m.name) + (m.kind === "counter" ? "_total" : "")) }).toEqual({ name: m.name, type: m.kind });
      expect(text).toContain(`# UNIT ${promName(m.name)}${m.kind === "counter" ? "_total" : ""} ${m.unit}`);
    }
    expect(sumOf(exposition, "twin_reconciler_events_total", { outcome: "applied" })).toBe(3);
    expect(sumOf(exposition, "twin_reconciler_events_total", { outcome: "dead_lettered" })).toBe(1);
    expect(sumOf(exposition, "twin_reconciler_event_age_count", { partition: "0" })).toBe(1);
    expect(sumOf(exposition, "twin_reconciler_event_age_sum", { partition: "0" })).toBe(1.5);
    expect(sumOf(exposition, "twin_reconciler_batch_size_sum")).toBe(4);
    expect(sumOf(exposition, "twin_reconciler_batch_duration_count", { outcome: "success" })).toBe(1);
    expect(sumOf(exposition, "twin_reconciler_resyncs_total", { outcome: "failed" })).toBe(2);
    expect(sumOf(exposition, "twin_reconciler_repushes_total", { outcome: "precondition_failed" })).toBe(1);
    expect(sumOf(exposition, "twin_reconciler_hub_token_wait_count", { bucket: "twin_ops" })).toBe(1);
    expect(sumOf(exposition, "twin_reconciler_sync_twins_total")).toBe(5);
  });

  it("reports the store's records and devices by state, dead letters, twins awaiting resync and the last sync pass's age", async () => {
    const exposition = parsePrometheusText((await telemetry.prometheusText()) as string);
    const count = async (sql: string) => Object.fromEntries((await db.query<{ state: string; n: string | number }>(sql)).rows.map((r) => [r.state, Number(r.n)]));
    // A pending record past its stale_at is stale when asked (the reports' rule); likewise a device below stale.
    const records = await count(
      "SELECT CASE WHEN state = 'pending' AND stale_at <= now() THEN 'stale' ELSE state END AS state, count(*) AS n FROM property_records GROUP BY 1",
    );
    const devices = await count(
      `SELECT CASE WHEN stale_at <= now() AND state IN ('compliant', 'pending', 'drifted') THEN 'stale' ELSE state END AS state, count(*) AS n
         FROM devices GROUP BY 1`,
    );
    const gauge = (name: string) =>
      Object.fromEntries(samplesOf(exposition, name).filter((s) => s.value !== 0).map((s) => [s.labels.state as string, s.value]));
    expect(Object.keys(records).length).toBeGreaterThan(2);
    expect(gauge("twin_reconciler_property_records")).toEqual(records);
    expect(gauge("twin_reconciler_devices")).toEqual(devices);
    // Every state is reported, 0 included, so a chart of each exists from the start.
    expect(samplesOf(exposition, "twin_reconciler_devices").map((s) => s.labels.state).sort()).toEqual(
      ["compliant", "drifted", "escalated", "failed", "pending", "stale"],
    );
    expect(sumOf(exposition, "twin_reconciler_dead_letters")).toBe(2);
    expect(sumOf(exposition, "twin_reconciler_resync_pending")).toBe(1);
    const age = sumOf(exposition, "twin_reconciler_sync_last_complete_age");
    expect(age).toBeGreaterThanOrEqual(50 * 60);
    expect(age).toBeLessThan(51 * 60);
  });
});
