import path from "node:path";
import { startEmulator, type Emulator } from "../../local/emulator";
import type { LogSink } from "../../local/host/invokeFunction";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { closeRuntime, useRuntimeStore } from "../../shared/runtime";
import type { Database } from "../../shared/store/Database";
import { openTestPostgres } from "../support/testDatabases";
import { countedDeliveries } from "./fixtures/countedReconcile";

// Two local hosts on one PostgreSQL store share a four-partition hub through the SDK's load
// balancing (ownership and checkpoints in the store); one is stopped mid-run and the other takes its
// partitions over from its checkpoints. Every event must be applied exactly once (counted per
// sequence number by the function itself), and the records must equal those of a single host that
// read the same events into a separate database; the stored twins must be the emulator's.
//
// Both hosts run in this process (the functions' runtime is process-wide), so they share one pg
// pool on the store; each has its own Event Hubs client, consumer identity and AMQP connection.

const url = process.env.DATABASE_URL;
if (!url && process.env.CI === "true") throw new Error("CI=true but DATABASE_URL is not set: the load-balancing test needs PostgreSQL");
const describeOnPostgres = url ? describe : describe.skip;

const fixturesDir = path.join(__dirname, "fixtures");
const devices = Array.from({ length: 16 }, (_, i) => `lb-${i + 1}`);

let emulator: Emulator;
const stores: Database[] = [];
const hosts: LocalHost[] = [];
const problems: string[] = [];
const savedEnv = { ...process.env };

const log: LogSink = (entry) => {
  if (entry.level === "error" || entry.level === "critical") problems.push(`${entry.functionName}: ${entry.message}`);
};

async function startHost(): Promise<LocalHost> {
  const host = await startLocalHost({
    modules: [path.join(fixturesDir, "countedReconcile.ts")],
    rootDir: fixturesDir, // host.json: maxEventBatchSize 2, so many small batches interleave
    port: 0,
    scheduleTimers: false,
    eventHubs: { loadBalancing: { updateIntervalInMs: 250, partitionOwnershipExpirationIntervalInMs: 3_000 }, maxWaitTimeInSeconds: 0.2 },
    log,
  });
  hosts.push(host);
  return host;
}

/** One round of back-end and device changes to every twin; each emits a routed twin-change event. */
function changeTwins(round: number, only = devices): void {
  only.forEach((deviceId) => {
    const i = devices.indexOf(deviceId);
    const id = { deviceId, moduleId: null };
    emulator.updateDesired(id, { mode: `m${round}`, level: i * 10 + round });
    if ((i + round) % 3 !== 0) emulator.updateReported(id, { mode: `m${round}`, level: i * 10 + round });
    else emulator.updateReported(id, { mode: `m${round - 1}` });
  });
}

const owned = (host: LocalHost) => host.stats().eventHub.byFunction.reconcileCounted?.ownedPartitions ?? [];

async function waitFor(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Deliveries per `partition:sequenceNumber`, from what the function recorded. */
function deliveryCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const d of countedDeliveries.splice(0)) for (const seq of d.sequenceNumbers) counts.set(`${d.partitionId}:${seq}`, (counts.get(`${d.partitionId}:${seq}`) ?? 0) + 1);
  return counts;
}

/** Every event the hub holds, as `partition:sequenceNumber` (from the emulator's stream, not the host). */
function everyEvent(): string[] {
  return emulator.events.partitionIds.flatMap((p) => Array.from({ length: emulator.events.length(p) }, (_, seq) => `${p}:${seq}`));
}

/** Records, devices and twins without wall-clock columns. */
async function snapshot(db: Database) {
  const records = await db.query("SELECT device_id, module_id, path, state, desired, reported, desired_version FROM property_records ORDER BY device_id, module_id, path");
  const deviceRows = await db.query("SELECT device_id, module_id, state FROM devices ORDER BY device_id, module_id");
  const twins = await db.query<{ device_id: string; version: string | number }>("SELECT device_id, module_id, version, desired, reported FROM twins ORDER BY device_id, module_id");
  const deadLetters = await db.query("SELECT count(*)::int AS n FROM dead_letters");
  return { records: records.rows, devices: deviceRows.rows, twins: twins.rows, deadLetters: deadLetters.rows };
}

