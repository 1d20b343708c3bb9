import path from "node:path";
import type { Registry } from "azure-iothub";
import { demoRollout } from "../../local/demoRollout";
import { startEmulator, type Emulator } from "../../local/emulator";
import type { DeviceBehaviour } from "../../local/fleet/DeviceBehaviour";
import { startFleet, type Fleet } from "../../local/fleet/startFleet";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { closeRuntime, useRuntimeStore } from "../../shared/runtime";
import type { Database } from "../../shared/store/Database";
import { outageStore, type OutageStore } from "../support/outageStore";
import { testDatabases } from "../support/testDatabases";

// Convergence (issue #14's bar): whatever happens to the events — 30% dropped, a lost window,
// duplicates, re-sent series, coalescing, a 10 s store outage in the middle of a batch, re-push
// running meanwhile, devices deleted and created mid-run — after one complete fleet-sync pass every
// twin in the hub has the verdict the hub's twin calls for. The truth is the hub's twin read through
// the official azure-iothub SDK, judged by the small evaluator below (not the product's).

const repoRoot = path.resolve(__dirname, "..", "..");
const POLICY = {
  staleAfter: "1h",
  rules: [
    { desired: "components.climate.maxTemperature", reported: "maxTemperature" },
    { desired: "components.climate.minTemperature", reported: "minTemperature" },
    { desired: "patchId", reported: "lastPatchReceivedId" },
    { desired: "targetTemperature", compare: "ack" },
    { desired: "telemetryConfig", compare: "status" },
  ],
};

type Verdict = "compliant" | "failed" | "notCompliant";
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const own = (o: Obj, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
const at = (o: unknown, dotted: string): unknown => dotted.split(".").reduce<unknown>((v, k) => (isObj(v) ? own(v, k) : undefined), o);

/** Equal as IoT Hub JSON: objects by own non-`$` keys of desired, every one equal in reported. */
function contains(desired: unknown, reported: unknown): boolean {
  if (isObj(desired)) {
    if (!isObj(reported)) return false;
    return Object.keys(desired).filter((k) => !k.startsWith("$")).every((k) => contains(desired[k], own(reported, k)));
  }
  return JSON.stringify(desired) === JSON.stringify(reported);
}

/** The test's own reading of POLICY: each desired leaf (or rule path) → compliant / failed / not compliant. */
function expectedVerdicts(twin: { properties: { desired: Obj; reported: Obj } }): Record<string, Verdict> {
  const { desired, reported } = twin.properties;
  const out: Record<string, Verdict> = {};
  const ruleFor = (p: string) => POLICY.rules.find((r) => r.desired === p);
  const walk = (node: Obj, prefix: string) => {
    for (const key of Object.keys(node)) {
      if (key.startsWith("$") || key === "__t") continue;
      const p = prefix ? `${prefix}.${key}` : key;
      const value = node[key];
      const rule = ruleFor(p);
      if (!rule && isObj(value) && Object.keys(value).some((k) => !k.startsWith("$"))) {
        walk(value, p);
        continue;
      }
      const got = at(reported, rule?.reported ?? p);
      if (rule?.compare === "ack") {
        const meta = at(desired, `$metadata.${p}.$lastUpdatedVersion`);
        const dv = typeof meta === "number" ? meta : (desired.$version as number);
        const ack = isObj(got) ? got : {};
        const ac = typeof ack.ac === "number" ? ack.ac : 0;
        const av = typeof ack.av === "number" ? ack.av : -1;
        out[p] = av >= dv && ac >= 200 && ac < 300 && ac !== 202 ? "compliant" : av >= dv && ac >= 400 ? "failed" : "notCompliant";
      } else if (rule?.compare === "status") {
        const status = isObj(got) && typeof got.status === "string" ? got.status.toLowerCase() : "";
        const rest = isObj(value) ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== "status" && !k.startsWith("$"))) : value;
        out[p] = ["success", "succeeded", "ok", "done", "applied"].includes(status) && contains(rest, got)
          ? "compliant"
          : ["error", "failed", "failure", "rejected"].includes(status)
            ? "failed"
            : "notCompliant";
      } else {
        out[p] = contains(value, got) ? "compliant" : "notCompliant";
      }
    }
  };
  walk(desired, "");
  return out;
}

const asVerdict = (state: string): Verdict => (state === "compliant" ? "compliant" : state === "failed" ? "failed" : "notCompliant");

interface HubTwin {
  deviceId: string;
  moduleId?: string;
  version: number;
  properties: { desired: Obj; reported: Obj };
}

/** Every device and module twin in the hub, through the official SDK's paged twin queries. */
async function hubTwins(registry: Registry): Promise<HubTwin[]> {
  const twins: HubTwin[] = [];
  for (const sql of ["SELECT * FROM devices", "SELECT * FROM devices.modules"]) {
    const query = registry.createQuery(sql, 100);
    let token: string | undefined;
    do {
      const { result } = (await query.next(token as string)) as unknown as { result: HubTwin[] };
      twins.push(...result);
      token = query.continuationToken;
    } while (query.hasMoreResults);
  }
  return twins;
}

