/**
 * Poison isolation (issue #15): each adversarial event, in one batch with good events of other
 * devices, must not fail the batch. The good devices' verdicts are checked against a hand-written
 * table; the poison event is dead-lettered with a reason, or — a long but valid IoT Hub path —
 * reconciled.
 */
import { randomBytes } from "node:crypto";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { getComplianceSummary } from "../../shared/reports/getComplianceSummary";
import { reconcileTwinChanges } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import type { JsonObject } from "../../shared/twin/json";
import { FixtureTwin } from "../fixtures/twinEvents";
import { testDatabases, truncateAll } from "../support/testDatabases";

const policy = parsePolicy({ staleAfter: "10m" });
const LATER = "2026-01-01T00:05:00.000Z";
/** Made up at run time: random text does not compress, so an index cannot squeeze it under its limit. */
const longId = (): string => randomBytes(5120).toString("hex");
const [keyA, keyB, keyC] = [0, 1, 2].map(() => randomBytes(500).toString("hex"));

interface PoisonCase {
  name: string;
  /** The poison device's events, built from a fixture twin and then broken. */
  events(): ReceivedEvent[];
  /**
   * `reconciled`: a record is stored at `path`. `deadLettered`: the broken event is a dead letter
   * (with its twin's other events of the batch when the twin as a whole could not be stored).
   */
  expect: { reconciled: string } | "deadLettered";
}

type DesiredBody = { version: number; properties: { desired: JsonObject & { $metadata: JsonObject } } };

/**
 * A device replaced, then setting `desired` in an event broken by `mutate` (the last event is the
 * poison one). `unseen`: the broken event alone, so no earlier metadata covers for it.
 */
function desiredEvent(mutate: (body: DesiredBody) => void, desired: JsonObject = { interval: 30 }, unseen = false) {
  return (): ReceivedEvent[] => {
    const twin = new FixtureTwin("poison");
    const replace = twin.replace();
    const event = twin.tick(1000).setDesired(desired);
    mutate(event.body as DesiredBody);
    return unseen ? [event] : [replace, event];
  };
}

function withIds(deviceId: string, moduleId?: string, where: "properties" | "system" = "properties") {
  return (): ReceivedEvent[] => {
    const twin = new FixtureTwin("poison");
    const events = [twin.replace(), twin.tick(1000).setDesired({ interval: 30 })];
    for (const event of events) {
      if (where === "properties") {
        event.properties.deviceId = deviceId;
        if (moduleId !== undefined) event.properties.moduleId = moduleId;
      } else {
        delete event.properties.deviceId;
        event.systemProperties["iothub-connection-device-id"] = deviceId;
        if (moduleId !== undefined) event.systemProperties["iothub-connection-module-id"] = moduleId;
      }
    }
    return events;
  };
}

const intervalMetadata = (body: { properties: { desired: { $metadata: JsonObject } } }) => body.properties.desired.$metadata.interval as JsonObject;

const cases: PoisonCase[] = [
  {
    name: "a desired path longer than an index row (three nested 1,000-character keys)",
    events: desiredEvent(() => undefined, { [keyA as string]: { [keyB as string]: { [keyC as string]: 1 } } }),
    expect: { reconciled: `${keyA}.${keyB}.${keyC}` },
  },
  { name: "a 10 KB iothub-connection-device-id", events: withIds(longId(), undefined, "system"), expect: "deadLettered" },
  { name: "a 10 KB iothub-connection-module-id", events: withIds("poison", longId(), "system"), expect: "deadLettered" },
  { name: "a deviceId holding NUL", events: withIds("poi\u0000son"), expect: "deadLettered" },
  { name: "a deviceId holding a lone surrogate", events: withIds("poi\ud800son"), expect: "deadLettered" },
  { name: "a moduleId holding NUL", events: withIds("poison", "mod\u0000ule"), expect: "deadLettered" },
  { name: "a moduleId holding a lone surrogate", events: withIds("poison", "mod\udc00ule"), expect: "deadLettered" },
  { name: "$lastUpdatedVersion 1.5", events: desiredEvent((b) => void (intervalMetadata(b).$lastUpdatedVersion = 1.5)), expect: "deadLettered" },
  { name: "$lastUpdatedVersion 1e20", events: desiredEvent((b) => void (intervalMetadata(b).$lastUpdatedVersion = 1e20)), expect: "deadLettered" },
  {
    name: "desired $version 2.5 (no $lastUpdatedVersion)",
    events: desiredEvent((b) => {
      b.properties.desired.$version = 2.5;
      delete intervalMetadata(b).$lastUpdatedVersion;
      delete b.properties.desired.$metadata.$lastUpdatedVersion;
    }, undefined, true),
    expect: "deadLettered",
  },
  {
    name: "desired $version 1e20 (no $lastUpdatedVersion)",
    events: desiredEvent((b) => {
      b.properties.desired.$version = 1e20;
      delete intervalMetadata(b).$lastUpdatedVersion;
      delete b.properties.desired.$metadata.$lastUpdatedVersion;
    }, undefined, true),
    expect: "deadLettered",
  },
  { name: "twin version 1e20", events: desiredEvent((b) => void (b.version = 1e20)), expect: "deadLettered" },
  { name: "$lastUpdated in year -1", events: desiredEvent((b) => void (intervalMetadata(b).$lastUpdated = "-000001-01-01T00:00:00Z")), expect: "deadLettered" },
  { name: "$lastUpdated in year +200000", events: desiredEvent((b) => void (intervalMetadata(b).$lastUpdated = "+200000-01-01T00:00:00Z")), expect: "deadLettered" },
  {
    name: "$lastUpdated at the last instant JavaScript can represent",
    events: desiredEvent((b) => void (intervalMetadata(b).$lastUpdated = "+275760-09-13T00:00:00Z")),
    expect: "deadLettered",
  },
];

