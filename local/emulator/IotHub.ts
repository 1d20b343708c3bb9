import { randomBytes } from "node:crypto";
import type { JsonObject } from "../../shared/twin/json";
import { systemClock, type Clock } from "./Clock";
import { DeviceRegistry, type TwinAddress } from "./DeviceRegistry";
import { Throttle, type ThrottleTier } from "./Throttle";
import { deviceLifecycleEvent } from "./deviceLifecycleEvent";
import { twinChangeEvent } from "./twinChangeEvent";
import { TwinChangeEventStream, type FaultInjection } from "./TwinChangeEventStream";

/** A shared access policy of the hub (`iothubowner`, `service`, …) with its keys. */
export interface AccessPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
}

export interface IotHubOptions {
  /** Name in events (`hubName`, `user-id`); default `local-hub`. */
  hubName?: string;
  /** Host name in connection strings and SAS `sr`; default `localhost`. */
  hostName?: string;
  clock?: Clock;
  /** Clock for SAS expiry; real time by default, so a fast-forwarded test clock does not expire real SDK tokens. */
  authClock?: Clock;
  partitionCount?: number;
  faults?: FaultInjection;
  /**
   * Route `DeviceLifecycleEvents` (create/delete of devices and modules) into the same stream as the
   * twin changes, as infra/main.bicep's route does; default true. Consumers that only know twin
   * changes see them as another `iothub-message-source` and ignore them.
   */
  routeLifecycleEvents?: boolean;
  throttling?: ThrottleTier;
  units?: number;
  /** Base64 key generator (default: 32 random bytes). */
  generateKey?: () => string;
}

export type DesiredListener = (address: TwinAddress, notification: JsonObject) => void;

/**
 * The emulated hub in memory, without servers: registry and twins, quota buckets, the routed
 * event stream (twin changes and lifecycle events) and access policies. The HTTPS service API and
 * the MQTT device endpoint sit on it.
 */
export class IotHub {
  readonly hubName: string;
  readonly hostName: string;
  readonly clock: Clock;
  readonly authClock: Clock;
  readonly registry: DeviceRegistry;
  readonly events: TwinChangeEventStream;
  readonly throttle: Throttle;
  readonly policies: ReadonlyMap<string, AccessPolicy>;
  /** Whether lifecycle events are routed to `events` (may be changed while running). */
  routeLifecycleEvents: boolean;
  private readonly desiredListeners = new Set<DesiredListener>();

  constructor(options: IotHubOptions = {}) {
    this.hubName = options.hubName ?? "local-hub";
    this.hostName = options.hostName ?? "localhost";
    this.clock = options.clock ?? systemClock;
    this.authClock = options.authClock ?? systemClock;
    this.routeLifecycleEvents = options.routeLifecycleEvents ?? true;
    const generateKey = options.generateKey ?? (() => randomBytes(32).toString("base64"));
    this.events = new TwinChangeEventStream({
      ...(options.partitionCount === undefined ? {} : { partitionCount: options.partitionCount }),
      ...(options.faults === undefined ? {} : { faults: options.faults }),
    });
    this.throttle = new Throttle(this.clock, options.throttling ?? "S1", options.units ?? 1);
    this.registry = new DeviceRegistry({
      clock: this.clock,
      generateKey,
      onTwinChange: (change) => this.events.append(twinChangeEvent(change, this.hubName)),
      onLifecycle: (change) => {
        if (this.routeLifecycleEvents) this.events.append(deviceLifecycleEvent(change, this.hubName));
      },
      onDesiredChange: (address, notification) => {
        for (const listener of this.desiredListeners) listener(address, notification);
      },
    });
    this.policies = new Map(
      ["iothubowner", "service", "registryRead", "registryReadWrite"].map((keyName) => [
        keyName,
        { keyName, primaryKey: generateKey(), secondaryKey: generateKey() },
      ]),
    );
  }

  /** Subscribes to desired-property notifications (what IoT Hub pushes to devices); returns the unsubscribe. */
  onDesiredChange(listener: DesiredListener): () => void {
    this.desiredListeners.add(listener);
    return () => this.desiredListeners.delete(listener);
  }

  /** `HostName=…;SharedAccessKeyName=iothubowner;SharedAccessKey=…` */
  serviceConnectionString(keyName = "iothubowner"): string {
    const policy = this.policies.get(keyName);
    if (policy === undefined) throw new RangeError(`Unknown policy '${keyName}': use one of ${[...this.policies.keys()].join(", ")}`);
    return `HostName=${this.hostName};SharedAccessKeyName=${keyName};SharedAccessKey=${policy.primaryKey}`;
  }
}
