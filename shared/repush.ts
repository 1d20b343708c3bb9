import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { RepushConfig } from "./config";
import { evaluateCompliance, type Evaluation } from "./compliance/evaluateCompliance";
import type { PropertyRecord, Transition } from "./compliance/PropertyRecord";
import { summarizeDevice } from "./compliance/summarizeDevice";
import { hubErrorKind, type TwinRegistry } from "./hub/TwinRegistry";
import type { Policy } from "./policy/Policy";
import { desiredPatch } from "./repush/desiredPatch";
import { repushBackoffMs } from "./repush/repushBackoff";
import type { Database } from "./store/Database";
import { keyString, loadTwinStates, writeBatch, type BatchWrite, type StoredTwinState } from "./store/complianceStore";
import {
  claimDueDevices,
  loadRepushSchedules,
  releaseRepushLeases,
  removeDeletedTwin,
  saveRepushSchedules,
  type RepushSchedule,
} from "./store/repushStore";
import type { Json, JsonObject } from "./twin/json";
import type { Twin, TwinKey } from "./twin/Twin";
import { twinKeyString } from "./twin/Twin";

export { queueRepushNow, repushCounters, type RepushCounters } from "./store/repushStore";

export type RepushSettings = Pick<RepushConfig, "maxDevicesPerRun" | "backoffBaseMs" | "backoffCapMs" | "maxAttempts" | "dryRun" | "leaseMs">;

export interface RepushDeps {
  db: Database;
  policy: Policy;
  /** IoT Hub behind the global token bucket (`rateLimitedTwinRegistry`): every call here goes through it. */
  registry: TwinRegistry;
  settings: RepushSettings;
  /** Wall clock (tests pass a fake one). */
  clock?: () => Date;
  /** Jitter source in [0, 1) for the back-off (tests pass a fixed one). */
  random?: () => number;
  /** Lease owner name; default host:pid:uuid, unique per run. */
  owner?: string;
  /** Devices re-pushed at the same time (default 4); the token bucket still sets the pace. */
  concurrency?: number;
  /** Devices loaded and written together, one transaction per chunk (default 25). */
  batchSize?: number;
  log?: (message: string) => void;
  signal?: AbortSignal;
}

export interface RepushRunResult {
  /** Devices claimed (leased) by this run. */
  claimed: number;
  /** Devices found compliant (or with nothing due) on the fresh read: recorded, nothing pushed. */
  resolved: number;
  /** Devices a desired patch was sent to (dry run: would have been). */
  pushed: number;
  /** Property re-pushes counted as attempts (accepted or failed with an error other than 412/429). */
  attempts: number;
  /** Property re-pushes the hub accepted. */
  accepted: number;
  /** Properties escalated by this run. */
  escalated: number;
  /** Devices whose twin changed between our read and our write (412): re-read next run. */
  etagMismatches: number;
  /** Devices the hub no longer has: their records were removed. */
  deleted: number;
  /** Devices whose read or write failed otherwise. */
  errors: number;
  /** True when IoT Hub answered 429: the run stopped and left the rest due. */
  throttled: boolean;
  /** Devices claimed but left for a later run (throttled, or the lease running out). */
  leftDue: number;
  dryRun: boolean;
}

/** What one re-push writes into a history row's `detail`. */
export interface RepushDetail {
  outcome: "pushed" | "dryRun" | "etagMismatch" | "error" | "escalated";
  /** The attempt number this push counted as (null when it did not count: 412, dry run). */
  attempt: number | null;
  patch?: JsonObject;
  error?: string;
  [key: string]: Json | undefined;
}

class StopRun extends Error {}

