/**
 * The report counters never drift: random sequences of every write the product makes — reconcile
 * batches (re-delivered too, and poison events), device lifecycle deletions and re-creations as IoT
 * Hub routes them (the emulator's own lifecycle events, with the new twin's events after them),
 * re-push runs against a hub (404 included), fleet sync passes (complete ones removing twins the hub
 * answers 404 for, and passes cut by their time budget and continued later), the resync queue
 * (healing flagged twins, removing 404s), complete hub twins read strongly at a lower version (a
 * device re-created without an event), removals of deleted twins, the demo's reset, retention,
 * compaction, a repair, migrations run again, transactions that throw after their writes, and (on
 * PostgreSQL really at once) a batch racing compactions, a repair racing compactions — and after
 * each step the summed deltas equal `count(*)` (test/support/counterDrift.ts, its own SQL).
 *
 * The hub is the emulator's hub model behind its HTTPS service API (test/sync/syncSupport.ts): the
 * fleet sync and the resync queue read it through the official SDK; the fixtures' changes are
 * mirrored onto it, so it holds the twins the events describe — until a step deletes or re-creates one.
 */
import fc from "fast-check";
import { applyHubTwins } from "../../shared/applyHubTwins";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import { reconcileTwinChanges } from "../../shared/reconcile";
import { repushStaleDesired } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { forgetTwins } from "../../shared/store/forgetTwins";
import { migrate } from "../../shared/store/migrate";
import { pruneRetention } from "../../shared/store/pruneRetention";
import { compactReportCounters, repairReportCounters } from "../../shared/store/reportCounters";
import { removeDeletedTwin } from "../../shared/store/repushStore";
import { resyncTwins } from "../../shared/sync/resyncTwins";
import { syncFleetTwins } from "../../shared/sync/syncFleetTwins";
import type { TwinKey } from "../../shared/twin/Twin";
import type { IotHub } from "../../local/emulator/IotHub";
import { FixtureTwin } from "../fixtures/twinEvents";
import { inProcessTwinRegistry, MINUTE, testPolicy, testSettings, type FakeClock } from "../repush/repushSupport";
import { counterDrift } from "../support/counterDrift";
import { testDatabases, truncateAll } from "../support/testDatabases";
import { startSyncHub, syncDeps, type SyncHub } from "../sync/syncSupport";

const twins: TwinKey[] = [
  { deviceId: "sim-1", moduleId: null },
  { deviceId: "sim-2", moduleId: null },
  { deviceId: "dev-a", moduleId: null },
  { deviceId: "dev-a", moduleId: "m1" },
  { deviceId: "dev-b", moduleId: null },
];

type Change = { twin: number; op: "desire" | "desireNoDrift" | "unset" | "report" | "poison"; value: number };
type Step =
  | { kind: "reconcile"; changes: Change[]; redeliver: boolean }
  | { kind: "interruptedReconcile"; changes: Change[] }
  | { kind: "concurrentReconcileAndCompaction"; changes: Change[] }
  | { kind: "advance"; minutes: number }
  | { kind: "repush" }
  | { kind: "hubDeletes"; twin: number }
  | { kind: "removeDeletedTwin"; twin: number; interrupted: boolean }
  | { kind: "lifecycle"; twin: number; recreate: boolean; changes: Change[]; redeliver: boolean }
  | { kind: "fleetSync"; startNew: boolean; budget: "whole" | "cut" }
  | { kind: "resync" }
  | { kind: "recreatedHubTwin"; twin: number; changes: Change[] }
  | { kind: "migrate" }
  | { kind: "demoReset" }
  | { kind: "retention" }
  | { kind: "compaction" }
  | { kind: "repair" }
  | { kind: "concurrentRepairAndCompaction" };

