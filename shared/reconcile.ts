import isDeepEqual from "fast-deep-equal";
import { evaluateCompliance } from "./compliance/evaluateCompliance";
import type { PropertyRecord } from "./compliance/PropertyRecord";
import type { TransitionCause } from "./compliance/ComplianceState";
import { summarizeDevice } from "./compliance/summarizeDevice";
import { decodeTwinChanges } from "./events/decodeTwinChanges";
import type { TwinChangeEvent } from "./events/TwinChangeEvent";
import type { TwinRegistry } from "./hub/TwinRegistry";
import type { Policy } from "./policy/Policy";
import type { Database } from "./store/Database";
import { keyString, loadTwinStates, writeBatch, type BatchWrite, type StoredTwinState } from "./store/complianceStore";
import { applyTwinChange } from "./twin/applyTwinChange";
import type { Twin } from "./twin/Twin";

export interface ReconcileDeps {
  db: Database;
  policy: Policy;
  /** IoT Hub, already rate-limited; without one (replay) gaps are flagged `resyncNeeded` instead of read. */
  registry?: TwinRegistry | undefined;
  /** Wall clock for the batch's write time (tests pass a fixed one). */
  clock?: () => Date;
  log?: (message: string) => void;
}

export interface ReconcileResult {
  applied: number;
  duplicates: number;
  ignored: number;
  deadLettered: number;
  /** Twins read from the hub because they were unseen or their history had a gap. */
  resyncs: number;
  /** Resyncs that failed (throttled, hub unreachable, device gone): the twin is flagged resyncNeeded. */
  resyncFailures: number;
  transitions: number;
  deadLetters: Array<{ index: number; reason: string }>;
}

/**
 * The reconcile use case for one Event Hub batch (`cardinality: 'many'` input):
 * decode → group by twin, order by version → load stored twins (one query) → apply each event
 * (duplicates skipped; gaps resynced from the hub) → evaluate compliance after every applied event
 * → write everything in one transaction. Idempotent: the same batch again changes nothing.
 * Throws only when the store fails, so the trigger's retry policy re-delivers the batch;
 * a bad event never throws — it is written as a dead letter.
 */
export async function reconcileTwinChanges(messages: unknown, triggerMetadata: unknown, deps: ReconcileDeps): Promise<ReconcileResult> {
  const decoded = decodeTwinChanges(messages, triggerMetadata);
  const result: ReconcileResult = {
    applied: 0,
    duplicates: 0,
    ignored: decoded.ignored,
    deadLettered: decoded.deadLetters.length,
    resyncs: 0,
    resyncFailures: 0,
    transitions: 0,
    deadLetters: decoded.deadLetters.map(({ index, reason }) => ({ index, reason })),
  };
  const at = (deps.clock?.() ?? new Date()).toISOString();
  const write: BatchWrite = { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: decoded.deadLetters };

  const groups = groupByTwin(decoded.events);
  const stored = await loadTwinStates(deps.db, [...groups.values()].map((events) => (events[0] as TwinChangeEvent).key));

  for (const [key, events] of groups) {
    const outcome = await reconcileTwin(stored.get(key), events, deps, result);
    if (!outcome) continue;
    const { state, touchedRecords, removedPaths, lastTime } = outcome;
    const twinKey = { deviceId: state.twin.deviceId, moduleId: state.twin.moduleId };
    write.twins.push({ twin: state.twin, resyncNeeded: state.resyncNeeded });
    for (const record of touchedRecords.values()) write.records.push({ key: twinKey, record });
    for (const path of removedPaths) write.removed.push({ key: twinKey, path });
    write.history.push(...outcome.transitions.map((transition) => ({ key: twinKey, transition })));
    result.transitions += outcome.transitions.length;
    const summary = summarizeDevice(state.records.values(), state.device, lastTime);
    const device = { ...summary, tags: state.twin.tags, resyncNeeded: state.resyncNeeded };
    if (!isDeepEqual(device, state.storedDevice)) write.devices.push({ key: twinKey, ...device });
  }

  await deps.db.transaction((tx) => writeBatch(tx, write));
  return result;
}

