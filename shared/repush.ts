import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { RepushConfig } from "./config";
import { evaluateCompliance } from "./compliance/evaluateCompliance";
import type { PropertyRecord, Transition } from "./compliance/PropertyRecord";
import type { TransitionCause } from "./compliance/ComplianceState";
import { isRepushDue } from "./compliance/staleAndDue";
import { hubErrorKind, type TwinRegistry } from "./hub/TwinRegistry";
import type { Policy } from "./policy/Policy";
import { desiredPatch } from "./repush/desiredPatch";
import { repushBackoffMs } from "./repush/repushBackoff";
import type { Database, Queryable } from "./store/Database";
import { addDeviceRow, loadTwinStates, writeBatch, type BatchWrite, type StoredTwinState } from "./store/complianceStore";
import { lockTwins } from "./store/lockTwins";
import {
  claimDueDevices,
  holdRepushLeases,
  loadRepushSchedules,
  releaseRepushLeases,
  removeDeletedTwin,
  saveRepushSchedules,
  type RepushSchedule,
} from "./store/repushStore";
import { metrics } from "./telemetry/metrics";
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
  /** Wall clock (tests pass a fake one). The lease is measured on it. */
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
  hooks?: RepushHooks;
}

/** Points where a test can pause a run to interleave another writer deterministically. */
export interface RepushHooks {
  /** After a chunk's hub I/O, before its commit transaction; `keys`: the twins that commit will write (may be empty). */
  beforeCommit?: (keys: TwinKey[]) => Promise<void>;
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
  /** Devices whose lease had expired or been taken over at commit time: nothing was written for them. */
  leaseLost: number;
  dryRun: boolean;
}

/** What one re-push writes into a history row's `detail`. */
export interface RepushDetail {
  outcome: "pushed" | "dryRun" | "etagMismatch" | "error" | "unanswered" | "escalated";
  /** The attempt number this push counted as (null when it did not count: 412, dry run, superseded, unanswered). */
  attempt: number | null;
  patch?: JsonObject;
  error?: string;
  /** The push was accepted but the property's desired value changed again before it was recorded: not an attempt on the new value. */
  superseded?: boolean;
  [key: string]: Json | undefined;
}

/** Stops the run: IoT Hub throttled us, the caller aborted, or the lease leaves no time for another hub call. */
class StopRun extends Error {}

/** The reason the run's deadline signal aborts with: the part of the lease left for hub calls is over. */
class LeaseEnding extends Error {
  override name = "LeaseEnding";
}

