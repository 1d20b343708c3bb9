import { judgeHubTwin, RECREATED_DETAIL } from "./applyHubTwins";
import { evaluateCompliance } from "./compliance/evaluateCompliance";
import type { PropertyRecord } from "./compliance/PropertyRecord";
import type { TransitionCause } from "./compliance/ComplianceState";
import { summarizeDevice } from "./compliance/summarizeDevice";
import { decodeTwinChanges, storableJson, type DeadLetter, type DecodedBatch } from "./events/decodeTwinChanges";
import type { LifecycleEvent, TwinChangeEvent } from "./twin/TwinChangeEvent";
import type { TwinRegistry } from "./hub/TwinRegistry";
import type { Policy } from "./policy/Policy";
import type { Database, Queryable } from "./store/Database";
import {
  addDeviceRow,
  isDataError,
  listModuleTwins,
  loadLifecycleMarks,
  loadTwinStates,
  underSavepoint,
  writeBatch,
  writeDeadLetters,
  writeMinimalDeadLetters,
  type BatchWrite,
  type LifecycleMark,
  type StoredTwinState,
} from "./store/complianceStore";
import { lockTwins } from "./store/lockTwins";
import { metrics } from "./telemetry/metrics";
import { removeDeletedTwin } from "./store/repushStore";
import { applyTwinChange } from "./twin/applyTwinChange";
import type { Json, JsonObject } from "./twin/json";
import { twinKeyString, type Twin, type TwinKey } from "./twin/Twin";

export interface ReconcileDeps {
  db: Database;
  policy: Policy;
  /** IoT Hub, already rate-limited; without one (replay) gaps are flagged `resyncNeeded` instead of read. */
  registry?: TwinRegistry | undefined;
  /** Wall clock for the batch's write time (tests pass a fixed one). */
  clock?: () => Date;
  log?: (message: string) => void;
  /** Test seams for deterministic interleavings. */
  hooks?: {
    /** Called after decoding, before the transaction that locks, reads and writes the batch's twins. */
    beforeWrite?: () => Promise<void>;
  };
}

export interface ReconcileResult {
  applied: number;
  duplicates: number;
  ignored: number;
  deadLettered: number;
  /** Twins read from the hub because they were unseen, their history had a gap, or they were flagged resyncNeeded. */
  resyncs: number;
  /** Resyncs that failed (throttled, hub unreachable, device gone): the twin is flagged resyncNeeded. */
  resyncFailures: number;
  transitions: number;
  /** createDeviceIdentity events applied (the twin registered from the event, replacing any stored one). */
  created: number;
  /** deleteDeviceIdentity events applied (records removed, history kept). */
  deleted: number;
  /** Twins a resync found at a lower version than we had: deleted and created again, the old records removed. */
  recreated: number;
  deadLetters: Array<{ index: number; reason: string }>;
}

/**
 * The reconcile use case for one Event Hub batch (`cardinality: 'many'` input). Idempotent: the
 * same batch again changes nothing. Throws only when the store fails (connectivity, transaction),
 * so the trigger's retry policy re-delivers the batch; nothing about one event or one twin can
 * fail the batch — it is written as a dead letter and the rest commits.
 *
 * One writer per twin (ARCHITECTURE: convergence; shared/store/lockTwins.ts): one transaction
 * locks every twin of the batch, reads their stored state under the lock, applies the events in
 * order (pure CPU), evaluates and writes. A concurrent re-push, resync or sync has either written
 * before our lock — we build on its result — or waits for our commit. No hub call is made while
 * locked: when twins need the hub (unseen, a version gap, flagged resyncNeeded), the attempt rolls
 * back, they are read from the rate-limited hub, and the transaction runs again with the reads
 * (each twin is asked for at most once per batch; a read a concurrent writer overtook meanwhile is
 * not used, and a gap left is flagged resyncNeeded for the resync queue). Optimistic rather than a
 * read before the transaction: in-order events of known twins — nearly every batch — cost no extra
 * round trip.
 *
 * Poison isolation: what one twin's events throw while applied or evaluated dead-letters that
 * twin's events in this batch. The batch is written set-based (a few statements whatever its
 * size); when PostgreSQL refuses the data (SQLSTATE classes 22, 23, 54), the transaction is done
 * again twin by twin under a savepoint each, and the twins whose writes fail are dead-lettered.
 */
