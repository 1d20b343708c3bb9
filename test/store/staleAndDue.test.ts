/**
 * The "stale / due" rule has a TypeScript side (reports of the CLI, the re-push use case) and a SQL
 * side (report queries, the re-push claim, history rows of a deleted twin). One hand-written table of
 * cases — the expected values written here from the rule as the README and ARCHITECTURE state it, not
 * computed by the product — runs against both: the TypeScript functions, and the SQL on PostgreSQL
 * and PGlite (over a row built from the case, columns typed as in property_records / devices).
 */
import type { ComplianceState } from "../../shared/compliance/ComplianceState";
import { COMPLIANCE_STATES, recordStateAt } from "../../shared/compliance/ComplianceState";
import {
  deviceSinceAtSql,
  deviceStateAt,
  deviceStateAtSql,
  deviceStateIsSql,
  isRepushDue,
  recordSinceAtSql,
  recordStateAtSql,
  recordStateIsSql,
  repushDueSql,
} from "../../shared/compliance/staleAndDue";
import type { Database } from "../../shared/store/Database";
import { testDatabases } from "../support/testDatabases";

const NOW = "2026-03-01T12:00:00.000Z";
const SINCE = "2026-03-01T11:00:00.000Z";
/** NOW shifted by `ms`. */
const t = (ms: number) => new Date(Date.parse(NOW) + ms).toISOString();

// [name, stored state, stale_at, next_attempt_at, repush_drift] → [state at NOW, since at NOW, due at NOW]
type RecordCase = [string, ComplianceState, string, string | null, boolean, ComplianceState, string, boolean];
const recordCases: RecordCase[] = [
  ["pending, stale time to come", "pending", t(1000), null, false, "pending", SINCE, false],
  ["pending, stale time is now (<=)", "pending", t(0), null, false, "stale", t(0), true],
  ["pending, stale time 1 ms ago", "pending", t(-1), null, false, "stale", t(-1), true],
  ["pending, not stale, re-push scheduled and come", "pending", t(1000), t(-1000), false, "pending", SINCE, true],
  ["pending, not stale, re-push scheduled later", "pending", t(1000), t(1000), false, "pending", SINCE, false],
  ["pending aged stale, back-off running", "pending", t(-1000), t(1), false, "stale", t(-1000), false],
  ["pending aged stale, back-off ends now (<=)", "pending", t(-1000), t(0), false, "stale", t(-1000), true],
  ["stored stale, nothing scheduled", "stale", t(1000), null, false, "stale", SINCE, true],
  ["stored stale, back-off running", "stale", t(-1000), t(1000), false, "stale", SINCE, false],
  ["drifted, rule re-pushes drift", "drifted", t(-1000), null, true, "drifted", SINCE, true],
  ["drifted, rule leaves drift alone (drift does not age)", "drifted", t(-1000), null, false, "drifted", SINCE, false],
  ["drifted, operator queued a re-push", "drifted", t(1000), t(-1), false, "drifted", SINCE, true],
  ["drifted, rule re-pushes drift, back-off running", "drifted", t(1000), t(1000), true, "drifted", SINCE, false],
  ["escalated, nothing scheduled", "escalated", t(-1000), null, true, "escalated", SINCE, false],
  ["escalated, operator queued a re-push", "escalated", t(-1000), t(0), false, "escalated", SINCE, true],
  ["failed is never due", "failed", t(-1000), t(-1000), true, "failed", SINCE, false],
  ["compliant is never due nor aged", "compliant", t(-1000), t(-1000), true, "compliant", SINCE, false],
];

// [name, stored device state, stale_at (earliest pending stale_at) or null] → [state at NOW, since at NOW]
type DeviceCase = [string, ComplianceState, string | null, ComplianceState, string];
const deviceCases: DeviceCase[] = [
  ["compliant, no pending record", "compliant", null, "compliant", SINCE],
  ["pending, stale time to come", "pending", t(1), "pending", SINCE],
  ["pending, stale time is now (<=)", "pending", t(0), "stale", t(0)],
  ["drifted with a pending record aged stale", "drifted", t(-1000), "stale", t(-1000)],
  ["stored stale", "stale", t(-1000), "stale", SINCE],
  ["failed is worse than stale", "failed", t(-1000), "failed", SINCE],
  ["escalated is worse than stale", "escalated", t(-1000), "escalated", SINCE],
];

describe("the stale / due rule in TypeScript", () => {
  it.each(recordCases)("record: %s", (_name, state, staleAt, nextAttemptAt, repushDrift, expectedState, _since, expectedDue) => {
    expect(recordStateAt(state, staleAt, NOW)).toBe(expectedState);
    expect(isRepushDue({ state, staleAt, repushDrift }, { nextAttemptAt }, NOW)).toBe(expectedDue);
  });

  it.each(deviceCases)("device: %s", (_name, state, staleAt, expectedState) => {
    expect(deviceStateAt(state, staleAt ?? undefined, NOW)).toBe(expectedState);
  });
});

describe.each(testDatabases)("the stale / due rule in SQL on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db.close();
  });

  const now = "$1::timestamptz";
  const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  // Per state: does the index-friendly "state at now = X" predicate hold? These are WHERE predicates,
  // where NULL (a device without stale_at) keeps the row out as false does: hence IS TRUE.
  const recordStateIs = COMPLIANCE_STATES.map((s) => `(${recordStateIsSql("p", s, `'${s}'`, now)}) IS TRUE AS is_${s}`).join(", ");
  const deviceStateIs = COMPLIANCE_STATES.map((s) => `(${deviceStateIsSql("d", s, `'${s}'`, now)}) IS TRUE AS is_${s}`).join(", ");

  it.each(recordCases)("record: %s", async (_name, state, staleAt, nextAttemptAt, repushDrift, expectedState, expectedSince, expectedDue) => {
    const { rows } = await db.query<Record<string, unknown>>(
      `SELECT ${recordStateAtSql("p", now)} AS state, ${iso(recordSinceAtSql("p", now))} AS since, ${repushDueSql("p", now)} AS due, ${recordStateIs}
         FROM (SELECT $2::text AS state, $3::timestamptz AS stale_at, $4::timestamptz AS next_attempt_at,
                      $5::boolean AS repush_drift, $6::timestamptz AS state_since) AS p`,
      [NOW, state, staleAt, nextAttemptAt, repushDrift, SINCE],
    );
    const row = rows[0]!;
    expect({ state: row.state, since: row.since, due: row.due }).toEqual({ state: expectedState, since: expectedSince, due: expectedDue });
    for (const s of COMPLIANCE_STATES) expect([s, row[`is_${s}`]]).toEqual([s, s === expectedState]);
  });

  it.each(deviceCases)("device: %s", async (_name, state, staleAt, expectedState, expectedSince) => {
    const { rows } = await db.query<Record<string, unknown>>(
      `SELECT ${deviceStateAtSql("d", now)} AS state, ${iso(deviceSinceAtSql("d", now))} AS since, ${deviceStateIs}
         FROM (SELECT $2::text AS state, $3::timestamptz AS stale_at, $4::timestamptz AS state_since) AS d`,
      [NOW, state, staleAt, SINCE],
    );
    const row = rows[0]!;
    expect({ state: row.state, since: row.since }).toEqual({ state: expectedState, since: expectedSince });
    for (const s of COMPLIANCE_STATES) expect([s, row[`is_${s}`]]).toEqual([s, s === expectedState]);
  });
});
