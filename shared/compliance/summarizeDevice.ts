import { emptyStateCounts, worstState, type ComplianceState } from "./ComplianceState";
import type { PropertyRecord } from "./PropertyRecord";

export interface DeviceSummary {
  state: ComplianceState;
  stateSince: string;
  /** Earliest staleAt of the pending records: the device is at least stale from then on. */
  staleAt: string | undefined;
  counts: Record<ComplianceState, number>;
}

/** A device's state is the worst of its records' (no records ⇒ compliant), with counts by state. */
export function summarizeDevice(records: Iterable<PropertyRecord>, previous: { state: ComplianceState; stateSince: string } | undefined, now: string): DeviceSummary {
  const counts = emptyStateCounts();
  let staleAt: string | undefined;
  const states: ComplianceState[] = [];
  for (const record of records) {
    counts[record.state]++;
    states.push(record.state);
    if (record.state === "pending" && (staleAt === undefined || record.staleAt < staleAt)) staleAt = record.staleAt;
  }
  const state = worstState(states);
  return { state, stateSince: previous && previous.state === state ? previous.stateSince : now, staleAt, counts };
}