export async function reconcileTwinChanges(messages: unknown, triggerMetadata: unknown, deps: ReconcileDeps): Promise<ReconcileResult> {
  const started = performance.now();
  const size = Array.isArray(messages) ? messages.length : 1;
  let result: ReconcileResult;
  let decoded: DecodedBatch;
  try {
    decoded = decodeTwinChanges(messages, triggerMetadata);
    result = await reconcileDecoded(decoded, deps, { messages, triggerMetadata });
  } catch (error) {
    metrics.batch(size, (performance.now() - started) / 1000, "failure");
    throw error;
  }
  recordBatch(decoded, result, size, started);
  return result;
}

/**
 * The batch's metrics, once committed: events by outcome (each event of the batch is exactly one of
 * them; lifecycle creates and deletes count as applied), each event's age at commit (wall clock, not
 * deps.clock: the lag an operator sees), the hub reads, size and duration.
 */
function recordBatch(decoded: DecodedBatch, result: ReconcileResult, size: number, started: number): void {
  const committedAt = Date.now();
  metrics.events("applied", result.applied + result.created + result.deleted);
  metrics.events("duplicate", result.duplicates);
  metrics.events("ignored", result.ignored);
  metrics.events("dead_lettered", result.deadLettered);
  for (const event of [...decoded.events, ...(decoded.lifecycle ?? [])]) {
    const enqueued = Date.parse(event.enqueuedTime);
    if (Number.isFinite(enqueued)) metrics.eventAge((committedAt - enqueued) / 1000, event.partitionId);
  }
  metrics.resyncs("succeeded", result.resyncs - result.resyncFailures);
  metrics.resyncs("failed", result.resyncFailures);
  metrics.batch(size, (performance.now() - started) / 1000, "success");
}

/** The raw trigger input, to keep whole in the dead letters of events rejected after decoding. */
export interface RawBatch {
  messages: unknown;
  triggerMetadata: unknown;
}

/** `reconcileTwinChanges` after decoding (tests feed lifecycle events here directly). */
export async function reconcileDecoded(decoded: DecodedBatch, deps: ReconcileDeps, raw?: RawBatch): Promise<ReconcileResult> {
  const result: ReconcileResult = {
    applied: 0,
    duplicates: 0,
    ignored: decoded.ignored,
    deadLettered: 0,
    resyncs: 0,
    resyncFailures: 0,
    transitions: 0,
    created: 0,
    deleted: 0,
    recreated: 0,
    deadLetters: [],
  };
  const at = (deps.clock?.() ?? new Date()).toISOString();
  const groups = groupByTwin(decoded.events, decoded.lifecycle ?? []);
  // A device's delete takes its module twins with it: lock them too.
  const deletedDevices = [...groups.values()].filter((g) => g.key.moduleId === null && g.steps.some(isDelete)).map((g) => g.key.deviceId);
  const lockKeys = [...[...groups.values()].map((g) => g.key), ...(await modulesOf(deps.db, deletedDevices))];
  const plan: Plan = { groups, hubTwins: new Map(), asked: new Set(), lockKeys, refused: [...decoded.deadLetters], at, raw };
  await deps.hooks?.beforeWrite?.();

  let committed: Committed | undefined;
  let mode: "batch" | "isolated" = "batch";
  let probed = false;
  while (!committed) {
    try {
      committed = await deps.db.transaction((tx) => commit(tx, plan, deps, mode));
    } catch (error) {
      if (error instanceof HubReadsNeeded) {
        await readHub(deps, plan, error.reads, result);
        continue;
      }
      if (!isDataError(error) || mode === "isolated") throw error;
      if (!probed) {
        probed = true;
        if (await setAsideUnstorableIds(deps.db, plan)) continue;
      }
      deps.log?.(`the store refused part of the batch (${errorText(error)}): writing it twin by twin`);
      mode = "isolated";
    }
  }

  for (const { counts } of committed.outcomes) {
    result.applied += counts.applied;
    result.duplicates += counts.duplicates;
    result.transitions += counts.transitions;
    result.created += counts.created;
    result.deleted += counts.deleted;
    result.recreated += counts.recreated;
  }
  result.deadLettered = committed.deadLetters.length;
  result.deadLetters = committed.deadLetters.map(({ index, reason }) => ({ index, reason }));
  return result;
}

