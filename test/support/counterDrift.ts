/**
 * The report counters against the tables: report_state_deltas summed by (kind, path, state) versus
 * `count(*)` of property_records by (path, state) and of devices by state — two plain queries and a
 * comparison here, independent of the product's repair SQL. For any suite that drives writes and
 * wants to know the summary still tells the truth (add new write paths to counterDrift.property.test.ts).
 */
import type { Queryable } from "../../shared/store/Database";

export interface CounterMismatch {
  kind: "record" | "device";
  path: string;
  state: string;
  /** Summed deltas. */
  counted: number;
  /** count(*) in the table. */
  actual: number;
}

/** Every key whose summed deltas differ from the live count (empty = no drift), sorted. */
export async function counterDrift(db: Queryable): Promise<CounterMismatch[]> {
  const counted = await db.query<{ kind: string; path: string; state: string; n: string | number }>(
    "SELECT kind, path, state, sum(n) AS n FROM report_state_deltas GROUP BY kind, path, state",
  );
  const actual = await db.query<{ kind: string; path: string; state: string; n: string | number }>(
    `SELECT 'record' AS kind, path, state, count(*) AS n FROM property_records GROUP BY path, state
     UNION ALL
     SELECT 'device', '', state, count(*) FROM devices GROUP BY state`,
  );
  const keys = new Map<string, CounterMismatch>();
  const entry = (row: { kind: string; path: string; state: string }) => {
    const key = JSON.stringify([row.kind, row.path, row.state]);
    let e = keys.get(key);
    if (!e) keys.set(key, (e = { kind: row.kind as CounterMismatch["kind"], path: row.path, state: row.state, counted: 0, actual: 0 }));
    return e;
  };
  for (const row of counted.rows) entry(row).counted += Number(row.n);
  for (const row of actual.rows) entry(row).actual += Number(row.n);
  return [...keys.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, e]) => e)
    .filter((e) => e.counted !== e.actual);
}
