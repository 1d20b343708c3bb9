/**
 * The report counters never drift: random sequences of every write the product makes — reconcile
 * batches (re-delivered too, and poison events), re-push runs against a hub (404 included), removals
 * of deleted twins, the demo's reset, retention, compaction, a repair, transactions that throw after
 * their writes, and (on PostgreSQL really at once) a batch racing compactions, a repair racing
 * compactions — and after each step
 * the summed deltas equal `count(*)` (test/support/counterDrift.ts, its own SQL).
 */
import fc from "fast-check";
import { toTriggerInput, type ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import { reconcileTwinChanges } from "../../shared/reconcile";
import { repushStaleDesired } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { forgetTwins } from "../../shared/store/forgetTwins";
import { pruneRetention } from "../../shared/store/pruneRetention";
import { compactReportCounters, repairReportCounters } from "../../shared/store/reportCounters";
import { removeDeletedTwin } from "../../shared/store/repushStore";
import type { TwinKey } from "../../shared/twin/Twin";
import type { IotHub } from "../../local/emulator/IotHub";
import { FixtureTwin } from "../fixtures/twinEvents";
import { fakeClock, inProcessHub, inProcessTwinRegistry, MINUTE, T0, testPolicy, testSettings, type FakeClock } from "../repush/repushSupport";
import { counterDrift } from "../support/counterDrift";
import { testDatabases, truncateAll } from "../support/testDatabases";

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

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("reconcile" as const), changes, redeliver: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("interruptedReconcile" as const), changes }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("concurrentReconcileAndCompaction" as const), changes }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("advance" as const), minutes: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 3, arbitrary: fc.constant({ kind: "repush" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("hubDeletes" as const), twin: twinIndex }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("removeDeletedTwin" as const), twin: twinIndex, interrupted: fc.boolean() }) },
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

/** The twins (as fixtures that emit events), the hub the re-push timer talks to, and one clock for both. */
class World {
  readonly clock: FakeClock = fakeClock(T0);
  readonly hub: IotHub = inProcessHub(this.clock);
  private readonly fixtureClock = { now: T0 };
  private fixtures = new Map<number, FixtureTwin>();
  private readonly inHub = new Set<number>();
  private readonly goneFromHub = new Set<number>();

  constructor(readonly db: Database) {}

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

  /** Applies the changes to the fixtures (and the hub) and returns the events they emit, a second apart. */
  events(list: readonly Change[]): ReceivedEvent[] {
    const events: ReceivedEvent[] = [];
    for (const c of list) {
      this.advance(1000);
      const f = this.fixture(c.twin);
      const desired: Record<string, number | null> | undefined =
        c.op === "desire" ? { interval: c.value } : c.op === "desireNoDrift" ? { noDrift: c.value } : c.op === "unset" ? { interval: null } : undefined;
      if (desired) {
        events.push(f.setDesired(desired));
        this.mirror(c.twin, desired);
      } else if (c.op === "report") {
        events.push(f.report({ interval: c.value, noDrift: c.value }));
      } else {
        events.push({ ...f.report({ interval: c.value }), body: "{ not json" });
      }
    }
    return events;
  }

  /** The hub gets the same desired values, so a re-push finds the twin (unless the hub deleted it). */
  private mirror(i: number, desired: Record<string, number | null>): void {
    if (this.goneFromHub.has(i)) return;
    const key = twins[i] as TwinKey;
    const id = key.moduleId ? { deviceId: key.deviceId, moduleId: key.moduleId } : key.deviceId;
    if (!this.inHub.has(i)) {
      if (!this.hub.registry.hasDevice({ deviceId: key.deviceId, moduleId: null })) this.hub.registry.createDevice(key.deviceId);
      if (key.moduleId) this.hub.registry.createModule(key.deviceId, key.moduleId);
      this.inHub.add(i);
    }
    this.hub.registry.updateTwin(id as never, { properties: { desired } } as never);
  }

  deleteFromHub(i: number): void {
    const key = twins[i] as TwinKey;
    if (this.inHub.has(i)) this.hub.registry.deleteDevice({ deviceId: key.deviceId, moduleId: key.moduleId });
    // A device's deletion takes its modules with it.
    for (const [j, other] of twins.entries()) {
      if (other.deviceId === key.deviceId && (key.moduleId === null || other.moduleId === key.moduleId)) {
        this.inHub.delete(j);
        this.goneFromHub.add(j);
      }
    }
  }

  /** The demo's emulator starts empty: sim-* twins start again at version 1. */
  forgetSimFixtures(): void {
    for (const [i, key] of twins.entries()) if (key.deviceId.startsWith("sim-")) this.fixtures.delete(i);
  }

  reconcile(db: Database, events: readonly ReceivedEvent[]) {
    const { messages, triggerMetadata } = toTriggerInput(events);
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
}

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
    case "demoReset":
      await forgetTwins(db, "sim-");
      world.forgetSimFixtures();
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
  });
  afterAll(async () => {
    await db.close();
  });

  it("equal count(*) after every step of any sequence of writes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 40 }), async (steps) => {
        await truncateAll(db);
        await db.query("DELETE FROM report_compliance_times");
        const world = new World(db);
        for (const [i, s] of steps.entries()) {
          await runStep(world, s);
          const drift = await counterDrift(db);
          if (drift.length > 0) throw new Error(`counters drifted after step ${i} (${s.kind}): ${JSON.stringify(drift)}`);
        }
        // The sequence did write: records exist or were removed, not a vacuous pass.
        return true;
      }),
      { numRuns: Number(process.env.COUNTER_DRIFT_RUNS ?? 30) },
    );
  });
});