const fleetDevices: { deviceId: string; behaviour: DeviceBehaviour }[] = (
  [
    ["prompt", 4],
    ["slow", 2],
    ["lossy", 3],
    ["rejecting", 3],
    ["offline", 3],
    ["drifting", 3],
  ] as const
).flatMap(([behaviour, n]) => Array.from({ length: n }, (_, i) => ({ deviceId: `cv-${behaviour}-${i + 1}`, behaviour })));

const waitFor = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe.each(testDatabases)("convergence on $name", ({ open }) => {
  let emulator: Emulator;
  let host: LocalHost | undefined;
  let fleet: Fleet | undefined;
  let real: Database;
  let store: OutageStore;
  let registry: Registry;

  beforeAll(async () => {
    real = await open();
    store = outageStore(real);
    useRuntimeStore(store);
  });

  afterAll(async () => {
    await fleet?.stop();
    await host?.stop();
    await closeRuntime();
    useRuntimeStore(undefined);
    await emulator?.stop();
    await real?.close();
  });

  test("every twin in the hub ends with the verdict its hub twin calls for", async () => {
    emulator = await startEmulator({ throttling: "off", partitionCount: 4 });
    registry = emulator.createRegistryClient();
    const rollout = demoRollout("cv-1");

    // Twins that exist before deployment: their events are gone (IoT Hub emits none for a twin that already exists).
    emulator.events.setFaults({ lostWindow: { from: Date.now() - 1_000, to: Date.now() + 3_600_000 } });
    const extras = ["x-keep-1", "x-keep-2", "x-del-1", "x-del-2", "x-del-3", "x-del-4", "x-del-5", "x-again"];
    for (const deviceId of extras) {
      emulator.createDevice(deviceId);
      emulator.updateDesired({ deviceId, moduleId: null }, { ...rollout, mode: "old" });
      emulator.updateReported({ deviceId, moduleId: null }, { mode: "old", fanOn: true, lastPatchReceivedId: "cv-1" });
    }
    emulator.createModule("x-keep-1", "edge");
    emulator.updateDesired({ deviceId: "x-keep-1", moduleId: "edge" }, { fanOn: false, mode: "m" });
    emulator.updateReported({ deviceId: "x-keep-1", moduleId: "edge" }, { mode: "m" });

    const startMs = Date.now();
    const faults = {
      seed: 14,
      dropRate: 0.3,
      lostWindow: { from: startMs + 4_000, to: startMs + 6_000 },
      duplicateProbability: 0.1,
      resendProbability: 0.05,
      resendMaxLength: 3,
      coalesceProbability: 0.5,
    };
    emulator.events.setFaults(faults);

    host = await startLocalHost({
      modules: ["reconcileTwinChanges", "repushStaleDesired", "syncFleetTwins", "resyncTwins", "complianceApi"].map((f) => path.join(repoRoot, "functions", `${f}.ts`)),
      rootDir: path.join(__dirname, "fixtures"),
      settings: {
        POLICY_JSON: JSON.stringify(POLICY),
        POLICY_PATH: "",
        IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
        IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
        IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
        HUB_TWIN_OPS_PER_SECOND: "100",
        HUB_QUERIES_PER_MINUTE: "600",
        REPUSH_BACKOFF_BASE: "2s",
        REPUSH_BACKOFF_CAP: "4s",
        REPUSH_MAX_ATTEMPTS: "3",
        TWIN_EVENTS_HUB_NAME: "twin-changes",
        TWIN_EVENTS_CONSUMER_GROUP: "$Default",
        TwinEvents: emulator.eventHubs.connectionString,
      },
      eventHubs: { maxWaitTimeInSeconds: 0.2 },
      port: 0,
      scheduleTimers: false,
      log: () => undefined,
    });

    fleet = await startFleet({
      hub: emulator,
      devices: fleetDevices,
      seed: 3,
      timing: { offlineFor: [1_000, 3_000], onlineFor: [4_000, 8_000], driftEvery: [3_000, 6_000], slowReportDelay: [500, 1_500] },
    });
    await fleet.ready();
    for (const { deviceId } of fleetDevices) emulator.updateDesired({ deviceId, moduleId: null }, rollout);

    // Re-push runs meanwhile, as its timer would.
    let repushing = true;
    const repushLoop = (async () => {
      while (repushing) {
        await host!.runTimer("repushStaleDesired").catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();

    // A 10 s store outage in the middle of a batch.
    await waitFor(() => host!.stats().eventHub.events > 20, "the first batches");
    store.failNextTransaction(10_000);
    await store.outageStarted;

    // Devices deleted and created mid-run; one deleted and created again under the same id.
    for (let i = 1; i <= 5; i++) emulator.deleteDevice({ deviceId: `x-del-${i}`, moduleId: null });
    emulator.deleteDevice({ deviceId: "x-again", moduleId: null });
    emulator.createDevice("x-again");
    emulator.updateDesired({ deviceId: "x-again", moduleId: null }, { mode: "new" });
    for (let i = 1; i <= 5; i++) {
      const deviceId = `x-new-${i}`;
      emulator.createDevice(deviceId);
      emulator.updateDesired({ deviceId, moduleId: null }, { ...rollout, mode: "new" });
      if (i % 2 === 0) emulator.updateReported({ deviceId, moduleId: null }, { mode: "new", fanOn: true });
    }
    for (const { deviceId } of fleetDevices.filter((d) => d.behaviour === "drifting")) fleet.drift(deviceId);
    // A burst of back-end changes to one twin, faster than any reader: IoT Hub may coalesce them.
    for (let i = 1; i <= 20; i++) emulator.updateDesired({ deviceId: "x-keep-2", moduleId: null }, { burst: i });
    // Two malformed events among them (routed with the faults off, so both arrive): dead letters, nothing else.
    emulator.events.setFaults({});
    for (const [i, body] of ["{ not json", '{"version": 1.5}'].entries()) {
      emulator.events.append({
        deviceId: "cv-prompt-1",
        twinKey: `cv-prompt-1/#injected-${i}`,
        body,
        properties: { deviceId: "cv-prompt-1", opType: "updateTwin", "iothub-message-schema": "twinChangeNotification" },
        systemProperties: { "iothub-connection-device-id": "cv-prompt-1", "iothub-message-source": "twinChangeEvents" },
        enqueuedTimeMs: Date.now(),
      });
    }
    emulator.events.setFaults(faults);

    await new Promise((r) => setTimeout(r, 8_000));
    repushing = false;
    await repushLoop;
    await fleet.stop();
    fleet = undefined;
    await waitFor(() => Date.now() > startMs + 6_500, "the lost window to close");
    await host.drained();
    expect(store.failures).toBeGreaterThan(0);

    // One complete fleet-sync pass, started now: the timer starts it, the resync timer carries it on.
    const finished = async () =>
      (await real.query<{ n: number }>("SELECT count(*)::int AS n FROM fleet_sync_passes WHERE finished_at IS NOT NULL AND started_at >= $1::timestamptz", [passFrom])).rows[0]!.n;
    const passFrom = new Date().toISOString();
    await host.runTimer("syncFleetTwins");
    await waitFor(async () => {
      if ((await finished()) > 0) return true;
      await host!.runTimer("resyncTwins");
      return (await finished()) > 0;
    }, "a complete fleet-sync pass", 120_000);
    await host.runTimer("resyncTwins");

    const twins = await hubTwins(registry);
    const keyOf = (deviceId: string, moduleId: string | undefined | null) => `${deviceId}/${moduleId ?? ""}`;
    const records = await real.query<{ device_id: string; module_id: string; path: string; state: string }>(
      "SELECT device_id, module_id, path, state FROM property_records",
    );
    const actual = new Map<string, Record<string, Verdict>>();
    for (const r of records.rows) {
      const k = keyOf(r.device_id, r.module_id || null);
      actual.set(k, { ...actual.get(k), [r.path]: asVerdict(r.state) });
    }
    const stored = await real.query<{ device_id: string; module_id: string }>("SELECT device_id, module_id FROM twins");
    const storedKeys = new Set(stored.rows.map((r) => keyOf(r.device_id, r.module_id || null)));
    const hubKeys = new Set(twins.map((t) => keyOf(t.deviceId, t.moduleId)));

    // No deleted device remains; no created device is missing.
    expect([...storedKeys].filter((k) => !hubKeys.has(k)).sort()).toEqual([]);
    expect([...hubKeys].filter((k) => !storedKeys.has(k)).sort()).toEqual([]);
    // Every twin's records agree with the test's own evaluation of the hub's twin.
    const disagreements = twins
      .map((t) => ({ twin: keyOf(t.deviceId, t.moduleId), expected: expectedVerdicts(t), actual: actual.get(keyOf(t.deviceId, t.moduleId)) ?? {} }))
      .filter((d) => JSON.stringify(Object.entries(d.expected).sort()) !== JSON.stringify(Object.entries(d.actual).sort()));
    expect(disagreements).toEqual([]);
    expect(twins.length).toBe(fleetDevices.length + 2 + 1 + 5 + 1);
    // The faults really happened.
    const counters = emulator.counters.events;
    expect(counters.dropped).toBeGreaterThan(0);
    expect(counters.lost).toBeGreaterThan(0);
    expect(counters.duplicated + counters.resent).toBeGreaterThan(0);
    expect(counters.coalesced).toBeGreaterThan(0);
    // No dead letter but the two injected.
    const deadLetters = await real.query<{ reason: string }>("SELECT reason FROM dead_letters ORDER BY id");
    expect(deadLetters.rows.map((r) => r.reason)).toEqual([expect.stringMatching(/not JSON/), expect.stringMatching(/version/)]);
  }, 240_000);
});