/**
 * The re-push use case (one timer run). Claims up to `maxDevicesPerRun` devices with due records
 * under a lease; for each: reads the fresh twin, re-evaluates it (cause `resync`: if it complies
 * now, that is recorded and nothing is sent), escalates records out of attempts, and sends one
 * desired patch rewriting exactly the due paths with the values desired now, with the twin's etag.
 * Outcomes: accepted ⇒ attempt counted, next attempt after a jittered exponential back-off;
 * 412 ⇒ not counted, re-read next run; 429 ⇒ the run stops and the rest stays due;
 * 404 ⇒ the twin's records are removed (history kept, cause `deleted`); other ⇒ counted, back-off.
 * Level-based like a controller: each run works from the hub's current twin, never from the event.
 */
export async function repushStaleDesired(deps: RepushDeps): Promise<RepushRunResult> {
  const clock = deps.clock ?? (() => new Date());
  const owner = deps.owner ?? `${hostname()}:${process.pid}:${randomUUID()}`;
  const { settings } = deps;
  const started = clock();
  const result: RepushRunResult = {
    claimed: 0,
    resolved: 0,
    pushed: 0,
    attempts: 0,
    accepted: 0,
    escalated: 0,
    etagMismatches: 0,
    deleted: 0,
    errors: 0,
    throttled: false,
    leftDue: 0,
    dryRun: settings.dryRun,
  };
  const claimed = await claimDueDevices(deps.db, {
    now: started.toISOString(),
    limit: settings.maxDevicesPerRun,
    owner,
    leaseMs: settings.leaseMs,
  });
  result.claimed = claimed.length;
  const runDeps: RunDeps = { ...deps, clock, owner };
  // Stop starting devices well before the lease runs out, so no other run can have taken one over.
  const deadline = started.getTime() + settings.leaseMs * 0.8;
  const unfinished = new Map(claimed.map((key) => [keyString(key.deviceId, key.moduleId), key]));
  const chunkSize = Math.max(1, deps.batchSize ?? 25);
  let stop = false;

  try {
    for (let start = 0; start < claimed.length && !stop; start += chunkSize) {
      if (deps.signal?.aborted || clock().getTime() >= deadline) break;
      const chunk = claimed.slice(start, start + chunkSize);
      // What the store knows about the chunk: two queries for all of it.
      const stored = await loadTwinStates(deps.db, chunk);
      const schedules = await loadRepushSchedules(deps.db, chunk);
      const queue = [...chunk];
      const outcomes: TwinOutcome[] = [];
      const done: TwinKey[] = [];
      const worker = async (): Promise<void> => {
        for (let key = queue.shift(); key && !stop; key = queue.shift()) {
          const id = keyString(key.deviceId, key.moduleId);
          try {
            const outcome = await repushTwin(key, stored.get(id), schedules.get(id) ?? new Map(), runDeps, result);
            if (outcome) outcomes.push(outcome);
            done.push(key);
          } catch (error) {
            if (!(error instanceof StopRun)) throw error;
            stop = true;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, deps.concurrency ?? 4) }, worker));
      // One transaction for the chunk's outcomes: records, history, device rows, schedules, leases.
      await commitOutcomes(runDeps, outcomes, done);
      for (const key of done) unfinished.delete(keyString(key.deviceId, key.moduleId));
    }
  } finally {
    result.leftDue = unfinished.size;
    await releaseRepushLeases(deps.db, [...unfinished.values()], owner);
  }
  return result;
}

type RunDeps = RepushDeps & { clock: () => Date; owner: string };

/**
 * Re-pushes one claimed twin; returns what to write (undefined: nothing, e.g. a failed read or a
 * deleted device, whose removal is written at once). Throws StopRun on 429.
 */