const change = fc.record({
  twin: fc.integer({ min: 0, max: twins.length - 1 }),
  op: fc.constantFrom("desire", "desire", "desireNoDrift", "unset", "report", "report", "report", "poison"),
  value: fc.integer({ min: 1, max: 3 }),
}) as fc.Arbitrary<Change>;
const changes = fc.array(change, { minLength: 1, maxLength: 6 });
const twinIndex = fc.integer({ min: 0, max: twins.length - 1 });
/** Changes to a twin just created: desired values and reports only. */
const freshChanges = fc.array(
  fc.record({ op: fc.constantFrom("desire", "desireNoDrift", "report"), value: fc.integer({ min: 1, max: 3 }) }),
  { maxLength: 3 },
);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("reconcile" as const), changes, redeliver: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("interruptedReconcile" as const), changes }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("concurrentReconcileAndCompaction" as const), changes }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("advance" as const), minutes: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 3, arbitrary: fc.constant({ kind: "repush" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("hubDeletes" as const), twin: twinIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("removeDeletedTwin" as const), twin: twinIndex, interrupted: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc
      .record({ twin: twinIndex, recreate: fc.boolean(), changes: freshChanges, redeliver: fc.boolean() })
      .map((r) => ({ kind: "lifecycle" as const, ...r, changes: r.changes.map((c) => ({ ...c, twin: r.twin }) as Change) })),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("fleetSync" as const), startNew: fc.constantFrom(true, true, false), budget: fc.constantFrom("whole" as const, "cut" as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "resync" as const }) },
  {
    weight: 1,
    arbitrary: fc
      .record({ twin: twinIndex, changes: freshChanges })
      .map((r) => ({ kind: "recreatedHubTwin" as const, twin: r.twin, changes: r.changes.map((c) => ({ ...c, twin: r.twin }) as Change) })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "migrate" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "demoReset" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "retention" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "compaction" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "repair" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "concurrentRepairAndCompaction" as const }) },
);

class Interrupted extends Error {}

/** The same store, except that every transaction throws after its work: the writes happened, then the failure. */
function interrupting(db: Database): Database {
  return {
    kind: db.kind,
    query: (sql, params) => db.query(sql, params),
    transaction: (work) =>
      db.transaction(async (tx) => {
        await work(tx);
        throw new Interrupted("interrupted after its writes");
      }),
    close: () => db.close(),
  };
}

/** The twins (as fixtures that emit events), the hub every hub-reading write talks to, and one clock for all. */
class World {
  readonly clock: FakeClock;
  readonly hub: IotHub;
  /** The fixtures' clock follows the hub's (a limiter's sleep moves it too) at every change. */
  private readonly fixtureClock: { now: number };
  private fixtures = new Map<number, FixtureTwin>();
  /** Twins whose fixture describes a twin the hub has deleted: their changes no longer reach the hub. */
  private readonly goneFromHub = new Set<number>();
  /** Every event delivered is numbered in one partition, as IoT Hub numbers a device's events (lifecycle order relies on it). */
  private sequence = 0;

  constructor(
    readonly db: Database,
    readonly h: SyncHub,
  ) {
    this.clock = h.clock;
    this.hub = h.hub;
    this.fixtureClock = { now: h.clock.now() };
  }

  advance(ms: number): void {
    this.clock.advance(ms);
    this.fixtureClock.now = this.clock.now();
  }

  private fixture(i: number): FixtureTwin {
    let f = this.fixtures.get(i);
    if (!f) {
      const key = twins[i] as TwinKey;
      f = new FixtureTwin(key.deviceId, this.fixtureClock, key.moduleId ? { moduleId: key.moduleId } : {});
      this.fixtures.set(i, f);
    }
    return f;
  }

  private stamp(event: ReceivedEvent): ReceivedEvent {
    const sequenceNumber = this.sequence++;
    return { ...event, sequenceNumber, offset: String(sequenceNumber * 100), partitionId: "0" };
  }

  /** Applies the changes to the fixtures (and the hub) and returns the events they emit, a second apart. */
  events(list: readonly Change[]): ReceivedEvent[] {
    const events: ReceivedEvent[] = [];
    for (const c of list) {
      this.advance(1000);
      const f = this.fixture(c.twin);
      const desired: Record<string, number | null> | undefined =
        c.op === "desire" ? { interval: c.value } : c.op === "desireNoDrift" ? { noDrift: c.value } : c.op === "unset" ? { interval: null } : undefined;
      if (desired) {
        events.push(this.stamp(f.setDesired(desired)));
        this.mirror(c.twin, { desired });
      } else if (c.op === "report") {
        const reported = { interval: c.value, noDrift: c.value };
        events.push(this.stamp(f.report(reported)));
        this.mirror(c.twin, { reported });
      } else {
        events.push(this.stamp({ ...f.report({ interval: c.value }), body: "{ not json" }));
      }
    }
    return events;
  }

