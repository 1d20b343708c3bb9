import { applyHubTwins } from "../../shared/applyHubTwins";
import { parsePolicy } from "../../shared/policy/Policy";
import type { Database } from "../../shared/store/Database";
import type { Twin } from "../../shared/twin/Twin";
import { testDatabases } from "../support/testDatabases";

const policy = parsePolicy({ rules: [] });
const NOW = "2026-03-01T00:00:00.000Z";
const clock = () => new Date(NOW);

/** A hub twin as getTwin returns it (hand-written: desired `mode` and `rate`, the device's report). */
function hubTwin(deviceId: string, version: number, desired: Record<string, unknown>, reported: Record<string, unknown>): Twin {
  const stamp = { $lastUpdated: "2026-02-28T23:59:00.000Z", $lastUpdatedVersion: 1 };
  return {
    deviceId,
    moduleId: null,
    version,
    etag: `e${version}`,
    tags: {},
    desired: { ...desired, $version: 1, $metadata: stamp } as Twin["desired"],
    reported: { ...reported, $version: 1, $metadata: { $lastUpdated: "2026-02-28T23:59:00.000Z" } } as Twin["reported"],
  };
}

async function records(db: Database, deviceId: string) {
  const rows = await db.query<{ path: string; state: string }>("SELECT path, state FROM property_records WHERE device_id = $1 ORDER BY path", [deviceId]);
  return rows.rows.map((r) => `${r.path}=${r.state}`);
}

async function storedVersion(db: Database, deviceId: string) {
  const rows = await db.query<{ version: string }>("SELECT version FROM twins WHERE device_id = $1", [deviceId]);
  return rows.rows.map((r) => Number(r.version));
}

describe.each(testDatabases)("applyHubTwins on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db.close();
  });

  test("stores an unseen twin and decides each desired property from the hub's twin alone", async () => {
    const result = await applyHubTwins({ db, policy, clock }, [hubTwin("d-new", 5, { mode: "eco", rate: 10 }, { mode: "eco", rate: 5 })], { consistency: "eventual" });
    expect(result).toMatchObject({ applied: 1, unchanged: 0, older: 0, recreated: 0 });
    expect(await records(db, "d-new")).toEqual(["mode=compliant", "rate=pending"]);
    expect(await storedVersion(db, "d-new")).toEqual([5]);
  });

  test("skips a query result older than the stored twin (queries lag)", async () => {
    await applyHubTwins({ db, policy, clock }, [hubTwin("d-lag", 9, { mode: "eco" }, { mode: "eco" })], { consistency: "eventual" });
    const result = await applyHubTwins({ db, policy, clock }, [hubTwin("d-lag", 4, { mode: "old" }, {})], { consistency: "eventual" });
    expect(result).toMatchObject({ applied: 0, older: 1 });
    expect(await records(db, "d-lag")).toEqual(["mode=compliant"]);
    expect(await storedVersion(db, "d-lag")).toEqual([9]);
  });

  test("writes nothing for a twin whose stored copy already has its version", async () => {
    await applyHubTwins({ db, policy, clock }, [hubTwin("d-same", 3, { mode: "eco" }, {})], { consistency: "eventual" });
    const before = await db.query("SELECT count(*)::int AS n FROM property_history WHERE device_id = 'd-same'");
    const result = await applyHubTwins({ db, policy, clock }, [hubTwin("d-same", 3, { mode: "eco" }, {})], { consistency: "strong" });
    expect(result).toMatchObject({ applied: 0, unchanged: 1 });
    expect(await db.query("SELECT count(*)::int AS n FROM property_history WHERE device_id = 'd-same'")).toEqual(before);
  });

  test("treats a lower version read through getTwin as a device created again: old records removed, history kept", async () => {
    await applyHubTwins({ db, policy, clock }, [hubTwin("d-again", 7, { mode: "old-4", legacy: true }, { mode: "old-4", legacy: true })], { consistency: "strong" });
    const result = await applyHubTwins({ db, policy, clock }, [hubTwin("d-again", 2, { mode: "new" }, {})], { consistency: "strong" });
    expect(result).toMatchObject({ applied: 1, recreated: 1 });
    expect(await records(db, "d-again")).toEqual(["mode=pending"]);
    expect(await storedVersion(db, "d-again")).toEqual([2]);
    const history = await db.query<{ path: string; to_state: string; cause: string }>(
      "SELECT path, to_state, cause FROM property_history WHERE device_id = 'd-again' ORDER BY id",
    );
    expect(history.rows.map((r) => `${r.path}:${r.to_state}:${r.cause}`)).toEqual([
      "legacy:compliant:resync",
      "mode:compliant:resync",
      "legacy:removed:deleted",
      "mode:removed:deleted",
      "mode:pending:resync",
    ]);
  });

  test("rewrites a stored copy at the hub's version whose content differs from the hub's twin (a lost change)", async () => {
    await applyHubTwins({ db, policy, clock }, [hubTwin("d-lost", 8, { mode: "eco" }, {})], { consistency: "eventual" });
    // The device's report at version 8 never reached the store, yet a later event set the version.
    const result = await applyHubTwins({ db, policy, clock }, [hubTwin("d-lost", 8, { mode: "eco" }, { mode: "eco" })], { consistency: "eventual" });
    expect(result).toMatchObject({ applied: 1, unchanged: 0 });
    expect(await records(db, "d-lost")).toEqual(["mode=compliant"]);
  });

  test("clears resyncNeeded when the hub's twin has the flagged twin's version", async () => {
    await applyHubTwins({ db, policy, clock }, [hubTwin("d-flag", 6, { mode: "eco" }, {})], { consistency: "strong" });
    await db.query("UPDATE twins SET resync_needed = true WHERE device_id = 'd-flag'");
    const result = await applyHubTwins({ db, policy, clock }, [hubTwin("d-flag", 6, { mode: "eco" }, { mode: "eco" })], { consistency: "strong" });
    expect(result).toMatchObject({ applied: 1 });
    const flag = await db.query<{ resync_needed: boolean }>("SELECT resync_needed FROM twins WHERE device_id = 'd-flag'");
    expect(flag.rows[0]?.resync_needed).toBe(false);
    expect(await records(db, "d-flag")).toEqual(["mode=compliant"]);
  });
});
