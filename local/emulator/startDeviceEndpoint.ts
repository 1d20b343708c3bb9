import { listen } from "../listen";
import { createBroker, type AuthenticateError, type Client } from "aedes";
import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:tls";
import type { JsonObject } from "../../shared/twin/json";
import { isJsonObject, type Json } from "../../shared/twin/json";
import type { TwinAddress } from "./DeviceRegistry";
import type { IotHub } from "./IotHub";
import { IotHubError } from "./IotHubError";
import { parseSharedAccessSignature, verifySharedAccessSignature } from "./sharedAccessSignature";

export interface DeviceEndpointOptions {
  key: string;
  cert: string;
  port?: number;
  host?: string;
  /**
   * Decides, per desired notification, whether to drop it before it reaches the device (to
   * simulate a lossy device). The twin still changes and the event is still emitted.
   */
  dropDesiredNotification?: DesiredNotificationFilter;
}

export type DesiredNotificationFilter = (address: TwinAddress, notification: JsonObject) => boolean;

export interface DeviceEndpointCounters {
  connections: number;
  twinGets: number;
  reportedUpdates: number;
  reportedRejected: number;
  telemetryMessages: number;
  desiredNotificationsSent: number;
  desiredNotificationsDropped: number;
  /** Desired changes for a device with no connected client subscribed to desired updates. */
  desiredNotificationsMissed: number;
}

export interface DeviceEndpoint {
  server: Server;
  port: number;
  readonly counters: DeviceEndpointCounters;
  setDesiredNotificationFilter(filter: DesiredNotificationFilter | undefined): void;
  /** True when a connected client of this device (or module) is subscribed to desired notifications. */
  isListeningForDesired(address: TwinAddress): boolean;
  /** Disconnects every client of a device (or module): how a test makes a device go offline. */
  disconnect(address: TwinAddress): void;
  close(): Promise<void>;
}

const desiredTopic = "$iothub/twin/PATCH/properties/desired/#";

/**
 * IoT Hub's device-facing MQTT endpoint over TLS (aedes 0.51, CommonJS, in-process), enough for
 * azure-iot-device + azure-iot-device-mqtt: SAS authentication, twin GET, reported PATCH, desired
 * notifications, connection state. Limits: no cloud-to-device messages or direct methods
 * (subscriptions are accepted, nothing is sent), telemetry is accepted and dropped, no X.509,
 * no persistent sessions — a device that is offline or not subscribed misses desired
 * notifications, as on IoT Hub, and must GET its twin after reconnecting.
 */
export async function startDeviceEndpoint(hub: IotHub, options: DeviceEndpointOptions): Promise<DeviceEndpoint> {
  const counters: DeviceEndpointCounters = {
    connections: 0,
    twinGets: 0,
    reportedUpdates: 0,
    reportedRejected: 0,
    telemetryMessages: 0,
    desiredNotificationsSent: 0,
    desiredNotificationsDropped: 0,
    desiredNotificationsMissed: 0,
  };
  let dropFilter = options.dropDesiredNotification;
  const addresses = new WeakMap<Client, TwinAddress>();
  const clientsByKey = new Map<string, Set<Client>>();

  const broker = createBroker({
    maxClientsIdLength: 512,
    authenticate: (client, username, password, done) => {
      const address = authenticateDevice(hub, client.id, username, password);
      if (address === null) {
        const error = new Error("Not authorized: bad device SAS token, unknown or disabled device") as AuthenticateError;
        error.returnCode = 5;
        done(error, false);
        return;
      }
      addresses.set(client, address);
      done(null, true);
    },
    authorizeSubscribe: (client, subscription, done) => {
      const address = addresses.get(client);
      if (address !== undefined && allowedSubscription(subscription.topic, address)) done(null, subscription);
      else done(new Error(`Subscription to '${subscription.topic}' is not allowed`));
    },
    authorizePublish: (client, packet, done) => {
      const address = client === null ? undefined : addresses.get(client);
      if (address !== undefined && allowedPublish(packet.topic, address)) done(null);
      else done(new Error(`Publishing to '${packet.topic}' is not allowed`));
    },
  });

  broker.on("clientReady", (client) => {
    const address = addresses.get(client);
    if (address === undefined) return;
    counters.connections += 1;
    const key = keyOf(address);
    const set = clientsByKey.get(key) ?? new Set<Client>();
    set.add(client);
    clientsByKey.set(key, set);
    hub.registry.setConnectionState(address, "Connected");
  });
  broker.on("clientDisconnect", (client) => {
    const address = addresses.get(client);
    if (address === undefined) return;
    const set = clientsByKey.get(keyOf(address));
    set?.delete(client);
    if (set === undefined || set.size === 0) {
      clientsByKey.delete(keyOf(address));
      hub.registry.setConnectionState(address, "Disconnected");
    }
  });

  broker.on("publish", (packet, client) => {
    if (client === null) return;
    const address = addresses.get(client);
    if (address === undefined) return;
    if (!hub.registry.hasDevice(address) || hub.registry.getDevice(address).status !== "enabled") {
      // Deleted or disabled since it connected: IoT Hub drops the connection.
      client.close();
      return;
    }
    const [path, query = ""] = packet.topic.split("?", 2) as [string, string?];
    const rid = new URLSearchParams(query).get("$rid") ?? "";
    const reply = (status: number, extra: string, body?: unknown): void =>
      publishTo(client, `$iothub/twin/res/${status}/?$rid=${encodeURIComponent(rid)}${extra}`, body);
    try {
      if (path === "$iothub/twin/GET/") {
        counters.twinGets += 1;
        hub.throttle.consume("twinRead");
        reply(200, "", hub.registry.deviceView(address));
      } else if (path === "$iothub/twin/PATCH/properties/reported/") {
        let patch: unknown;
        try {
          patch = JSON.parse(packet.payload.toString());
        } catch {
          throw new IotHubError(400, "ArgumentInvalid", "Reported properties patch is not valid JSON");
        }
        if (!isJsonObject(patch as Json)) throw new IotHubError(400, "ArgumentInvalid", "Reported properties patch must be a JSON object");
        hub.throttle.consume("twinUpdate");
        const version = hub.registry.updateReported(address, patch as JsonObject);
        counters.reportedUpdates += 1;
        reply(204, `&$version=${version}`);
      } else {
        counters.telemetryMessages += 1;
      }
    } catch (error) {
      counters.reportedRejected += 1;
      const hubError = error instanceof IotHubError ? error : new IotHubError(500, "ServerError", "Internal error in the IoT Hub emulator");
      reply(hubError.status, "", { Message: `ErrorCode:${hubError.code};${hubError.message}` });
    }
  });

  const desiredSubscribers = (address: TwinAddress): Client[] =>
    [...(clientsByKey.get(keyOf(address)) ?? [])].filter((c) => Object.hasOwn((c as Client & { subscriptions: object }).subscriptions, desiredTopic));

  const unsubscribe = hub.onDesiredChange((address, notification) => {
    const subscribed = desiredSubscribers(address);
    if (subscribed.length === 0) {
      counters.desiredNotificationsMissed += 1;
      return;
    }
    if (dropFilter?.(address, notification) === true) {
      counters.desiredNotificationsDropped += 1;
      return;
    }
    counters.desiredNotificationsSent += 1;
    for (const client of subscribed) {
      publishTo(client, `$iothub/twin/PATCH/properties/desired/?$version=${String(notification.$version)}`, notification);
    }
  });

  const server = createServer({ key: options.key, cert: options.cert }, (socket) => broker.handle(socket));
  await listen(server, options.port, options.host);

  let closed: Promise<void> | null = null;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    counters,
    setDesiredNotificationFilter: (filter) => {
      dropFilter = filter;
    },
    isListeningForDesired: (address) => desiredSubscribers(address).length > 0,
    disconnect: (address) => {
      for (const client of clientsByKey.get(keyOf(address)) ?? []) client.close();
    },
    close: () => {
      closed ??= (async () => {
        unsubscribe();
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await serverClosed;
      })();
      return closed;
    },
  };
}

