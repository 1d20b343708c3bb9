/**
 * The fleet sync against the IoT Hub emulator's service API through the official azure-iothub SDK,
 * on PGlite and (with DATABASE_URL) PostgreSQL. Expected verdicts come from the test's own
 * evaluator applied to the hub twins the SDK reads; queries and twin reads are counted at the hub.
 */
import { reconcileTwinChanges } from "../../shared/reconcile";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import type { Database } from "../../shared/store/Database";
import { syncFleetTwins } from "../../shared/sync/syncFleetTwins";
import { FixtureTwin } from "../fixtures/twinEvents";
import { testDatabases } from "../support/testDatabases";
import {
  busiestWindow,
  clearSyncStore,
  createFleet,
  expectedStates,
  sdkTwin,
  startSyncHub,
  storedStates,
  syncDeps,
  syncPolicy,
  type SyncHub,
} from "./syncSupport";

const SECOND = 1000;

async function expectStoreAgreesWithHub(db: Database, h: SyncHub, twins: ReadonlyArray<[string, string | null]>): Promise<void> {
  const expected: Record<string, Record<string, string>> = {};
  for (const [deviceId, moduleId] of twins) expected[moduleId ? `${deviceId}/${moduleId}` : deviceId] = expectedStates(await sdkTwin(h.sdk, deviceId, moduleId));
  expect(await storedStates(db)).toEqual(expected);
}

async function passRow(db: Database) {
  const result = await db.query<{ id: unknown; phase: string; continuation: string | null; finished_at: unknown; twins_read: unknown; queries_used: unknown; twins_removed: unknown }>(
    "SELECT id, phase, continuation, finished_at, twins_read, queries_used, twins_removed FROM fleet_sync_passes ORDER BY id DESC LIMIT 1",
  );
  const row = result.rows[0]!;
  return { ...row, id: Number(row.id), twins_read: Number(row.twins_read), queries_used: Number(row.queries_used), twins_removed: Number(row.twins_removed) };
}

const queries = (h: SyncHub) => h.calls.filter((c) => c.op === "query");