async function repushTwin(
  key: TwinKey,
  stored: StoredTwinState | undefined,
  schedules: ReadonlyMap<string, RepushSchedule>,
  deps: RunDeps,
  result: RepushRunResult,
): Promise<TwinOutcome | undefined> {
  const { settings } = deps;
  const label = twinKeyString(key);
  const previous = stored?.records ?? new Map<string, PropertyRecord>();

  let fresh: Twin;
  try {
    fresh = await deps.registry.getTwin(key, deps.signal ? { signal: deps.signal } : {});
  } catch (error) {
    return handleHubError(error, key, deps, result, "read", undefined);
  }

  const now = deps.clock().toISOString();
  const evaluation = evaluateCompliance(fresh, deps.policy, previous, now, "resync");
  const write = newWrite(now);
  addEvaluation(write, key, evaluation);
  const records = new Map(evaluation.records.map((r) => [r.path, r]));
  const scheduleOf = (record: PropertyRecord): RepushSchedule => {
    const before = previous.get(record.path);
    // A new desired value (or compliance) starts from scratch: the record upsert resets it too.
    if (!before || before.desiredVersion !== record.desiredVersion || record.state === "compliant") return { attempts: 0, nextAttemptAt: null };
    return schedules.get(record.path) ?? { attempts: 0, nextAttemptAt: null };
  };

  const due = evaluation.records.filter((r) => isDue(r, scheduleOf(r), now));
  const newSchedules = new Map<string, RepushSchedule>();

  // Out of attempts and still not compliant on the fresh read: escalate, push nothing for it.
  const toPush: PropertyRecord[] = [];
  for (const record of due) {
    const schedule = scheduleOf(record);
    if (schedule.attempts < settings.maxAttempts || record.state === "escalated") {
      toPush.push(record);
      continue;
    }
    const escalated: PropertyRecord = { ...record, state: "escalated", stateSince: now };
    records.set(record.path, escalated);
    setRecord(write, escalated);
    write.history.push({
      key,
      transition: transition(record, "escalated", now),
      detail: { outcome: "escalated", attempt: null, attempts: schedule.attempts, maxAttempts: settings.maxAttempts } satisfies RepushDetail,
    });
    newSchedules.set(record.path, { attempts: schedule.attempts, nextAttemptAt: null });
    result.escalated++;
  }

  const patch = desiredPatch(fresh.desired, toPush.map((r) => r.path));
  const pushPaths = Object.keys(patch).length > 0 ? toPush : [];
  if (pushPaths.length === 0) {
    result.resolved++;
    return outcome(key, write, fresh, records, stored?.device, newSchedules);
  }
  result.pushed++;

  if (settings.dryRun) {
    for (const record of pushPaths) {
      const schedule = scheduleOf(record);
      const next = schedule.attempts + 1;
      write.history.push({ key, transition: transition(record, record.state, now), detail: { outcome: "dryRun", attempt: null, wouldBeAttempt: next, patch } });
      newSchedules.set(record.path, { attempts: schedule.attempts, nextAttemptAt: backoffFrom(now, next, deps) });
    }
    deps.log?.(`dry run: would re-push ${label} ${JSON.stringify(patch)}`);
    return outcome(key, write, fresh, records, stored?.device, newSchedules);
  }

  if (fresh.etag === undefined) {
    // Never write without a precondition: that could overwrite an operator's newer desired value.
    deps.log?.(`re-push of ${label} skipped: the hub sent no etag`);
    result.errors++;
    return outcome(key, write, fresh, records, stored?.device, newSchedules);
  }

  let updated: Twin;
  try {
    updated = await deps.registry.updateTwin(key, { properties: { desired: patch } }, fresh.etag, deps.signal ? { signal: deps.signal } : {});
  } catch (error) {
    return handleHubError(error, key, deps, result, "write", { write, fresh, records, device: stored?.device, newSchedules, pushPaths, patch, scheduleOf });
  }

  // Accepted: re-evaluate against the twin the hub returned, so the stored records carry the new
  // desired version of the pushed paths (its twin-change event then arrives as a duplicate).
  const at = deps.clock().toISOString();
  const after = evaluateCompliance(updated, deps.policy, records, at, "repush");
  for (const record of after.changed) setRecord(write, record);
  for (const path of after.removed) {
    write.records.delete(path);
    write.removed.add(path);
  }
  const afterRecords = new Map(after.records.map((r) => [r.path, r]));
  const pushed = new Set(pushPaths.map((r) => r.path));
  for (const t of after.transitions) if (!pushed.has(t.path)) write.history.push({ key, transition: t });
  for (const record of pushPaths) {
    const schedule = scheduleOf(record);
    const attempt = schedule.attempts + 1;
    const current = afterRecords.get(record.path) ?? record;
    const t = after.transitions.find((x) => x.path === record.path) ?? transition(record, current.state, at);
    write.history.push({ key, transition: t, detail: { outcome: "pushed", attempt, patch } satisfies RepushDetail });
    newSchedules.set(
      record.path,
      current.state === "compliant" ? { attempts: 0, nextAttemptAt: null } : { attempts: attempt, nextAttemptAt: backoffFrom(at, attempt, deps) },
    );
    result.attempts++;
    result.accepted++;
  }
  return outcome(key, write, updated, afterRecords, stored?.device, newSchedules);
}

