/**
 * One writer per twin, re-push side (ARCHITECTURE: convergence): a re-push run paused between its
 * hub I/O and its commit (`hooks.beforeCommit`) while another writer works on the same twin — the
 * reconcile path (public `reconcileTwinChanges`, fed the emulator's own twin-change events) or a
 * second re-push run (the manual route's `queueRepushNow` + a timer run). On PGlite, and on
 * PostgreSQL when DATABASE_URL is set.
 *
 * Expected values come from the emulator's hub model (`hub.registry.getTwin`: versions, desired
 * `$metadata`), from the emulator's desired notifications (what devices receive: one per patch)
 * and from hand-written tables — never from the product's evaluator.
 */
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges } from "../../shared/reconcile";
import { queueRepushNow, repushStaleDesired, type RepushDeps, type RepushSettings } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { claimDueDevices } from "../../shared/store/repushStore";
import type { IotHub } from "../../local/emulator/IotHub";
import { testDatabases } from "../support/testDatabases";
import {
  clearStore,
  device,
  fakeClock,
  history,
  inProcessHub,
  inProcessTwinRegistry,
  MINUTE,
  recordOf,
  seedFromHub,
  testPolicy,
  testSettings,
  type FakeClock,
} from "./repushSupport";

interface HubDesired {
  interval?: unknown;
  $version: number;
  $metadata: { interval?: { $lastUpdatedVersion: number } };
}