describe.each(testDatabases)("syncFleetTwins on $name", ({ open }) => {
  let db: Database;
  let h: SyncHub;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    await clearSyncStore(db);
    h = await startSyncHub();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("stores every device and module twin of an existing hub with the verdicts the hub twins call for", async () => {
    const ids = createFleet(h, 12, 3);
    const result = await syncFleetTwins(syncDeps(db, h, { pageSize: 5 }), { startNew: false });

    expect(result).toMatchObject({ started: true, completed: true });
    // 12 devices in pages of 5, then 3 modules: 3 + 1 queries, each twin read once, no getTwin.
    expect(queries(h)).toHaveLength(4);
    expect(h.twinReads).toEqual([]);
    expect(await passRow(db)).toMatchObject({ phase: "done", twins_read: 15, queries_used: 4 });
    await expectStoreAgreesWithHub(db, h, [...ids.map((id): [string, null] => [id, null]), ["dev-00", "agent"], ["dev-01", "agent"], ["dev-02", "agent"]]);
    // Nothing more to do until the schedule starts the next pass.
    expect(await syncFleetTwins(syncDeps(db, h), { startNew: false })).toMatchObject({ pass: null, skipped: "idle" });
  });

  it("resumes a pass interrupted by its time budget from the stored continuation and completes it", async () => {
    const ids = createFleet(h, 12, 0);
    // One query a second: a 2.5 s budget leaves time for three pages.
    const deps = syncDeps(db, h, { pageSize: 2, queriesPerMinute: 60, runBudgetMs: 2.5 * SECOND });
    const first = await syncFleetTwins(deps, { startNew: false });
    expect(first.completed).toBe(false);
    const stopped = await passRow(db);
    expect(stopped).toMatchObject({ phase: "devices", finished_at: null });
    expect(stopped.continuation).not.toBeNull();
    expect(stopped.twins_read).toBeLessThan(12);
    const readSoFar = queries(h).length;

    let runs = 1;
    let last = first;
    while (!last.completed && runs < 20) {
      last = await syncFleetTwins(deps, { startNew: false });
      runs++;
    }
    expect(last.completed).toBe(true);
    expect(runs).toBeGreaterThan(2);
    expect(last.pass?.id).toBe(stopped.id);
    // Continued, not restarted: 6 device pages and 1 (empty) module page in all, each twin read once.
    expect(readSoFar).toBeLessThan(7);
    expect(queries(h)).toHaveLength(7);
    expect(await passRow(db)).toMatchObject({ phase: "done", twins_read: 12, queries_used: 7 });
    await expectStoreAgreesWithHub(db, h, ids.map((id): [string, null] => [id, null]));
  });

  it("removes a twin deleted from the hub only after a complete pass and a getTwin 404, keeping its history", async () => {
    createFleet(h, 8, 2);
    await syncFleetTwins(syncDeps(db, h), { startNew: true });
    const historyBefore = await db.query("SELECT id FROM property_history WHERE device_id = 'dev-01' ORDER BY id");
    expect(historyBefore.rows.length).toBeGreaterThan(0);

    h.hub.registry.deleteDevice("dev-01");
    const deps = syncDeps(db, h, { pageSize: 2, queriesPerMinute: 60, runBudgetMs: 1.5 * SECOND });
    const partial = await syncFleetTwins(deps, { startNew: true });
    expect(partial.completed).toBe(false);
    // The incomplete pass concluded nothing: dev-01 and its module are still stored, never asked for.
    expect(Object.keys(await storedStates(db))).toEqual(expect.arrayContaining(["dev-01", "dev-01/agent"]));
    expect(h.twinReads).toEqual([]);

    let last = partial;
    for (let i = 0; i < 20 && !last.completed; i++) last = await syncFleetTwins(deps, { startNew: false });
    expect(last.completed).toBe(true);
    // One getTwin, for the device (its module went with it), answered 404.
    expect(h.twinReads).toEqual(["dev-01"]);
    const stored = await storedStates(db);
    expect(stored["dev-01"]).toBeUndefined();
    expect(stored["dev-01/agent"]).toBeUndefined();
    for (const table of ["twins", "devices", "property_records"]) {
      expect((await db.query(`SELECT 1 FROM ${table} WHERE device_id = 'dev-01'`)).rows).toEqual([]);
    }
    const history = await db.query<{ id: unknown; module_id: string; path: string; to_state: string; cause: string }>(
      "SELECT id, module_id, path, to_state, cause FROM property_history WHERE device_id = 'dev-01' ORDER BY id",
    );
    expect(history.rows.slice(0, historyBefore.rows.length).map((r) => Number(r.id))).toEqual(historyBefore.rows.map((r) => Number(r.id)));
    expect(history.rows.slice(historyBefore.rows.length).map((r) => [r.module_id, r.path, r.to_state, r.cause])).toEqual([
      ["", "interval", "removed", "deleted"],
      ["", "mode", "removed", "deleted"],
      ["agent", "level", "removed", "deleted"],
    ]);
    expect(await passRow(db)).toMatchObject({ phase: "done", twins_removed: 2 });
  });

  it("leaves alone a twin the event path stored while the pass was running", async () => {
    createFleet(h, 6, 0);
    await syncFleetTwins(syncDeps(db, h), { startNew: true });
    const deps = syncDeps(db, h, { pageSize: 2, queriesPerMinute: 60, runBudgetMs: 1.5 * SECOND });
    expect((await syncFleetTwins(deps, { startNew: true })).completed).toBe(false);

    // A device the queries will not return (the hub no longer has it by the time the pass ends)
    // is stored by the event path in the middle of the pass.
    const ghost = new FixtureTwin("ghost-1", { now: h.clock.now() });
    ghost.setDesired({ interval: 9 });
    const { messages, triggerMetadata } = await toTriggerInput([ghost.replace()]);
    await reconcileTwinChanges(messages, triggerMetadata, { db, policy: syncPolicy, clock: () => h.clock.date() });
    expect(Object.keys(await storedStates(db))).toContain("ghost-1");

    let last;
    for (let i = 0; i < 20 && !last?.completed; i++) last = await syncFleetTwins(deps, { startNew: false });
    expect(last?.completed).toBe(true);
    // Not this pass's business: not asked for, not removed (the next pass will judge it).
    expect(h.twinReads).toEqual([]);
    expect(Object.keys(await storedStates(db))).toContain("ghost-1");
  });

  it("confirms with getTwin a twin the queries return at a lower version than stored, and replaces it when the device was re-created", async () => {
    createFleet(h, 4, 0);
    await syncFleetTwins(syncDeps(db, h), { startNew: true });
    // dev-02 deleted and created again: the hub's new twin starts at a low version again.
    h.hub.registry.deleteDevice("dev-02");
    h.hub.registry.createDevice("dev-02");
    h.hub.registry.updateTwin("dev-02", { properties: { desired: { interval: 77 } } });
    const storedVersion = Number((await db.query<{ version: unknown }>("SELECT version FROM twins WHERE device_id = 'dev-02'")).rows[0]?.version);
    const hubVersion = (await sdkTwin(h.sdk, "dev-02", null)).version;
    expect(hubVersion).toBeLessThan(storedVersion);
    h.twinReads.length = 0;

    const result = await syncFleetTwins(syncDeps(db, h), { startNew: true });
    expect(result.completed).toBe(true);
    expect(h.twinReads).toEqual(["dev-02"]);
    expect(Number((await db.query<{ version: unknown }>("SELECT version FROM twins WHERE device_id = 'dev-02'")).rows[0]?.version)).toBe(hubVersion);
    expect((await storedStates(db))["dev-02"]).toEqual(expectedStates(await sdkTwin(h.sdk, "dev-02", null)));
    const removed = await db.query("SELECT path FROM property_history WHERE device_id = 'dev-02' AND cause = 'deleted' ORDER BY path");
    expect(removed.rows).toEqual([{ path: "interval" }, { path: "mode" }]);
  });

  it("reads a phase again from its start when the hub refuses the stored continuation token", async () => {
    createFleet(h, 6, 0);
    const deps = syncDeps(db, h, { pageSize: 2, queriesPerMinute: 60, runBudgetMs: 0.5 * SECOND });
    expect((await syncFleetTwins(deps, { startNew: true })).completed).toBe(false);
    // The token expired (or the hub was restored from a backup): the hub answers 400 to it.
    await db.query("UPDATE fleet_sync_passes SET continuation = 'not-a-token'");
    let last;
    for (let i = 0; i < 20 && !last?.completed; i++) last = await syncFleetTwins(deps, { startNew: false });
    expect(last?.completed).toBe(true);
    // Two pages (4 twins) before the refusal, then all 6 devices again.
    expect(last?.pass).toMatchObject({ errors: 1, twinsRead: 10 });
    expect(Object.keys(await storedStates(db)).sort()).toEqual(["dev-00", "dev-01", "dev-02", "dev-03", "dev-04", "dev-05"]);
  });

  it("lets one of two runs started together work on the pass, and tells the other it is busy", async () => {
    createFleet(h, 6, 0);
    const [a, b] = await Promise.all([
      syncFleetTwins({ ...syncDeps(db, h), owner: "run-a" }, { startNew: true }),
      syncFleetTwins({ ...syncDeps(db, h), owner: "run-b" }, { startNew: true }),
    ]);
    expect([a, b].filter((r) => r.completed)).toHaveLength(1);
    expect([a, b].filter((r) => r.skipped === "busy")).toHaveLength(1);
    expect(queries(h)).toHaveLength(3);
    expect((await db.query("SELECT id FROM fleet_sync_passes")).rows).toHaveLength(1);
  });

  it("re-reads a twin the queries did not return with getTwin and stores it", async () => {
    createFleet(h, 4, 0);
    await syncFleetTwins(syncDeps(db, h), { startNew: true });
    // A device added after the devices phase of the next pass read its last page.
    const deps = syncDeps(db, h, { pageSize: 10, queriesPerMinute: 60, runBudgetMs: 0.5 * SECOND });
    await syncFleetTwins(deps, { startNew: true });
    expect((await passRow(db)).phase).not.toBe("done");
    h.hub.registry.createDevice("dev-late");
    h.hub.registry.updateTwin("dev-late", { properties: { desired: { interval: 3 } } });
    // …which the event path missed but an older pass had stored (as if from before a delete and re-create).
    await db.query(
      `INSERT INTO twins (device_id, module_id, version, updated_at) VALUES ('dev-late', '', 1, $1::timestamptz - interval '1 hour')`,
      [h.clock.date().toISOString()],
    );
    let last;
    for (let i = 0; i < 20 && !last?.completed; i++) last = await syncFleetTwins(deps, { startNew: false });
    expect(h.twinReads).toEqual(["dev-late"]);
    expect((await storedStates(db))["dev-late"]).toEqual(expectedStates(await sdkTwin(h.sdk, "dev-late", null)));
  });
});

