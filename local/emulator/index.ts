import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { JsonObject } from "../../shared/twin/json";
import type { EventStream } from "../EventStream";
import type { Clock } from "./Clock";
import { createRegistryClientFor, useEmulatorHubEndpoint } from "./createRegistryClient";
import { toAddress, type CreateDeviceOptions, type DeviceIdentity, type TwinAddress, type TwinId, type TwinPatch } from "./DeviceRegistry";
import { ensureCertificates } from "./ensureCertificates";
import { IotHub } from "./IotHub";
import { parseTwinQuery } from "./parseTwinQuery";
import { runTwinQuery, type RunTwinQueryOptions, type TwinQueryPage } from "./runTwinQuery";
import { startDeviceEndpoint, type DesiredNotificationFilter, type DeviceEndpointCounters } from "./startDeviceEndpoint";
import { startEventHubsEndpoint, type EventHubsEndpoint } from "./startEventHubsEndpoint";
import { startServiceApi } from "./startServiceApi";
import type { ThrottledOperation, ThrottleTier } from "./Throttle";
import type { EventStreamCounters, FaultInjection, TwinChangeEventStream } from "./TwinChangeEventStream";
import type { Registry } from "azure-iothub";

export type { EventHubsEndpoint } from "./startEventHubsEndpoint";
export type { Clock, CreateDeviceOptions, DeviceIdentity, EventStreamCounters, FaultInjection, ThrottleTier, TwinAddress, TwinId, TwinPatch, TwinQueryPage };
export { createManualClock, type ManualClock } from "./Clock";
export { IotHubError } from "./IotHubError";
export { createRegistryClientFor, useEmulatorHubEndpoint, type RegistryClientTarget } from "./createRegistryClient";

export interface EmulatorOptions {
  /** Hub name in events; default `local-hub`. */
  hubName?: string;
  /** Address the servers (HTTPS, MQTT, AMQP) bind; default 127.0.0.1. */
  host?: string;
  /** HTTPS (service API) port; default 0 (ephemeral). */
  httpsPort?: number;
  /** MQTT over TLS (device) port; default 0 (ephemeral). */
  mqttPort?: number;
  /** Event Hubs–compatible AMQP (plain TCP) port serving `events`; default 0 (ephemeral). */
  eventHubsPort?: number;
  /** Event hub name the AMQP endpoint serves (the connection string's `EntityPath`); default `twin-changes`, the app's `TWIN_EVENTS_HUB_NAME` default. */
  eventHubName?: string;
  /** Where the CA and server certificate live (generated once); default `<cwd>/.data/emulator`. */
  certDir?: string;
  /** Time for twins, events and throttling; default the system clock. */
  clock?: Clock;
  /** Event stream partitions; default 4. */
  partitionCount?: number;
  faults?: FaultInjection;
  /** Route device and module lifecycle events into `events` beside the twin changes; default true. */
  routeLifecycleEvents?: boolean;
  /** Quota tier; default `S1`. `off` disables throttling. */
  throttling?: ThrottleTier;
  units?: number;
  /** Return true to drop a desired notification before it reaches the device (lossy devices). */
  dropDesiredNotification?: DesiredNotificationFilter;
}

export interface EmulatorCounters {
  events: EventStreamCounters;
  device: DeviceEndpointCounters;
  /** Service requests refused with 429, per quota. */
  throttled: Record<ThrottledOperation, number>;
}

/** A running local IoT Hub: service API over HTTPS, device endpoint over MQTT/TLS, routed event stream (twin changes, lifecycle). */
export interface Emulator {
  readonly hubName: string;
  /** `HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=…` (no port: see `httpsPort`). */
  readonly serviceConnectionString: string;
  readonly httpsPort: number;
  readonly mqttPort: number;
  /**
   * The routed stream over AMQP for `@azure/event-hubs`: `connectionString` is
   * `Endpoint=sb://localhost:PORT;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=…;EntityPath=<eventHubName>;UseDevelopmentEmulator=true`
   * (a secret: never log it). Closed by `stop`.
   */
  readonly eventHubs: EventHubsEndpoint;
  readonly caPem: string;
  readonly caFile: string;
  /** `HostName=localhost;DeviceId=…;SharedAccessKey=…;GatewayHostName=localhost:<mqttPort>` for azure-iot-device. */
  deviceConnectionString(deviceId: string, moduleId?: string): string;
  /** An azure-iothub `Registry` for this emulator; closed with the emulator. */
  createRegistryClient(): Registry;

  createDevice(deviceId: string, options?: CreateDeviceOptions): DeviceIdentity;
  createModule(deviceId: string, moduleId: string, options?: CreateDeviceOptions): DeviceIdentity;
  deleteDevice(id: TwinId): void;
  getDevice(id: TwinId): DeviceIdentity;
  getTwin(id: TwinId): JsonObject;
  /** Back-end desired patch; `etag` undefined or `*` forces. Not throttled (in-process). */
  updateDesired(id: TwinId, desiredPatch: JsonObject, etag?: string): JsonObject;
  updateTwin(id: TwinId, patch: TwinPatch, etag?: string): JsonObject;
  replaceTwin(id: TwinId, replacement: TwinPatch, etag?: string): JsonObject;
  /** Device reported patch, as if sent over MQTT; returns the reported `$version`. */
  updateReported(id: TwinId, reportedPatch: JsonObject): number;
  query(sql: string, options?: RunTwinQueryOptions): TwinQueryPage;

