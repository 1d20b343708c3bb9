import path from "node:path";
import { demoRollout } from "../../local/demoRollout";
import { startEmulator, type Emulator } from "../../local/emulator";
import { startFleet, type Fleet } from "../../local/fleet/startFleet";
import type { DeviceBehaviour } from "../../local/fleet/DeviceBehaviour";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { closeRuntime, useRuntimeStore } from "../../shared/runtime";
import type { Database } from "../../shared/store/Database";
import { startTelemetry, stopTelemetry } from "../../shared/telemetry/startTelemetry";
import { testDatabases } from "../support/testDatabases";
import { parsePrometheusText, samplesOf, sumOf, type Exposition } from "./prometheusText";

// GET /api/metrics on the local host while the embedded default runs (IoT Hub emulator injecting
// duplicate and re-sent events, a fleet on the device SDK, the real reconcileTwinChanges), read
// with the test's own Prometheus parser and checked against what is independent of the metrics
// code: the events the emulator routed and the host delivered, and the store's rows counted here.

const repoRoot = path.resolve(__dirname, "..", "..");
const devices: { deviceId: string; behaviour: DeviceBehaviour }[] = (["prompt", "rejecting"] as const).flatMap((behaviour) =>
  [1, 2, 3].map((n) => ({ deviceId: `m-${behaviour}-${n}`, behaviour })),
);