/**
 * The re-push use case (one timer run). Claims up to `maxDevicesPerRun` devices with due records
 * under a lease; for each: reads the fresh twin, re-evaluates it (cause `resync`: if it complies
 * now, that is recorded and nothing is sent), escalates records out of attempts, and sends one
 * desired patch rewriting exactly the due paths with the values desired now, with the twin's etag.
 * Outcomes: accepted ⇒ attempt counted, next attempt after a jittered exponential back-off;
 * 412 ⇒ not counted, re-read next run; 429 ⇒ the run stops and the rest stays due;
 * 404 ⇒ the twin's records are removed (history kept, cause `deleted`); other ⇒ counted, back-off.
 * Level-based like a controller: each run works from the hub's current twin, never from the event.
 *
 * One writer per twin (ARCHITECTURE: convergence): the hub I/O of a chunk comes first and decides
 * only what to send; the chunk then commits in one transaction that locks its twins (`lockTwins`),
 * keeps only the devices whose lease this run still holds (their device rows locked FOR UPDATE, so
 * no other run can claim them until COMMIT), re-reads their stored twins, records and schedules
 * under that lock, and decides what to store from that locked state: the newer twin by version
 * (the hub's answer, or whatever the reconcile path stored meanwhile), records evaluated against
 * the locked records, an attempt counted only on a record whose desired version is still the one
 * pushed. So a re-push never stores an older verdict over a newer one, and whoever writes last,
 * attempts, back-off, escalation and desired version stay right.
 *
 * Lease safety: the last fifth of the lease is kept for the commit. No hub call starts unless the
 * slowest call seen so far would still answer before that point, and a signal aborts any call
 * (or wait in the token bucket) still pending then. A device whose lease is lost anyway gets no write.
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
    leaseLost: 0,
    dryRun: settings.dryRun,
  };
  const claimed = await claimDueDevices(deps.db, {
    now: started.toISOString(),
    limit: settings.maxDevicesPerRun,
    owner,
    leaseMs: settings.leaseMs,
  });
  result.claimed = claimed.length;
  const callsEndBy = started.getTime() + settings.leaseMs - settings.leaseMs / 5;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new LeaseEnding("the re-push lease is ending")), Math.max(0, callsEndBy - clock().getTime()));
  timer.unref?.();
  const runDeps: RunDeps = {
    ...deps,
    clock,
    owner,
    callSignal: deps.signal ? AbortSignal.any([deps.signal, deadline.signal]) : deadline.signal,
    deadline: deadline.signal,
    callsEndBy,
    slowestCallMs: 0,
  };
  const unfinished = new Map(claimed.map((key) => [twinKeyString(key), key]));
  const chunkSize = Math.max(1, deps.batchSize ?? 25);
  let stop = false;

  try {
    for (let start = 0; start < claimed.length && !stop; start += chunkSize) {
      if (deps.signal?.aborted || !hasTimeForCall(runDeps)) break;
      const chunk = claimed.slice(start, start + chunkSize);
      // What the store knew when the chunk started: it decides what to send, never what to store.
      const planned = await loadTwinStates(deps.db, chunk);
      const plannedSchedules = await loadRepushSchedules(deps.db, chunk);
      const queue = [...chunk];
      const outcomes: HubOutcome[] = [];
      const done: TwinKey[] = [];
      const worker = async (): Promise<void> => {
        for (let key = queue.shift(); key && !stop; key = queue.shift()) {
          const id = twinKeyString(key);
          try {
            const outcome = await probeTwin(key, planned.get(id), plannedSchedules.get(id) ?? new Map(), runDeps, result);
            if (outcome) outcomes.push(outcome);
            done.push(key);
            if (outcome?.kind === "seen" && outcome.push?.outcome === "unanswered") stop = true;
          } catch (error) {
            if (!(error instanceof StopRun)) throw error;
            stop = true;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, deps.concurrency ?? 4) }, worker));
      await deps.hooks?.beforeCommit?.([...done]);
      await commitChunk(runDeps, outcomes, done, result);
      for (const key of done) unfinished.delete(twinKeyString(key));
    }
  } finally {
    clearTimeout(timer);
    result.leftDue = unfinished.size;
    await releaseRepushLeases(deps.db, [...unfinished.values()], owner);
  }
  if (result.leftDue > 0 && !result.throttled && !deps.signal?.aborted) {
    deps.log?.(`re-push lease of ${settings.leaseMs} ms running out: ${result.leftDue} claimed devices left due for the next run`);
  }
  if (result.leaseLost > 0) deps.log?.(`re-push lease lost before commit on ${result.leaseLost} devices: nothing written for them`);
  return result;
}

type RunDeps = RepushDeps & {
  clock: () => Date;
  owner: string;
  /** Aborts when the caller aborts or when hub calls must end (`callsEndBy`). */
  callSignal: AbortSignal;
  deadline: AbortSignal;
  /** Run-clock ms by which every hub call must have answered, so the commit still fits in the lease. */
  callsEndBy: number;
  /** The slowest hub call so far, token-bucket wait included: the margin a new call needs. */
  slowestCallMs: number;
};

function hasTimeForCall(deps: RunDeps): boolean {
  return !deps.deadline.aborted && deps.clock().getTime() + deps.slowestCallMs <= deps.callsEndBy;
}

/** One hub call, only when it can answer before the lease's commit reserve; times it. */
async function hubCall<T>(deps: RunDeps, call: (options: { signal: AbortSignal }) => Promise<T>): Promise<T> {
  if (deps.signal?.aborted || !hasTimeForCall(deps)) throw new StopRun();
  const began = deps.clock().getTime();
  try {
    return await call({ signal: deps.callSignal });
  } finally {
    deps.slowestCallMs = Math.max(deps.slowestCallMs, deps.clock().getTime() - began);
  }
}

/** What the hub phase learned about one twin. The commit decides what to store from it and the locked state. */
type HubOutcome = { kind: "gone"; key: TwinKey; at: string; reason: string } | SeenTwin;