describe.each(testDatabases)("re-push interleaved with another writer on $name", ({ open }) => {
  let db: Database;
  let clock: FakeClock;
  let hub: IotHub;
  let registry: TwinRegistry;
  /** Desired notifications per device, with the hub's time: each is one patch a device received. */
  let patches: Map<string, number[]>;

  beforeAll(async () => {
    db = await open();
  });
  afterAll(() => db.close());
  beforeEach(async () => {
    await clearStore(db);
    clock = fakeClock();
    hub = inProcessHub(clock);
    registry = inProcessTwinRegistry(hub);
    patches = new Map();
    hub.onDesiredChange((address, notification) => {
      // Every desired change that touches `interval`: the re-pushes, and an operator edit where a test makes one.
      if (!("interval" in notification)) return;
      patches.set(address.deviceId, [...(patches.get(address.deviceId) ?? []), hub.clock.now()]);
    });
  });

  const hubTwin = (deviceId: string) => {
    const twin = hub.registry.getTwin(deviceId) as unknown as { version: number; properties: { desired: HubDesired } };
    return { version: twin.version, desired: twin.properties.desired, intervalVersion: twin.properties.desired.$metadata.interval?.$lastUpdatedVersion };
  };

  function repush(settings: Partial<RepushSettings> = {}, extra: Partial<RepushDeps> = {}) {
    return repushStaleDesired({
      db,
      policy: testPolicy,
      registry: rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 1000, clock })),
      settings: { ...testSettings, ...settings },
      clock: () => clock.date(),
      random: () => 0.5,
      concurrency: 1,
      ...extra,
    });
  }

  /** The reconcile path, fed every twin-change event the emulator routed for `deviceId` from sequence number `from`. */
  async function reconcileFrom(deviceId: string, from: number) {
    const partition = hub.events.partitionOf(deviceId);
    const events = hub.events.read(partition, from, 1000).filter((e) => e.properties["deviceId"] === deviceId);
    const { messages, triggerMetadata } = await toTriggerInput(events);
    return reconcileTwinChanges(messages, triggerMetadata, { db, policy: testPolicy, registry, clock: () => clock.date() });
  }

  const storedTwinVersion = async (deviceId: string) =>
    Number((await db.query<{ version: string }>("SELECT version FROM twins WHERE device_id = $1 AND module_id = ''", [deviceId])).rows[0]?.version);

  const desiredVersionOf = async (deviceId: string, path: string) =>
    Number(
      (await db.query<{ v: string }>("SELECT desired_version AS v FROM property_records WHERE device_id = $1 AND module_id = '' AND path = $2", [deviceId, path]))
        .rows[0]?.v,
    );

  /** A device told `interval: 30` that never reported it: stale once 11 minutes have passed. */
  async function staleDevice(deviceId: string): Promise<number> {
    hub.registry.createDevice(deviceId);
    hub.registry.updateTwin(deviceId, { properties: { desired: { interval: 30 } } });
    await seedFromHub(db, registry, testPolicy, [device(deviceId)], clock.date().toISOString());
    patches.clear();
    clock.advance(11 * MINUTE);
    return hub.events.length(hub.events.partitionOf(deviceId));
  }

  it("keeps a compliant verdict at a newer desired version that the reconcile path stored while the re-push was between its patch and its commit", async () => {
    const mark = await staleDevice("d1");
    let paused = false;
    const result = await repush(
      {},
      {
        hooks: {
          beforeCommit: async () => {
            paused = true;
            // Meanwhile: the operator sets a new value, the device reports it, the reconcile path applies it all.
            hub.registry.updateTwin("d1", { properties: { desired: { interval: 40 } } });
            hub.registry.updateReported("d1", { interval: 40 });
            clock.advance(1000);
            await reconcileFrom("d1", mark);
          },
        },
      },
    );

    expect(paused).toBe(true);
    expect(result).toMatchObject({ claimed: 1, pushed: 1, accepted: 1 });
    const hubNow = hubTwin("d1");
    expect(hubNow.desired.interval).toBe(40);
    expect(await storedTwinVersion("d1")).toBe(hubNow.version);
    expect(await desiredVersionOf("d1", "interval")).toBe(hubNow.intervalVersion);
    // The push was made for interval 30: the operator's 40 is a new value, with no attempt on it.
    expect(await recordOf(db, "d1", "interval")).toEqual({ state: "compliant", attempts: 0, next_attempt_at: null });
    const rows = await history(db, "d1");
    expect(rows.at(-1)).toMatchObject({ to_state: "compliant" });
    expect(rows.filter((r) => r.cause === "repush").map((r) => r.detail)).toEqual([{ outcome: "pushed", attempt: null, superseded: true, patch: { interval: 30 } }]);
    expect(result.leaseLost).toBe(0);
  });

  it("keeps the compliance the device reported to the re-pushed value and counts that push as attempt 1", async () => {
    const mark = await staleDevice("d1");
    const result = await repush(
      {},
      {
        hooks: {
          beforeCommit: async () => {
            // The re-push worked: the device got the value and reports it before the re-push commits.
            hub.registry.updateReported("d1", { interval: 30 });
            clock.advance(1000);
            await reconcileFrom("d1", mark);
          },
        },
      },
    );

    expect(result).toMatchObject({ pushed: 1, accepted: 1, attempts: 1 });
    const hubNow = hubTwin("d1");
    expect(await storedTwinVersion("d1")).toBe(hubNow.version);
    expect(await desiredVersionOf("d1", "interval")).toBe(hubNow.intervalVersion);
    expect(await recordOf(db, "d1", "interval")).toEqual({ state: "compliant", attempts: 0, next_attempt_at: null });
    expect((await history(db, "d1")).filter((r) => r.cause === "repush").map((r) => [r.from_state, r.to_state, r.detail])).toEqual([
      ["compliant", "compliant", { outcome: "pushed", attempt: 1, patch: { interval: 30 } }],
    ]);
  });

  it("counts the attempt on the pushed version when the reconcile path stored the re-push's own patch first", async () => {
    const mark = await staleDevice("d1");
    const result = await repush({}, { hooks: { beforeCommit: () => reconcileFrom("d1", mark).then(() => undefined) } });

    expect(result).toMatchObject({ pushed: 1, accepted: 1, attempts: 1 });
    const hubNow = hubTwin("d1");
    expect(await storedTwinVersion("d1")).toBe(hubNow.version);
    expect(await desiredVersionOf("d1", "interval")).toBe(hubNow.intervalVersion);
    // Attempt 1, back-off: ¾ of the 2-minute base with random 0.5.
    expect(await recordOf(db, "d1", "interval")).toEqual({ state: "pending", attempts: 1, next_attempt_at: new Date(clock.now() + 1.5 * MINUTE) });
  });

  it("writes nothing for a device whose lease another run took over between the patch and the commit", async () => {
    await staleDevice("d1");
    const result = await repush(
      { leaseMs: 2000 },
      {
        owner: "late",
        hooks: {
          beforeCommit: async () => {
            // The run stalls past its lease and another run claims the device.
            clock.advance(3000);
            expect(await claimDueDevices(db, { now: clock.date().toISOString(), limit: 10, owner: "other", leaseMs: 2000 })).toEqual([device("d1")]);
          },
        },
      },
    );

    expect(patches.get("d1")).toHaveLength(1);
    // The late run's patch is not recorded: the run holding the lease now decides from the hub's twin.
    expect(await recordOf(db, "d1", "interval")).toEqual({ state: "pending", attempts: 0, next_attempt_at: null });
    expect((await history(db, "d1")).filter((r) => r.cause === "repush")).toEqual([]);
    expect(result).toMatchObject({ accepted: 1, leaseLost: 1 });
    const lease = await db.query("SELECT repush_lease_owner FROM devices WHERE device_id = 'd1'");
    expect(lease.rows).toEqual([{ repush_lease_owner: "other" }]);
  });

  it("keeps an operator's re-push-now that arrives while the run escalates the property, so the next run pushes once more", async () => {
    await staleDevice("d1");
    const settings = { maxAttempts: 1 };
    expect(await repush(settings)).toMatchObject({ attempts: 1 });
    clock.advance(61 * MINUTE);
    let queuedAt = "";
    const escalating = await repush(settings, {
      hooks: {
        beforeCommit: async () => {
          queuedAt = clock.date().toISOString();
          expect(await queueRepushNow(db, device("d1"), queuedAt)).toEqual(["interval"]);
        },
      },
    });

    expect(escalating).toMatchObject({ escalated: 1, pushed: 0 });
    expect(await recordOf(db, "d1", "interval")).toEqual({ state: "escalated", attempts: 1, next_attempt_at: new Date(queuedAt) });
    expect(await repush(settings)).toMatchObject({ claimed: 1, accepted: 1 });
    expect(patches.get("d1")).toHaveLength(2);
    expect((await history(db, "d1")).filter((r) => r.cause === "repush").map((r) => [r.detail?.outcome, r.detail?.attempt])).toEqual([
      ["pushed", 1],
      ["escalated", null],
      ["pushed", 2],
    ]);
  });

  it("patches a device once per back-off and counts each patch once when a manual re-push runs while a slow timer run overruns its lease, then escalates after maxAttempts", async () => {
    // Properties stale one second after they are set, so a re-read right after a patch finds them due again.
    const policy = parsePolicy({ staleAfter: "1s" });
    const settings: Partial<RepushSettings> = { leaseMs: 2000, backoffBaseMs: 15 * MINUTE, backoffCapMs: 60 * MINUTE, maxAttempts: 2 };
    hub.registry.createDevice("d1");
    hub.registry.updateTwin("d1", { properties: { desired: { interval: 30 } } });
    await seedFromHub(db, registry, policy, [device("d1")], clock.date().toISOString());
    patches.clear();
    clock.advance(5000);

    // The timer run's hub answers slowly: 1.1 s per call, more than its 2 s lease allows for a read and a patch.
    const slow: TwinRegistry = {
      getTwin: async (key, options) => {
        clock.advance(1100);
        return registry.getTwin(key, options);
      },
      updateTwin: async (key, patch, etag, options) => {
        clock.advance(1100);
        return registry.updateTwin(key, patch, etag, options);
      },
    };
    let manual: Awaited<ReturnType<typeof repushStaleDesired>> | undefined;
    const timer = await repush(settings, {
      policy,
      registry: slow,
      owner: "timer",
      hooks: {
        beforeCommit: async () => {
          if (manual) return;
          // The timer run stalls a second before committing; meanwhile an operator asks for a re-push now.
          clock.advance(1000);
          expect(await queueRepushNow(db, device("d1"), clock.date().toISOString())).toEqual(["interval"]);
          manual = await repush(settings, { policy, owner: "manual" });
        },
      },
    });

    expect(manual).toBeDefined();
    // Hand-written: one patch so far, counted once as attempt 1, on the version the hub holds now.
    expect(patches.get("d1")).toHaveLength(1);
    expect(timer.accepted + (manual?.accepted ?? 0)).toBe(1);
    expect(await recordOf(db, "d1", "interval")).toMatchObject({ attempts: 1 });
    expect(await desiredVersionOf("d1", "interval")).toBe(hubTwin("d1").intervalVersion);

    // Later runs, each after the longest back-off (cap 60 min): attempt 2, then escalation with no patch.
    for (let run = 0; run < 2; run++) {
      clock.advance(61 * MINUTE);
      await repush(settings, { policy });
    }

    const times = patches.get("d1") ?? [];
    expect(times).toHaveLength(2);
    // Equal jitter: never sooner than half the 15-minute base after the first patch.
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(7.5 * MINUTE);
    expect(await recordOf(db, "d1", "interval")).toMatchObject({ state: "escalated", attempts: 2 });
    const rows = (await history(db, "d1")).filter((r) => r.cause === "repush");
    expect(rows.map((r) => [r.detail?.outcome, r.detail?.attempt])).toEqual([
      ["pushed", 1],
      ["pushed", 2],
      ["escalated", null],
    ]);
    expect(await desiredVersionOf("d1", "interval")).toBe(hubTwin("d1").intervalVersion);
  });
});
