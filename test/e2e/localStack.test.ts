import path from "node:path";
import { demoRollout } from "../../local/demoRollout";
import { startEmulator, type Emulator } from "../../local/emulator";
import { startFleet, type Fleet } from "../../local/fleet/startFleet";
import type { DeviceBehaviour } from "../../local/fleet/DeviceBehaviour";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { closeRuntime } from "../../shared/runtime";
import { getStore } from "../../shared/reports/getStore";

// The whole embedded default in one process: IoT Hub emulator (injecting duplicate and re-sent
// events), a small fleet on the device SDK over MQTT, the local host running the real
// reconcileTwinChanges and complianceApi functions — every event read from the emulator's Event
// Hubs endpoint by @azure/event-hubs, checkpoints in the store — PGlite in memory.

const repoRoot = path.resolve(__dirname, "..", "..");
const rollout = demoRollout("e2e-rollout-1");
const devices: { deviceId: string; behaviour: DeviceBehaviour }[] = [
  ...(["prompt", "rejecting", "offline", "drifting"] as const).flatMap((behaviour) => [
    { deviceId: `e2e-${behaviour}-1`, behaviour },
    { deviceId: `e2e-${behaviour}-2`, behaviour },
  ]),
];
const idsOf = (behaviour: DeviceBehaviour) => devices.filter((d) => d.behaviour === behaviour).map((d) => d.deviceId);

let emulator: Emulator;
let fleet: Fleet | undefined;
let host: LocalHost | undefined;

function hostOptions(consumerGroup = "$Default") {
  return {
    modules: [path.join(repoRoot, "functions", "reconcileTwinChanges.ts"), path.join(repoRoot, "functions", "complianceApi.ts")],
    rootDir: path.join(__dirname, "fixtures"),
    settings: {
      // An in-memory PGlite of its own, even when CI sets DATABASE_URL for the store suites.
      DATABASE_URL: "",
      PGLITE_DATA_DIR: "memory",
      POLICY_PATH: path.join(repoRoot, "local", "demo-policy.json"),
      IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
      IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
      IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
      HUB_TWIN_OPS_PER_SECOND: "100",
      TWIN_EVENTS_HUB_NAME: "twin-changes",
      TWIN_EVENTS_CONSUMER_GROUP: consumerGroup,
      TwinEvents: emulator.eventHubs.connectionString,
    },
    eventHubs: { maxWaitTimeInSeconds: 0.2 },
    port: 0,
    scheduleTimers: false,
    log: () => undefined,
  };
}

async function deviceStates(): Promise<Record<string, string>> {
  const { rows } = await (await getStore()).query<{ device_id: string; state: string }>("SELECT device_id, state FROM devices");
  return Object.fromEntries(rows.map((r) => [r.device_id, r.state]));
}

/** Polls the store until `check` passes (bounded), so the test waits on conditions, never on time. */
async function eventually(check: (states: Record<string, string>) => boolean, what: string, timeoutMs = 40_000): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  let states: Record<string, string> = {};
  while (Date.now() < deadline) {
    states = await deviceStates();
    if (check(states)) return states;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; device states: ${JSON.stringify(states)}`);
}

/** Everything the reconciler keeps, without wall-clock columns. */
async function storeSnapshot() {
  const db = await getStore();
  const twins = await db.query("SELECT device_id, module_id, version, desired, reported FROM twins ORDER BY device_id, module_id");
  const records = await db.query(
    "SELECT device_id, module_id, path, state, desired, reported, desired_version FROM property_records ORDER BY device_id, module_id, path",
  );
  const history = await db.query("SELECT count(*)::int AS n FROM property_history");
  const deadLetters = await db.query("SELECT count(*)::int AS n FROM dead_letters");
  return { twins: twins.rows, records: records.rows, history: history.rows, deadLetters: deadLetters.rows };
}

beforeAll(async () => {
  emulator = await startEmulator({
    throttling: "off",
    partitionCount: 2,
    faults: { seed: 11, duplicateProbability: 0.25, resendProbability: 0.1, resendMaxLength: 3 },
  });
  host = await startLocalHost(hostOptions());
  fleet = await startFleet({
    hub: emulator,
    devices,
    seed: 5,
    // Drift only when the test says so (fleet.drift), so the reconciler has seen compliance first.
    // Away long enough that opening the store below (slow on a loaded machine) ends before they return.
    timing: { offlineFor: [5_000, 7_000], onlineFor: [3_600_000, 3_600_000], driftEvery: [3_600_000, 3_600_000] },
  });
  // Opens (and migrates) the store before any event, as a warm Functions instance would have.
  expect((await fetch(`http://127.0.0.1:${host.port}/api/compliance/summary`)).status).toBe(200);
  await fleet.ready();
  for (const { deviceId } of devices) emulator.updateDesired({ deviceId, moduleId: null }, rollout);
});