interface SeenTwin {
  kind: "seen";
  key: TwinKey;
  /** The twin as read (getTwin). */
  fresh: Twin;
  readAt: string;
  /** Paths out of attempts when read: escalated at commit if still so under the lock. */
  escalate: Map<string, { desiredVersion: number; nextAttemptAt: string | null }>;
  push?: PushOutcome;
}

interface PushOutcome {
  outcome: "pushed" | "dryRun" | "etagMismatch" | "error" | "unanswered";
  at: string;
  patch: JsonObject;
  /** The pushed paths: desired version when read, attempts when planned. */
  paths: Array<{ path: string; fromVersion: number; attempts: number; state: PropertyRecord["state"] }>;
  /** Accepted: the twin the hub returned, and each pushed path's desired version in it. */
  updated?: Twin;
  pushedVersions?: Map<string, number>;
  error?: string;
}

/**
 * The hub I/O for one claimed twin: reads it, decides from that read (and the plan read before the
 * chunk) what to escalate and what to send, sends it. Undefined: nothing learned (a failed read).
 * Throws StopRun on 429, on abort and when the lease leaves no time for the next call.
 */
async function probeTwin(
  key: TwinKey,
  planned: StoredTwinState | undefined,
  schedules: ReadonlyMap<string, RepushSchedule>,
  deps: RunDeps,
  result: RepushRunResult,
): Promise<HubOutcome | undefined> {
  const { settings } = deps;
  const label = twinKeyString(key);
  const previous = planned?.records ?? new Map<string, PropertyRecord>();

  let fresh: Twin;
  try {
    fresh = await hubCall(deps, (options) => deps.registry.getTwin(key, options));
  } catch (error) {
    return handleHubError(error, key, deps, result, "read", undefined);
  }

  const now = deps.clock().toISOString();
  const evaluation = evaluateCompliance(fresh, deps.policy, previous, now, "resync");
  const scheduleOf = (record: PropertyRecord): RepushSchedule => {
    const before = previous.get(record.path);
    // A new desired value (or compliance) starts from scratch: the record upsert resets it too.
    if (!before || before.desiredVersion !== record.desiredVersion || record.state === "compliant") return { attempts: 0, nextAttemptAt: null };
    return schedules.get(record.path) ?? { attempts: 0, nextAttemptAt: null };
  };
  const seen: SeenTwin = { kind: "seen", key, fresh, readAt: now, escalate: new Map() };

  // Out of attempts and still not compliant on the fresh read: escalate, push nothing for it.
  const toPush: PropertyRecord[] = [];
  for (const record of evaluation.records.filter((r) => isRepushDue(r, scheduleOf(r), now))) {
    const schedule = scheduleOf(record);
    if (schedule.attempts < settings.maxAttempts || record.state === "escalated") toPush.push(record);
    else seen.escalate.set(record.path, { desiredVersion: record.desiredVersion, nextAttemptAt: schedule.nextAttemptAt });
  }

  const patch = desiredPatch(fresh.desired, toPush.map((r) => r.path));
  const pushPaths = Object.keys(patch).length > 0 ? toPush : [];
  if (pushPaths.length === 0) {
    result.resolved++;
    metrics.repushes("resolved", 1);
    return seen;
  }
  const paths = pushPaths.map((r) => ({ path: r.path, fromVersion: r.desiredVersion, attempts: scheduleOf(r).attempts, state: r.state }));

  if (settings.dryRun) {
    result.pushed++;
    seen.push = { outcome: "dryRun", at: now, patch, paths };
    deps.log?.(`dry run: would re-push ${label} ${JSON.stringify(patch)}`);
    return seen;
  }

  if (fresh.etag === undefined) {
    // Never write without a precondition: that could overwrite an operator's newer desired value.
    deps.log?.(`re-push of ${label} skipped: the hub sent no etag`);
    result.errors++;
    metrics.repushes("failed", 1);
    return seen;
  }

  // Left due (not counted as pushed) when the lease has no time left for the patch.
  if (!hasTimeForCall(deps)) throw new StopRun();
  result.pushed++;
  let updated: Twin;
  try {
    updated = await hubCall(deps, (options) => deps.registry.updateTwin(key, { properties: { desired: patch } }, fresh.etag as string, options));
  } catch (error) {
    return handleHubError(error, key, deps, result, "write", { seen, push: { outcome: "error", at: now, patch, paths } });
  }

  result.accepted += paths.length;
  metrics.repushes("pushed", 1);
  const at = deps.clock().toISOString();
  // Which desired version each pushed path has now: the attempt belongs to that version.
  const pushedVersions = new Map(evaluateCompliance(updated, deps.policy, new Map(), at).records.map((r) => [r.path, r.desiredVersion]));
  seen.push = { outcome: "pushed", at, patch, paths, updated, pushedVersions };
  return seen;
}