/** Two good devices: one compliant, one pending — the hand-written verdicts. */
function goodEvents(): ReceivedEvent[] {
  const a = new FixtureTwin("good-a");
  const b = new FixtureTwin("good-b");
  return [a.replace(), b.replace(), a.tick(1000).setDesired({ fanOn: true }), b.tick(1000).setDesired({ level: 3 }), a.tick(1000).report({ fanOn: true })];
}
const GOOD = [
  ["good-a", "fanOn", "compliant"],
  ["good-b", "level", "pending"],
];

/** Good events around the poison ones, numbered as one partition delivers them. */
function batch(poison: ReceivedEvent[]): { events: ReceivedEvent[]; poisonIndexes: number[] } {
  const good = goodEvents();
  const events = [...good.slice(0, 2), ...poison, ...good.slice(2)].map((e, i) => ({ ...e, sequenceNumber: 1000 + i, offset: String(i) }));
  return { events, poisonIndexes: poison.map((_, i) => 2 + i) };
}

describe.each(testDatabases)("poison events on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  beforeEach(async () => {
    await truncateAll(db);
  });
  afterAll(async () => {
    await db.close();
  });

  const records = async () =>
    (await db.query<{ device_id: string; path: string; state: string }>("SELECT device_id, path, state FROM property_records ORDER BY device_id, path")).rows;

  test.each(cases)("$name: the batch commits, good devices get their verdicts", async ({ events, expect: expected }) => {
    const { events: all, poisonIndexes } = batch(events());
    const { messages, triggerMetadata } = await toTriggerInput(all);
    const result = await reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock: () => new Date(LATER) });

    const stored = await records();
    for (const [deviceId, path, state] of GOOD) expect(stored).toContainEqual({ device_id: deviceId, path, state });
    if (expected === "deadLettered") {
      const indexes = result.deadLetters.map((d) => d.index).sort();
      expect(indexes).toContain(poisonIndexes.at(-1));
      for (const index of indexes) expect(poisonIndexes).toContain(index);
      for (const d of result.deadLetters) expect(d.reason).not.toBe("");
      const rows = await db.query<{ sequence_number: string; reason: string }>("SELECT sequence_number::text, reason FROM dead_letters ORDER BY sequence_number");
      expect(rows.rows.map((r) => Number(r.sequence_number))).toEqual(indexes.map((i) => 1000 + i));
      expect(rows.rows.every((r) => r.reason.length > 0)).toBe(true);
      if (process.env.POISON_REASONS) console.log(result.deadLetters.map((d) => d.reason.slice(0, 160)).join("\n"));
    } else {
      expect(result.deadLettered).toBe(0);
      expect(stored).toContainEqual({ device_id: "poison", path: expected.reconciled, state: "pending" });
    }
  });

  test("reports a record at a long path like any other: summary counters and the property filter", async () => {
    const longPath = cases[0]?.expect as { reconciled: string };
    const { events } = batch((cases[0] as PoisonCase).events());
    const { messages, triggerMetadata } = await toTriggerInput(events);
    await reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock: () => new Date(LATER) });
    const now = new Date(LATER);
    const all = await getComplianceSummary(db, { tags: [] }, { now });
    expect(all.byProperty.find((p) => p.path === longPath.reconciled)).toMatchObject({ total: 1, byState: { pending: 1 } });
    const one = await getComplianceSummary(db, { tags: [], property: longPath.reconciled }, { now });
    expect(one).toMatchObject({ devices: 1, properties: 1 });
    // Past staleAfter, the overdue count (by path_key) moves it to stale under its path.
    const overdue = await getComplianceSummary(db, { tags: [] }, { now: new Date(now.getTime() + 3_600_000) });
    expect(overdue.byProperty.find((p) => p.path === longPath.reconciled)).toMatchObject({ total: 1, byState: { pending: 0, stale: 1 } });
  });

  /** The store, failing the first statement that writes records with `error`. */
  const failingOnce = (error: Error): Database => {
    let armed = true;
    return {
      kind: db.kind,
      query: (sql, params) => db.query(sql, params),
      close: () => db.close(),
      transaction: (work) =>
        db.transaction((tx) =>
          work({
            query: (sql, params) => {
              if (armed && sql.includes("INSERT INTO property_records")) {
                armed = false;
                return Promise.reject(error);
              }
              return tx.query(sql, params);
            },
          }),
        ),
    };
  };
  const sqlError = (message: string, code: string) => Object.assign(new Error(message), { code });

  test.each([
    ["a lost connection (08006)", sqlError("connection failure", "08006")],
    ["an administrator shutdown (57P01)", sqlError("terminating connection due to administrator command", "57P01")],
    ["a serialization failure (40001)", sqlError("could not serialize access", "40001")],
    ["an error that is not SQL", new Error("socket hang up")],
  ])("still throws on %s, so the batch is delivered again", async (_name, error) => {
    const { messages, triggerMetadata } = await toTriggerInput(goodEvents());
    await expect(reconcileTwinChanges(messages, triggerMetadata, { db: failingOnce(error), policy, clock: () => new Date(LATER) })).rejects.toThrow(error.message);
    expect(await records()).toEqual([]);
  });

  test("writes the batch twin by twin after a data error and keeps every twin the store accepts", async () => {
    const { messages, triggerMetadata } = await toTriggerInput(goodEvents());
    const result = await reconcileTwinChanges(messages, triggerMetadata, { db: failingOnce(sqlError("value too long", "22001")), policy, clock: () => new Date(LATER) });
    expect(result.deadLettered).toBe(0);
    const stored = await records();
    for (const [deviceId, path, state] of GOOD) expect(stored).toContainEqual({ device_id: deviceId, path, state });
  });
});
