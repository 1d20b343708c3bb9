import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { applyHubTwins } from "../applyHubTwins";
import type { FleetSyncConfig } from "../config";
import { hubErrorKind, type TwinQueries, type TwinRegistry } from "../hub/TwinRegistry";
import type { Policy } from "../policy/Policy";
import type { Database } from "../store/Database";
import { lockTwins } from "../store/lockTwins";
import { removeDeletedTwin } from "../store/repushStore";
import { metrics } from "../telemetry/metrics";
import type { TwinKey } from "../twin/Twin";
import { claimPass, flagResync, keyCursor, markSeen, releasePass, savePass, unseenTwins, type SyncPass } from "./fleetSyncStore";

export type FleetSyncSettings = Pick<FleetSyncConfig, "pageSize" | "runBudgetMs">;

export interface FleetSyncDeps {
  db: Database;
  policy: Policy;
  /** Twin queries behind the query-quota limiter (HUB_QUERIES_PER_MINUTE). */
  queries: TwinQueries;
  /** getTwin behind the app's twin-op token bucket: the confirmation of twins a pass did not see. */
  registry: TwinRegistry;
  settings: FleetSyncSettings;
  /** Wall clock: the run's time budget, the pass's times, the write time (tests pass a fake one). */
  clock?: () => Date;
  /** Lease owner name; default host:pid:uuid, unique per run. */
  owner?: string;
  log?: (message: string) => void;
}

export interface FleetSyncRunOptions {
  /** Start a new pass when none is in progress (the FLEET_SYNC_SCHEDULE timer). Without it, a run
   *  only continues the pass in progress — or starts the first one, if no pass ever completed. */
  startNew: boolean;
}

export interface FleetSyncRunResult {
  /** The pass as this run left it; null when there was nothing to do or another run holds it. */
  pass: SyncPass | null;
  skipped?: "busy" | "idle";
  /** This run started the pass. */
  started: boolean;
  /** This run finished the pass. */
  completed: boolean;
  /** What this run did (the pass's counts are totals over its runs). */
  run: { pages: number; twinsRead: number; twinsChanged: number; twinsRemoved: number; queriesUsed: number; throttled: number };
}

const QUERIES = { devices: "SELECT * FROM devices", modules: "SELECT * FROM devices.modules" } as const;
/** Twins confirmed (getTwin) per saved step of the confirmation phase. */
const CONFIRM_CHUNK = 50;
/** A run's lease outlasts its budget by this much: a step begun just before the deadline still ends inside it. */
const LEASE_MARGIN_MS = 120_000;

/**
 * One run of the fleet sync (controller-runtime's periodic resync, at IoT Hub's quotas): pages
 * through every device twin, then every module twin, with twin queries, applying each page as
 * complete hub twins (applyHubTwins, `eventual`: a query may lag, so it never overwrites a newer
 * stored twin), and marks each twin read as seen by the pass. The pass's place (phase,
 * continuation token) and counts are saved after every page, so a run that reaches its time
 * budget — or dies — leaves the pass for the next run to continue.
 *
 * Only a complete read of both queries concludes anything about absent twins: then each stored
 * twin the pass did not see (or saw at a lower version than stored: behind, or re-created), first
 * stored before the pass started, is read with getTwin (strongly
 * consistent): found → applied (`strong`, so a re-created device replaces the old twin); 404 →
 * its records removed (history kept, cause `deleted`); another failure → flagged for the resync
 * queue. Throws only when the store fails or the hub fails other than 429 (the pass stays).
 */
export async function syncFleetTwins(deps: FleetSyncDeps, options: FleetSyncRunOptions): Promise<FleetSyncRunResult> {
  const clock = deps.clock ?? (() => new Date());
  const owner = deps.owner ?? `${hostname()}:${process.pid}:${randomUUID()}`;
  const startMs = clock().getTime();
  const deadline = startMs + deps.settings.runBudgetMs;
  const leaseUntil = () => new Date(clock().getTime() + deps.settings.runBudgetMs + LEASE_MARGIN_MS).toISOString();
  const run = { pages: 0, twinsRead: 0, twinsChanged: 0, twinsRemoved: 0, queriesUsed: 0, throttled: 0 };

  const claim = await claimPass(deps.db, { owner, now: clock().toISOString(), leaseUntil: leaseUntil(), startNew: options.startNew });
  if (claim.pass === null) return { pass: null, skipped: claim.reason, started: false, completed: false, run };
  const pass = claim.pass;
  const save = async () => {
    if (!(await savePass(deps.db, pass, owner, clock().toISOString(), leaseUntil()))) {
      throw new Error(`fleet sync pass ${pass.id}: the lease was taken over by another run; stopping`);
    }
  };
  let completed = false;
  try {
    while (clock().getTime() < deadline && pass.phase !== "done") {
      if (pass.phase === "devices" || pass.phase === "modules") {
        pass.queriesUsed++;
        run.queriesUsed++;
        let page;
        try {
          page = await deps.queries.queryTwins(QUERIES[pass.phase], { pageSize: deps.settings.pageSize, continuationToken: pass.continuation ?? undefined });
        } catch (error) {
          if (hubErrorKind(error) === "throttled") {
            // The query limiter has paused itself: the next query waits for the quota to refill.
            run.throttled++;
            await save();
            continue;
          }
          if (pass.continuation !== null && (error as { statusCode?: unknown }).statusCode === 400) {
            // A continuation token the hub no longer takes (expired, or from another hub): the phase
            // is read again from its start — pages are idempotent, the pass only costs more queries.
            deps.log?.(`fleet sync pass ${pass.id}: IoT Hub refused the stored continuation (${(error as Error).name}); reading ${pass.phase} again from the start`);
            pass.continuation = null;
            pass.errors++;
            await save();
            continue;
          }
          throw error;
        }
        const applied = await applyHubTwins(deps, page.twins, { consistency: "eventual" });
        await markSeen(deps.db, pass.id, page.twins);
        pass.twinsRead += page.twins.length;
        pass.twinsChanged += applied.applied;
        run.pages++;
        run.twinsRead += page.twins.length;
        metrics.syncTwinsRead(page.twins.length);
        run.twinsChanged += applied.applied;
        if (page.continuationToken !== undefined) pass.continuation = page.continuationToken;
        else {
          pass.phase = pass.phase === "devices" ? "modules" : "confirm";
          pass.continuation = null;
        }
        await save();
        continue;
      }
      // confirm
      const keys = await unseenTwins(deps.db, pass, pass.continuation, CONFIRM_CHUNK);
      if (keys.length === 0) {
        pass.phase = "done";
        pass.continuation = null;
        pass.finishedAt = clock().toISOString();
        await save();
        completed = true;
        break;
      }
      const stop = await confirmUnseen(deps, pass, keys, deadline, clock, run);
      await save();
      if (stop) break;
    }
  } finally {
    if (!completed) await releasePass(deps.db, pass.id, owner).catch(() => undefined);
  }
  deps.log?.(
    `fleet sync pass ${pass.id}${claim.started ? " (new)" : ""}: ${completed ? "complete" : `at ${pass.phase}`}; this run read ${run.twinsRead} twins in ` +
      `${run.pages} pages, changed ${run.twinsChanged}, removed ${run.twinsRemoved}, ${run.queriesUsed} queries${run.throttled ? ` (${run.throttled} throttled)` : ""}`,
  );
  return { pass, started: claim.started, completed, run };
}