async function handleHubError(
  error: unknown,
  key: TwinKey,
  deps: RunDeps,
  result: RepushRunResult,
  step: "read" | "write",
  pending: { seen: SeenTwin; push: PushOutcome } | undefined,
): Promise<HubOutcome | undefined> {
  if (error instanceof StopRun || deps.signal?.aborted) throw new StopRun();
  const label = twinKeyString(key);
  const at = deps.clock().toISOString();
  if (error instanceof LeaseEnding) {
    // The patch may have reached the hub (the SDK cannot cancel a request, only stop waiting): not an
    // attempt, but the back-off is kept so no run sends it again before that.
    if (!pending) throw new StopRun();
    deps.log?.(`re-push write of ${label} unanswered when the lease ran short: backing off without counting an attempt`);
    pending.seen.push = { ...pending.push, outcome: "unanswered", at, error: "no answer before the re-push lease ran short" };
    return pending.seen;
  }
  const kind = hubErrorKind(error);
  const name = error instanceof Error ? error.name : "Error";
  switch (kind) {
    case "throttled":
      // The limiter has slowed down (rateLimitedTwinRegistry); leave this device and the rest due.
      result.throttled = true;
      metrics.repushes("throttled", 1);
      deps.log?.(`IoT Hub throttled the ${step} of ${label} (429): stopping this run, the rest stays due`);
      throw new StopRun();
    case "notFound":
      metrics.repushes("not_found", 1);
      return { kind: "gone", key, at, reason: `IoT Hub: ${name} on re-push ${step}` };
    case "etagMismatch":
      result.etagMismatches++;
      metrics.repushes("precondition_failed", 1);
      if (!pending) break;
      // Someone changed the twin after our read: nothing written, no attempt counted; re-read next run.
      pending.seen.push = { ...pending.push, outcome: "etagMismatch", at };
      return pending.seen;
    case "other": {
      result.errors++;
      metrics.repushes("failed", 1);
      const message = error instanceof Error ? error.message : String(error);
      deps.log?.(`re-push ${step} of ${label} failed: ${message}`);
      if (!pending) break;
      pending.seen.push = { ...pending.push, outcome: "error", at, error: `${name}: ${message}`.slice(0, 500) };
      return pending.seen;
    }
  }
  // A failed read (not 404/429): nothing learned, nothing counted; the lease is released, due next run.
  return undefined;
}

function backoffFrom(at: string, attempt: number, deps: RunDeps): string {
  const delay = repushBackoffMs(attempt, { baseMs: deps.settings.backoffBaseMs, capMs: deps.settings.backoffCapMs }, deps.random);
  return new Date(Date.parse(at) + delay).toISOString();
}

interface ChunkWrite {
  batch: BatchWrite;
  schedules: Array<{ key: TwinKey; path: string; schedule: RepushSchedule }>;
}

/**
 * One transaction for a chunk (see `repushStaleDesired`): lock its twins, keep the devices whose
 * lease this run still holds, re-read them, decide and write; then their leases end.
 */
async function commitChunk(deps: RunDeps, outcomes: readonly HubOutcome[], done: readonly TwinKey[], result: RepushRunResult): Promise<void> {
  if (done.length === 0) return;
  await deps.db.transaction(async (tx) => {
    await lockTwins(tx, done);
    const at = deps.clock().toISOString();
    const held = await holdRepushLeases(tx, done, deps.owner, at);
    result.leaseLost += done.length - held.length;
    const holds = new Set(held.map((k) => twinKeyString(k)));
    const mine = outcomes.filter((o) => holds.has(twinKeyString(o.key)));
    const seen = mine.filter((o): o is SeenTwin => o.kind === "seen");
    const stored = await loadTwinStates(tx, seen.map((o) => o.key));
    const schedules = await loadRepushSchedules(tx, seen.map((o) => o.key));
    const write: ChunkWrite = { batch: { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] }, schedules: [] };
    for (const o of seen) {
      const id = twinKeyString(o.key);
      decideTwin(o, stored.get(id), schedules.get(id) ?? new Map(), deps, result, write);
    }
    const { batch } = write;
    if (batch.twins.length + batch.records.length + batch.removed.length + batch.history.length + batch.devices.length > 0) await writeBatch(tx, batch);
    await saveRepushSchedules(tx, write.schedules);
    for (const o of mine) if (o.kind === "gone") await removeGone(tx, o, deps, result);
    await releaseRepushLeases(tx, held, deps.owner);
  });
}