interface Plan {
  groups: Map<string, TwinGroup>;
  /** Twins read from the hub between attempts, by `twinKeyString`. */
  hubTwins: Map<string, HubRead>;
  /** Twins the hub was asked for (read or failed): never asked twice in one batch. */
  asked: Set<string>;
  lockKeys: TwinKey[];
  /** Dead letters known before the transaction: the decoder's and the unstorable ids'. */
  refused: DeadLetter[];
  at: string;
  raw: RawBatch | undefined;
}

interface Committed {
  outcomes: TwinOutcome[];
  deadLetters: DeadLetter[];
}

/** A twin read from the hub between two attempts. */
interface HubRead {
  twin: Twin;
  /** The stored version the attempt before the read saw (undefined: none). */
  storedVersion: number | undefined;
  /** The highest version this id had before the read: stored, or in the batch. */
  knownVersion: number;
}

interface HubReadRequest {
  id: string;
  key: TwinKey;
  storedVersion: number | undefined;
  knownVersion: number;
}

/** Thrown inside the transaction (rolling it back) when twins need a hub read: no hub call is made while locked. */
class HubReadsNeeded extends Error {
  constructor(readonly reads: HubReadRequest[]) {
    super("hub reads needed");
  }
}

/** Reads the requested twins from the (rate-limited) hub, outside any transaction. */
async function readHub(deps: ReconcileDeps, plan: Plan, reads: readonly HubReadRequest[], result: ReconcileResult): Promise<void> {
  for (const { id, key, storedVersion, knownVersion } of reads) {
    plan.asked.add(id);
    result.resyncs++;
    try {
      const twin = await (deps.registry as TwinRegistry).getTwin(key);
      plan.hubTwins.set(id, { twin, storedVersion, knownVersion });
    } catch (error) {
      result.resyncFailures++;
      deps.log?.(`resync of ${label(key)} failed: ${(error as Error).name}; flagged resyncNeeded`);
    }
  }
}

/**
 * After a data error: a twin id the store cannot even take as a query parameter (NUL, a lone
 * surrogate) fails the lock and every read of the batch. Each id is tried alone (the lock and the
 * reads take ids in the same form); the refused ones are set aside, their events dead letters.
 * Returns whether any was.
 */
async function setAsideUnstorableIds(db: Queryable, plan: Plan): Promise<boolean> {
  const keys = [...plan.groups.values()].map((g) => g.key);
  try {
    await loadLifecycleMarks(db, keys);
    return false;
  } catch (error) {
    if (!isDataError(error)) throw error;
  }
  let found = false;
  for (const [id, group] of plan.groups) {
    try {
      await loadLifecycleMarks(db, [group.key]);
    } catch (error) {
      if (!isDataError(error)) throw error;
      plan.refused.push(...deadLettersOf(group, `the store cannot hold this twin id: ${errorText(error)}`, plan.raw));
      plan.groups.delete(id);
      plan.lockKeys = plan.lockKeys.filter((k) => twinKeyString(k) !== id);
      found = true;
    }
  }
  return found;
}

async function commit(tx: Queryable, plan: Plan, deps: ReconcileDeps, mode: "batch" | "isolated"): Promise<Committed> {
  await lockTwins(tx, plan.lockKeys);
  const keys = [...plan.groups.values()].map((g) => g.key);
  const stored = await loadTwinStates(tx, keys);
  const marks = await loadLifecycleMarks(tx, keys);
  const deadLetters = [...plan.refused];
  const outcomes: TwinOutcome[] = [];
  const reads: HubReadRequest[] = [];
  for (const [id, group] of plan.groups) {
    try {
      const outcome = reconcileTwin(group, stored.get(id), marks.get(id), plan.hubTwins.get(id), deps.policy);
      outcomes.push(outcome);
      if (outcome.wantsHub && deps.registry && !plan.asked.has(id)) {
        const storedVersion = stored.get(id)?.twin.version;
        reads.push({ id, key: group.key, storedVersion, knownVersion: Math.max(storedVersion ?? 0, ...group.changes.map((e) => e.version)) });
      }
    } catch (error) {
      deadLetters.push(...deadLettersOf(group, `could not reconcile ${label(group.key)}: ${errorText(error)}`, plan.raw));
    }
  }
  if (reads.length > 0) throw new HubReadsNeeded(reads);
  if (mode === "batch") {
    await writeOutcomes(tx, plan.at, outcomes, deadLetters);
    return { outcomes, deadLetters };
  }
  const kept: TwinOutcome[] = [];
  // Modules before devices: a device's removal takes its modules, so theirs must be written first.
  outcomes.sort((a, b) => Number(a.group.key.moduleId === null) - Number(b.group.key.moduleId === null));
  for (const outcome of outcomes) {
    const refused = await underSavepoint(tx, () => executeOps(tx, plan.at, outcome.ops, outcome.mark));
    if (!refused) kept.push(outcome);
    else deadLetters.push(...deadLettersOf(outcome.group, `the store refused ${label(outcome.group.key)}: ${errorText(refused.failed)}`, plan.raw));
  }
  const refused = await underSavepoint(tx, () => writeDeadLetters(tx, plan.at, deadLetters));
  if (refused) await writeMinimalDeadLetters(tx, plan.at, deadLetters, errorText(refused.failed));
  return { outcomes: kept, deadLetters };
}

