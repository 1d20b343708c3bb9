import type { JsonObject } from "./json";

/**
 * A device or module twin as IoT Hub serves it (GET /twins/{id}) and as we keep it.
 * `desired` and `reported` include their `$metadata` and `$version`.
 */
export interface Twin {
  deviceId: string;
  /** null for a device twin; module twins are twins of their own. */
  moduleId: string | null;
  /** Twin version: rises on every change (tags, desired, reported). */
  version: number;
  etag?: string | undefined;
  tags: JsonObject;
  desired: JsonObject;
  reported: JsonObject;
}

/** Identifies one twin: a device, or a module of a device. */
export interface TwinKey {
  deviceId: string;
  moduleId: string | null;
}

/**
 * The one string for a twin key: "device" or "device/module", for messages and as a map key.
 * Unambiguous because IoT Hub device and module IDs never contain "/" (../shared/reference/iothub-facts.md §IDs).
 */
export function twinKeyString(key: TwinKey): string {
  return key.moduleId === null ? key.deviceId : `${key.deviceId}/${key.moduleId}`;
}