function publishTo(client: Client, topic: string, body: unknown): void {
  const payload = Buffer.from(body === undefined ? "" : JSON.stringify(body));
  client.publish({ cmd: "publish", topic, payload, qos: 0, retain: false, dup: false }, () => undefined);
}

function keyOf(address: TwinAddress): string {
  return address.moduleId === null ? address.deviceId : `${address.deviceId}/${address.moduleId}`;
}

/** Checks the device SAS (`sr=<host>/devices/<id>[/modules/<mid>]`, no `skn`) against the identity's keys. */
function authenticateDevice(hub: IotHub, clientId: string, username: string | undefined, password: Buffer | undefined): TwinAddress | null {
  const slash = clientId.indexOf("/");
  const address: TwinAddress = slash < 0 ? { deviceId: clientId, moduleId: null } : { deviceId: clientId.slice(0, slash), moduleId: clientId.slice(slash + 1) };
  if (username !== undefined && !username.toLowerCase().startsWith(`${hub.hostName.toLowerCase()}/${clientId.toLowerCase()}/`)) {
    // The port may follow the host name when HostName carries it.
    if (!username.startsWith(`${hub.hostName}:`)) return null;
  }
  const fields = parseSharedAccessSignature(password?.toString("utf8"));
  if (fields === null || !hub.registry.hasDevice(address)) return null;
  const expectedResource = `/devices/${encodeURIComponent(address.deviceId)}${address.moduleId === null ? "" : `/modules/${encodeURIComponent(address.moduleId)}`}`;
  const sr = fields.sr.toLowerCase();
  const host = hub.hostName.toLowerCase();
  if (!sr.startsWith(host) || !sr.endsWith(expectedResource.toLowerCase())) return null;
  const identity = hub.registry.getDevice(address);
  if (identity.status !== "enabled") return null;
  const keys = [identity.authentication.symmetricKey.primaryKey, identity.authentication.symmetricKey.secondaryKey];
  return verifySharedAccessSignature(fields, keys, hub.authClock.now()) ? address : null;
}

function allowedSubscription(topic: string, address: TwinAddress): boolean {
  const own = address.moduleId === null ? `devices/${address.deviceId}/` : `devices/${address.deviceId}/modules/${address.moduleId}/`;
  return (
    topic === "$iothub/twin/res/#" ||
    topic === desiredTopic ||
    topic === "$iothub/methods/POST/#" ||
    (topic.startsWith(own) && topic.endsWith("/#") && !topic.slice(own.length).includes("+"))
  );
}

function allowedPublish(topic: string, address: TwinAddress): boolean {
  const own = address.moduleId === null ? `devices/${address.deviceId}/` : `devices/${address.deviceId}/modules/${address.moduleId}/`;
  return (
    topic.startsWith("$iothub/twin/GET/") ||
    topic.startsWith("$iothub/twin/PATCH/properties/reported/") ||
    topic.startsWith("$iothub/methods/res/") ||
    topic.startsWith(`${own}messages/events/`)
  );
}
