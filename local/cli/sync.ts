import type { Config } from "../../shared/config";
import { createTwinQueries, createTwinRegistry } from "../../shared/hub/createTwinRegistry";
import type { TwinQueries, TwinRegistry } from "../../shared/hub/TwinRegistry";
import type { Policy } from "../../shared/policy/Policy";
import type { Database } from "../../shared/store/Database";
import type { SyncPass } from "../../shared/sync/fleetSyncStore";
import { syncFleetTwins } from "../../shared/sync/syncFleetTwins";

export interface SyncCommandDeps {
  db: Database;
  policy: Policy;
  config: Config;
  /** Default: the hub the settings name, behind the app's limiters (tests pass their own). */
  registry?: TwinRegistry;
  queries?: TwinQueries;
  /** Progress lines (one per timer-sized run). */
  progress?: (line: string) => void;
  clock?: () => Date;
}

export interface SyncCommandReport {
  pass: SyncPass;
  /** Seconds this command worked. */
  seconds: number;
}

/**
 * `twin-reconciler sync`: one complete fleet sync pass against the hub the settings name
 * (IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME), with the same limiters as the timer. Continues
 * the pass in progress, if any; otherwise starts one. Runs until the pass completes.
 */
export async function runSyncCommand(deps: SyncCommandDeps): Promise<SyncCommandReport> {
  const registry = deps.registry ?? createTwinRegistry(deps.config);
  const queries = deps.queries ?? createTwinQueries(deps.config);
  if (!registry || !queries) throw new SyncSetupError("sync needs a hub: set IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME");
  const clock = deps.clock ?? (() => new Date());
  const started = clock().getTime();
  for (;;) {
    const result = await syncFleetTwins(
      { db: deps.db, policy: deps.policy, registry, queries, settings: deps.config.fleetSync, clock, ...(deps.progress ? { log: deps.progress } : {}) },
      { startNew: true },
    );
    if (result.pass === null) throw new SyncSetupError("another run holds the fleet sync pass in progress; try again when its lease ends");
    if (result.completed) return { pass: result.pass, seconds: (clock().getTime() - started) / 1000 };
  }
}

/** The settings or the situation do not allow a sync (exit 2). */
export class SyncSetupError extends Error {}

export function formatSyncReport(report: SyncCommandReport): string {
  const p = report.pass;
  return (
    `fleet sync pass ${p.id} complete in ${report.seconds.toFixed(1)} s: ${p.twinsRead} twins read, ${p.twinsChanged} changed, ` +
    `${p.twinsConfirmed} confirmed by getTwin, ${p.twinsRemoved} removed, ${p.queriesUsed} queries, ${p.errors} errors`
  );
}
