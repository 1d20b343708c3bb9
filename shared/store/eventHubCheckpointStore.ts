import { randomUUID } from "node:crypto";
import type { Checkpoint, CheckpointStore, OperationOptions, PartitionOwnership } from "@azure/event-hubs";
import { z } from "zod";
import type { Queryable } from "./Database";

/**
 * The `@azure/event-hubs` CheckpointStore on the project's store (PostgreSQL or PGlite; tables in
 * 007_event_hub_checkpoints.sql), so `EventHubConsumerClient`s sharing one database share the
 * partitions through the SDK's load balancing and resume from their checkpoints.
 *
 * Semantics follow Microsoft's `BlobCheckpointStore` (@azure/eventhubs-checkpointstore-blob,
 * src/blobCheckpointStore.ts in Azure/azure-sdk-for-js), read for this file:
 * - Keys are (namespace, hub, consumer group, partition id); namespace, hub and consumer group are
 *   lower-cased (`getBlobPrefix`: "none of these are case-sensitive in eventhubs"), the partition
 *   id is not. Results carry the names the caller passed, as the blob store's do.
 * - A claim is optimistic: it succeeds when its etag is the stored one, and then gets a new etag
 *   and lastModifiedTimeInMs (the database's clock, as the blob store takes the storage service's).
 *   A lost claim is left out of the result, not thrown (the blob store's 412). An empty ownerId
 *   relinquishes; the row stays, with its new etag.
 * - Checkpoints are written unconditionally (last writer wins) and need offset and sequenceNumber
 *   (a TypeError naming the missing one, as `throwTypeErrorIfParameterMissing`).
 *
 * Where it deliberately differs:
 * - A claim WITHOUT an etag only creates a row: if one exists, the claim is lost. The JS blob
 *   store instead overwrites unconditionally (setMetadata without If-Match), so two processors
 *   claiming a never-owned partition at once could both "win"; the .NET blob store
 *   (If-None-Match: *) and the SDK's own InMemoryCheckpointStore refuse it, as this does.
 * - A claim WITH an etag for a row that does not exist is lost, not an error (the blob store's
 *   If-Match on a missing blob fails; InMemoryCheckpointStore would create the row).
 * - Claims return new objects; the caller's are not mutated (the blob store mutates and returns them).
 *
 * Concurrency: each claim is ONE conditional statement (UPDATE … WHERE etag = $x, or INSERT … ON
 * CONFLICT DO NOTHING). Under PostgreSQL's READ COMMITTED a second UPDATE of the same row waits
 * for the first and re-checks the etag on the new row version, so of two claims with the same etag
 * exactly one is returned; of two inserts exactly one creates the row.
 */
export class EventHubCheckpointStore implements CheckpointStore {
  constructor(private readonly db: Queryable) {}

  /** `columns` of `table`'s rows of one hub and consumer group, by partition id, parsed by `row`. */
  private async readScoped<T>(columns: string, table: string, row: z.ZodType<T>, fullyQualifiedNamespace: string, eventHubName: string, consumerGroup: string): Promise<T[]> {
    const { rows } = await this.db.query(
      `SELECT ${columns} FROM ${table}
        WHERE fully_qualified_namespace = $1 AND event_hub_name = $2 AND consumer_group = $3 ORDER BY partition_id`,
      scope(fullyQualifiedNamespace, eventHubName, consumerGroup),
    );
    return z.array(row).parse(rows);
  }

  async listOwnership(
    fullyQualifiedNamespace: string,
    eventHubName: string,
    consumerGroup: string,
    options: OperationOptions = {},
  ): Promise<PartitionOwnership[]> {
    throwIfAborted(options);
    const rows = await this.readScoped(`partition_id, owner_id, etag, ${epochMs} AS last_modified_ms`, "event_hub_ownership", ownershipRow, fullyQualifiedNamespace, eventHubName, consumerGroup);
    return rows.map((r) => ({
        fullyQualifiedNamespace,
        eventHubName,
        consumerGroup,
        partitionId: r.partition_id,
        ownerId: r.owner_id,
        etag: r.etag,
        lastModifiedTimeInMs: r.last_modified_ms,
      }));
  }

