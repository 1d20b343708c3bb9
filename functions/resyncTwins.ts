import { app, type InvocationContext, type Timer } from "@azure/functions";
import { getRuntime } from "../shared/runtime";
import { getTwinQueries } from "../shared/sync/getTwinQueries";
import { resyncTwins } from "../shared/sync/resyncTwins";
import { syncFleetTwins } from "../shared/sync/syncFleetTwins";

/**
 * Every RESYNC_SCHEDULE: reads the twins flagged resyncNeeded whose back-off has passed, then
 * continues a fleet sync pass in progress (one interrupted by its time budget) or, on a store that
 * never completed one (a first deployment onto an existing hub), starts it. Every twin write goes
 * through applyHubTwins and its per-twin lock, so this and the sync timer never lose each other's writes.
 */
export async function resyncTwinsHandler(timer: Timer, context: InvocationContext): Promise<void> {
  const { db, policy, registry, config } = await getRuntime();
  const queries = getTwinQueries(config);
  if (!registry || !queries) {
    context.log("resync disabled: no IoT Hub configured (IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME)");
    return;
  }
  if (timer.isPastDue) context.log("resync timer is past due: running now");
  const resync = await resyncTwins({ db, policy, registry, settings: config.fleetSync, log: (m) => context.warn(m) });
  if (resync.claimed > 0) {
    context.log(`resync queue: ${resync.claimed} due, healed ${resync.healed}, removed ${resync.removed}, failed ${resync.failed}${resync.leftDue ? `, throttled (429): ${resync.leftDue} left due` : ""}`);
  }
  await syncFleetTwins({ db, policy, registry, queries, settings: config.fleetSync, log: (m) => context.log(m) }, { startNew: false });
}

app.timer("resyncTwins", {
  schedule: "%RESYNC_SCHEDULE%",
  handler: resyncTwinsHandler,
});
