/**
 * The report counters' rewrites — compaction, repair, truncation, migration 006 — and the summary
 * that reads them. Races run on PostgreSQL only (PGlite runs one statement at a time): one side is
 * held inside an open transaction while the other starts, so the interleaving is the same every run.
 */
import { getComplianceSummary } from "../../shared/reports/getComplianceSummary";
import type { Database, Queryable } from "../../shared/store/Database";
import { migrate } from "../../shared/store/migrate";
import { compactReportCounters, repairReportCounters } from "../../shared/store/reportCounters";
import { counterDrift } from "../support/counterDrift";
import { testDatabases, truncateAll } from "../support/testDatabases";

const AT = "2026-01-01T00:00:00.000Z";

async function addDevice(db: Queryable, deviceId: string, state: string): Promise<void> {
  await db.query(
    "INSERT INTO devices (device_id, module_id, state, state_since, updated_at) VALUES ($1, '', $2, $3::timestamptz, $3::timestamptz)",
    [deviceId, state, AT],
  );
}

async function addRecord(db: Queryable, deviceId: string, path: string, state: string): Promise<void> {
  await db.query(
    `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired_version, desired_since, state_since, stale_at, updated_at)
     VALUES ($1, '', $2, $2, 'equals', $3, 2, $4::timestamptz, $4::timestamptz, $4::timestamptz + interval '10 minutes', $4::timestamptz)`,
    [deviceId, path, state, AT],
  );
}

/** Many delta rows that net to the tables' counts: device rows changing state back and forth. */
async function churn(db: Queryable, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await db.query("UPDATE devices SET state = CASE state WHEN 'pending' THEN 'compliant' ELSE 'pending' END WHERE device_id = 'd1'");
  }
}

const deltaRows = async (db: Queryable) =>
  (await db.query<{ kind: string; path: string; state: string; n: string }>("SELECT kind, path, state, n::text AS n FROM report_state_deltas ORDER BY id")).rows;

/** Resolves `held` once work ran inside a transaction that then stays open until `release()`. */
function holdOpen(db: Database, work: (tx: Queryable) => Promise<unknown>) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let ran!: () => void;
  const held = new Promise<void>((resolve) => (ran = resolve));
  const done = db.transaction(async (tx) => {
    await work(tx);
    ran();
    await released;
  });
  return { held, release, done };
}

/** Time for a statement started on another connection to reach its lock wait. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 400));

describe.each(testDatabases)("report counters on $name", ({ name, open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  beforeEach(async () => {
    await truncateAll(db);
    await addDevice(db, "d1", "pending");
    await addDevice(db, "d2", "failed");
    await addRecord(db, "d1", "interval", "pending");
    await addRecord(db, "d2", "interval", "failed");
  });
  afterAll(async () => {
    await db.close();
  });

  it("serves the summary without writing, however many delta rows there are", async () => {
    // Delta rows that sum to nothing, as churn leaves them: more than the old fold-on-read threshold.
    await db.query(
      "INSERT INTO report_state_deltas (kind, path, state, n) SELECT 'device', '', 'compliant', CASE WHEN g % 2 = 0 THEN 1 ELSE -1 END FROM generate_series(1, 2100) g",
    );
    const before = await deltaRows(db);
    expect(before.length).toBeGreaterThan(2000);
    const summary = await getComplianceSummary(db, { tags: [] }, { now: new Date(AT) });
    expect(summary).toMatchObject({ devices: 2, properties: 2 });
    expect(await deltaRows(db)).toEqual(before);
  });

  it("folds the deltas into one row per key with the same sums", async () => {
    await churn(db, 5);
    const folded = await compactReportCounters(db);
    expect(folded).toBeGreaterThan(5);
    expect(await deltaRows(db)).toEqual(
      expect.arrayContaining([
        { kind: "device", path: "", state: "compliant", n: "1" },
        { kind: "device", path: "", state: "failed", n: "1" },
        { kind: "record", path: "interval", state: "pending", n: "1" },
        { kind: "record", path: "interval", state: "failed", n: "1" },
      ]),
    );
    expect(await deltaRows(db)).toHaveLength(4);
    expect(await counterDrift(db)).toEqual([]);
  });

  it("repairs drifted counters from the tables and says which keys were off", async () => {
    await db.query("INSERT INTO report_state_deltas (kind, path, state, n) VALUES ('device', '', 'failed', 40), ('record', 'gone', 'stale', 3)");
    await db.query("DELETE FROM report_state_deltas WHERE kind = 'record' AND state = 'pending'");
    expect(await repairReportCounters(db)).toEqual([
      { kind: "device", path: "", state: "failed", counted: 41, actual: 1 },
      { kind: "record", path: "gone", state: "stale", counted: 3, actual: 0 },
      { kind: "record", path: "interval", state: "pending", counted: 0, actual: 1 },
    ]);
    expect(await counterDrift(db)).toEqual([]);
    expect(await repairReportCounters(db)).toEqual([]);
  });

  it("heals drifted counters when migration 006 runs on an older store", async () => {
    await db.query("INSERT INTO report_state_deltas (kind, path, state, n) VALUES ('device', '', 'compliant', 42)");
    await db.query("DELETE FROM schema_migrations WHERE version = 6");
    expect(await migrate(db)).toContain(6);
    expect(await counterDrift(db)).toEqual([]);
  });

  it("gives back the counting triggers to a table that lost them when migration 006 runs", async () => {
    // As a table rebuilt by copy-and-rename would be: no triggers.
    for (const op of ["insert", "update", "delete", "truncate"]) await db.query(`DROP TRIGGER report_count_records_${op} ON property_records`);
    await db.query("DELETE FROM schema_migrations WHERE version = 6");
    await migrate(db);
    await addRecord(db, "d3", "interval", "compliant");
    await db.query("UPDATE property_records SET state = 'stale' WHERE device_id = 'd1'");
    expect(await counterDrift(db)).toEqual([]);
  });

  (name === "postgres" ? describe : describe.skip)("racing on PostgreSQL", () => {
    it("loses no delta of a writer whose transaction is open while a compaction runs", async () => {
      const writer = holdOpen(db, (tx) => addDevice(tx, "d3", "drifted"));
      await writer.held;
      const compaction = compactReportCounters(db);
      await settle();
      writer.release();
      await Promise.all([writer.done, compaction]);
      expect(await counterDrift(db)).toEqual([]);
      expect(await compactReportCounters(db)).toBeGreaterThanOrEqual(0);
      expect(await counterDrift(db)).toEqual([]);
    });

    it("counts nothing twice when a repair runs while a compaction's transaction is open", async () => {
      await churn(db, 3);
      const compaction = holdOpen(db, (tx) => compactReportCounters(tx));
      await compaction.held;
      const repair = repairReportCounters(db);
      await settle();
      compaction.release();
      await Promise.all([compaction.done, repair]);
      expect(await counterDrift(db)).toEqual([]);
    });

    it("leaves no folded row behind when property_records is truncated while a compaction's transaction is open", async () => {
      await churn(db, 3);
      const compaction = holdOpen(db, (tx) => compactReportCounters(tx));
      await compaction.held;
      const truncate = db.query("TRUNCATE property_records");
      await settle();
      compaction.release();
      await Promise.all([compaction.done, truncate]);
      expect(await counterDrift(db)).toEqual([]);
    });
  });
});
