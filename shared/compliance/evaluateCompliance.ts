import { isJsonObject, jsonEqual, ownValue, type Json, type JsonObject } from "../twin/json";
import { valueAt } from "../twin/paths";
import { clampedIsoTime, storableTime } from "../twin/storableTime";
import type { Twin } from "../twin/Twin";
import type { Policy } from "../policy/Policy";
import { resolveProperties, type ResolvedProperty } from "../policy/resolveProperties";
import { ackVerdict, containsDesired, statusVerdict, type Verdict } from "./compareReported";
import type { ComplianceState, TransitionCause } from "./ComplianceState";
import type { PropertyRecord, Transition } from "./PropertyRecord";

export interface Evaluation {
  /** Every current record, sorted by path. */
  records: PropertyRecord[];
  /** Records that are new or differ from `previous` (to be written). */
  changed: PropertyRecord[];
  /** Paths whose desired property is gone (records to delete). */
  removed: string[];
  /** State changes, in path order. */
  transitions: Transition[];
}

/**
 * Decides every property record of one twin: a pure function of the stored twin, the policy,
 * the previous records and the time of evaluation (the event's enqueued time on the event path).
 * Level-based: it looks only at the twin as it is now plus what the previous records remember
 * (whether a property was compliant at this desired version, since when desired holds).
 */
export function evaluateCompliance(
  twin: Twin,
  policy: Policy,
  previous: ReadonlyMap<string, PropertyRecord>,
  now: string,
  cause: TransitionCause = "event",
): Evaluation {
  const records: PropertyRecord[] = [];
  const changed: PropertyRecord[] = [];
  const transitions: Transition[] = [];
  const seen = new Set<string>();
  const properties = resolveProperties(twin.desired, policy).sort((a, b) => compareText(a.path, b.path));
  const nowMs = Date.parse(now);

  for (const property of properties) {
    seen.add(property.path);
    const before = previous.get(property.path);
    const record = evaluateProperty(twin, property, before, now, nowMs);
    records.push(record);
    if (!before || !sameRecord(before, record)) changed.push(record);
    if (!before || before.state !== record.state) {
      transitions.push({
        path: record.path,
        from: before?.state ?? null,
        to: record.state,
        cause,
        at: now,
        desiredVersion: record.desiredVersion,
        desired: record.desired,
        reported: record.reported,
      });
    }
  }

  const removed: string[] = [];
  for (const [path, before] of [...previous].sort(([a], [b]) => compareText(a, b))) {
    if (seen.has(path)) continue;
    removed.push(path);
    transitions.push({ path, from: before.state, to: "removed", cause, at: now, desiredVersion: null, desired: undefined, reported: before.reported });
  }
  return { records, changed, removed, transitions };
}

function evaluateProperty(twin: Twin, property: ResolvedProperty, before: PropertyRecord | undefined, now: string, nowMs: number): PropertyRecord {
  const reported = valueAt(twin.reported, property.reportedSegments);
  const metadata = desiredMetadataAt(twin.desired, property.segments);
  const desiredVersion = metadata.version;
  const sameDesired = before !== undefined && before.desiredVersion === desiredVersion;
  const desiredSince = metadata.lastUpdated ?? (before && sameDesired && deepEqualJson(before.desired, property.desired) ? before.desiredSince : now);
  const staleAtMs = Date.parse(desiredSince) + property.staleAfterMs;

  const verdict = verdictFor(property, reported, desiredVersion);
  let state: ComplianceState;
  if (verdict === "compliant") state = "compliant";
  else if (verdict === "failed") state = "failed";
  else if (sameDesired && before.state === "escalated") state = "escalated";
  else if (sameDesired && (before.state === "compliant" || before.state === "drifted")) state = "drifted";
  else state = nowMs >= staleAtMs ? "stale" : "pending";

  return {
    path: property.path,
    reportedPath: property.reportedPath,
    compare: property.compare,
    state,
    desired: property.desired,
    reported,
    desiredVersion,
    desiredSince,
    stateSince: before && before.state === state ? before.stateSince : now,
    staleAt: clampedIsoTime(staleAtMs),
    repushDrift: property.repushDrift,
  };
}

function verdictFor(property: ResolvedProperty, reported: Json | undefined, desiredVersion: number): Verdict {
  switch (property.compare) {
    case "equals":
      return containsDesired(property.desired, reported) ? "compliant" : "notYet";
    case "looseEquals":
      return containsDesired(property.desired, reported, true) ? "compliant" : "notYet";
    case "ack":
      return ackVerdict(reported, desiredVersion);
    case "status":
      return statusVerdict(property.desired, reported);
  }
}

/** The desired `$lastUpdatedVersion` at the nearest level of `segments` that has one, else the desired `$version`. */
export function desiredVersionAt(desired: JsonObject, segments: readonly string[]): number {
  return desiredMetadataAt(desired, segments).version;
}

/** The desired `$lastUpdated` at the nearest level of `segments` that has one, as ISO-8601. */
export function lastUpdatedAt(desired: JsonObject, segments: readonly string[]): string | undefined {
  return desiredMetadataAt(desired, segments).lastUpdated;
}

/**
 * Walks desired `$metadata` down `segments` once, keeping the deepest `$lastUpdatedVersion` and
 * `$lastUpdated` seen (the nearest level that has one); the version falls back to desired `$version`.
 */
function desiredMetadataAt(desired: JsonObject, segments: readonly string[]): { version: number; lastUpdated: string | undefined } {
  const sectionVersion = ownValue(desired, "$version");
  let version: number | undefined;
  let updated: Json | undefined;
  let node: Json | undefined = ownValue(desired, "$metadata");
  for (let depth = 0; isJsonObject(node); depth++) {
    const levelVersion = ownValue(node, "$lastUpdatedVersion");
    const levelUpdated = ownValue(node, "$lastUpdated");
    if (typeof levelVersion === "number") version = levelVersion;
    if (typeof levelUpdated === "string") updated = levelUpdated;
    if (depth === segments.length) break;
    node = ownValue(node, segments[depth] as string);
  }
  // Out-of-range dates are refused at decode; twins read from elsewhere (hub, store) get the same caution.
  const ms = storableTime(updated);
  const lastUpdated = ms === undefined ? undefined : new Date(ms).toISOString();
  return { version: version ?? (typeof sectionVersion === "number" ? sectionVersion : 0), lastUpdated };
}

function sameRecord(a: PropertyRecord, b: PropertyRecord): boolean {
  return (
    a.state === b.state &&
    a.reportedPath === b.reportedPath &&
    a.compare === b.compare &&
    a.desiredVersion === b.desiredVersion &&
    a.desiredSince === b.desiredSince &&
    a.stateSince === b.stateSince &&
    a.staleAt === b.staleAt &&
    a.repushDrift === b.repushDrift &&
    deepEqualJson(a.desired, b.desired) &&
    deepEqualJson(a.reported, b.reported)
  );
}

/** Structural equality of JSON values (key order ignored, own keys only: `valueOf` or `constructor` are ordinary keys). */
export function deepEqualJson(a: Json | undefined, b: Json | undefined): boolean {
  return jsonEqual(a, b);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
