/**
 * applyHubTwins with a strong read that a concurrent writer overtook: a re-push stored the twin
 * its patch produced between the resync's getTwin and its transaction. The read is lower than the
 * stored twin without the device having been created again.
 */
import { applyHubTwins } from "../../shared/applyHubTwins";
import { parsePolicy } from "../../shared/policy/Policy";
import type { Database } from "../../shared/store/Database";
import type { Twin } from "../../shared/twin/Twin";
import { testDatabases, truncateAll } from "../support/testDatabases";

const policy = parsePolicy({ rules: [] });
const clock = () => new Date("2026-03-01T00:00:00.000Z");

function hubTwin(version: number, mode: string, reported: string): Twin {
  const stamp = { $lastUpdated: "2026-02-28T23:59:00.000Z", $lastUpdatedVersion: version };
  return {
    deviceId: "race",
    moduleId: null,
    version,
    etag: `e${version}`,
    tags: {},
    desired: { mode, $version: version, $metadata: stamp } as Twin["desired"],
    reported: { mode: reported, $version: 1, $metadata: { $lastUpdated: "2026-02-28T23:59:00.000Z" } } as Twin["reported"],
  };
}

describe.each(testDatabases)("applyHubTwins overtaken by a concurrent writer, on $name", ({ open }) => {
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
  const removals = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM property_history WHERE cause = 'deleted'")).rows[0]?.n;

  test("keeps the newer twin a concurrent writer stored after the read, and removes nothing", async () => {
    await applyHubTwins({ db, policy, clock }, [hubTwin(4, "eco", "eco")], { consistency: "strong" });
    const read = hubTwin(5, "eco", "eco"); // the resync's getTwin, stored version 4 seen before it
    await applyHubTwins({ db, policy, clock }, [hubTwin(6, "eco", "off")], { consistency: "strong" }); // the re-push, meanwhile
    const result = await applyHubTwins({ db, policy, clock }, [read], { consistency: "strong", storedBeforeRead: new Map([["race", 4]]) });
    expect(result).toMatchObject({ applied: 0, older: 1, recreated: 0 });
    expect(await removals()).toBe(0);
    expect((await db.query("SELECT version::int AS version FROM twins")).rows).toEqual([{ version: 6 }]);
  });

  test("still takes a lower strong read for a device created again when nothing was written since the read", async () => {
    await applyHubTwins({ db, policy, clock }, [hubTwin(6, "eco", "eco")], { consistency: "strong" });
    const result = await applyHubTwins({ db, policy, clock }, [hubTwin(2, "new", "new")], { consistency: "strong", storedBeforeRead: new Map([["race", 6]]) });
    expect(result).toMatchObject({ recreated: 1, applied: 1 });
    expect(await removals()).toBe(1);
  });
});
