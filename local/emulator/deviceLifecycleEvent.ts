import type { LifecycleChange } from "./DeviceRegistry";
import { routedEvent, type RoutedEvent } from "./routedEvent";

/**
 * A create or delete of a device or module as IoT Hub routes `DeviceLifecycleEvents` (Microsoft's
 * non-telemetry event schema): `iothub-message-schema: deviceLifecycleNotification`, opType
 * `createDeviceIdentity` | `deleteDeviceIdentity` for devices and modules alike (a module's event adds
 * `moduleId` and `iothub-connection-module-id`), `iothub-message-source: deviceLifecycleEvents`, the
 * twin as body. Same partition as the device's twin-change events, so their relative order holds.
 */
export function deviceLifecycleEvent(change: LifecycleChange, hubName: string, correlationId?: string): RoutedEvent {
  return routedEvent("deviceLifecycleEvents", change, hubName, correlationId);
}