interface PendingWrite {
  write: TwinWrite;
  fresh: Twin;
  records: Map<string, PropertyRecord>;
  device: { state: PropertyRecord["state"]; stateSince: string } | undefined;
  newSchedules: Map<string, RepushSchedule>;
  pushPaths: PropertyRecord[];
  patch: JsonObject;
  scheduleOf: (record: PropertyRecord) => RepushSchedule;
}

async function handleHubError(
  error: unknown,
  key: TwinKey,
  deps: RunDeps,
  result: RepushRunResult,
  step: "read" | "write",
  pending: PendingWrite | undefined,
): Promise<TwinOutcome | undefined> {
  const kind = hubErrorKind(error);
  const label = twinKeyString(key);
  const at = deps.clock().toISOString();
  const name = error instanceof Error ? error.name : "Error";
  if (deps.signal?.aborted) throw new StopRun();
  switch (kind) {
    case "throttled":
      // The limiter has slowed down (rateLimitedTwinRegistry); leave this device and the rest due.
      result.throttled = true;
      deps.log?.(`IoT Hub throttled the ${step} of ${label} (429): stopping this run, the rest stays due`);
      throw new StopRun();
    case "notFound": {
      const removed = await deps.db.transaction((tx) => removeDeletedTwin(tx, key, at, { reason: `IoT Hub: ${name} on re-push ${step}` }));
      result.deleted++;
      deps.log?.(`${label} is gone from IoT Hub: removed its ${removed} compliance records (history kept)`);
      return undefined;
    }
    case "etagMismatch": {
      result.etagMismatches++;
      if (!pending) break;
      // Someone changed the twin after our read: nothing written, no attempt counted; re-read next run.
      for (const record of pending.pushPaths) {
        pending.write.history.push({
          key,
          transition: transition(record, record.state, at),
          detail: { outcome: "etagMismatch", attempt: null, patch: pending.patch } satisfies RepushDetail,
        });
      }
      return outcome(key, pending.write, pending.fresh, pending.records, pending.device, pending.newSchedules);
    }
    case "other": {
      result.errors++;
      const message = error instanceof Error ? error.message : String(error);
      deps.log?.(`re-push ${step} of ${label} failed: ${message}`);
      if (!pending) break;
      for (const record of pending.pushPaths) {
        const attempt = pending.scheduleOf(record).attempts + 1;
        pending.write.history.push({
          key,
          transition: transition(record, record.state, at),
          detail: { outcome: "error", attempt, patch: pending.patch, error: `${name}: ${message}`.slice(0, 500) } satisfies RepushDetail,
        });
        pending.newSchedules.set(record.path, { attempts: attempt, nextAttemptAt: backoffFrom(at, attempt, deps) });
        result.attempts++;
      }
      return outcome(key, pending.write, pending.fresh, pending.records, pending.device, pending.newSchedules);
    }
  }
  // A failed read (not 404/429): nothing learned, nothing counted; the lease is released, due next run.
  return undefined;
}

