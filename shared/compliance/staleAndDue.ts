import { recordStateAt, type ComplianceState } from "./ComplianceState";

/**
 * The "stale / due" rule, once, in TypeScript and in the SQL that must agree with it. Records are
 * decided at event time; the time-dependent part is decided here:
 *
 * - A record's state at `now`: a stored `pending` record whose stale_at has come is `stale`
 *   (`recordStateAt`, ComplianceState.ts). Nothing else ages.
 * - A device's state at `now`: its stored state (the worst of its records' at write time), at least
 *   `stale` once its stale_at (the earliest stale_at of its pending records) has come.
 * - A record is due for a re-push at `now` when its next attempt is unset or has come, and
 *   - it is stale (stored `stale`, or `pending` with stale_at <= now), or
 *   - it is drifted and its rule allows re-pushing drift (repush_drift), or
 *   - a re-push is already scheduled for it (next attempt set: a back-off running, or an operator's
 *     "re-push now") and it is pending, drifted or escalated.
 *   `failed` is never due: the device said no, re-sending the same value will not change its mind.
 *
 * The SQL builders below are the same rule over the columns of property_records / devices (table
 * alias `alias`, `now` a timestamptz placeholder such as `$1::timestamptz`). They only ever splice
 * aliases and placeholders chosen by the code, never values. One table of cases runs against both
 * sides, on PostgreSQL and PGlite (test/store/staleAndDue.test.ts).
 */

/** States below `stale`: a device in one of them is stale once its stale_at has come. */
const BELOW_STALE: readonly ComplianceState[] = ["compliant", "pending", "drifted"];

/** The state a device has at `now` (see the rule above). */
export function deviceStateAt(stored: ComplianceState, staleAt: string | undefined, now: string): ComplianceState {
  return BELOW_STALE.includes(stored) && staleAt !== undefined && Date.parse(staleAt) <= Date.parse(now) ? "stale" : stored;
}

/** The fields of a record the due rule reads. */
export interface DueRecord {
  /** The stored (or just evaluated) state. */
  state: ComplianceState;
  staleAt: string;
  repushDrift: boolean;
}

/** The re-push bookkeeping of one record. */
export interface RepushSchedule {
  attempts: number;
  /** ISO-8601, or null: no re-push scheduled. */
  nextAttemptAt: string | null;
}

/** Due for a re-push at `now` (see the rule above). */
export function isRepushDue(record: DueRecord, schedule: Pick<RepushSchedule, "nextAttemptAt">, now: string): boolean {
  const scheduled = schedule.nextAttemptAt !== null;
  if (scheduled && Date.parse(schedule.nextAttemptAt!) > Date.parse(now)) return false;
  switch (recordStateAt(record.state, record.staleAt, now)) {
    case "stale":
      return true;
    case "pending":
      return scheduled;
    case "drifted":
      return record.repushDrift || scheduled;
    case "escalated":
      return scheduled;
    default:
      return false;
  }
}

const quotedList = (states: readonly ComplianceState[]): string => `(${states.map((s) => `'${s}'`).join(", ")})`;

/** SQL: the record has aged from `pending` into `stale` at `now`. */
function recordAgedSql(alias: string, now: string): string {
  return `(${alias}.state = 'pending' AND ${alias}.stale_at <= ${now})`;
}

/** SQL: the device is at least stale at `now` although stored below stale. */
function deviceAgedSql(alias: string, now: string): string {
  return `(${alias}.stale_at <= ${now} AND ${alias}.state IN ${quotedList(BELOW_STALE)})`;
}

/** SQL for `recordStateAt` over a property_records row. */
export function recordStateAtSql(alias: string, now: string): string {
  return `(CASE WHEN ${recordAgedSql(alias, now)} THEN 'stale' ELSE ${alias}.state END)`;
}

/** SQL for the moment the record entered its state at `now` (stale_at when it aged into stale). */
export function recordSinceAtSql(alias: string, now: string): string {
  return `(CASE WHEN ${recordAgedSql(alias, now)} THEN ${alias}.stale_at ELSE ${alias}.state_since END)`;
}

/** SQL for `deviceStateAt` over a devices row. */
export function deviceStateAtSql(alias: string, now: string): string {
  return `(CASE WHEN ${deviceAgedSql(alias, now)} THEN 'stale' ELSE ${alias}.state END)`;
}

/** SQL for the moment the device entered its state at `now`. */
export function deviceSinceAtSql(alias: string, now: string): string {
  return `(CASE WHEN ${deviceAgedSql(alias, now)} THEN ${alias}.stale_at ELSE ${alias}.state_since END)`;
}

/**
 * An index-friendly predicate "the record's state at `now` = `state`" (`param` a placeholder bound to
 * the validated `state`; the SQL shape is chosen by the validated value, never built from it).
 */
export function recordStateIsSql(alias: string, state: ComplianceState, param: string, now: string): string {
  if (state === "stale") return `(${alias}.state = ${param} OR ${recordAgedSql(alias, now)})`;
  if (state === "pending") return `(${alias}.state = ${param} AND ${alias}.stale_at > ${now})`;
  return `${alias}.state = ${param}`;
}

/** An index-friendly predicate "the device's state at `now` = `state`". */
export function deviceStateIsSql(alias: string, state: ComplianceState, param: string, now: string): string {
  if (state === "stale") return `(${alias}.state = ${param} OR ${deviceAgedSql(alias, now)})`;
  if (BELOW_STALE.includes(state)) return `(${alias}.state = ${param} AND (${alias}.stale_at IS NULL OR ${alias}.stale_at > ${now}))`;
  return `${alias}.state = ${param}`;
}

/** SQL for `isRepushDue` over a property_records row (columns state, stale_at, repush_drift, next_attempt_at). */
export function repushDueSql(alias: string, now: string): string {
  const p = alias;
  return `(${p}.state IN ('pending', 'stale', 'drifted', 'escalated')
  AND (${p}.next_attempt_at IS NULL OR ${p}.next_attempt_at <= ${now})
  AND (${p}.state = 'stale'
       OR (${p}.state = 'pending' AND (${p}.stale_at <= ${now} OR ${p}.next_attempt_at IS NOT NULL))
       OR (${p}.state = 'drifted' AND (${p}.repush_drift OR ${p}.next_attempt_at IS NOT NULL))
       OR (${p}.state = 'escalated' AND ${p}.next_attempt_at IS NOT NULL)))`;
}