  /** The hub gets the same changes, so a re-push or a sync finds the twin (unless the hub deleted it). */
  private mirror(i: number, change: { desired?: Record<string, number | null>; reported?: Record<string, number> }): void {
    if (this.goneFromHub.has(i)) return;
    const key = twins[i] as TwinKey;
    const registry = this.hub.registry;
    if (!registry.hasDevice(key.deviceId)) registry.createDevice(key.deviceId);
    if (key.moduleId && !registry.hasDevice(key)) registry.createModule(key.deviceId, key.moduleId);
    if (change.desired) registry.updateTwin(key, { properties: { desired: change.desired } } as never);
    if (change.reported) registry.updateReported(key, change.reported);
  }

  /** A new twin under the id: its fixture starts again, and its changes reach the hub. */
  private renew(i: number): void {
    this.fixtures.delete(i);
    this.goneFromHub.delete(i);
  }

  deleteFromHub(i: number): void {
    const key = twins[i] as TwinKey;
    if (this.hub.registry.hasDevice(key)) this.hub.registry.deleteDevice(key);
    // A device's deletion takes its modules with it.
    for (const [j, other] of twins.entries()) {
      if (other.deviceId === key.deviceId && (key.moduleId === null || other.moduleId === key.moduleId)) this.goneFromHub.add(j);
    }
  }

  /** Creates the twin on the hub (a module's device first, if the hub has none). */
  private createInHub(i: number): void {
    const key = twins[i] as TwinKey;
    const registry = this.hub.registry;
    if (!registry.hasDevice(key.deviceId)) {
      registry.createDevice(key.deviceId);
      this.renew(twins.findIndex((t) => t.deviceId === key.deviceId && t.moduleId === null));
    }
    if (key.moduleId) {
      registry.createModule(key.deviceId, key.moduleId);
      this.renew(i);
    }
  }

  /**
   * Deletes the twin on the hub (and creates it again, when asked or when the hub had none) and
   * returns the lifecycle events the emulator routed for that, as IoT Hub routes them
   * (`deviceLifecycleEvents`, opType create/deleteDeviceIdentity, the twin as body), followed by the
   * events of the new twin's first changes.
   */
  lifecycle(i: number, recreate: boolean, changes: readonly Change[]): ReceivedEvent[] {
    this.advance(1000);
    const ends = this.hub.events.partitionIds.map((p) => this.hub.events.length(p));
    const present = this.hub.registry.hasDevice(twins[i] as TwinKey);
    if (present) this.deleteFromHub(i);
    if (!present || recreate) {
      this.advance(1000);
      this.createInHub(i);
    }
    const routed = this.hub.events.partitionIds
      .flatMap((p, n) => this.hub.events.read(p, ends[n] as number, 100))
      .filter((e) => e.systemProperties["iothub-message-source"] === "deviceLifecycleEvents");
    expect(routed.length).toBeGreaterThan(0);
    return [...routed.map((e) => this.stamp(e)), ...this.events(changes)];
  }

  /** The device (or module) deleted and created again on the hub, no event delivered; returns the new twin as getTwin reads it. */
  async recreatedSilently(i: number, changes: readonly Change[]) {
    this.advance(1000);
    if (this.hub.registry.hasDevice(twins[i] as TwinKey)) this.deleteFromHub(i);
    this.createInHub(i);
    this.events(changes);
    return inProcessTwinRegistry(this.hub).getTwin(twins[i] as TwinKey);
  }

  /** The demo's emulator starts empty: sim-* twins start again at version 1, on the hub too. */
  resetSims(): void {
    for (const [i, key] of twins.entries()) {
      if (!key.deviceId.startsWith("sim-")) continue;
      if (this.hub.registry.hasDevice(key)) this.hub.registry.deleteDevice(key);
      this.renew(i);
    }
  }