interface TwinOutcome {
  state: StoredTwinState;
  touchedRecords: Map<string, PropertyRecord>;
  removedPaths: Set<string>;
  transitions: BatchWrite["history"][number]["transition"][];
  lastTime: string;
}

/** Applies one twin's events in version order, evaluating after each applied one. Undefined when nothing applied. */
async function reconcileTwin(
  loaded: StoredTwinState | undefined,
  events: TwinChangeEvent[],
  deps: ReconcileDeps,
  result: ReconcileResult,
): Promise<TwinOutcome | undefined> {
  let state = loaded;
  const touchedRecords = new Map<string, PropertyRecord>();
  const removedPaths = new Set<string>();
  const transitions: TwinOutcome["transitions"] = [];
  let lastTime = "";

  for (const event of events) {
    const applied = applyTwinChange(state?.twin, event);
    if (applied.kind === "duplicate") {
      result.duplicates++;
      continue;
    }
    result.applied++;
    let twin: Twin = applied.twin;
    let resyncNeeded = applied.gap !== undefined || (state?.resyncNeeded ?? false);
    // A replace carrying both property sections is a complete twin: it heals an earlier gap.
    if (event.opType === "replaceTwin" && event.desired && event.reported && applied.gap === undefined) resyncNeeded = false;
    let cause: TransitionCause = "event";
    if (applied.gap !== undefined && deps.registry) {
      const fresh = await resync(deps, twin, result, applied.gap);
      if (fresh) {
        twin = fresh.version >= twin.version ? fresh : twin;
        resyncNeeded = fresh.version < applied.twin.version;
        cause = "resync";
      }
    }
    const previous = state?.records ?? new Map<string, PropertyRecord>();
    const evaluation = evaluateCompliance(twin, deps.policy, previous, event.enqueuedTime, cause);
    const records = new Map(evaluation.records.map((r) => [r.path, r]));
    for (const record of evaluation.changed) {
      touchedRecords.set(record.path, record);
      removedPaths.delete(record.path);
    }
    for (const path of evaluation.removed) {
      touchedRecords.delete(path);
      removedPaths.add(path);
    }
    transitions.push(...evaluation.transitions);
    const device = summarizeDevice(records.values(), state?.device, event.enqueuedTime);
    state = { twin, resyncNeeded, records, device: { state: device.state, stateSince: device.stateSince }, storedDevice: loaded?.storedDevice };
    lastTime = event.enqueuedTime;
  }
  if (!state || lastTime === "") return undefined;
  return { state, touchedRecords, removedPaths, transitions, lastTime };
}

async function resync(deps: ReconcileDeps, twin: Twin, result: ReconcileResult, reason: string): Promise<Twin | undefined> {
  result.resyncs++;
  try {
    return await (deps.registry as TwinRegistry).getTwin({ deviceId: twin.deviceId, moduleId: twin.moduleId });
  } catch (error) {
    result.resyncFailures++;
    deps.log?.(`resync of ${twin.deviceId} (${reason}) failed: ${(error as Error).name}; flagged resyncNeeded`);
    return undefined;
  }
}

/** Events grouped per twin in batch order of first appearance, each group sorted by twin version (stable). */
function groupByTwin(events: readonly TwinChangeEvent[]): Map<string, TwinChangeEvent[]> {
  const groups = new Map<string, TwinChangeEvent[]>();
  for (const event of events) {
    const key = keyString(event.key.deviceId, event.key.moduleId);
    const group = groups.get(key);
    if (group) group.push(event);
    else groups.set(key, [event]);
  }
  for (const group of groups.values()) group.sort((a, b) => a.version - b.version);
  return groups;
}