/** Due now, given its schedule: stale; drifted when the rule allows; or a scheduled re-push whose time has come. */
export function isDue(record: PropertyRecord, schedule: RepushSchedule, now: string): boolean {
  if (schedule.nextAttemptAt !== null && Date.parse(schedule.nextAttemptAt) > Date.parse(now)) return false;
  const scheduled = schedule.nextAttemptAt !== null;
  switch (record.state) {
    case "stale":
      return true;
    case "pending":
      return scheduled || Date.parse(record.staleAt) <= Date.parse(now);
    case "drifted":
      return record.repushDrift || scheduled;
    case "escalated":
      return scheduled;
    default:
      return false;
  }
}

function backoffFrom(at: string, attempt: number, deps: RunDeps): string {
  const delay = repushBackoffMs(attempt, { baseMs: deps.settings.backoffBaseMs, capMs: deps.settings.backoffCapMs }, deps.random);
  return new Date(Date.parse(at) + delay).toISOString();
}

function transition(record: PropertyRecord, to: Transition["to"], at: string): Transition {
  return { path: record.path, from: record.state, to, cause: "repush", at, desiredVersion: record.desiredVersion, desired: record.desired, reported: record.reported };
}

/** What one twin's outcome writes: records by path (a later version of a record replaces an earlier one). */
interface TwinWrite {
  at: string;
  records: Map<string, PropertyRecord>;
  removed: Set<string>;
  history: BatchWrite["history"];
}

function newWrite(at: string): TwinWrite {
  return { at, records: new Map(), removed: new Set(), history: [] };
}

function addEvaluation(write: TwinWrite, key: TwinKey, evaluation: Evaluation): void {
  for (const record of evaluation.changed) setRecord(write, record);
  for (const path of evaluation.removed) {
    write.records.delete(path);
    write.removed.add(path);
  }
  for (const transition of evaluation.transitions) write.history.push({ key, transition });
}

function setRecord(write: TwinWrite, record: PropertyRecord): void {
  write.removed.delete(record.path);
  write.records.set(record.path, record);
}

/** What one twin's re-push writes. */
interface TwinOutcome {
  key: TwinKey;
  write: TwinWrite;
  twin: Twin;
  records: ReadonlyMap<string, PropertyRecord>;
  device: { state: PropertyRecord["state"]; stateSince: string } | undefined;
  schedules: ReadonlyMap<string, RepushSchedule>;
}

function outcome(
  key: TwinKey,
  write: TwinWrite,
  twin: Twin,
  records: ReadonlyMap<string, PropertyRecord>,
  device: TwinOutcome["device"],
  schedules: ReadonlyMap<string, RepushSchedule>,
): TwinOutcome {
  return { key, write, twin, records, device, schedules };
}

/** One transaction for a chunk: stored twins, records, history, device rows, schedules; then the leases of `done` end. */
async function commitOutcomes(deps: RunDeps, outcomes: readonly TwinOutcome[], done: readonly TwinKey[]): Promise<void> {
  const at = deps.clock().toISOString();
  const batch: BatchWrite = { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] };
  const schedules: Array<{ key: TwinKey; path: string; schedule: RepushSchedule }> = [];
  for (const { key, write, twin, records, device, schedules: twinSchedules } of outcomes) {
    batch.twins.push({ twin, resyncNeeded: false });
    for (const record of write.records.values()) batch.records.push({ key, record });
    for (const path of write.removed) batch.removed.push({ key, path });
    batch.history.push(...write.history);
    batch.devices.push({ key, ...summarizeDevice(records.values(), device, write.at), tags: twin.tags, resyncNeeded: false });
    for (const [path, schedule] of twinSchedules) schedules.push({ key, path, schedule });
  }
  await deps.db.transaction(async (tx) => {
    if (outcomes.length > 0) await writeBatch(tx, batch);
    await saveRepushSchedules(tx, schedules);
    await releaseRepushLeases(tx, done, deps.owner);
  });
}