/**
 * The fast path: every twin's first write in one set-based writeBatch (with the dead letters and
 * lifecycle marks); what follows a lifecycle removal (rare) in event order after it.
 */
async function writeOutcomes(tx: Queryable, at: string, outcomes: readonly TwinOutcome[], deadLetters: DeadLetter[]): Promise<void> {
  const first = emptyWrite(at);
  first.deadLetters = deadLetters;
  first.lifecycle = [];
  const rest: Op[] = [];
  for (const outcome of outcomes) {
    const [head, ...tail] = outcome.ops;
    if (head?.kind === "write") mergeWrite(first, head.write);
    else if (head) rest.push(head);
    rest.push(...tail);
    if (outcome.mark) first.lifecycle.push(outcome.mark);
  }
  await writeBatch(tx, first);
  // Stable: one twin's ops keep their order; a device's removal and its modules' follow batch order.
  rest.sort((a, b) => a.index - b.index);
  for (const op of rest) await executeOp(tx, at, op);
}

async function executeOps(tx: Queryable, at: string, ops: readonly Op[], mark: LifecycleMark | undefined): Promise<void> {
  for (const op of ops) await executeOp(tx, at, op);
  if (mark) await writeBatch(tx, { ...emptyWrite(at), lifecycle: [mark] });
}

async function executeOp(tx: Queryable, at: string, op: Op): Promise<void> {
  if (op.kind === "write") await writeBatch(tx, { ...op.write, at });
  else await removeDeletedTwin(tx, op.key, op.at, op.detail, op.reach);
}

function emptyWrite(at: string): BatchWrite {
  return { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] };
}

function mergeWrite(into: BatchWrite, from: BatchWrite): void {
  into.twins.push(...from.twins);
  into.records.push(...from.records);
  into.removed.push(...from.removed);
  into.history.push(...from.history);
  into.devices.push(...from.devices);
}

/** One twin's events of the batch, in the order they apply. */
interface TwinGroup {
  key: TwinKey;
  steps: Step[];
  changes: TwinChangeEvent[];
}

type Step =
  | { kind: "change"; event: TwinChangeEvent }
  /** `implied`: a module's share of its device's delete (the event is the device's, counted there). */
  | { kind: "lifecycle"; event: LifecycleEvent; implied: boolean };

const isDelete = (step: Step): boolean => step.kind === "lifecycle" && step.event.opType === "deleteDeviceIdentity";

/**
 * Groups the batch per twin. Lifecycle events keep their batch position; the twin-change events
 * between two of them are sorted by twin version (a re-sent series arrives out of order). A
 * device's delete is also a step of each of its module twins in the batch.
 */
