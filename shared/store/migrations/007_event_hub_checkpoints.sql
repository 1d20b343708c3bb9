-- Event Hubs checkpoint store (shared/store/eventHubCheckpointStore.ts): the SDK's CheckpointStore
-- kept in the project's store instead of Azure Blob Storage. Schema version 7.
--
-- Keys follow @azure/eventhubs-checkpointstore-blob: namespace, hub and consumer group are stored
-- lower-cased by the code (Event Hubs names are case-insensitive), the partition id as given.
-- Plain statements only: the runner splits files on semicolons.

CREATE TABLE IF NOT EXISTS event_hub_ownership (
  fully_qualified_namespace text NOT NULL,
  event_hub_name text NOT NULL,
  consumer_group text NOT NULL,
  partition_id text NOT NULL,
  -- Empty when the owner relinquished the partition.
  owner_id text NOT NULL,
  -- Replaced at every successful claim: a claim must present the current one (optimistic concurrency).
  etag text NOT NULL,
  last_modified timestamptz NOT NULL,
  PRIMARY KEY (fully_qualified_namespace, event_hub_name, consumer_group, partition_id)
);

CREATE TABLE IF NOT EXISTS event_hub_checkpoints (
  fully_qualified_namespace text NOT NULL,
  event_hub_name text NOT NULL,
  consumer_group text NOT NULL,
  partition_id text NOT NULL,
  -- The offset is a string in the SDK (an opaque position in the partition).
  event_offset text NOT NULL,
  sequence_number bigint NOT NULL,
  last_modified timestamptz NOT NULL,
  PRIMARY KEY (fully_qualified_namespace, event_hub_name, consumer_group, partition_id)
);
