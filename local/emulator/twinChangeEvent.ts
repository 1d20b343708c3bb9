import { randomUUID } from "node:crypto";
import { hubTimestamp } from "./Clock";
import type { TwinChange } from "./DeviceRegistry";

/** A twin-change event before it lands in a partition: what IoT Hub routes to the Event Hub. */
export interface RoutedTwinChange {
  deviceId: string;
  body: unknown;
  properties: Record<string, unknown>;
  systemProperties: Record<string, unknown>;
  enqueuedTimeMs: number;
}

/**
 * Shapes a twin change exactly as IoT Hub routes `TwinChangeEvents` (iothub-facts §1):
 * application properties `hubName`, `deviceId`, `moduleId` (modules only), `operationTimestamp`,
 * `iothub-message-schema`, `opType`; system properties `iothub-*`, content type/encoding,
 * `correlation-id`, `user-id` (the hub name). `iothub-enqueuedtime` is given as an ISO string
 * (its JSON type through the Functions host is unconfirmed; decoders should accept both).
 */
export function twinChangeEvent(change: TwinChange, hubName: string, correlationId: string = randomUUID()): RoutedTwinChange {
  const timestamp = hubTimestamp(change.timestampMs);
  const properties: Record<string, unknown> = { hubName, deviceId: change.deviceId };
  if (change.moduleId !== null) properties.moduleId = change.moduleId;
  properties.operationTimestamp = timestamp;
  properties["iothub-message-schema"] = "twinChangeNotification";
  properties.opType = change.opType;

  const systemProperties: Record<string, unknown> = {
    "iothub-connection-device-id": change.deviceId,
  };
  if (change.moduleId !== null) systemProperties["iothub-connection-module-id"] = change.moduleId;
  systemProperties["iothub-enqueuedtime"] = new Date(change.timestampMs).toISOString();
  systemProperties["iothub-message-source"] = "twinChangeEvents";
  systemProperties["content-type"] = "application/json";
  systemProperties["content-encoding"] = "utf-8";
  systemProperties["correlation-id"] = correlationId;
  systemProperties["user-id"] = hubName;

  return { deviceId: change.deviceId, body: change.body, properties, systemProperties, enqueuedTimeMs: change.timestampMs };
}
