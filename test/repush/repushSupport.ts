/**
 * Test support for the re-push suites.
 *
 * `inProcessTwinRegistry(hub)` is the test double: the emulator's hub model (`IotHub`: twins with
 * versions, etags, `$metadata`, IoT Hub's merge-patch and 412/404 rules, S1 quota buckets) called
 * in process and plugged under the real `iothubTwinRegistry` adapter (the `RegistryTwinClient`
 * seam azure-iothub's `Registry` fills in production). Its limits: no HTTPS, no SAS, no SDK
 * `translateError` (the emulator's errors carry the SDK's error names, which is all the port
 * branches on), quotas are checked as the emulator's service API checks them but answered at
 * once. Suites that need the real wire run on `startEmulator` + `createRegistryClient()` instead.
 */
import { evaluateCompliance } from "../../shared/compliance/evaluateCompliance";
import { summarizeDevice } from "../../shared/compliance/summarizeDevice";
import type { LimiterClock } from "../../shared/hub/TokenBucket";
import { iothubTwinRegistry } from "../../shared/hub/iothubTwinRegistry";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { parsePolicy, type Policy } from "../../shared/policy/Policy";
import type { RepushSettings } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { writeBatch, type BatchWrite } from "../../shared/store/complianceStore";
import type { TwinKey } from "../../shared/twin/Twin";
import { createManualClock, type ManualClock } from "../../local/emulator/Clock";
import { IotHub } from "../../local/emulator/IotHub";
import type { ThrottleTier } from "../../local/emulator/Throttle";

export const T0 = Date.UTC(2026, 0, 1, 8, 0, 0);
export const MINUTE = 60_000;

/** A manual clock that the token bucket can sleep on: sleeping moves time forward, nothing waits. */
export interface FakeClock extends ManualClock, LimiterClock {
  date(): Date;
}

export function fakeClock(startMs = T0): FakeClock {
  const clock = createManualClock(startMs);
  // Sleepers wake one due time at a time, earliest first, once everything runnable has run
  // (setImmediate): so each wakes with the clock at exactly its own due time.
  const sleepers: Array<{ at: number; wake: () => void }> = [];
  let ticking = false;
  const tick = () => {
    ticking = false;
    if (sleepers.length === 0) return;
    sleepers.sort((a, b) => a.at - b.at);
    const at = (sleepers[0] as { at: number }).at;
    if (at > clock.now()) clock.set(at);
    while (sleepers.length > 0 && (sleepers[0] as { at: number }).at <= clock.now()) (sleepers.shift() as { wake: () => void }).wake();
    schedule();
  };
  const schedule = () => {
    if (ticking || sleepers.length === 0) return;
    ticking = true;
    setImmediate(tick);
  };
  return {
    ...clock,
    date: () => new Date(clock.now()),
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const onAbort = () => reject(signal?.reason);
        sleepers.push({
          at: clock.now() + ms,
          wake: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        });
        signal?.addEventListener("abort", onAbort, { once: true });
        schedule();
      });
    },
  };
}

export function inProcessHub(clock: FakeClock, throttling: ThrottleTier = "off"): IotHub {
  return new IotHub({ clock, authClock: clock, throttling });
}

/**
 * The test double (see the top of this file). `calls` records each hub call with the clock's time.
 * `requestMs` and `responseMs` (real time) make it a slow hub: the hub applies a call `requestMs`
 * after it was made and answers `responseMs` later; an abort on the caller's side does not stop a
 * request already sent, as with the SDK.
 */
