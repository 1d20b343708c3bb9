import type { JsonObject } from "./json";
import type { Twin, TwinKey } from "./Twin";

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

/**
 * A decoded device lifecycle notification (route source `DeviceLifecycleEvents`, application
 * property `iothub-message-schema: deviceLifecycleNotification`). IoT Hub uses the same two opTypes
 * for devices and modules; a module's event carries `moduleId`. Deleting a device deletes its
 * modules with it (IoT Hub emits no module events then).
 */
export interface LifecycleEvent {
  key: TwinKey;
  opType: "createDeviceIdentity" | "deleteDeviceIdentity";
  /** The twin the event body carries (deviceId, moduleId, etag, version, tags, properties). */
  twin: Twin | undefined;
  enqueuedTime: string;
  sequenceNumber: number | undefined;
  partitionId: string | undefined;
  /** Position in the trigger's batch: orders lifecycle events against twin-change events. */
  index: number;
}