describeOnPostgres("two local hosts on one PostgreSQL store", () => {
  beforeAll(async () => {
    emulator = await startEmulator({ throttling: "off", partitionCount: 4 });
    // Set once for both hosts: a host's stop() restores the environment it found, which is then this.
    Object.assign(process.env, {
      DATABASE_URL: url,
      POLICY_JSON: JSON.stringify({ staleAfter: "1h" }),
      POLICY_PATH: "",
      IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
      IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
      IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
      HUB_TWIN_OPS_PER_SECOND: "100",
      TWIN_EVENTS_HUB_NAME: "twin-changes",
      TWIN_EVENTS_CONSUMER_GROUP: "$Default",
      TwinEvents: emulator.eventHubs.connectionString,
    });
  });

  afterAll(async () => {
    for (const host of hosts) await host.stop();
    await closeRuntime();
    useRuntimeStore(undefined);
    for (const db of stores) await db.close();
    await emulator?.stop();
    process.env = savedEnv;
  });

  test("a stopped host's partitions move to the other, with every event applied once and the records of a single-host run", async () => {
    const shared = await openTestPostgres(url!);
    stores.push(shared);
    useRuntimeStore(shared);

    const a = await startHost();
    const b = await startHost();
    await waitFor(() => owned(a).length === 2 && owned(b).length === 2, "the four partitions to be shared two and two");

    for (const deviceId of devices) emulator.createDevice(deviceId);
    changeTwins(1);
    changeTwins(2);
    await waitFor(() => a.stats().eventHub.events > 0 && b.stats().eventHub.events > 0, "both hosts to process events");
    changeTwins(3);
    const ownedByA = owned(a);
    await a.stop(); // mid-run: it finishes and checkpoints the batches in flight, then releases its partitions
    const checkpointsOfA = a.stats().eventHub.byFunction.reconcileCounted!.checkpoints;
    changeTwins(4);
    emulator.deleteDevice({ deviceId: "lb-16", moduleId: null });
    changeTwins(5, devices.slice(0, -1));

    await waitFor(() => owned(b).length === 4, "the remaining host to own every partition");
    await b.drained();
    const twoHosts = deliveryCounts();
    const sharedSnapshot = await snapshot(shared);

    // Every event exactly once: none lost at the handoff, none past a checkpoint applied again.
    const events = everyEvent();
    expect(events.length).toBeGreaterThan(150);
    expect([...twoHosts.keys()].sort()).toEqual([...events].sort());
    expect([...twoHosts].filter(([, n]) => n !== 1)).toEqual([]);
    // The handoff really happened: B went on where A's checkpoints left A's partitions.
    const checkpointsOfB = b.stats().eventHub.byFunction.reconcileCounted!.checkpoints;
    expect(Object.keys(checkpointsOfA).length).toBeGreaterThan(0);
    for (const [partition, next] of Object.entries(checkpointsOfA)) {
      expect(ownedByA).toContain(partition);
      expect(checkpointsOfB[partition]).toBeGreaterThan(next);
    }
    expect(a.stats().eventHub.events + b.stats().eventHub.events).toBe(events.length);
    expect(a.stats().eventHub).toMatchObject({ failures: 0, lostEvents: 0 });
    expect(b.stats().eventHub).toMatchObject({ failures: 0, lostEvents: 0 });

    // A single host over the same events, into a database of its own.
    await b.stop();
    await closeRuntime();
    const alone = await openTestPostgres(url!);
    stores.push(alone);
    useRuntimeStore(alone);
    const single = await startHost();
    await single.drained();
    const oneHost = deliveryCounts();
    expect([...oneHost.keys()].sort()).toEqual([...events].sort());
    expect(await snapshot(alone)).toEqual(sharedSnapshot);

    // And both agree with the emulator's own twins: every live twin at the hub's version, the deleted one gone.
    const versions = Object.fromEntries(sharedSnapshot.twins.map((t) => [t.device_id, Number(t.version)]));
    const live = devices.filter((d) => d !== "lb-16");
    expect(versions).toEqual(Object.fromEntries(live.map((deviceId) => [deviceId, (emulator.getTwin({ deviceId, moduleId: null }) as { version: number }).version])));
    expect(sharedSnapshot.records.length).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  }, 180_000);
});