function groupByTwin(events: readonly TwinChangeEvent[], lifecycle: readonly LifecycleEvent[]): Map<string, TwinGroup> {
  const groups = new Map<string, TwinGroup>();
  const groupOf = (key: TwinKey): TwinGroup => {
    const id = twinKeyString(key);
    let group = groups.get(id);
    if (!group) groups.set(id, (group = { key: { deviceId: key.deviceId, moduleId: key.moduleId }, steps: [], changes: [] }));
    return group;
  };
  const all = [...events.map((event): Step => ({ kind: "change", event })), ...lifecycle.map((event): Step => ({ kind: "lifecycle", event, implied: false }))];
  all.sort((a, b) => a.event.index - b.event.index);
  for (const step of all) {
    const group = groupOf(step.event.key);
    group.steps.push(step);
    if (step.kind === "change") group.changes.push(step.event);
  }
  for (const step of all) {
    if (!isDelete(step) || step.event.key.moduleId !== null) continue;
    for (const group of groups.values()) {
      if (group.key.deviceId !== step.event.key.deviceId || group.key.moduleId === null) continue;
      group.steps.push({ kind: "lifecycle", event: { ...(step.event as LifecycleEvent), key: group.key }, implied: true });
    }
  }
  for (const group of groups.values()) group.steps = orderSteps(group.steps);
  return groups;
}

function orderSteps(steps: Step[]): Step[] {
  const byIndex = [...steps].sort((a, b) => a.event.index - b.event.index);
  const out: Step[] = [];
  let run: Step[] = [];
  const flush = () => {
    run.sort((a, b) => (a.event as TwinChangeEvent).version - (b.event as TwinChangeEvent).version);
    out.push(...run);
    run = [];
  };
  for (const step of byIndex) {
    if (step.kind === "change") run.push(step);
    else {
      flush();
      out.push(step);
    }
  }
  flush();
  return out;
}

type Op =
  | { kind: "write"; index: number; write: BatchWrite }
  | { kind: "remove"; index: number; key: TwinKey; at: string; detail: Json; reach: "withModules" | "twinOnly" };

interface TwinOutcome {
  group: TwinGroup;
  /** In order: writes, and removals of the stored twin (lifecycle, re-created device). */
  ops: Op[];
  /** The last lifecycle event applied, when this batch applied one. */
  mark: LifecycleMark | undefined;
  /** A gap or a resyncNeeded flag that a hub read would heal (the attempt without a read asks for one). */
  wantsHub: boolean;
  counts: { applied: number; duplicates: number; transitions: number; created: number; deleted: number; recreated: number };
}

/**
 * Applies one twin's steps to its stored state: pure CPU, no I/O. Twin-change events apply in
 * version order (duplicates skipped), each followed by an evaluation; a lifecycle delete removes the
 * twin, a create replaces it with the event's twin; events from before the last lifecycle event
 * applied to this id belong to an earlier twin and are duplicates. The hub read, when there is one,
 * heals the first gap (or a standing resyncNeeded flag); read lower than a version this id already
 * had, it is a new twin under the same id (judgeHubTwin) and replaces the stored one.
 */
