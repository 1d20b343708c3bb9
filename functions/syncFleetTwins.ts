import { app, type InvocationContext, type Timer } from "@azure/functions";
import { getRuntime } from "../shared/runtime";
import { getTwinQueries } from "../shared/sync/getTwinQueries";
import { syncFleetTwins } from "../shared/sync/syncFleetTwins";

/**
 * Starts a fleet sync pass every FLEET_SYNC_SCHEDULE (or continues the one in progress) and works
 * on it for FLEET_SYNC_RUN_BUDGET; the resync timer continues it every minute until it completes.
 * Throws only when the store or the hub fails (the pass keeps its place).
 */
export async function syncFleetTwinsHandler(timer: Timer, context: InvocationContext): Promise<void> {
  const { db, policy, registry, config } = await getRuntime();
  const queries = getTwinQueries(config);
  if (!registry || !queries) {
    context.log("fleet sync disabled: no IoT Hub configured (IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME)");
    return;
  }
  if (timer.isPastDue) context.log("fleet sync timer is past due: running now");
  const result = await syncFleetTwins({ db, policy, registry, queries, settings: config.fleetSync, log: (m) => context.log(m) }, { startNew: true });
  if (result.skipped === "busy") context.log("fleet sync: the pass in progress is held by another run");
}

app.timer("syncFleetTwins", {
  schedule: "%FLEET_SYNC_SCHEDULE%",
  handler: syncFleetTwinsHandler,
});
