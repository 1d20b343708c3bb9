import { app, type InvocationContext } from "@azure/functions";
import { reconcileTwinChanges } from "../shared/reconcile";
import { getRuntime } from "../shared/runtime";

/**
 * Twin-change events (IoT Hub route source `TwinChangeEvents`) → stored twins → compliance records.
 * Throws only when the store (or its settings) fails: the Event Hub trigger checkpoints even when a
 * function throws, so the retry policy below — exponential, never giving up — is what keeps a
 * store outage from losing the batch. Bad events never throw; they become dead letters, and so do
 * the events of a twin the store refuses (the rest of the batch commits).
 */
export async function reconcileTwinChangesHandler(messages: unknown[], context: InvocationContext): Promise<void> {
  const { db, policy, registry } = await getRuntime();
  const result = await reconcileTwinChanges(messages, context.triggerMetadata, { db, policy, registry, log: (m) => context.warn(m) });
  context.log(
    `applied ${result.applied}, duplicates ${result.duplicates}, ignored ${result.ignored}, dead-lettered ${result.deadLettered}, ` +
      `resyncs ${result.resyncs} (${result.resyncFailures} failed), transitions ${result.transitions}, ` +
      `created ${result.created}, deleted ${result.deleted}, re-created ${result.recreated}`,
  );
  for (const { index, reason } of result.deadLetters) context.warn(`event ${index} dead-lettered: ${reason}`);
}

app.eventHub("reconcileTwinChanges", {
  connection: "TwinEvents",
  eventHubName: "%TWIN_EVENTS_HUB_NAME%",
  consumerGroup: "%TWIN_EVENTS_CONSUMER_GROUP%",
  cardinality: "many",
  retry: { strategy: "exponentialBackoff", maxRetryCount: -1, minimumInterval: { seconds: 2 }, maximumInterval: { minutes: 5 } },
  handler: reconcileTwinChangesHandler,
});