/**
 * Reads each unseen twin with getTwin, in key order, moving the pass's cursor past each one
 * handled. Returns true when the run must stop (deadline, or the hub answered 429: the cursor
 * stays before that twin and the next run tries it again).
 */
async function confirmUnseen(
  deps: FleetSyncDeps,
  pass: SyncPass,
  keys: readonly TwinKey[],
  deadline: number,
  clock: () => Date,
  run: FleetSyncRunResult["run"],
): Promise<boolean> {
  const removedDevices = new Set<string>();
  for (const key of keys) {
    if (clock().getTime() >= deadline) return true;
    // A module of a device removed a moment ago went with it.
    if (key.moduleId !== null && removedDevices.has(key.deviceId)) {
      pass.continuation = keyCursor(key);
      continue;
    }
    try {
      const twin = await deps.registry.getTwin(key);
      const applied = await applyHubTwins(deps, [twin], { consistency: "strong" });
      await markSeen(deps.db, pass.id, [twin]);
      pass.twinsConfirmed++;
      pass.twinsChanged += applied.applied;
      run.twinsChanged += applied.applied;
    } catch (error) {
      const kind = hubErrorKind(error);
      if (kind === "throttled") {
        run.throttled++;
        return true;
      }
      if (kind === "notFound") {
        const removed = await removeUnseenTwin(deps, pass, key, clock().toISOString());
        pass.twinsRemoved += removed;
        run.twinsRemoved += removed;
        if (key.moduleId === null && removed > 0) removedDevices.add(key.deviceId);
      } else {
        pass.errors++;
        deps.log?.(`fleet sync: getTwin of ${key.deviceId}${key.moduleId === null ? "" : `/${key.moduleId}`} failed (${(error as Error).name}); flagged for the resync queue`);
        await flagResync(deps.db, key, clock().toISOString());
      }
    }
    pass.continuation = keyCursor(key);
  }
  return false;
}

/**
 * IoT Hub said 404: the twin's records go (history kept, cause `deleted`) — unless, under the lock,
 * it is no longer a twin this pass may judge (a writer stored it again meanwhile). Returns the
 * number of twins removed (a device takes its modules with it).
 */
async function removeUnseenTwin(deps: FleetSyncDeps, pass: SyncPass, key: TwinKey, at: string): Promise<number> {
  const scope = key.moduleId === null ? "device_id = $1" : "device_id = $1 AND module_id = $2";
  const params = key.moduleId === null ? [key.deviceId] : [key.deviceId, key.moduleId];
  return deps.db.transaction(async (tx) => {
    // A device's removal takes its module twins: they are locked too.
    const inScope = await tx.query<{ module_id: string }>(`SELECT module_id FROM twins WHERE ${scope}`, params);
    await lockTwins(tx, [key, ...inScope.rows.map((r) => ({ deviceId: key.deviceId, moduleId: r.module_id === "" ? null : r.module_id }))]);
    const still = await tx.query(
      `SELECT 1 FROM twins WHERE device_id = $1 AND module_id = $2 AND last_seen_pass IS DISTINCT FROM $3 AND stored_at < $4::timestamptz`,
      [key.deviceId, key.moduleId ?? "", pass.id, pass.startedAt],
    );
    if (still.rows.length === 0) return 0;
    const twins = await tx.query<{ n: unknown }>(`SELECT count(*) AS n FROM twins WHERE ${scope}`, params);
    await removeDeletedTwin(tx, key, at, { reason: "not in a complete fleet sync pass, and IoT Hub answered 404 to getTwin", pass: pass.id });
    return Number(twins.rows[0]?.n ?? 0);
  });
}