async function removeGone(tx: Queryable, gone: Extract<HubOutcome, { kind: "gone" }>, deps: RunDeps, result: RepushRunResult): Promise<void> {
  const removed = await removeDeletedTwin(tx, gone.key, gone.at, { reason: gone.reason });
  result.deleted++;
  deps.log?.(`${twinKeyString(gone.key)} is gone from IoT Hub: removed its ${removed} compliance records (history kept)`);
}

/**
 * Decides what one twin's re-push stores, from the locked stored state `stored` and `schedules`:
 * the hub's twins (as read, then as patched) are applied only when at least as new as the stored
 * one, each evaluated against the records before it; escalation and attempts follow the locked
 * schedules; history rows say what was sent and how it counted.
 */
function decideTwin(
  seen: SeenTwin,
  stored: StoredTwinState | undefined,
  schedules: ReadonlyMap<string, RepushSchedule>,
  deps: RunDeps,
  result: RepushRunResult,
  write: ChunkWrite,
): void {
  const { key, push } = seen;
  const { batch } = write;
  let records = new Map(stored?.records ?? []);
  let version = stored?.twin.version ?? Number.NEGATIVE_INFINITY;
  let kept: Twin | undefined;
  const changed = new Map<string, PropertyRecord>();
  const removed = new Set<string>();
  const pushedPaths = new Set(push?.paths.map((p) => p.path) ?? []);
  const apply = (twin: Twin, at: string, cause: TransitionCause, rowsFor: (path: string) => boolean): void => {
    if (twin.version < version) return;
    const evaluation = evaluateCompliance(twin, deps.policy, records, at, cause);
    for (const record of evaluation.changed) {
      changed.set(record.path, record);
      removed.delete(record.path);
    }
    for (const path of evaluation.removed) {
      changed.delete(path);
      removed.add(path);
    }
    for (const t of evaluation.transitions) if (rowsFor(t.path)) batch.history.push({ key, transition: t });
    records = new Map(evaluation.records.map((r) => [r.path, r]));
    version = twin.version;
    kept = twin;
  };

  apply(seen.fresh, seen.readAt, "resync", () => true);
  const beforePush = new Map(records);
  // The push rows below stand for the pushed paths' transitions.
  if (push?.updated) apply(push.updated, push.at, "repush", (path) => !pushedPaths.has(path));

  for (const [path, plan] of seen.escalate) {
    const record = records.get(path);
    const schedule = schedules.get(path) ?? { attempts: 0, nextAttemptAt: null };
    if (!record || record.desiredVersion !== plan.desiredVersion || ["compliant", "failed", "escalated"].includes(record.state)) continue;
    if (schedule.attempts < deps.settings.maxAttempts) continue;
    const escalated: PropertyRecord = { ...record, state: "escalated", stateSince: seen.readAt };
    records.set(path, escalated);
    changed.set(path, escalated);
    batch.history.push({
      key,
      transition: repushTransition(record, "escalated", seen.readAt),
      detail: { outcome: "escalated", attempt: null, attempts: schedule.attempts, maxAttempts: deps.settings.maxAttempts } satisfies RepushDetail,
    });
    // A "re-push now" queued after our read stays queued.
    const queued = schedule.nextAttemptAt !== plan.nextAttemptAt ? schedule.nextAttemptAt : null;
    write.schedules.push({ key, path, schedule: { attempts: schedule.attempts, nextAttemptAt: queued } });
    result.escalated++;
    metrics.repushes("escalated", 1);
  }

  if (push) recordPush(seen, push, stored, schedules, beforePush, records, deps, result, write);

  for (const record of changed.values()) batch.records.push({ key, record });
  for (const path of removed) batch.removed.push({ key, path });
  if (kept) batch.twins.push({ twin: kept, resyncNeeded: false });
  // A complete read at least as new as the stored twin heals a gap; otherwise the stored flag stands.
  const resyncNeeded = kept ? false : (stored?.resyncNeeded ?? false);
  const tags = (kept ?? stored?.twin)?.tags ?? {};
  addDeviceRow(batch, key, records.values(), stored?.device, push?.at ?? seen.readAt, { tags, resyncNeeded }, stored?.storedDevice);
}