const waitFor = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 90_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe.each(testDatabases)("GET /api/metrics on $name", ({ open }) => {
  let db: Database;
  let emulator: Emulator;
  let host: LocalHost;
  let fleet: Fleet | undefined;

  beforeAll(async () => {
    db = await open();
    useRuntimeStore(db);
    // Prometheus whatever the machine's environment says; gauges read at each scrape (no cache).
    startTelemetry({}, { gaugeCacheMs: 0 });
    emulator = await startEmulator({
      throttling: "off",
      partitionCount: 2,
      faults: { seed: 7, duplicateProbability: 0.3, resendProbability: 0.1, resendMaxLength: 3 },
    });
    host = await startLocalHost({
      modules: ["reconcileTwinChanges", "complianceApi", "metricsApi"].map((f) => path.join(repoRoot, "functions", `${f}.ts`)),
      rootDir: path.join(__dirname, "fixtures"),
      settings: {
        DATABASE_URL: "",
        PGLITE_DATA_DIR: "memory",
        POLICY_PATH: path.join(repoRoot, "local", "demo-policy.json"),
        IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
        IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
        IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
        HUB_TWIN_OPS_PER_SECOND: "100",
        TWIN_EVENTS_HUB_NAME: "twin-changes",
        TWIN_EVENTS_CONSUMER_GROUP: "$Default",
        TwinEvents: emulator.eventHubs.connectionString,
      },
      eventHubs: { maxWaitTimeInSeconds: 0.2 },
      port: 0,
      scheduleTimers: false,
      log: () => undefined,
    });
    fleet = await startFleet({ hub: emulator, devices, seed: 3 });
    await fleet.ready();
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
    await host?.stop();
    await closeRuntime();
    useRuntimeStore(undefined);
    await stopTelemetry();
    await emulator?.stop();
    await db?.close();
  });

  async function scrape(): Promise<Exposition> {
    const response = await fetch(`${host.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await response.text());
  }

  /**
   * Rolls `patchId` out to every device and waits until the reconciler has caught up with the hub:
   * every routed event delivered, every stored twin at its hub twin's version, and nothing new routed
   * for a moment (devices answer at their own pace; what they answer does not matter here).
   */
  async function rollOut(patchId: string): Promise<void> {
    for (const { deviceId } of devices) emulator.updateDesired({ deviceId, moduleId: null }, demoRollout(patchId));
    await waitFor(async () => {
      const routed = emulator.counters.events.appended;
      await host.drained();
      if (host.stats().eventHub.events !== routed) return false;
      const { rows } = await db.query<{ device_id: string; version: string | number }>("SELECT device_id, version FROM twins");
      const stored = new Map(rows.map((r) => [r.device_id, Number(r.version)]));
      const caughtUp = devices.every(({ deviceId }) => stored.get(deviceId) === (emulator.getTwin({ deviceId, moduleId: null }) as { version: number }).version);
      if (!caughtUp) return false;
      await new Promise((r) => setTimeout(r, 1_500));
      return emulator.counters.events.appended === routed;
    }, `the reconciler to catch up with the hub after ${patchId}`);
  }

  /** A scrape and the store's counts with no event routed in between (retried when one was). */
  async function scrapeQuiet(): Promise<{ exposition: Exposition; counts: Awaited<ReturnType<typeof storeCounts>>; delivered: number }> {
    for (;;) {
      const routed = emulator.counters.events.appended;
      await host.drained();
      const delivered = host.stats().eventHub.events;
      const exposition = await scrape();
      const counts = await storeCounts();
      if (emulator.counters.events.appended === routed && delivered === routed) return { exposition, counts, delivered };
    }
  }

  /** Property records and devices by state, counted here (a pending record past its stale_at is stale, as the reports say). */
  async function storeCounts() {
    const count = async (sql: string) => Object.fromEntries((await db.query<{ state: string; n: string | number }>(sql)).rows.map((r) => [r.state, Number(r.n)]));
    return {
      records: await count("SELECT CASE WHEN state = 'pending' AND stale_at <= now() THEN 'stale' ELSE state END AS state, count(*) AS n FROM property_records GROUP BY 1"),
      devices: await count(
        "SELECT CASE WHEN stale_at <= now() AND state IN ('compliant', 'pending', 'drifted') THEN 'stale' ELSE state END AS state, count(*) AS n FROM devices GROUP BY 1",
      ),
      deadLetters: Number((await db.query<{ n: string | number }>("SELECT count(*) AS n FROM dead_letters")).rows[0]!.n),
    };
  }

  const byState = (exposition: Exposition, name: string) =>
    Object.fromEntries(samplesOf(exposition, name).filter((s) => s.value !== 0).map((s) => [s.labels.state as string, s.value]));
  const eventsByOutcome = (exposition: Exposition) =>
    Object.fromEntries(samplesOf(exposition, "twin_reconciler_events_total").map((s) => [s.labels.outcome as string, s.value]));

  it("counts every delivered event once by outcome, and reports the store's records and devices by state; both move as more events arrive", async () => {
    await rollOut("metrics-1");
    const { exposition: first, counts: counts1, delivered: delivered1 } = await scrapeQuiet();
    expect(delivered1).toBeGreaterThanOrEqual(devices.length);
    // The emulator injected duplicates and re-sent series: some events are duplicates.
    expect(emulator.counters.events.duplicated + emulator.counters.events.resent).toBeGreaterThan(0);
    expect(sumOf(first, "twin_reconciler_events_total")).toBe(delivered1);
    expect(eventsByOutcome(first).duplicate).toBeGreaterThan(0);
    expect(eventsByOutcome(first).applied).toBeGreaterThan(0);
    // Every event carried an enqueued time: one age each, by partition of the emulator's two.
    expect(sumOf(first, "twin_reconciler_event_age_count")).toBe(delivered1);
    expect(new Set(samplesOf(first, "twin_reconciler_event_age_count").map((s) => s.labels.partition))).toEqual(new Set(["0", "1"]));
    expect(sumOf(first, "twin_reconciler_batch_size_sum")).toBe(delivered1);
    expect(sumOf(first, "twin_reconciler_batch_duration_count", { outcome: "success" })).toBe(host.stats().eventHub.batches);
    expect(byState(first, "twin_reconciler_property_records")).toEqual(counts1.records);
    expect(byState(first, "twin_reconciler_devices")).toEqual(counts1.devices);
    expect(Object.values(counts1.devices).reduce((n, c) => n + c, 0)).toBe(devices.length);
    expect(sumOf(first, "twin_reconciler_dead_letters")).toBe(counts1.deadLetters);

    // A second rollout: more events, new verdicts; the next scrape follows.
    await rollOut("metrics-2");
    const { exposition: second, counts: counts2, delivered: delivered2 } = await scrapeQuiet();
    expect(delivered2).toBeGreaterThanOrEqual(delivered1 + devices.length);
    expect(sumOf(second, "twin_reconciler_events_total")).toBe(delivered2);
    expect(sumOf(second, "twin_reconciler_events_total") - sumOf(first, "twin_reconciler_events_total")).toBe(delivered2 - delivered1);
    expect(sumOf(second, "twin_reconciler_event_age_count")).toBe(delivered2);
    expect(byState(second, "twin_reconciler_property_records")).toEqual(counts2.records);
    expect(byState(second, "twin_reconciler_devices")).toEqual(counts2.devices);
    expect(counts2.records).not.toEqual(counts1.records);
  }, 300_000);
});
