/**
 * The demo's reset: every row of the twins under a prefix goes from every table that has a
 * device_id, other twins' rows stay, and the report counters follow.
 */
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import { forgetTwins } from "../../shared/store/forgetTwins";
import { SEED_POLICY, seedTutorialStream } from "../fixtures/twinEvents";
import { counterDrift } from "../support/counterDrift";
import { testDatabases, truncateAll } from "../support/testDatabases";

const tables = ["twins", "devices", "property_records", "property_history", "report_compliance_times", "dead_letters"];

async function rowsByDevice(db: Database): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const table of tables) {
    const { rows } = await db.query<{ device_id: string }>(`SELECT DISTINCT device_id FROM ${table} ORDER BY device_id`);
    out[table] = rows.map((r) => r.device_id);
  }
  return out;
}

describe.each(testDatabases)("forgetTwins on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db.close();
  });

  it("deletes every row of the sim-* twins from every table with a device_id and keeps the others", async () => {
    await truncateAll(db);
    await db.query("DELETE FROM report_compliance_times");
    for (const [i, id] of ["sim-1", "sim-2", "boiler-7"].entries()) {
      const { events } = seedTutorialStream(id);
      // One partition numbers its events uniquely: each device's bad event has a sequence number of its own.
      const { messages, triggerMetadata } = await toTriggerInput([...events, { ...events[1]!, body: "{ not json", sequenceNumber: 99 + i }]);
      await reconcileTwinChanges(messages, triggerMetadata, { db, policy: parsePolicy(SEED_POLICY) });
    }
    const before = await rowsByDevice(db);
    for (const table of tables) expect({ table, ids: before[table] }).toEqual({ table, ids: ["boiler-7", "sim-1", "sim-2"] });

    expect(await forgetTwins(db, "sim-")).toBe(2);
    const after = await rowsByDevice(db);
    for (const table of tables) expect({ table, ids: after[table] }).toEqual({ table, ids: ["boiler-7"] });
    expect(await counterDrift(db)).toEqual([]);
  });
});
