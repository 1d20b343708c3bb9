/** The verdict on one desired property, best first: a device's state is the worst of its records'. */
export const COMPLIANCE_STATES = ["compliant", "pending", "drifted", "stale", "failed", "escalated"] as const;
export type ComplianceState = (typeof COMPLIANCE_STATES)[number];

/** What made a record change: an applied event, a resync read of the hub, a re-push, an operator, a device deletion. */
export type TransitionCause = "event" | "resync" | "repush" | "manual" | "deleted";

export function stateRank(state: ComplianceState): number {
  return COMPLIANCE_STATES.indexOf(state);
}

/** The worst of `states`; compliant when there are none. */
export function worstState(states: Iterable<ComplianceState>): ComplianceState {
  let worst: ComplianceState = "compliant";
  for (const state of states) if (stateRank(state) > stateRank(worst)) worst = state;
  return worst;
}

/** A counter with all six states at zero. */
export function emptyStateCounts(): Record<ComplianceState, number> {
  return { compliant: 0, pending: 0, drifted: 0, stale: 0, failed: 0, escalated: 0 };
}

/**
 * The state a stored property record has at `now`: records are decided at event time, and a
 * `pending` one whose stale time has come is `stale` (drifted, failed… are not aged).
 */
export function recordStateAt(stored: ComplianceState, staleAt: string | undefined, now: string): ComplianceState {
  return stored === "pending" && staleAt !== undefined && Date.parse(staleAt) <= Date.parse(now) ? "stale" : stored;
}
