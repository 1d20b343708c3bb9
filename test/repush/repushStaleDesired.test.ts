import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { queueRepushNow, repushCounters, repushStaleDesired, type RepushDeps, type RepushSettings } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import type { IotHub } from "../../local/emulator/IotHub";
import { openTestPglite } from "../support/testDatabases";
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

let db: Database;
beforeAll(async () => {
  db = await openTestPglite();
});
afterAll(() => db.close());

let clock: FakeClock;
let hub: IotHub;
let calls: Array<{ op: "get" | "update"; deviceId: string; at: number }>;
let registry: TwinRegistry;

beforeEach(async () => {
  await clearStore(db);
  clock = fakeClock();
  hub = inProcessHub(clock);
  calls = [];
  registry = inProcessTwinRegistry(hub, calls);
});

function run(settings: Partial<RepushSettings> = {}, extra: Partial<RepushDeps> = {}) {
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

/** A device whose desired `desired` was set at the clock's time and which never reported. */
async function lossyDevice(deviceId: string, desired: Record<string, unknown> = { interval: 30 }): Promise<void> {
  hub.registry.createDevice(deviceId);
  hub.registry.updateTwin(deviceId, { properties: { desired: desired as never } });
  await seedFromHub(db, registry, testPolicy, [device(deviceId)], clock.date().toISOString());
  calls.length = 0;
}

const desiredOf = (deviceId: string) => (hub.registry.getTwin(deviceId).properties as { desired: Record<string, unknown> }).desired;

describe("repushStaleDesired", () => {
  it("leaves a pending property alone until it is stale", async () => {
    await lossyDevice("d1");
    clock.advance(9 * MINUTE);
    const result = await run();
    expect(result.claimed).toBe(0);
    expect(calls).toEqual([]);
  });

  it("re-pushes a stale property with the value desired now, counting attempt 1 and backing off", async () => {
    await lossyDevice("d1", { interval: 30, mode: "eco" });
    hub.registry.updateReported("d1", { mode: "eco" });
    clock.advance(11 * MINUTE);
    const versionBefore = (desiredOf("d1") as { $version: number }).$version;

    const result = await run();

    expect(result).toMatchObject({ claimed: 1, pushed: 1, attempts: 1, accepted: 1, throttled: false, leftDue: 0 });
    expect(calls.map((c) => c.op)).toEqual(["get", "update"]);
    expect((desiredOf("d1") as { $version: number }).$version).toBe(versionBefore + 1);
    const rows = (await history(db, "d1")).filter((h) => h.cause === "repush");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ path: "interval", detail: { outcome: "pushed", attempt: 1, patch: { interval: 30 } } });
    // random 0.5 ⇒ ¾ of the 2-minute base
    expect(await recordOf(db, "d1", "interval")).toMatchObject({ attempts: 1, next_attempt_at: new Date(clock.now() + 1.5 * MINUTE) });
    const lease = await db.query("SELECT repush_lease_owner FROM devices WHERE device_id = 'd1'");
    expect(lease.rows[0]).toEqual({ repush_lease_owner: null });
  });

  it("sends a nested patch holding exactly the due paths", async () => {
    await lossyDevice("d1", { radio: { channel: 6, power: 20 }, name: "x" });
    hub.registry.updateReported("d1", { radio: { power: 20 }, name: "x" });
    clock.advance(11 * MINUTE);
    const patches: unknown[] = [];
    const spy: TwinRegistry = {
      getTwin: (key) => registry.getTwin(key),
      updateTwin: (key, patch, etag) => {
        patches.push(patch);
        return registry.updateTwin(key, patch, etag);
      },
    };
    await run({}, { registry: spy });
    expect(patches).toEqual([{ properties: { desired: { radio: { channel: 6 } } } }]);
  });

  it("records a device that complies on the fresh read as compliant (cause resync) and pushes nothing", async () => {
    await lossyDevice("d1");
    clock.advance(11 * MINUTE);
    hub.registry.updateReported("d1", { interval: 30 });

    const result = await run();

    expect(result).toMatchObject({ claimed: 1, resolved: 1, pushed: 0, attempts: 0 });
    expect(calls.map((c) => c.op)).toEqual(["get"]);
    expect(await recordOf(db, "d1", "interval")).toMatchObject({ state: "compliant", attempts: 0 });
    expect((await history(db, "d1")).at(-1)).toMatchObject({ to_state: "compliant", cause: "resync" });
  });

  it("does not re-push a property before its back-off has passed", async () => {
    await lossyDevice("d1");
    clock.advance(11 * MINUTE);
    await run();
    clock.advance(MINUTE);
    const again = await run();
    expect(again.claimed).toBe(0);
    clock.advance(MINUTE);
    expect((await run()).attempts).toBe(1);
  });

  it("re-pushes a drifted property unless its rule says repushDrift false", async () => {
    await lossyDevice("d1", { interval: 30, noDrift: 1 });
    hub.registry.updateReported("d1", { interval: 30, noDrift: 1 });
    await seedFromHub(db, registry, testPolicy, [device("d1")], clock.date().toISOString());
    hub.registry.updateReported("d1", { interval: 31, noDrift: 2 });
    // the reconcile path would mark both drifted: re-evaluate from the stored compliant records
    const { loadTwinStates, writeBatch } = await import("../../shared/store/complianceStore");
    const { evaluateCompliance } = await import("../../shared/compliance/evaluateCompliance");
    const stored = (await loadTwinStates(db, [device("d1")])).get("d1")!;
    const twin = await registry.getTwin(device("d1"));
    const evaluation = evaluateCompliance(twin, testPolicy, stored.records, clock.date().toISOString(), "event");
    expect(evaluation.records.map((r) => r.state)).toEqual(["drifted", "drifted"]);
    await db.transaction((tx) =>
      writeBatch(tx, {
        at: clock.date().toISOString(),
        twins: [{ twin, resyncNeeded: false }],
        records: evaluation.changed.map((record) => ({ key: device("d1"), record })),
        removed: [],
        history: [],
        devices: [],
        deadLetters: [],
      }),
    );
    calls.length = 0;

    const result = await run();

    expect(result.pushed).toBe(1);
    const rows = (await history(db, "d1")).filter((h) => h.cause === "repush");
    expect(rows.map((r) => r.path)).toEqual(["interval"]);
    expect(rows[0]!.detail).toMatchObject({ patch: { interval: 30 } });
  });

  it("in dry run records the patch it would send and sends nothing", async () => {
    await lossyDevice("d1");
    clock.advance(11 * MINUTE);
    const result = await run({ dryRun: true });
    expect(result).toMatchObject({ pushed: 1, attempts: 0, dryRun: true });
    expect(calls.map((c) => c.op)).toEqual(["get"]);
    const rows = (await history(db, "d1")).filter((h) => h.cause === "repush");
    expect(rows).toEqual([expect.objectContaining({ detail: { outcome: "dryRun", attempt: null, wouldBeAttempt: 1, patch: { interval: 30 } } })]);
    expect(await recordOf(db, "d1", "interval")).toMatchObject({ attempts: 0 });
  });

  it("counts a failed write as an attempt and backs off", async () => {
    await lossyDevice("d1");
    clock.advance(11 * MINUTE);
    const failing: TwinRegistry = {
      getTwin: (key) => registry.getTwin(key),
      updateTwin: () => Promise.reject(Object.assign(new Error("boom"), { name: "InternalServerError" })),
    };
    const result = await run({}, { registry: failing });
    expect(result).toMatchObject({ errors: 1, attempts: 1, accepted: 0 });
    expect(await recordOf(db, "d1", "interval")).toMatchObject({ attempts: 1, next_attempt_at: new Date(clock.now() + 1.5 * MINUTE) });
    expect((await history(db, "d1")).at(-1)).toMatchObject({ cause: "repush", detail: { outcome: "error", attempt: 1 } });
  });

  it("leaves a device due when its read fails with a server error, counting nothing", async () => {
    await lossyDevice("d1");
    clock.advance(11 * MINUTE);
    const failing: TwinRegistry = {
      getTwin: () => Promise.reject(Object.assign(new Error("down"), { name: "ServiceUnavailableError" })),
      updateTwin: (key, patch, etag) => registry.updateTwin(key, patch, etag),
    };
    expect(await run({}, { registry: failing })).toMatchObject({ errors: 1, attempts: 0 });
    expect(await recordOf(db, "d1", "interval")).toMatchObject({ attempts: 0, next_attempt_at: null });
    expect((await run()).attempts).toBe(1);
  });

  it("claims at most maxDevicesPerRun devices, oldest due first", async () => {
    for (const id of ["a", "b", "c"]) {
      await lossyDevice(id);
      clock.advance(MINUTE);
    }
    clock.advance(20 * MINUTE);
    const result = await run({ maxDevicesPerRun: 2 });
    expect(result.claimed).toBe(2);
    expect(calls.filter((c) => c.op === "update").map((c) => c.deviceId)).toEqual(["a", "b"]);
  });

  it("queueRepushNow makes a device's pending records due at the next run", async () => {
    await lossyDevice("d1");
    clock.advance(MINUTE);
    expect((await run()).claimed).toBe(0);
    expect(await queueRepushNow(db, device("d1"), clock.date().toISOString())).toEqual(["interval"]);
    expect(await run()).toMatchObject({ claimed: 1, attempts: 1 });
  });

  it("counts attempts, properties that complied after a re-push, and escalations", async () => {
    await lossyDevice("d1");
    clock.advance(11 * MINUTE);
    await run();
    hub.registry.updateReported("d1", { interval: 30 });
    clock.advance(2 * MINUTE);
    await run();
    expect(await repushCounters(db)).toEqual({ attempts: 1, succeeded: 1, escalated: 0 });
  });
});
