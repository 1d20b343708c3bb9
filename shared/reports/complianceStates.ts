import { COMPLIANCE_STATES, emptyStateCounts, type ComplianceState } from "../compliance/ComplianceState";

/** Compliance states, best first (the domain's list). */
export const complianceStates = COMPLIANCE_STATES;
export { emptyStateCounts, type ComplianceState };

/** Counts per state with every state present (0 when none). */
export type StateCounts = Record<ComplianceState, number>;

/**
 * SQL for the state of a property record at `now` (a parameter placeholder): a stored 'pending'
 * record whose stale_at has passed is 'stale'. Stored states are evaluated at event time, staleness
 * at the time a report asks (001_initial.sql).
 */
export function effectiveRecordStateSql(alias: string, now: string): string {
  return `(CASE WHEN ${alias}.state = 'pending' AND ${alias}.stale_at <= ${now} THEN 'stale' ELSE ${alias}.state END)`;
}

/** SQL for the moment the record entered its effective state (stale_at when it aged into stale). */
export function effectiveRecordSinceSql(alias: string, now: string): string {
  return `(CASE WHEN ${alias}.state = 'pending' AND ${alias}.stale_at <= ${now} THEN ${alias}.stale_at ELSE ${alias}.state_since END)`;
}

const belowStale = "('compliant', 'pending', 'drifted')";

/** SQL for a device's state at `now`: at least 'stale' once its stale_at has passed. */
export function effectiveDeviceStateSql(alias: string, now: string): string {
  return `(CASE WHEN ${alias}.stale_at <= ${now} AND ${alias}.state IN ${belowStale} THEN 'stale' ELSE ${alias}.state END)`;
}

export function effectiveDeviceSinceSql(alias: string, now: string): string {
  return `(CASE WHEN ${alias}.stale_at <= ${now} AND ${alias}.state IN ${belowStale} THEN ${alias}.stale_at ELSE ${alias}.state_since END)`;
}

/**
 * An index-friendly predicate "the record's effective state = `state`" (`state` a placeholder bound to
 * a validated state; the SQL shape is chosen by the validated value, never built from it).
 */
export function recordStateIsSql(alias: string, state: ComplianceState, param: string, now: string): string {
  if (state === "stale") return `(${alias}.state = ${param} OR (${alias}.state = 'pending' AND ${alias}.stale_at <= ${now}))`;
  if (state === "pending") return `(${alias}.state = ${param} AND ${alias}.stale_at > ${now})`;
  return `${alias}.state = ${param}`;
}

/** An index-friendly predicate "the device's effective state = `state`". */
export function deviceStateIsSql(alias: string, state: ComplianceState, param: string, now: string): string {
  if (state === "stale") return `(${alias}.state = ${param} OR (${alias}.stale_at <= ${now} AND ${alias}.state IN ${belowStale}))`;
  if (state === "compliant" || state === "pending" || state === "drifted") {
    return `(${alias}.state = ${param} AND (${alias}.stale_at IS NULL OR ${alias}.stale_at > ${now}))`;
  }
  return `${alias}.state = ${param}`;
}
