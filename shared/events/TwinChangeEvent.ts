import type { JsonObject } from "../twin/json";
import type { TwinKey } from "../twin/Twin";

/** A decoded, validated twin-change notification (route source `TwinChangeEvents`). */
export interface TwinChangeEvent {
  key: TwinKey;
  opType: "updateTwin" | "replaceTwin";
  /** The twin version after the change: the dedupe and ordering key per twin. */
  version: number;
  etag: string | undefined;
  tags: JsonObject | undefined;
  desired: JsonObject | undefined;
  reported: JsonObject | undefined;
  /** When Event Hubs enqueued it, ISO-8601: "now" for event-time evaluation. */
  enqueuedTime: string;
  sequenceNumber: number | undefined;
  partitionId: string | undefined;
  /** Position in the trigger's batch. */
  index: number;
}