/** History rows and schedules of the pushed paths: an attempt counts only on the desired version it was made for. */
function recordPush(
  seen: SeenTwin,
  push: PushOutcome,
  stored: StoredTwinState | undefined,
  schedules: ReadonlyMap<string, RepushSchedule>,
  beforePush: ReadonlyMap<string, PropertyRecord>,
  records: ReadonlyMap<string, PropertyRecord>,
  deps: RunDeps,
  result: RepushRunResult,
  write: ChunkWrite,
): void {
  const { key } = seen;
  for (const p of push.paths) {
    const current = records.get(p.path);
    const before = beforePush.get(p.path) ?? current;
    const locked = stored?.records.get(p.path);
    // Attempts so far on the value pushed: the locked schedule while the record still holds the version
    // read; the planned count when the reconcile path already stored our own patch (its upsert reset them).
    const attemptsSoFar = locked?.desiredVersion === p.fromVersion ? (schedules.get(p.path)?.attempts ?? 0) : p.attempts;
    const stillRead = current !== undefined && current.desiredVersion === p.fromVersion;
    const row = (detail: JsonObject): void => {
      const transition: Transition = {
        path: p.path,
        from: before?.state ?? p.state,
        to: current?.state ?? "removed",
        cause: "repush",
        at: push.at,
        desiredVersion: current?.desiredVersion ?? null,
        desired: current?.desired,
        reported: current ? current.reported : before?.reported,
      };
      write.batch.history.push({ key, transition, detail });
    };
    const schedule = (s: RepushSchedule): void => void write.schedules.push({ key, path: p.path, schedule: s });
    switch (push.outcome) {
      case "pushed": {
        const counts = current !== undefined && current.desiredVersion === push.pushedVersions?.get(p.path);
        const attempt = counts ? attemptsSoFar + 1 : null;
        row({ outcome: "pushed", attempt, patch: push.patch, ...(counts ? {} : { superseded: true }) } satisfies RepushDetail);
        if (counts && current) {
          schedule(current.state === "compliant" ? { attempts: 0, nextAttemptAt: null } : { attempts: attemptsSoFar + 1, nextAttemptAt: backoffFrom(push.at, attemptsSoFar + 1, deps) });
          result.attempts++;
        }
        break;
      }
      case "error": {
        const attempt = stillRead ? attemptsSoFar + 1 : null;
        row({ outcome: "error", attempt, patch: push.patch, ...(push.error === undefined ? {} : { error: push.error }) } satisfies RepushDetail);
        if (attempt !== null) {
          schedule({ attempts: attempt, nextAttemptAt: backoffFrom(push.at, attempt, deps) });
          result.attempts++;
        }
        break;
      }
      case "unanswered":
        row({ outcome: "unanswered", attempt: null, patch: push.patch, ...(push.error === undefined ? {} : { error: push.error }) } satisfies RepushDetail);
        if (stillRead) schedule({ attempts: attemptsSoFar, nextAttemptAt: backoffFrom(push.at, attemptsSoFar + 1, deps) });
        break;
      case "dryRun":
        row({ outcome: "dryRun", attempt: null, wouldBeAttempt: attemptsSoFar + 1, patch: push.patch } satisfies RepushDetail);
        if (stillRead) schedule({ attempts: attemptsSoFar, nextAttemptAt: backoffFrom(push.at, attemptsSoFar + 1, deps) });
        break;
      case "etagMismatch":
        row({ outcome: "etagMismatch", attempt: null, patch: push.patch } satisfies RepushDetail);
        break;
    }
  }
}

function repushTransition(record: PropertyRecord, to: Transition["to"], at: string): Transition {
  return { path: record.path, from: record.state, to, cause: "repush", at, desiredVersion: record.desiredVersion, desired: record.desired, reported: record.reported };
}