  /** The routed stream; `append` routes an event of the caller's making (tests inject malformed ones), faults applied. */
  readonly events: EventStream & Pick<TwinChangeEventStream, "partitionOf" | "length" | "setFaults" | "append">;
  readonly counters: EmulatorCounters;
  setThrottling(tier: ThrottleTier): void;
  setDesiredNotificationFilter(filter: DesiredNotificationFilter | undefined): void;
  /** True once a connected device (or module) has subscribed to desired-property notifications. */
  isListeningForDesired(id: TwinId): boolean;
  /** Closes a device's MQTT connections (it goes offline and misses desired notifications until it reconnects). */
  disconnectDevice(id: TwinId): void;
  /** Closes the servers (HTTPS, MQTT, AMQP) and every Registry client it made. Idempotent. */
  stop(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  // The product in this process reaches the emulator through its settings (IOTHUB_EMULATOR_PORT/CA).
  useEmulatorHubEndpoint();
  const hub = new IotHub({
    ...(options.hubName === undefined ? {} : { hubName: options.hubName }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.partitionCount === undefined ? {} : { partitionCount: options.partitionCount }),
    ...(options.faults === undefined ? {} : { faults: options.faults }),
    ...(options.routeLifecycleEvents === undefined ? {} : { routeLifecycleEvents: options.routeLifecycleEvents }),
    ...(options.throttling === undefined ? {} : { throttling: options.throttling }),
    ...(options.units === undefined ? {} : { units: options.units }),
  });
  const certs = await ensureCertificates(options.certDir ?? join(process.cwd(), ".data", "emulator"));
  const host = options.host ?? "127.0.0.1";
  const service = await startServiceApi(hub, { key: certs.keyPem, cert: certs.certPem, host, port: options.httpsPort ?? 0 });
  const device = await startDeviceEndpoint(hub, {
    key: certs.keyPem,
    cert: certs.certPem,
    host,
    port: options.mqttPort ?? 0,
    ...(options.dropDesiredNotification === undefined ? {} : { dropDesiredNotification: options.dropDesiredNotification }),
  }).catch(async (error: unknown) => {
    await service.close();
    throw error;
  });
  const eventHubs = await startEventHubsEndpoint(hub.events, {
    eventHubName: options.eventHubName ?? "twin-changes",
    key: randomBytes(32).toString("base64"),
    host,
    port: options.eventHubsPort ?? 0,
  }).catch(async (error: unknown) => {
    await Promise.all([service.close(), device.close()]);
    throw error;
  });
  const clients: Array<{ close(): void }> = [];
  const serviceConnectionString = hub.serviceConnectionString();
  let stopped: Promise<void> | null = null;

  return {
    hubName: hub.hubName,
    serviceConnectionString,
    httpsPort: service.port,
    mqttPort: device.port,
    eventHubs,
    caPem: certs.caPem,
    caFile: certs.caFile,
    deviceConnectionString: (deviceId, moduleId) => {
      const identity = hub.registry.getDevice(toAddress({ deviceId, moduleId: moduleId ?? null }));
      const module = moduleId === undefined ? "" : `;ModuleId=${moduleId}`;
      return `HostName=${hub.hostName};DeviceId=${deviceId}${module};SharedAccessKey=${identity.authentication.symmetricKey.primaryKey};GatewayHostName=${hub.hostName}:${device.port}`;
    },
    createRegistryClient: () => {
      const client = createRegistryClientFor({ connectionString: serviceConnectionString, port: service.port, ca: certs.caPem });
      clients.push(client);
      return client.registry;
    },
    createDevice: (deviceId, createOptions) => hub.registry.createDevice(deviceId, createOptions),
    createModule: (deviceId, moduleId, createOptions) => hub.registry.createModule(deviceId, moduleId, createOptions),
    deleteDevice: (id) => {
      device.disconnect(toAddress(id));
      hub.registry.deleteDevice(id);
    },
    getDevice: (id) => hub.registry.getDevice(id),
    getTwin: (id) => hub.registry.getTwin(id),
    updateDesired: (id, desiredPatch, etag) => hub.registry.updateTwin(id, { properties: { desired: desiredPatch } }, etag),
    updateTwin: (id, patch, etag) => hub.registry.updateTwin(id, patch, etag),
    replaceTwin: (id, replacement, etag) => hub.registry.replaceTwin(id, replacement, etag),
    updateReported: (id, reportedPatch) => hub.registry.updateReported(id, reportedPatch),
    query: (sql, queryOptions) => {
      const parsed = parseTwinQuery(sql);
      return runTwinQuery(parsed, hub.registry.twinDocuments(parsed.source), queryOptions);
    },
    events: hub.events,
    get counters(): EmulatorCounters {
      return { events: hub.events.counters, device: { ...device.counters }, throttled: { ...hub.throttle.refused } };
    },
    setThrottling: (tier) => hub.throttle.setTier(tier),
    setDesiredNotificationFilter: (filter) => device.setDesiredNotificationFilter(filter),
    isListeningForDesired: (id) => device.isListeningForDesired(toAddress(id)),
    disconnectDevice: (id) => device.disconnect(toAddress(id)),
    stop: () => {
      stopped ??= (async () => {
        for (const client of clients) client.close();
        await Promise.all([service.close(), device.close(), eventHubs.close()]);
      })();
      return stopped;
    },
  };
}
