import type { Checkpoint, CheckpointStore, OperationOptions, PartitionOwnership } from "@azure/event-hubs";
import { getRuntime } from "../../shared/runtime";
import type { Database } from "../../shared/store/Database";
import { EventHubCheckpointStore } from "../../shared/store/eventHubCheckpointStore";

/**
 * The local host's Event Hubs checkpoint store: `EventHubCheckpointStore` on the very store the
 * functions use (getRuntime's, so PGlite's one instance is shared and a test's useRuntimeStore store
 * holds the checkpoints too). The store is looked up on every call, so a store that is down or not
 * yet open fails that call only: the SDK reports it and tries again on its next cycle.
 */
export function runtimeCheckpointStore(): CheckpointStore {
  let current: { db: Database; store: EventHubCheckpointStore } | undefined;
  const store = async (): Promise<EventHubCheckpointStore> => {
    const { db } = await getRuntime();
    if (current?.db !== db) current = { db, store: new EventHubCheckpointStore(db) };
    return current.store;
  };
  return {
    listOwnership: async (ns: string, hub: string, group: string, options?: OperationOptions) => (await store()).listOwnership(ns, hub, group, options),
    claimOwnership: async (ownership: PartitionOwnership[], options?: OperationOptions) => (await store()).claimOwnership(ownership, options),
    updateCheckpoint: async (checkpoint: Checkpoint, options?: OperationOptions) => (await store()).updateCheckpoint(checkpoint, options),
    listCheckpoints: async (ns: string, hub: string, group: string, options?: OperationOptions) => (await store()).listCheckpoints(ns, hub, group, options),
  };
}

/**
 * Deletes one consumer group's checkpoints and partition ownership from the runtime's store: the
 * hub they belonged to is gone (the emulator starts a new, empty one on every `npm start`).
 */
export async function forgetRuntimeCheckpoints(fullyQualifiedNamespace: string, eventHubName: string, consumerGroup: string): Promise<void> {
  const { db } = await getRuntime();
  const scope = [fullyQualifiedNamespace, eventHubName, consumerGroup];
  // Case-insensitive, as Event Hubs names are (the store may keep them lower-cased).
  const where = "lower(fully_qualified_namespace) = lower($1) AND lower(event_hub_name) = lower($2) AND lower(consumer_group) = lower($3)";
  await db.transaction(async (tx) => {
    await tx.query(`DELETE FROM event_hub_checkpoints WHERE ${where}`, scope);
    await tx.query(`DELETE FROM event_hub_ownership WHERE ${where}`, scope);
  });
}
