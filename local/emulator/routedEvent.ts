import { randomUUID } from "node:crypto";
import { hubTimestamp } from "./Clock";

/** An event before it lands in a partition: what IoT Hub routes to the Event Hub. */
export interface RoutedEvent {
  deviceId: string;
  /**
   * The twin the event is about (`deviceId/moduleId#generationId`): coalescing merges changes of
   * one twin only, never of a deleted twin and the new one created under the same id.
   */
  twinKey: string;
  body: unknown;
  properties: Record<string, unknown>;
  systemProperties: Record<string, unknown>;
  enqueuedTimeMs: number;
}

export interface RoutedEventFields {
  deviceId: string;
  moduleId: string | null;
  generationId: string;
  opType: string;
  timestampMs: number;
  body: unknown;
}

/** The route sources the emulator produces, with their `iothub-message-schema`. */
export const routeSources = {
  twinChangeEvents: "twinChangeNotification",
  deviceLifecycleEvents: "deviceLifecycleNotification",
} as const;

export type RouteSource = keyof typeof routeSources;

/**
 * Shapes an event exactly as IoT Hub routes its non-telemetry events (iothub-facts §1; Microsoft's
 * non-telemetry event schema): application properties `hubName`, `deviceId`, `moduleId` (modules
 * only), `operationTimestamp`, `iothub-message-schema`, `opType`; system properties `iothub-*`,
 * content type/encoding, `correlation-id`, `user-id` (the hub name). `iothub-enqueuedtime` is given
 * as an ISO string (its JSON type through the Functions host is unconfirmed; decoders accept both).
 */
export function routedEvent(source: RouteSource, fields: RoutedEventFields, hubName: string, correlationId: string = randomUUID()): RoutedEvent {
  const properties: Record<string, unknown> = { hubName, deviceId: fields.deviceId };
  if (fields.moduleId !== null) properties.moduleId = fields.moduleId;
  properties.operationTimestamp = hubTimestamp(fields.timestampMs);
  properties["iothub-message-schema"] = routeSources[source];
  properties.opType = fields.opType;

  const systemProperties: Record<string, unknown> = {
    "iothub-connection-device-id": fields.deviceId,
  };
  if (fields.moduleId !== null) systemProperties["iothub-connection-module-id"] = fields.moduleId;
  systemProperties["iothub-enqueuedtime"] = new Date(fields.timestampMs).toISOString();
  systemProperties["iothub-message-source"] = source;
  systemProperties["content-type"] = "application/json";
  systemProperties["content-encoding"] = "utf-8";
  systemProperties["correlation-id"] = correlationId;
  systemProperties["user-id"] = hubName;

  return {
    deviceId: fields.deviceId,
    twinKey: `${fields.deviceId}/${fields.moduleId ?? ""}#${fields.generationId}`,
    body: fields.body,
    properties,
    systemProperties,
    enqueuedTimeMs: fields.timestampMs,
  };
}
