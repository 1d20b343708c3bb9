import type { TwinChange } from "./DeviceRegistry";
import { routedEvent, type RoutedEvent } from "./routedEvent";

/** A twin change as IoT Hub routes `TwinChangeEvents` (iothub-facts §1): `twinChangeNotification`, opType `updateTwin` | `replaceTwin`. */
export function twinChangeEvent(change: TwinChange, hubName: string, correlationId?: string): RoutedEvent {
  return routedEvent("twinChangeEvents", change, hubName, correlationId);
}