function reconcileTwin(group: TwinGroup, loaded: StoredTwinState | undefined, loadedMark: LifecycleMark | undefined, read: HubRead | undefined, policy: Policy): TwinOutcome {
  const { key } = group;
  // A concurrent writer changed the stored twin since the read: what the read means is unclear
  // (a gap stays flagged resyncNeeded and the resync queue reads the twin again).
  const hub = read && read.storedVersion === loaded?.twin.version ? read : undefined;
  const outcome: TwinOutcome = { group, ops: [], mark: undefined, wantsHub: false, counts: { applied: 0, duplicates: 0, transitions: 0, created: 0, deleted: 0, recreated: 0 } };
  let state = loaded;
  let storedDevice = loaded?.storedDevice;
  let mark = loadedMark;
  let hubUsed = false;
  let oldInstance = false;
  let segment = newSegment();

  const flush = (index: number) => {
    if (segment.lastTime !== "" && state) outcome.ops.push({ kind: "write", index, write: segmentWrite(key, state, segment, storedDevice) });
    segment = newSegment();
  };
  const remove = (index: number, at: string, detail: Json, reach: "withModules" | "twinOnly" = "withModules") => {
    flush(index);
    if (state) outcome.ops.push({ kind: "remove", index, key, at, detail, reach });
    state = undefined;
    storedDevice = undefined;
  };
  /** Evaluates `twin` as the new state of this twin and adds the result to the current segment. */
  const evaluate = (twin: Twin, resyncNeeded: boolean, time: string, cause: TransitionCause) => {
    const previous = state?.records ?? new Map<string, PropertyRecord>();
    const evaluation = evaluateCompliance(twin, policy, previous, time, cause);
    const records = new Map(evaluation.records.map((r) => [r.path, r]));
    for (const record of evaluation.changed) {
      segment.records.set(record.path, record);
      segment.removed.delete(record.path);
    }
    for (const path of evaluation.removed) {
      segment.records.delete(path);
      segment.removed.add(path);
    }
    segment.transitions.push(...evaluation.transitions);
    outcome.counts.transitions += evaluation.transitions.length;
    const device = summarizeDevice(records.values(), state?.device, time);
    state = { twin, resyncNeeded, records, device: { state: device.state, stateSince: device.stateSince }, storedDevice };
    segment.lastTime = time;
  };

  const hasLifecycle = group.steps.some((step) => step.kind === "lifecycle");
  if (hub && !hasLifecycle && judgeHubTwin(hub.twin, { version: hub.knownVersion, resyncNeeded: false }, "strong") === "recreated") {
    // The hub's twin is newer than every event of the batch that belongs to it, so the events
    // it is lower than belong to the deleted twin. (With lifecycle events, they say what happened.)
    const first = group.steps[0] as Step;
    remove(first.event.index, first.event.enqueuedTime, RECREATED_DETAIL);
    outcome.counts.recreated++;
    evaluate(hub.twin, false, lastEventTime(group), "resync");
    hubUsed = true;
    oldInstance = true;
  }

  for (const step of group.steps) {
    if (step.kind === "lifecycle") {
      const { event } = step;
      if (mark && !isAfter(event, mark)) {
        if (!step.implied) outcome.counts.duplicates++;
        continue;
      }
      mark = { key, op: event.opType, at: event.enqueuedTime, partitionId: event.partitionId, sequenceNumber: event.sequenceNumber };
      outcome.mark = mark;
      oldInstance = false;
      if (event.opType === "deleteDeviceIdentity") {
        remove(event.index, event.enqueuedTime, { reason: "deleteDeviceIdentity", enqueuedTime: event.enqueuedTime });
        if (!step.implied) outcome.counts.deleted++;
        continue;
      }
      // Only this twin: a device's modules have groups of their own, which may already have written
      // this batch's module events (a re-delivered device create must not erase them).
      remove(event.index, event.enqueuedTime, { reason: "createDeviceIdentity: a new twin under this id", enqueuedTime: event.enqueuedTime }, "twinOnly");
      outcome.counts.created++;
      if (event.twin) evaluate({ ...event.twin, deviceId: key.deviceId, moduleId: key.moduleId }, false, event.enqueuedTime, "event");
      continue;
    }
    const { event } = step;
    if (oldInstance || (mark && !isAfter(event, mark))) {
      outcome.counts.duplicates++;
      continue;
    }
    const applied = applyTwinChange(state?.twin, event);
    if (applied.kind === "duplicate") {
      outcome.counts.duplicates++;
      continue;
    }
    outcome.counts.applied++;
    let twin: Twin = applied.twin;
    let resyncNeeded = applied.gap !== undefined || (state?.resyncNeeded ?? false);
    // A replace carrying both property sections is a complete twin: it heals an earlier gap.
    if (event.opType === "replaceTwin" && event.desired && event.reported && applied.gap === undefined) resyncNeeded = false;
    let cause: TransitionCause = "event";
    if (resyncNeeded) {
      outcome.wantsHub = true;
      // A hub read older than what we hold now was overtaken by a concurrent writer: not used.
      if (hub && !hubUsed && hub.twin.version >= twin.version) {
        twin = hub.twin;
        resyncNeeded = false;
        cause = "resync";
        hubUsed = true;
      }
    }
    evaluate(twin, resyncNeeded, event.enqueuedTime, cause);
  }
  // Nothing applied, but the twin waits for a resync and the read is here.
  if (state?.resyncNeeded && group.changes.length > 0) {
    outcome.wantsHub = true;
    if (hub && !hubUsed && hub.twin.version >= state.twin.version) evaluate(hub.twin, false, lastEventTime(group), "resync");
  }
  const lastStep = group.steps[group.steps.length - 1] as Step;
  flush(lastStep.event.index);
  return outcome;
}

interface Segment {
  records: Map<string, PropertyRecord>;
  removed: Set<string>;
  transitions: BatchWrite["history"][number]["transition"][];
  lastTime: string;
}

