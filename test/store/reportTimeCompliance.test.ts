/**
 * The report_time_compliance trigger (006: its join as dynamic SQL, planned at every run) writes one
 * time-to-compliance row per history transition to 'compliant' whose record has the same desired
 * version, with the seconds since that record's desired_since (0 when negative) — checked against a
 * hand-written table, on a small store and again after the store grew and was analysed.
 */
import type { Database, Queryable } from "../../shared/store/Database";
import { testDatabases, truncateAll } from "../support/testDatabases";

const T = Date.parse("2026-03-01T12:00:00.000Z");
const at = (seconds: number) => new Date(T + seconds * 1000).toISOString();

async function addRecord(db: Queryable, deviceId: string, moduleId: string, path: string, desiredVersion: number, desiredSince: string): Promise<void> {
  await db.query(
    `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired_version, desired_since, state_since, stale_at, updated_at)
     VALUES ($1, $2, $3, $3, 'equals', 'pending', $4, $5::timestamptz, $5::timestamptz, $5::timestamptz, $5::timestamptz)`,
    [deviceId, moduleId, path, desiredVersion, desiredSince],
  );
}

type H = [deviceId: string, moduleId: string, path: string, toState: string, desiredVersion: number | null, at: string];

/** One INSERT statement (one trigger run) for the whole batch, as writeBatch does. */
async function appendHistory(db: Queryable, rows: H[]): Promise<void> {
  await db.query(
    `INSERT INTO property_history (device_id, module_id, path, from_state, to_state, cause, at, desired_version)
     SELECT h->>0, h->>1, h->>2, 'pending', h->>3, 'event', (h->>5)::timestamptz, (h->>4)::bigint
       FROM jsonb_array_elements($1::jsonb) AS x(h)`,
    [JSON.stringify(rows)],
  );
}

async function complianceTimes(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ at: string; device_id: string; module_id: string; path: string; seconds: number }>(
    `SELECT to_char(at AT TIME ZONE 'UTC', 'HH24:MI:SS') AS at, device_id, module_id, path, seconds FROM report_compliance_times`,
  );
  return rows.map((r) => `${r.at} ${r.device_id}/${r.module_id || "-"} ${r.path} ${Number(r.seconds)}s`).sort();
}

describe.each(testDatabases)("report_time_compliance on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  beforeEach(async () => {
    await truncateAll(db);
    await db.query("DELETE FROM report_compliance_times");
  });
  afterAll(async () => {
    await db.close();
  });

  it("times each transition to compliant against its record's desired version, on a small store and a grown one", async () => {
    await addRecord(db, "d1", "", "interval", 3, at(0));
    await addRecord(db, "d1", "", "mode", 2, at(100));
    await addRecord(db, "d1", "m1", "interval", 7, at(0));
    await addRecord(db, "d2", "", "interval", 5, at(-30));
    await appendHistory(db, [
      ["d1", "", "interval", "compliant", 3, at(60)], // 60 s after desired_since
      ["d1", "", "interval", "compliant", 2, at(61)], // an older desired version: no record matches
      ["d1", "", "mode", "pending", 2, at(62)], // not a transition to compliant
      ["d1", "", "mode", "compliant", 2, at(90)], // before desired_since: 0 s
      ["d1", "m1", "interval", "compliant", 7, at(5)], // the module twin's own record
      ["d2", "", "interval", "compliant", 5, at(0)],
      ["d3", "", "interval", "compliant", 1, at(0)], // no record at all
      ["d2", "", "interval", "compliant", null, at(1)], // no desired version
    ]);
    expect(await complianceTimes(db)).toEqual([
      "12:00:00 d2/- interval 30s",
      "12:00:05 d1/m1 interval 5s",
      "12:01:00 d1/- interval 60s",
      "12:01:30 d1/- mode 0s",
    ]);

    // The store grows (a plan made for four records would scan them all) and is analysed.
    await db.query(
      `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired_version, desired_since, state_since, stale_at, updated_at)
       SELECT 'bulk-' || g, '', 'interval', 'interval', 'equals', 'pending', 1, $1::timestamptz, $1::timestamptz, $1::timestamptz, $1::timestamptz
         FROM generate_series(1, 5000) g`,
      [at(0)],
    );
    await db.query("ANALYZE property_records");
    await appendHistory(db, [
      ["bulk-17", "", "interval", "compliant", 1, at(120)],
      ["bulk-4999", "", "interval", "compliant", 2, at(121)], // version mismatch
      ["d1", "", "interval", "compliant", 3, at(180)],
    ]);
    expect(await complianceTimes(db)).toEqual([
      "12:00:00 d2/- interval 30s",
      "12:00:05 d1/m1 interval 5s",
      "12:01:00 d1/- interval 60s",
      "12:01:30 d1/- mode 0s",
      "12:02:00 bulk-17/- interval 120s",
      "12:03:00 d1/- interval 180s",
    ]);
  });
});