  async claimOwnership(partitionOwnership: PartitionOwnership[], options: OperationOptions = {}): Promise<PartitionOwnership[]> {
    const claimed: PartitionOwnership[] = [];
    for (const ownership of partitionOwnership) {
      throwIfAborted(options);
      requireString("claimOwnership", ownership, "partitionId");
      requireString("claimOwnership", ownership, "ownerId");
      const key = [...scope(ownership.fullyQualifiedNamespace, ownership.eventHubName, ownership.consumerGroup), ownership.partitionId];
      const etag = randomUUID();
      const { rows } = ownership.etag
        ? await this.db.query(
            `UPDATE event_hub_ownership SET owner_id = $5, etag = $6, last_modified = clock_timestamp()
              WHERE fully_qualified_namespace = $1 AND event_hub_name = $2 AND consumer_group = $3 AND partition_id = $4 AND etag = $7
              RETURNING ${epochMs} AS last_modified_ms`,
            [...key, ownership.ownerId, etag, ownership.etag],
          )
        : await this.db.query(
            `INSERT INTO event_hub_ownership
               (fully_qualified_namespace, event_hub_name, consumer_group, partition_id, owner_id, etag, last_modified)
              VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
              ON CONFLICT DO NOTHING
              RETURNING ${epochMs} AS last_modified_ms`,
            [...key, ownership.ownerId, etag],
          );
      const row = rows[0];
      if (row === undefined) continue; // another processor claimed it first
      claimed.push({ ...ownership, etag, lastModifiedTimeInMs: claimedRow.parse(row).last_modified_ms });
    }
    return claimed;
  }

  async updateCheckpoint(checkpoint: Checkpoint, options: OperationOptions = {}): Promise<void> {
    throwIfAborted(options);
    if (checkpoint.sequenceNumber == null) throw missing("updateCheckpoint", "sequenceNumber");
    if (checkpoint.offset == null) throw missing("updateCheckpoint", "offset");
    requireString("updateCheckpoint", checkpoint, "partitionId");
    if (!Number.isSafeInteger(checkpoint.sequenceNumber)) {
      throw new TypeError(`updateCheckpoint: sequenceNumber must be an integer, got ${String(checkpoint.sequenceNumber)}`);
    }
    await this.db.query(
      `INSERT INTO event_hub_checkpoints
         (fully_qualified_namespace, event_hub_name, consumer_group, partition_id, event_offset, sequence_number, last_modified)
        VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
        ON CONFLICT (fully_qualified_namespace, event_hub_name, consumer_group, partition_id)
        DO UPDATE SET event_offset = excluded.event_offset, sequence_number = excluded.sequence_number, last_modified = excluded.last_modified`,
      [
        ...scope(checkpoint.fullyQualifiedNamespace, checkpoint.eventHubName, checkpoint.consumerGroup),
        checkpoint.partitionId,
        String(checkpoint.offset),
        checkpoint.sequenceNumber,
      ],
    );
  }

  async listCheckpoints(
    fullyQualifiedNamespace: string,
    eventHubName: string,
    consumerGroup: string,
    options: OperationOptions = {},
  ): Promise<Checkpoint[]> {
    throwIfAborted(options);
    const rows = await this.readScoped("partition_id, event_offset, sequence_number", "event_hub_checkpoints", checkpointRow, fullyQualifiedNamespace, eventHubName, consumerGroup);
    return rows.map((r) => ({
        fullyQualifiedNamespace,
        eventHubName,
        consumerGroup,
        partitionId: r.partition_id,
        offset: r.event_offset,
        sequenceNumber: r.sequence_number,
      }));
  }
}

/** Milliseconds since the epoch of a row's last_modified (bigint: pg returns it as a string). */
const epochMs = "floor(extract(epoch FROM last_modified) * 1000)::bigint";

const ownershipRow = z.object({
  partition_id: z.string(),
  owner_id: z.string(),
  etag: z.string(),
  last_modified_ms: z.coerce.number().int(),
});
const claimedRow = z.object({ last_modified_ms: z.coerce.number().int() });
const checkpointRow = z.object({
  partition_id: z.string(),
  event_offset: z.string(),
  sequence_number: z.coerce.number().int(),
});

/** The case-insensitive part of the key, lower-cased as BlobCheckpointStore.getBlobPrefix does. */
function scope(fullyQualifiedNamespace: string, eventHubName: string, consumerGroup: string): string[] {
  const names = { fullyQualifiedNamespace, eventHubName, consumerGroup };
  for (const [field, value] of Object.entries(names)) {
    if (typeof value !== "string" || value === "") throw new TypeError(`checkpoint store: ${field} must be a non-empty string`);
  }
  return [fullyQualifiedNamespace.toLowerCase(), eventHubName.toLowerCase(), consumerGroup.toLowerCase()];
}

function requireString<T extends object>(operation: string, value: T, field: keyof T & string): void {
  const v = value[field];
  if (typeof v !== "string") throw new TypeError(`${operation}: ${field} must be a string, got ${v === undefined ? "undefined" : typeof v}`);
  if (field === "partitionId" && v === "") throw new TypeError(`${operation}: partitionId must not be empty`);
}

function missing(operation: string, field: string): TypeError {
  return new TypeError(`${operation} called without required parameter "${field}"`);
}

/** The SDK's signals are AbortSignalLike (no throwIfAborted): an AbortError, as its own operations throw. */
function throwIfAborted(options: OperationOptions): void {
  if (!options.abortSignal?.aborted) return;
  const error = new Error("The checkpoint store operation was aborted.");
  error.name = "AbortError";
  throw error;
}
