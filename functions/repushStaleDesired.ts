import { app, type InvocationContext, type Timer } from "@azure/functions";
import { repushStaleDesired } from "../shared/repush";
import { getRuntime } from "../shared/runtime";

/**
 * Re-pushes stale (and drifted) desired properties: claims due devices under a lease, reads each
 * fresh twin, re-sends the due desired values with the twin's etag, backs off, escalates.
 * Throws only when the store fails (the next run picks the work up again: nothing is lost).
 */
export async function repushStaleDesiredHandler(timer: Timer, context: InvocationContext): Promise<void> {
  const { db, policy, registry, config } = await getRuntime();
  if (!registry) {
    context.log("re-push disabled: no IoT Hub configured (IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME)");
    return;
  }
  if (timer.isPastDue) context.log("re-push timer is past due: running now");
  const result = await repushStaleDesired({
    db,
    policy,
    // The runtime's registry is behind the process's one token bucket (HUB_TWIN_OPS_PER_SECOND),
    // shared with the reconcile path's resyncs; a 429 slows that bucket down beyond this run.
    registry,
    settings: config.repush,
    log: (message) => context.warn(message),
  });
  context.log(
    `re-push${result.dryRun ? " (dry run)" : ""}: claimed ${result.claimed}, pushed ${result.pushed}, resolved ${result.resolved}, ` +
      `attempts ${result.attempts}, escalated ${result.escalated}, 412 ${result.etagMismatches}, deleted ${result.deleted}, ` +
      `errors ${result.errors}${result.throttled ? `, throttled (429): ${result.leftDue} left due` : ""}` +
      `${result.leaseLost > 0 ? `, lease lost before commit on ${result.leaseLost}` : ""}`,
  );
}

app.timer("repushStaleDesired", {
  schedule: "%REPUSH_SCHEDULE%",
  handler: repushStaleDesiredHandler,
});
