import { COMPLIANCE_STATES, emptyStateCounts, type ComplianceState } from "../compliance/ComplianceState";

/** Compliance states, best first (the domain's list). */
export const complianceStates = COMPLIANCE_STATES;
export { emptyStateCounts, type ComplianceState };

/** Counts per state with every state present (0 when none). */
export type StateCounts = Record<ComplianceState, number>;

/**
 * The SQL of a state at `now` (pending ages into stale): one rule, owned by the compliance room
 * next to its TypeScript twin (shared/compliance/staleAndDue.ts), re-exported under the report names.
 */
export {
  deviceSinceAtSql as effectiveDeviceSinceSql,
  deviceStateAtSql as effectiveDeviceStateSql,
  deviceStateIsSql,
  recordSinceAtSql as effectiveRecordSinceSql,
  recordStateAtSql as effectiveRecordStateSql,
  recordStateIsSql,
} from "../compliance/staleAndDue";
