import { app, type InvocationContext, type Timer } from "@azure/functions";
import { maxSinceSeconds } from "../shared/reports/reportQuery";
import { getRuntime } from "../shared/runtime";
import { pruneRetention } from "../shared/store/pruneRetention";

/**
 * Prunes history, dead letters and time-to-compliance rows past their retention in bounded chunks,
 * and folds the report counters. Throws only when the store fails (the next run goes on).
 */
export async function pruneRetentionHandler(timer: Timer, context: InvocationContext): Promise<void> {
  const { db, config } = await getRuntime();
  if (timer.isPastDue) context.log("retention timer is past due: running now");
  const result = await pruneRetention(db, {
    historyMs: config.retention.historyMs,
    deadLetterMs: config.retention.deadLetterMs,
    // The summary's longest time-to-compliance window: older rows can never be asked for.
    complianceTimesMs: maxSinceSeconds * 1000,
  });
  context.log(
    `retention: ${result.history} history rows, ${result.deadLetters} dead letters, ${result.complianceTimes} time-to-compliance rows pruned; ` +
      `${result.countersFolded} counter rows folded${result.done ? "" : "; time budget spent, the next run goes on"}`,
  );
}

app.timer("pruneRetention", {
  schedule: "%RETENTION_SCHEDULE%",
  handler: pruneRetentionHandler,
});