export function inProcessTwinRegistry(
  hub: IotHub,
  calls: Array<{ op: "get" | "update"; deviceId: string; at: number }> = [],
  options: { requestMs?: number; responseMs?: number } = {},
): TwinRegistry {
  const travel = (ms = 0) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve());
  const answer = async <T>(work: () => T): Promise<{ responseBody: T }> => {
    await travel(options.requestMs);
    const responseBody = work();
    await travel(options.responseMs);
    return { responseBody };
  };
  return iothubTwinRegistry({
    getTwin: (deviceId) =>
      answer(() => {
        calls.push({ op: "get", deviceId, at: hub.clock.now() });
        if (!hub.throttle.tryAcquire("twinRead")) throw throttledError("TwinRead");
        return hub.registry.getTwin(deviceId);
      }),
    getModuleTwin: (deviceId, moduleId) => answer(() => hub.registry.getTwin({ deviceId, moduleId })),
    updateTwin: (deviceId, patch, etag) =>
      answer(() => {
        calls.push({ op: "update", deviceId, at: hub.clock.now() });
        if (!hub.throttle.tryAcquire("twinUpdate")) throw throttledError("TwinUpdate");
        return hub.registry.updateTwin(deviceId, patch as never, etag);
      }),
    updateModuleTwin: (deviceId, moduleId, patch, etag) => answer(() => hub.registry.updateTwin({ deviceId, moduleId }, patch as never, etag)),
  });
}

function throttledError(operation: string): Error {
  const error = new Error(`The request has been throttled. Wait 10 seconds and try again. Operation type: ${operation}`);
  error.name = "ThrottlingError";
  return error;
}

export const testPolicy: Policy = parsePolicy({
  staleAfter: "10m",
  rules: [
    { desired: "noDrift", repushDrift: false },
    { desired: "firmware", compare: "status" },
  ],
});

export const testSettings: RepushSettings = {
  maxDevicesPerRun: 100,
  backoffBaseMs: 2 * MINUTE,
  backoffCapMs: 60 * MINUTE,
  maxAttempts: 5,
  dryRun: false,
  leaseMs: 5 * MINUTE,
};

/** Stores records for `keys` as the reconcile path would after reading each twin (no limiter, no events). */
export async function seedFromHub(db: Database, registry: TwinRegistry, policy: Policy, keys: readonly TwinKey[], at: string): Promise<void> {
  const write: BatchWrite = { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] };
  for (const key of keys) {
    const twin = await registry.getTwin(key);
    const evaluation = evaluateCompliance(twin, policy, new Map(), at, "resync");
    write.twins.push({ twin, resyncNeeded: false });
    for (const record of evaluation.records) write.records.push({ key, record });
    for (const transition of evaluation.transitions) write.history.push({ key, transition });
    write.devices.push({ key, ...summarizeDevice(evaluation.records, undefined, at), tags: twin.tags, resyncNeeded: false });
  }
  await db.transaction((tx) => writeBatch(tx, write));
}

export async function clearStore(db: Database): Promise<void> {
  for (const table of ["property_history", "property_records", "devices", "twins"]) await db.query(`DELETE FROM ${table}`);
}

export const device = (deviceId: string): TwinKey => ({ deviceId, moduleId: null });

export interface HistoryRow {
  device_id: string;
  path: string;
  from_state: string | null;
  to_state: string;
  cause: string;
  at: Date;
  detail: { outcome?: string; attempt?: number | null; patch?: unknown } | null;
}

export async function history(db: Database, deviceId: string): Promise<HistoryRow[]> {
  const result = await db.query<HistoryRow>(
    "SELECT device_id, path, from_state, to_state, cause, at, detail FROM property_history WHERE device_id = $1 ORDER BY id",
    [deviceId],
  );
  return result.rows.map((r) => ({ ...r, at: new Date(r.at) }));
}

export async function recordOf(db: Database, deviceId: string, path: string): Promise<{ state: string; attempts: number; next_attempt_at: Date | null } | undefined> {
  const result = await db.query<{ state: string; attempts: number; next_attempt_at: Date | null }>(
    "SELECT state, attempts, next_attempt_at FROM property_records WHERE device_id = $1 AND module_id = '' AND path = $2",
    [deviceId, path],
  );
  return result.rows[0];
}

/** The most calls seen in any window [t, t + 1 s). */
export function busiestSecond(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[j] as number) < (sorted[i] as number) - 999) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}
