import { applyHubTwins } from "../applyHubTwins";
import type { FleetSyncConfig } from "../config";
import { hubErrorKind, type TwinRegistry } from "../hub/TwinRegistry";
import type { Policy } from "../policy/Policy";
import { repushBackoffMs } from "../repush/repushBackoff";
import type { Database } from "../store/Database";
import { lockTwins } from "../store/lockTwins";
import { metrics } from "../telemetry/metrics";
import { removeDeletedTwin } from "../store/repushStore";
import type { TwinKey } from "../twin/Twin";
import { claimDueResyncs, scheduleResyncRetry } from "./fleetSyncStore";

export type ResyncSettings = Pick<FleetSyncConfig, "resyncBackoffBaseMs" | "resyncBackoffCapMs">;

export interface ResyncDeps {
  db: Database;
  policy: Policy;
  /** getTwin behind the app's twin-op token bucket. */
  registry: TwinRegistry;
  settings: ResyncSettings;
  clock?: () => Date;
  /** Jitter source in [0, 1) for the back-off (tests pass a fixed one). */
  random?: () => number;
  /** Twins read per run at most (default 100). */
  limit?: number;
  log?: (message: string) => void;
}

export interface ResyncRunResult {
  /** Twins claimed from the queue. */
  claimed: number;
  /** Read and applied: flag cleared. */
  healed: number;
  /** IoT Hub answered 404: records removed (history kept, cause `deleted`). */
  removed: number;
  /** Read failed: backed off (attempts + 1). */
  failed: number;
  /** Claimed but not tried (the hub answered 429): due again at once. */
  leftDue: number;
}

/** How long a claimed twin is hidden from other queue runs while this run reads it. */
const CLAIM_MS = 120_000;

/**
 * The resync queue: twins flagged resyncNeeded (a gap the event path could not fill: 429, hub
 * unreachable…) are read again with getTwin until they heal — controller-runtime's requeue with
 * per-key exponential back-off (REPUSH's back-off rule, with RESYNC_BACKOFF_BASE/CAP). A read twin
 * is applied as a complete hub twin (applyHubTwins, `strong`: under the one-writer-per-twin lock,
 * which clears the flag); 404 removes its records. A 429 ends the run and leaves the rest due.
 */
export async function resyncTwins(deps: ResyncDeps): Promise<ResyncRunResult> {
  const clock = deps.clock ?? (() => new Date());
  const now = clock();
  const result: ResyncRunResult = { claimed: 0, healed: 0, removed: 0, failed: 0, leftDue: 0 };
  const due = await claimDueResyncs(deps.db, now.toISOString(), new Date(now.getTime() + CLAIM_MS).toISOString(), deps.limit ?? 100);
  result.claimed = due.length;
  for (let i = 0; i < due.length; i++) {
    const { key, attempts } = due[i]!;
    try {
      const twin = await deps.registry.getTwin(key);
      await applyHubTwins(deps, [twin], { consistency: "strong" });
      result.healed++;
      metrics.resyncs("succeeded", 1);
    } catch (error) {
      const kind = hubErrorKind(error);
      if (kind === "notFound") {
        await removeGone(deps.db, key, clock().toISOString());
        result.removed++;
        // The hub answered: the twin is gone, and so are its records. The resync did its job.
        metrics.resyncs("succeeded", 1);
        continue;
      }
      metrics.resyncs("failed", 1);
      if (kind === "throttled") {
        // Not the twin's fault: it and the rest are due again at once, for the next run.
        for (const left of due.slice(i)) await scheduleResyncRetry(deps.db, left.key, left.attempts, clock().toISOString());
        result.leftDue = due.length - i;
        break;
      }
      const attempt = attempts + 1;
      const delay = repushBackoffMs(attempt, { baseMs: deps.settings.resyncBackoffBaseMs, capMs: deps.settings.resyncBackoffCapMs }, deps.random);
      await scheduleResyncRetry(deps.db, key, attempt, new Date(clock().getTime() + delay).toISOString());
      result.failed++;
      deps.log?.(`resync of ${key.deviceId}${key.moduleId === null ? "" : `/${key.moduleId}`} failed (${(error as Error).name}), attempt ${attempt}; next in ${Math.round(delay / 1000)} s`);
    }
  }
  return result;
}

/** The hub no longer has the twin: its records go, history kept (a device's modules with it). */
async function removeGone(db: Database, key: TwinKey, at: string): Promise<void> {
  await db.transaction(async (tx) => {
    const modules =
      key.moduleId === null ? (await tx.query<{ module_id: string }>("SELECT module_id FROM twins WHERE device_id = $1 AND module_id <> ''", [key.deviceId])).rows : [];
    await lockTwins(tx, [key, ...modules.map((m) => ({ deviceId: key.deviceId, moduleId: m.module_id }))]);
    // Still flagged: a writer that stored the twin again meanwhile (a re-created device) has cleared it.
    const still = await tx.query("SELECT 1 FROM twins WHERE device_id = $1 AND module_id = $2 AND resync_needed", [key.deviceId, key.moduleId ?? ""]);
    if (still.rows.length === 0) return;
    await removeDeletedTwin(tx, key, at, { reason: "flagged for resync, and IoT Hub answered 404 to getTwin" });
  });
}
