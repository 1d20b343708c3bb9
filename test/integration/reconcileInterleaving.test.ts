/**
 * One writer per twin: reconcile paused between its hub reads and its transaction (the
 * `hooks.beforeWrite` seam) while a re-push runs to completion on the same device, then resumed.
 * The hub is the emulator's model behind the real azure-iothub adapter (repushSupport); the
 * expected verdict is computed here from the hub's twin, not by the product's evaluator.
 */
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { reconcileTwinChanges } from "../../shared/reconcile";
import { repushStaleDesired } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import type { IotHub } from "../../local/emulator/IotHub";
import { fakeClock, history, inProcessHub, inProcessTwinRegistry, MINUTE, testPolicy, testSettings, type FakeClock } from "../repush/repushSupport";
import { testDatabases, truncateAll } from "../support/testDatabases";

interface RecordRow {
  state: string;
  attempts: number;
  next_attempt_at: string | null;
  desired_version: string;
}

async function recordOf(db: Database, deviceId: string, path: string): Promise<RecordRow | undefined> {
  const { rows } = await db.query<RecordRow>(
    `SELECT state, attempts, to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS next_attempt_at,
            desired_version::text AS desired_version
       FROM property_records WHERE device_id = $1 AND module_id = '' AND path = $2`,
    [deviceId, path],
  );
  return rows[0];
}

/** The test's own verdict for a plain `interval` property: compliant when reported equals desired, else pending (not yet stale). */
async function hubVerdict(registry: TwinRegistry, deviceId: string): Promise<{ state: string; desiredVersion: string }> {
  const twin = await registry.getTwin({ deviceId, moduleId: null });
  const desired = twin.desired as { interval?: unknown; $metadata: { interval: { $lastUpdatedVersion: number } } };
  const reported = twin.reported as { interval?: unknown };
  return {
    state: desired.interval === reported.interval ? "compliant" : "pending",
    desiredVersion: String(desired.$metadata.interval.$lastUpdatedVersion),
  };
}

describe.each(testDatabases)("reconcile and re-push on one device, on $name", ({ open }) => {
  let db: Database;
  let clock: FakeClock;
  let hub: IotHub;
  let registry: TwinRegistry;
  const read = new Map<string, number>();

  beforeAll(async () => {
    db = await open();
  });
  beforeEach(async () => {
    await truncateAll(db);
    clock = fakeClock();
    hub = inProcessHub(clock);
    registry = inProcessTwinRegistry(hub);
    read.clear();
  });
  afterAll(async () => {
    await db.close();
  });

  /** The device's twin-change events not handed to reconcile yet. */
  const newEvents = (deviceId: string): ReceivedEvent[] => {
    const partition = hub.events.partitionOf(deviceId);
    const from = read.get(partition) ?? 0;
    const events = hub.events.read(partition, from, 1000);
    read.set(partition, from + events.length);
    return events;
  };
  const reconcile = async (events: ReceivedEvent[], beforeWrite?: () => Promise<void>) => {
    const { messages, triggerMetadata } = await toTriggerInput(events);
    return reconcileTwinChanges(messages, triggerMetadata, {
      db,
      policy: testPolicy,
      registry,
      clock: () => clock.date(),
      ...(beforeWrite ? { hooks: { beforeWrite } } : {}),
    });
  };
  const repush = (maxAttempts = testSettings.maxAttempts) =>
    repushStaleDesired({ db, policy: testPolicy, registry, settings: { ...testSettings, maxAttempts }, clock: () => clock.date(), random: () => 0.5, concurrency: 1 });

  /** A device whose desired interval it never applies: reconciled, then left until stale. */
  async function staleDevice(deviceId: string): Promise<void> {
    hub.registry.createDevice(deviceId);
    hub.registry.updateTwin(deviceId, { properties: { desired: { interval: 30 } } });
    await reconcile(newEvents(deviceId));
    clock.advance(11 * MINUTE);
  }

  it("keeps the attempt, next attempt and desired version of a re-push that ran while reconcile was between read and write", async () => {
    await staleDevice("race-1");
    // The device reports something else: an event reconcile has not applied yet.
    hub.registry.updateReported("race-1", { firmware: "1.0" });
    const pending = newEvents("race-1");
    expect(pending).toHaveLength(1);

    let pushed: Awaited<ReturnType<typeof repush>> | undefined;
    const result = await reconcile(pending, async () => {
      pushed = await repush();
    });

    expect(pushed).toMatchObject({ claimed: 1, pushed: 1, accepted: 1, attempts: 1 });
    const record = await recordOf(db, "race-1", "interval");
    const expected = await hubVerdict(registry, "race-1");
    expect(record).toMatchObject({ state: expected.state, desired_version: expected.desiredVersion, attempts: 1 });
    // Scheduled by the re-push: its back-off from the push time, not reset to "none".
    expect(record?.next_attempt_at).not.toBeNull();
    expect(Date.parse(record?.next_attempt_at as string)).toBeGreaterThan(clock.now());
    // The event is older than the twin the re-push stored: nothing of the re-push's work is undone.
    expect(result).toMatchObject({ applied: 0, duplicates: 1, deadLettered: 0 });
    const pushes = (await history(db, "race-1")).filter((h) => h.detail?.outcome === "pushed");
    expect(pushes.map((h) => h.detail?.attempt)).toEqual([1]);
  });

  it("keeps an escalation made by a re-push while reconcile was between read and write", async () => {
    await staleDevice("race-2");
    // One attempt already spent, and the device still does not apply the value.
    expect(await repush(1)).toMatchObject({ attempts: 1 });
    newEvents("race-2"); // the push's own event: reconcile would see it as a duplicate
    clock.advance(61 * MINUTE);
    hub.registry.updateReported("race-2", { firmware: "1.1" });
    const pending = newEvents("race-2");

    let run: Awaited<ReturnType<typeof repush>> | undefined;
    await reconcile(pending, async () => {
      run = await repush(1);
    });

    expect(run).toMatchObject({ escalated: 1, pushed: 0 });
    expect(await recordOf(db, "race-2", "interval")).toMatchObject({ state: "escalated", attempts: 1 });
    expect((await history(db, "race-2")).at(-1)).toMatchObject({ to_state: "escalated", cause: "repush" });
  });

  it("applies the re-push's twin and then its own newer event when both touched the device", async () => {
    await staleDevice("race-3");
    hub.registry.updateReported("race-3", { firmware: "1.0" });
    const first = newEvents("race-3");
    await reconcile(first, async () => {
      await repush();
    });
    // The device finally applies the re-pushed value: a later batch brings compliance.
    hub.registry.updateReported("race-3", { interval: 30 });
    const result = await reconcile(newEvents("race-3"));
    expect(result.applied).toBeGreaterThanOrEqual(1);
    const expected = await hubVerdict(registry, "race-3");
    expect(expected.state).toBe("compliant");
    expect(await recordOf(db, "race-3", "interval")).toMatchObject({ state: "compliant", desired_version: expected.desiredVersion, attempts: 0 });
  });
});
