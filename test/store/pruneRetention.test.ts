/**
 * Retention on hand-made rows of known age: what is older than its retention goes, in chunks no
 * statement exceeds; what is recent stays; the report counters stay equal to the tables.
 */
import type { Database, Queryable } from "../../shared/store/Database";
import { pruneRetention, type RetentionSettings } from "../../shared/store/pruneRetention";
import { counterDrift } from "../support/counterDrift";
import { testDatabases, truncateAll } from "../support/testDatabases";

const NOW = new Date("2026-06-01T00:00:00.000Z");
const DAY = 86_400_000;
const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY).toISOString();

const settings: RetentionSettings = { historyMs: 90 * DAY, deadLetterMs: 30 * DAY, complianceTimesMs: 90 * DAY };

/** History, dead letters and time-to-compliance rows at these ages (days), plus one record and device. */
async function seed(db: Queryable, ages: { history: number[]; deadLetters: number[]; complianceTimes: number[] }): Promise<void> {
  for (const age of ages.history) {
    await db.query(
      "INSERT INTO property_history (device_id, module_id, path, from_state, to_state, cause, at) VALUES ('d1', '', 'interval', 'pending', 'pending', 'event', $1::timestamptz)",
      [daysAgo(age)],
    );
  }
  for (const age of ages.deadLetters) {
    await db.query("INSERT INTO dead_letters (received_at, device_id, reason, raw) VALUES ($1::timestamptz, 'd1', 'test', jsonb_build_object('age', $2::float8, 'n', random()))", [daysAgo(age), age]);
  }
  for (const age of ages.complianceTimes) {
    await db.query("INSERT INTO report_compliance_times (at, device_id, module_id, path, seconds) VALUES ($1::timestamptz, 'd1', '', 'interval', 5)", [daysAgo(age)]);
  }
  await db.query(
    "INSERT INTO devices (device_id, module_id, state, state_since, updated_at) VALUES ('d1', '', 'pending', $1::timestamptz, $1::timestamptz)",
    [daysAgo(200)],
  );
  await db.query(
    `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired_version, desired_since, state_since, stale_at, updated_at)
     VALUES ('d1', '', 'interval', 'interval', 'equals', 'pending', 2, $1::timestamptz, $1::timestamptz, $1::timestamptz, $1::timestamptz)`,
    [daysAgo(200)],
  );
}

const ages = async (db: Queryable, sql: string) =>
  (await db.query<{ age: number }>(sql, [NOW.toISOString()])).rows.map((r) => Number(r.age)).sort((a, b) => a - b);
const historyAges = (db: Queryable) => ages(db, "SELECT round(extract(epoch FROM $1::timestamptz - at) / 86400) AS age FROM property_history");
const deadLetterAges = (db: Queryable) => ages(db, "SELECT round(extract(epoch FROM $1::timestamptz - received_at) / 86400) AS age FROM dead_letters");
const complianceTimeAges = (db: Queryable) => ages(db, "SELECT round(extract(epoch FROM $1::timestamptz - at) / 86400) AS age FROM report_compliance_times");

/** The store, recording the row count each pruning statement deleted. */
function recording(db: Database): { db: Database; deleted: number[] } {
  const deleted: number[] = [];
  return {
    deleted,
    db: {
      kind: db.kind,
      async query(sql, params) {
        const result = await db.query(sql, params);
        if (/^\s*WITH gone AS \(\s*DELETE/.test(sql)) deleted.push(Number((result.rows[0] as { n: unknown }).n));
        return result as never;
      },
      transaction: (work) => db.transaction(work),
      close: () => db.close(),
    },
  };
}

describe.each(testDatabases)("pruneRetention on $name", ({ open }) => {
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

  it("deletes history older than 90 days, dead letters older than 30 and time-to-compliance rows past the longest window, and keeps the rest", async () => {
    await seed(db, { history: [400, 120, 91, 89, 10, 0], deadLetters: [45, 31, 29, 1], complianceTimes: [100, 91, 30] });
    const result = await pruneRetention(db, settings, NOW);
    expect(result).toMatchObject({ history: 3, deadLetters: 2, complianceTimes: 2, done: true });
    expect(await historyAges(db)).toEqual([0, 10, 89]);
    expect(await deadLetterAges(db)).toEqual([1, 29]);
    expect(await complianceTimeAges(db)).toEqual([30]);
    expect(await counterDrift(db)).toEqual([]);
    expect((await db.query("SELECT count(*)::int AS n FROM property_records")).rows).toEqual([{ n: 1 }]);
  });

  it("deletes in chunks of at most chunkRows rows per statement", async () => {
    await seed(db, { history: Array.from({ length: 11 }, (_, i) => 100 + i), deadLetters: [40, 41, 42], complianceTimes: [] });
    const spy = recording(db);
    const result = await pruneRetention(spy.db, { ...settings, chunkRows: 4 }, NOW);
    expect(result).toMatchObject({ history: 11, deadLetters: 3, complianceTimes: 0, done: true });
    // history 4 + 4 + 3, dead letters 3, compliance times 0: each table until a chunk comes back short.
    expect(spy.deleted).toEqual([4, 4, 3, 3, 0]);
    expect(await historyAges(db)).toEqual([]);
  });

  it("stops when its time budget is spent and the next run deletes the rest, oldest first", async () => {
    await seed(db, { history: [300, 200, 150, 100, 95, 5], deadLetters: [60], complianceTimes: [] });
    // Each look at the clock costs 1 s; a budget of 2.5 s allows two chunks.
    let t = 0;
    const clock = () => (t += 1000);
    const first = await pruneRetention(db, { ...settings, chunkRows: 2, budgetMs: 2500 }, NOW, clock);
    expect(first).toMatchObject({ history: 4, deadLetters: 0, done: false });
    expect(await historyAges(db)).toEqual([5, 95]);
    const second = await pruneRetention(db, { ...settings, chunkRows: 2 }, NOW);
    expect(second).toMatchObject({ history: 1, deadLetters: 1, done: true });
    expect(await historyAges(db)).toEqual([5]);
    expect(await deadLetterAges(db)).toEqual([]);
  });

  it("folds the report counters and leaves them equal to the tables", async () => {
    await seed(db, { history: [], deadLetters: [], complianceTimes: [] });
    for (let i = 0; i < 5; i++) await db.query("UPDATE devices SET state = CASE state WHEN 'pending' THEN 'compliant' ELSE 'pending' END");
    const result = await pruneRetention(db, settings, NOW);
    expect(result.countersFolded).toBeGreaterThanOrEqual(7);
    expect((await db.query("SELECT count(*)::int AS n FROM report_state_deltas")).rows).toEqual([{ n: 2 }]);
    expect(await counterDrift(db)).toEqual([]);
  });
});
