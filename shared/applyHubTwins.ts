import type { TransitionCause } from "./compliance/ComplianceState";
import { evaluateCompliance } from "./compliance/evaluateCompliance";
import type { PropertyRecord } from "./compliance/PropertyRecord";
import type { Policy } from "./policy/Policy";
import { addDeviceRow, loadTwinStates, writeBatch, type BatchWrite, type StoredTwinState } from "./store/complianceStore";
import type { Database } from "./store/Database";
import { lockTwins } from "./store/lockTwins";
import { removeDeletedTwin } from "./store/repushStore";
import { jsonEqual } from "./twin/json";
import { twinKeyString, type Twin } from "./twin/Twin";

export interface ApplyHubTwinsDeps {
  db: Database;
  policy: Policy;
  /** Wall clock: the evaluation time and the write time (tests pass a fixed one). */
  clock?: () => Date;
}

export interface ApplyHubTwinsOptions {
  /** The history cause of the transitions (default `resync`). */
  cause?: TransitionCause;
  /**
   * How the twins were read. `strong` (getTwin): the hub's twin now, so a version lower than the
   * stored one means the device was deleted and created again under the same id — the stored twin
   * is replaced (its records removed first, history kept, cause `deleted`). `eventual` (a twin
   * query, up to 30 minutes behind): a lower version is merely old and is skipped.
   */
  consistency: "strong" | "eventual";
  /**
   * The stored version of each twin (by `twinKeyString`; absent: none stored) as the caller saw it
   * before its hub read. A strong read lower than the stored version means "created again" only if
   * the stored version is still the one seen before the read; otherwise a concurrent writer (a
   * re-push storing the twin its patch produced) got there after the read, and the read is merely
   * older. Without it, every strong read lower than stored is taken as a re-created device.
   */
  storedBeforeRead?: ReadonlyMap<string, number | undefined>;
}

export interface ApplyHubTwinsResult {
  /** Twins written: newer than the stored copy, unseen, flagged resyncNeeded, or re-created. */
  applied: number;
  /** Twins whose stored copy already had this version (and no resync pending): nothing written. */
  unchanged: number;
  /** Twins older than the stored copy (eventual reads, or strong reads a concurrent writer overtook): nothing written. */
  older: number;
  /** Twins found re-created (strong reads only): the old twin's records removed, the new one stored. */
  recreated: number;
  transitions: number;
}

/**
 * Applies complete twins read from IoT Hub (resync, fleet sync, a device created again) exactly as
 * a `replaceTwin` carrying every section would be: level-based, from the hub's twin alone. One
 * transaction, under the one-writer-per-twin lock: the stored state is read after the lock, so a
 * concurrent reconcile or re-push is never overwritten with an older verdict. Clears resyncNeeded.
 */
export async function applyHubTwins(deps: ApplyHubTwinsDeps, twins: readonly Twin[], options: ApplyHubTwinsOptions): Promise<ApplyHubTwinsResult> {
  const result: ApplyHubTwinsResult = { applied: 0, unchanged: 0, older: 0, recreated: 0, transitions: 0 };
  if (twins.length === 0) return result;
  const at = (deps.clock?.() ?? new Date()).toISOString();
  const cause = options.cause ?? "resync";
  // One twin per key: the newest read wins.
  const latest = new Map<string, Twin>();
  for (const twin of twins) {
    const id = twinKeyString(twin);
    const seen = latest.get(id);
    if (!seen || twin.version > seen.version) latest.set(id, twin);
  }
  await deps.db.transaction(async (tx) => {
    const keys = [...latest.values()].map((t) => ({ deviceId: t.deviceId, moduleId: t.moduleId }));
    await lockTwins(tx, keys);
    const stored = await loadTwinStates(tx, keys);
    const write: BatchWrite = { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] };
    for (const [id, twin] of latest) {
      let state = stored.get(id);
      const overtaken = options.storedBeforeRead !== undefined && options.storedBeforeRead.get(id) !== state?.twin.version;
      const verdict = judgeHubTwin(twin, state && { version: state.twin.version, resyncNeeded: state.resyncNeeded, twin: state.twin }, overtaken ? "eventual" : options.consistency);
      if (verdict === "older") {
        result.older++;
        continue;
      }
      if (verdict === "unchanged") {
        result.unchanged++;
        continue;
      }
      if (verdict === "recreated") {
        await removeDeletedTwin(tx, { deviceId: twin.deviceId, moduleId: twin.moduleId }, at, RECREATED_DETAIL);
        result.recreated++;
        state = undefined;
      }
      result.transitions += addHubTwin(write, twin, state, deps.policy, at, cause);
      result.applied++;
    }
    await writeBatch(tx, write);
  });
  return result;
}

export type HubTwinVerdict = "apply" | "unchanged" | "older" | "recreated";

/**
 * What a complete twin read from IoT Hub means against `known`, the twin version the store held
 * for that id before the read (undefined: none). The one rule for a device deleted and created
 * again without a lifecycle event: a strong read (getTwin) lower than a version we already had is a
 * new twin under the same id; an eventual read (query) lower than it is merely behind.
 * At the same version the hub's twin is the truth: a stored copy that differs from it (a change
 * whose event was lost while a later event carried the version forward) is rewritten, so a sync
 * pass heals what gap detection could not see.
 */
export function judgeHubTwin(
  twin: Twin,
  known: { version: number; resyncNeeded: boolean; twin?: Twin } | undefined,
  consistency: ApplyHubTwinsOptions["consistency"],
): HubTwinVerdict {
  if (!known || twin.version > known.version) return "apply";
  if (twin.version < known.version) return consistency === "eventual" ? "older" : "recreated";
  if (known.resyncNeeded) return "apply";
  return known.twin === undefined || sameSections(known.twin, twin) ? "unchanged" : "apply";
}

function sameSections(a: Twin, b: Twin): boolean {
  return jsonEqual(a.desired, b.desired) && jsonEqual(a.reported, b.reported) && jsonEqual(a.tags, b.tags);
}

/** The history detail of the old twin's records when the id turned out to hold a new twin. */
export const RECREATED_DETAIL = {
  reason: "IoT Hub holds a lower twin version than the stored one: the device was deleted and created again",
} as const;

/** Adds one hub twin's evaluation to `write`; returns the number of transitions. */
function addHubTwin(write: BatchWrite, twin: Twin, state: StoredTwinState | undefined, policy: Policy, at: string, cause: TransitionCause): number {
  const key = { deviceId: twin.deviceId, moduleId: twin.moduleId };
  const previous = state?.records ?? new Map<string, PropertyRecord>();
  const evaluation = evaluateCompliance(twin, policy, previous, at, cause);
  write.twins.push({ twin, resyncNeeded: false });
  for (const record of evaluation.changed) write.records.push({ key, record });
  for (const path of evaluation.removed) write.removed.push({ key, path });
  for (const transition of evaluation.transitions) write.history.push({ key, transition });
  addDeviceRow(write, key, evaluation.records, state?.device, at, { tags: twin.tags, resyncNeeded: false }, state?.storedDevice);
  return evaluation.transitions.length;
}