describe("syncFleetTwins against an S1 hub", () => {
  let db: Database;
  let h: SyncHub;
  beforeAll(async () => {
    db = await testDatabases[0]!.open();
    h = await startSyncHub("S1");
  });
  afterAll(async () => {
    await h?.stop();
    await db?.close();
  });

  it("keeps its twin queries within HUB_QUERIES_PER_MINUTE, counted at the hub, and the hub refuses none", async () => {
    const ids = createFleet(h, 50, 0);
    const result = await syncFleetTwins(syncDeps(db, h, { pageSize: 2, queriesPerMinute: 20 }), { startNew: true });

    expect(result.completed).toBe(true);
    const times = queries(h).map((c) => c.at);
    // 25 pages of devices and one of modules: more than a minute's quota, so the limit shows.
    expect(times).toHaveLength(26);
    expect(busiestWindow(times, 60 * SECOND)).toBeLessThanOrEqual(20);
    expect(h.hub.throttle.refused.query).toBe(0);
    await expectStoreAgreesWithHub(db, h, ids.map((id): [string, null] => [id, null]));
  });

  it("gets through when the setting asks for more than the hub allows (429s slow the limiter down)", async () => {
    await clearSyncStore(db);
    const before = queries(h).length;
    const result = await syncFleetTwins(syncDeps(db, h, { pageSize: 2, queriesPerMinute: 120 }), { startNew: true });
    expect(result.completed).toBe(true);
    expect(h.hub.throttle.refused.query).toBeGreaterThan(0);
    expect(result.pass?.twinsRead).toBe(50);
    expect(queries(h).length - before).toBe(26 + h.hub.throttle.refused.query);
  });
});
