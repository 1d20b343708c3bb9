import type { Json } from "../twin/json";
import type { CompareMode } from "../policy/compareMode";
import type { ComplianceState, TransitionCause } from "./ComplianceState";

/** The current compliance verdict on one desired property of one twin. */
export interface PropertyRecord {
  path: string;
  reportedPath: string;
  compare: Exclude<CompareMode, "ignore">;
  state: ComplianceState;
  desired: Json;
  /** undefined when the device has not reported at the mapped path. */
  reported: Json | undefined;
  desiredVersion: number;
  /** When desired took its current value (desired $metadata, else the first event that showed it). ISO-8601. */
  desiredSince: string;
  stateSince: string;
  /** desiredSince + the rule's staleAfter: a pending record is stale from then on. */
  staleAt: string;
  repushDrift: boolean;
}

/** One state change of a property record, appended to its history. `to: "removed"`: desired deleted. */
export interface Transition {
  path: string;
  from: ComplianceState | null;
  to: ComplianceState | "removed";
  cause: TransitionCause;
  at: string;
  desiredVersion: number | null;
  desired: Json | undefined;
  reported: Json | undefined;
}