  async reconcile(db: Database, events: readonly ReceivedEvent[]) {
    const { messages, triggerMetadata } = await toTriggerInput(events);
    return reconcileTwinChanges(messages, triggerMetadata, { db, policy: testPolicy, clock: () => this.clock.date() });
  }

  repush() {
    return repushStaleDesired({
      db: this.db,
      policy: testPolicy,
      registry: rateLimitedTwinRegistry(inProcessTwinRegistry(this.hub), new TokenBucket({ ratePerSecond: 1000, clock: this.clock })),
      settings: testSettings,
      clock: () => this.clock.date(),
      random: () => 0.5,
      concurrency: 1,
    });
  }

  /**
   * One fleet sync run through the SDK: `whole` has time for the complete pass (confirming unseen
   * twins with getTwin, removing 404s); `cut` reads one twin a page, one page a second, for 1 s, so
   * it stops after two pages and a later run continues the pass.
   */
  fleetSync(startNew: boolean, budget: "whole" | "cut") {
    const options = budget === "cut" ? { pageSize: 1, queriesPerMinute: 60, runBudgetMs: 1_000 } : { pageSize: 2 };
    return syncFleetTwins({ ...syncDeps(this.db, this.h, options), policy: testPolicy }, { startNew });
  }

  resync() {
    return resyncTwins({
      db: this.db,
      policy: testPolicy,
      registry: syncDeps(this.db, this.h).registry,
      settings: { resyncBackoffBaseMs: MINUTE, resyncBackoffCapMs: 10 * MINUTE },
      clock: () => this.clock.date(),
      random: () => 0.5,
    });
  }
}

/** How often the sequences reached the removal paths (summed over a store's runs): not vacuous. */
const reached = { syncRemovals: 0, cutPasses: 0, resyncHeals: 0, resyncRemovals: 0, lifecycleDeletes: 0, lifecycleCreates: 0, strongRecreated: 0 };

/**
 * A sequence that reaches each removal path at least once, whatever the random ones do: a complete
 * pass removing a twin the hub deleted, a device deleted and created again by lifecycle events, a
 * flagged twin (a gap behind a poison event) that the resync queue finds deleted, another it heals,
 * a strong read of a re-created device, and a pass cut by its budget and continued.
 */
const everyRemoval: Step[] = [
  {
    kind: "reconcile",
    redeliver: false,
    changes: [
      { twin: 0, op: "desire", value: 1 },
      { twin: 1, op: "desire", value: 2 },
      { twin: 2, op: "desire", value: 1 },
      { twin: 3, op: "desire", value: 2 },
      { twin: 3, op: "report", value: 2 },
      { twin: 3, op: "report", value: 3 },
      { twin: 4, op: "desire", value: 3 },
      { twin: 4, op: "report", value: 3 },
    ],
  },
  { kind: "advance", minutes: 1 },
  { kind: "hubDeletes", twin: 4 },
  { kind: "fleetSync", startNew: true, budget: "whole" },
  { kind: "lifecycle", twin: 2, recreate: true, changes: [{ twin: 2, op: "desire", value: 2 }], redeliver: true },
  {
    kind: "reconcile",
    redeliver: false,
    changes: [
      { twin: 0, op: "poison", value: 1 },
      { twin: 0, op: "report", value: 1 },
      { twin: 1, op: "poison", value: 1 },
      { twin: 1, op: "report", value: 2 },
    ],
  },
  { kind: "hubDeletes", twin: 0 },
  { kind: "resync" },
  { kind: "recreatedHubTwin", twin: 1, changes: [] },
  { kind: "advance", minutes: 1 },
  { kind: "fleetSync", startNew: true, budget: "cut" },
  { kind: "fleetSync", startNew: false, budget: "whole" },
  { kind: "migrate" },
  { kind: "demoReset" },
];