function newSegment(): Segment {
  return { records: new Map(), removed: new Set(), transitions: [], lastTime: "" };
}

function segmentWrite(key: TwinKey, state: StoredTwinState, segment: Segment, storedDevice: StoredTwinState["storedDevice"]): BatchWrite {
  const write = emptyWrite("");
  write.twins.push({ twin: state.twin, resyncNeeded: state.resyncNeeded });
  for (const record of segment.records.values()) write.records.push({ key, record });
  for (const path of segment.removed) write.removed.push({ key, path });
  for (const transition of segment.transitions) write.history.push({ key, transition });
  addDeviceRow(write, key, state.records.values(), state.device, segment.lastTime, { tags: state.twin.tags, resyncNeeded: state.resyncNeeded }, storedDevice);
  return write;
}

function lastEventTime(group: TwinGroup): string {
  return (group.steps[group.steps.length - 1] as Step).event.enqueuedTime;
}

/**
 * Whether `event` came after the lifecycle event `mark` on the Event Hub: by sequence number in the
 * same partition (IoT Hub routes all of a device's events to one partition), else by enqueued time.
 */
function isAfter(event: TwinChangeEvent | LifecycleEvent, mark: LifecycleMark): boolean {
  if (event.partitionId !== undefined && event.partitionId === mark.partitionId && event.sequenceNumber !== undefined && mark.sequenceNumber !== undefined) {
    return event.sequenceNumber > mark.sequenceNumber;
  }
  return Date.parse(event.enqueuedTime) > Date.parse(mark.at);
}

/** The stored module twins of `deviceIds`; an id the store cannot take (set aside later) has none. */
async function modulesOf(db: Queryable, deviceIds: readonly string[]): Promise<TwinKey[]> {
  try {
    return await listModuleTwins(db, deviceIds);
  } catch (error) {
    if (!isDataError(error)) throw error;
  }
  const keys: TwinKey[] = [];
  for (const deviceId of deviceIds) {
    try {
      keys.push(...(await listModuleTwins(db, [deviceId])));
    } catch (error) {
      if (!isDataError(error)) throw error;
    }
  }
  return keys;
}

/** Dead letters for every event of `group` in this batch (not a device's delete it only shares). */
function deadLettersOf(group: TwinGroup, reason: string, raw: RawBatch | undefined): DeadLetter[] {
  return group.steps
    .filter((step) => step.kind === "change" || !step.implied)
    .map(({ event }) => ({
      index: event.index,
      reason,
      deviceId: event.key.deviceId,
      partitionId: event.partitionId,
      sequenceNumber: event.sequenceNumber,
      raw: rawEventAt(raw, event),
    }));
}

/** The event as received (body and metadata at its index), storable as JSON; the decoded event when the raw batch is unknown. */
function rawEventAt(raw: RawBatch | undefined, event: TwinChangeEvent | LifecycleEvent): JsonObject {
  if (!raw) return storableJson({ decoded: event }) as JsonObject;
  const list = Array.isArray(raw.messages) ? raw.messages : [raw.messages];
  const metadata = (typeof raw.triggerMetadata === "object" && raw.triggerMetadata !== null ? raw.triggerMetadata : {}) as Record<string, unknown>;
  const at = (name: string): unknown => (Array.isArray(metadata[name]) ? (metadata[name] as unknown[])[event.index] : undefined);
  return storableJson({
    body: list[event.index],
    properties: at("propertiesArray") ?? {},
    systemProperties: at("systemPropertiesArray") ?? {},
    enqueuedTimeUtc: at("enqueuedTimeUtcArray") ?? null,
  }) as JsonObject;
}

function errorText(error: unknown): string {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  const name = error instanceof Error && error.name !== "Error" && error.name !== "error" ? `${error.name}: ` : "";
  const text = error instanceof Error ? `${name}${error.message}${typeof code === "string" ? ` (SQLSTATE ${code})` : ""}` : String(error);
  return text.length <= 500 ? text : `${text.slice(0, 500)}…`;
}

/** A twin's name for a reason: a hostile id is itself the poison, so only its start is kept. */
function label(key: TwinKey): string {
  const text = twinKeyString(key);
  return text.length <= 160 ? text : `${text.slice(0, 160)}… (${text.length} characters)`;
}