afterAll(async () => {
  await fleet?.stop();
  await host?.stop();
  await emulator?.stop();
  await closeRuntime();
});

test("prompt devices end compliant, rejecting devices failed, offline devices compliant after reconnect, drifting devices drifted", async () => {
  await eventually((s) => idsOf("drifting").every((id) => s[id] === "compliant"), "drifting devices to comply first");
  for (const id of idsOf("drifting")) fleet!.drift(id);
  const states = await eventually(
    (s) =>
      idsOf("prompt").every((id) => s[id] === "compliant") &&
      idsOf("rejecting").every((id) => s[id] === "failed") &&
      idsOf("offline").every((id) => s[id] === "compliant") &&
      idsOf("drifting").every((id) => s[id] === "drifted"),
    "every behaviour to reach its expected state",
  );
  expect(Object.keys(states).sort()).toEqual(devices.map((d) => d.deviceId).sort());
  // The offline devices were not connected when the rollout came: they caught up by the full twin GET.
  expect(emulator.counters.device.desiredNotificationsMissed).toBeGreaterThanOrEqual(idsOf("offline").length);

  const detail = await fetch(`http://127.0.0.1:${host!.port}/api/compliance/devices/e2e-prompt-1`);
  expect(detail.status).toBe(200);
}, 120_000);

test("every emitted event is processed exactly once in effect: duplicates and a full re-delivery change nothing", async () => {
  await fleet!.stop();
  fleet = undefined;
  await host!.drained();
  expect(emulator.counters.events.duplicated + emulator.counters.events.resent).toBeGreaterThan(0);
  expect(host!.stats().eventHub).toMatchObject({ failures: 0, lostEvents: 0 });
  expect(host!.stats().eventHub.events).toBe(emulator.counters.events.appended);

  // The reconciler's copy of each twin is the hub's, read through azure-iothub: version, and the
  // desired and reported sections with their values and `$metadata` (the product stores both).
  const before = await storeSnapshot();
  const registry = emulator.createRegistryClient();
  for (const { deviceId } of devices) {
    const hubTwin = (await registry.getTwin(deviceId)).responseBody as unknown as { version: number; properties: { desired: unknown; reported: unknown } };
    const stored = before.twins.find((t) => t.device_id === deviceId) as { version: number | string; desired: unknown; reported: unknown } | undefined;
    expect({ deviceId, version: Number(stored?.version), desired: stored?.desired, reported: stored?.reported }).toEqual({
      deviceId,
      version: hubTwin.version,
      desired: hubTwin.properties.desired,
      reported: hubTwin.properties.reported,
    });
  }

  // A host restarted on the same consumer group resumes after its checkpoints: nothing again.
  await host!.stop();
  host = await startLocalHost(hostOptions());
  await host.drained();
  expect(host.stats().eventHub.events).toBe(0);

  // A consumer group with no checkpoints re-delivers the whole stream to the same store.
  await host.stop();
  host = await startLocalHost(hostOptions("redelivery"));
  await host.drained();
  expect(host.stats().eventHub.events).toBe(emulator.counters.events.appended);
  expect(await storeSnapshot()).toEqual(before);
}, 120_000);