async function runStep(world: World, s: Step): Promise<void> {
  const { db } = world;
  switch (s.kind) {
    case "reconcile": {
      const events = world.events(s.changes);
      await world.reconcile(db, events);
      if (s.redeliver) await world.reconcile(db, events);
      return;
    }
    case "interruptedReconcile":
      await expect(world.reconcile(interrupting(db), world.events(s.changes))).rejects.toThrow(Interrupted);
      return;
    case "concurrentReconcileAndCompaction":
      await Promise.all([world.reconcile(db, world.events(s.changes)), compactReportCounters(db), compactReportCounters(db)]);
      return;
    case "advance":
      world.advance(s.minutes * MINUTE);
      return;
    case "repush":
      await world.repush();
      return;
    case "hubDeletes":
      world.deleteFromHub(s.twin);
      return;
    case "removeDeletedTwin": {
      const work = (tx: Parameters<Parameters<Database["transaction"]>[0]>[0]) => removeDeletedTwin(tx, twins[s.twin] as TwinKey, world.clock.date().toISOString(), { reason: "test" });
      if (s.interrupted) await expect(interrupting(db).transaction(work)).rejects.toThrow(Interrupted);
      else await db.transaction(work);
      return;
    }
    case "lifecycle": {
      const events = world.lifecycle(s.twin, s.recreate, s.changes);
      const result = await world.reconcile(db, events);
      reached.lifecycleDeletes += result.deleted;
      reached.lifecycleCreates += result.created;
      if (s.redeliver) await world.reconcile(db, events);
      return;
    }
    case "fleetSync": {
      const run = await world.fleetSync(s.startNew, s.budget);
      reached.syncRemovals += run.run.twinsRemoved;
      if (run.pass !== null && !run.completed) reached.cutPasses++;
      return;
    }
    case "resync": {
      const run = await world.resync();
      reached.resyncHeals += run.healed;
      reached.resyncRemovals += run.removed;
      return;
    }
    case "recreatedHubTwin": {
      const twin = await world.recreatedSilently(s.twin, s.changes);
      const result = await applyHubTwins({ db, policy: testPolicy, clock: () => world.clock.date() }, [twin], { consistency: "strong" });
      reached.strongRecreated += result.recreated;
      return;
    }
    case "migrate":
      // Every migration is applied already: running them again changes nothing.
      expect(await migrate(db)).toEqual([]);
      return;
    case "demoReset":
      await forgetTwins(db, "sim-");
      world.resetSims();
      return;
    case "retention":
      await pruneRetention(db, { historyMs: 5 * MINUTE, deadLetterMs: 5 * MINUTE, complianceTimesMs: 5 * MINUTE, chunkRows: 4 }, world.clock.date());
      return;
    case "compaction":
      await compactReportCounters(db);
      return;
    case "repair":
      // Nothing drifted, so a repair finds nothing to repair.
      expect(await repairReportCounters(db)).toEqual([]);
      return;
    case "concurrentRepairAndCompaction":
      await Promise.all([compactReportCounters(db), repairReportCounters(db), compactReportCounters(db)]);
      return;
  }
}

describe.each(testDatabases)("report counters on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
    for (const path of Object.keys(reached)) reached[path as keyof typeof reached] = 0;
  });
  afterAll(async () => {
    await db.close();
  });

  it("equal count(*) after every step of any sequence of writes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 40 }), async (steps) => {
        await truncateAll(db);
        await db.query("DELETE FROM report_compliance_times");
        await db.query("DELETE FROM fleet_sync_passes");
        const h = await startSyncHub();
        try {
          const world = new World(db, h);
          for (const [i, s] of steps.entries()) {
            await runStep(world, s);
            const drift = await counterDrift(db);
            if (drift.length > 0) throw new Error(`counters drifted after step ${i} (${s.kind}): ${JSON.stringify(drift)}`);
          }
        } finally {
          await h.stop();
        }
        // The sequence did write: records exist or were removed, not a vacuous pass.
        return true;
      }),
      { numRuns: Number(process.env.COUNTER_DRIFT_RUNS ?? 80), examples: [[everyRemoval]] },
    );
    for (const [path, n] of Object.entries(reached)) expect([path, n > 0]).toEqual([path, true]);
  });
});
