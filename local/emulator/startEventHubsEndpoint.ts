/**
 * An Event Hubs–compatible AMQP 1.0 endpoint over an `EventStream`, so the unmodified
 * `@azure/event-hubs` `EventHubConsumerClient` reads the emulator's routed events with a
 * connection string of the shape Microsoft's Event Hubs emulator uses:
 * `Endpoint=sb://localhost:PORT;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=<hub>;UseDevelopmentEmulator=true`
 * (the SDK then speaks plain AMQP, no TLS, SASL ANONYMOUS, and authorizes through CBS).
 *
 * What the client sees, as the service does it:
 * - CBS `put-token` on `$cbs`: the SAS token (`servicebus.windows.net:sastoken`) is checked against
 *   this endpoint's key (HMAC-SHA256 keyed with the key's UTF-8 bytes, as Service Bus does) and
 *   expiry; a bad token answers 401 `amqp:unauthorized-access`, an unknown entity 404
 *   `amqp:not-found`. Tokens are never logged or echoed. Links and management requests need a
 *   token whose audience covers their entity.
 * - `$management` READ of `com.microsoft:eventhub` (name, created_at, partition_count,
 *   partition_ids) and `com.microsoft:partition` (begin/last enqueued sequence number, last
 *   enqueued offset and time, is_partition_empty); an unknown partition answers 400
 *   `com.microsoft:argument-out-of-range`, an unknown hub 404 `amqp:not-found`.
 * - Receiver links on `<hub>/ConsumerGroups/<cg>/Partitions/<id>` with the
 *   `apache.org:selector-filter:string` start filter (offset `>`/`>=`, `@latest`, sequence number
 *   `>`/`>=`, enqueued time `>`), `com.microsoft:epoch` owner levels (a higher or equal level
 *   takes the partition: the others are detached with `amqp:link:stolen`), the receiver runtime
 *   metric capability (`last_enqueued_*` delivery annotations).
 * - Each event: body as one data section holding the JSON text (the SDK JSON-parses a data
 *   section, so `body` is the same object the stream holds — as with IoT Hub's routed
 *   `application/json` messages; a Buffer body goes as its bytes); application properties; AMQP properties
 *   `content-type`/`content-encoding`/`correlation-id`/`user-id`/`message-id` where the event's
 *   system properties carry them (`user-id` is binary in AMQP: the SDK's `systemProperties.userId`
 *   is then its bytes copied key by key, `{0: 108, …}`, the raw message's `userId` a Buffer);
 *   message annotations `x-opt-sequence-number` (long), `x-opt-offset` (string),
 *   `x-opt-enqueued-time` (timestamp), `x-opt-partition-key` and every other system property
 *   (`iothub-*`), `iothub-enqueuedtime` as a timestamp (the SDK turns it into epoch ms, as `az`
 *   shows it).
 * - Credit-based flow: never more deliveries than the link's credit; reading resumes when credit
 *   is added or the partition grows. Every event is taken from the stream with `stream.read` only
 *   when it can be sent at once, so the stream's "read" mark stays true.
 *
 * Limits of this fake: one event hub (its name fixed at start); any non-empty consumer group name
 * is accepted (each link keeps its own position; there is no consumer-group registry, and the
 * quota of 5 non-epoch readers per partition and group is not enforced); receive only (a
 * producer link is refused with `amqp:not-implemented`); one namespace key (manage/listen rights
 * are not told apart); no TLS, no WebSockets, no AAD tokens; no retention (beginning sequence number is always 0);
 * `x-opt-partition-key` is the device id (IoT Hub's choice of partition key when routing is
 * unconfirmed); a start sequence number past the end waits for that event instead of erroring;
 * no geo-replication (`georeplication_factor` absent); an open link outlives its token's expiry
 * (the service would detach it unless the client renews the token, which the SDK does).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { AddressInfo, Server, Socket } from "node:net";
import { create_container, message as amqpMessage, types, type Connection, type EventContext, type Message, type Receiver, type Sender } from "rhea";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import type { EventStream, StreamPosition } from "../EventStream";
import { parseSharedAccessSignature } from "./sharedAccessSignature";

export interface EventHubsEndpointOptions {
  /** The event hub's name (the connection string's `EntityPath`). */
  eventHubName: string;
  /** SAS policy name; default `RootManageSharedAccessKey`, as Microsoft's Event Hubs emulator. */
  keyName?: string;
  /** SAS key (any string; Event Hubs signs with its UTF-8 bytes). */
  key: string;
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** TCP port; default 0 (a free port). */
  port?: number;
  /** Host name in the connection string; default `localhost`. */
  hostName?: string;
  /** `createdOn` of the hub; default now. */
  createdOn?: Date;
  /** Time for token expiry; default `Date.now`. */
  now?: () => number;
}

/** A running endpoint: where it listens, the connection string to give a client, and `close`. */
export interface EventHubsEndpoint {
  readonly port: number;
  readonly eventHubName: string;
  /** `Endpoint=sb://localhost:PORT;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=…;UseDevelopmentEmulator=true` — a secret: do not log it. */
  readonly connectionString: string;
  /** Detaches every link, closes every connection and the listener. Idempotent. */
  close(): Promise<void>;
}

const selectorFilter = "apache.org:selector-filter:string";
const runtimeMetricCapability = "com.microsoft:enable-receiver-runtime-metric";
const epochProperty = "com.microsoft:epoch";
/** Fields of the AMQP properties section, keyed by the system-property name the Functions host uses. */
const propertiesSection: Record<string, string> = {
  "message-id": "message_id",
  "user-id": "user_id",
  to: "to",
  subject: "subject",
  "reply-to": "reply_to",
  "correlation-id": "correlation_id",
  "content-type": "content_type",
  "content-encoding": "content_encoding",
  "absolute-expiry-time": "absolute_expiry_time",
  "creation-time": "creation_time",
  "group-id": "group_id",
  "group-sequence": "group_sequence",
  "reply-to-group-id": "reply_to_group_id",
};
const timestampAnnotations = new Set(["x-opt-enqueued-time", "iothub-enqueuedtime"]);

interface AmqpErrorFields {
  condition: string;
  description: string;
}

/** The start position of a receiver link: a sequence number, or a position the stream must seek. */
type StartPosition = { sequenceNumber: number } | { latest: true } | StreamPosition;

/** One receiver link's feed: reads the partition from `next`, one event per unit of credit. */
interface PartitionFeed {
  sender: Sender;
  consumerGroup: string;
  partitionId: string;
  ownerLevel: number | undefined;
  runtimeMetric: boolean;
  next: number;
  waiting: boolean;
  abort: AbortController;
}

export async function startEventHubsEndpoint(stream: EventStream, options: EventHubsEndpointOptions): Promise<EventHubsEndpoint> {
  const hub = options.eventHubName;
  const keyName = options.keyName ?? "RootManageSharedAccessKey";
  const key = options.key;
  if (hub === "" || /[/\s]/.test(hub)) throw new RangeError(`eventHubName must be a non-empty name without '/' or spaces, got '${hub}'`);
  if (key === "") throw new RangeError("key must not be empty");
  const now = options.now ?? Date.now;
  const createdOn = options.createdOn ?? new Date();
  const container = create_container({ id: `emulator-event-hubs-${hub}` });
  /** Per connection: token audiences (lower-cased paths) with their expiry in ms. */
  const grants = new Map<Connection, Map<string, number>>();
  const feeds = new Map<Sender, PartitionFeed>();
  const sockets = new Set<Socket>();
  const connections = new Set<Connection>();

  const entityOf = (path: string): string => path.split("/")[0] ?? "";
  const sameHub = (name: string): boolean => name.toLowerCase() === hub.toLowerCase();

  /** Validates a SAS token; returns its audience path (`hub/…`, no scheme/host) or an error. */
  const checkToken = (token: unknown): { path: string; expiresMs: number } | AmqpErrorFields => {
    const fields = typeof token === "string" ? parseSharedAccessSignature(token) : null;
    const unauthorized = (why: string): AmqpErrorFields => ({ condition: "amqp:unauthorized-access", description: `Unauthorized access. ${why}` });
    if (fields === null) return unauthorized("The token is not a SharedAccessSignature.");
    if (fields.skn !== keyName) return unauthorized("The token's key name is not a policy of this namespace.");
    const expiry = Number(fields.se);
    if (!Number.isFinite(expiry) || expiry * 1000 <= now()) return unauthorized("The token has expired.");
    const expected = createHmac("sha256", Buffer.from(key, "utf8")).update(`${encodeURIComponent(fields.sr)}\n${fields.se}`).digest();
    const given = Buffer.from(fields.sig, "base64");
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return unauthorized("The token's signature does not match the key.");
    return { path: audiencePath(fields.sr), expiresMs: expiry * 1000 };
  };

  const notFound = (entity: string): AmqpErrorFields => ({
    condition: "amqp:not-found",
    description: `The messaging entity '${entity}' could not be found. This endpoint serves the event hub '${hub}'.`,
  });

  /** True when the connection holds an unexpired token whose audience covers `path`. */
  const authorized = (connection: Connection, path: string): boolean => {
    const wanted = path.toLowerCase();
    for (const [audience, expiresMs] of grants.get(connection) ?? []) {
      if (expiresMs > now() && (audience === "" || wanted === audience || wanted.startsWith(`${audience}/`))) return true;
    }
    return false;
  };

  const reply = (context: EventContext, request: Message, response: Omit<Message, "body"> & { body?: unknown }): void => {
    const replyTo = request.reply_to;
    const sender = context.connection.find_sender((s: Sender) => s.target?.address === replyTo || s.name === replyTo) as Sender | undefined;
    const message: Message = { ...response, body: response.body, correlation_id: request.message_id, ...(replyTo === undefined ? {} : { to: replyTo }) };
    if (sender !== undefined) sender.send(message);
  };
  const status = (code: number, description: string, condition?: string): Record<string, unknown> => ({
    "status-code": types.wrap_int(code),
    "status-description": description,
    ...(condition === undefined ? {} : { "error-condition": condition }),
  });
  const statusOf = (error: AmqpErrorFields): number =>
    error.condition === "amqp:unauthorized-access" ? 401 : error.condition === "amqp:not-found" ? 404 : 400;

  const onCbs = (context: EventContext, request: Message): void => {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    if (props.operation !== "put-token") {
      reply(context, request, { application_properties: status(400, `Unsupported CBS operation '${String(props.operation)}'.`, "amqp:not-implemented") });
      return;
    }
    const checked = checkToken(request.body);
    if ("condition" in checked) {
      reply(context, request, { application_properties: status(401, checked.description, checked.condition) });
      return;
    }
    const name = typeof props.name === "string" ? audiencePath(props.name) : "";
    const target = name === "" ? checked.path : name;
    if (target !== "" && !sameHub(entityOf(target))) {
      reply(context, request, { application_properties: status(404, notFound(entityOf(target)).description, "amqp:not-found") });
      return;
    }
    const connectionGrants = grants.get(context.connection) ?? new Map<string, number>();
    grants.set(context.connection, connectionGrants);
    connectionGrants.set(checked.path.toLowerCase(), checked.expiresMs);
    reply(context, request, { application_properties: status(202, "Accepted") });
  };

  const onManagement = (context: EventContext, request: Message): void => {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    const fail = (error: AmqpErrorFields): void =>
      reply(context, request, { application_properties: { operation: props.operation, ...status(statusOf(error), error.description, error.condition) } });
    const token = props.security_token;
    if (token !== undefined) {
      const checked = checkToken(token);
      if ("condition" in checked) return fail(checked);
    } else if (!authorized(context.connection, `${hub}/$management`)) {
      return fail({ condition: "amqp:unauthorized-access", description: "Unauthorized access. Put a token for the $management audience first." });
    }
    if (props.operation !== "READ") return fail({ condition: "amqp:not-implemented", description: `Unsupported management operation '${String(props.operation)}'.` });
    const name = String(props.name ?? "");
    if (!sameHub(name)) return fail(notFound(name));
    const ok = status(200, "OK");
    if (props.type === "com.microsoft:eventhub") {
      reply(context, request, {
        application_properties: { operation: "READ", ...ok },
        body: {
          name: hub,
          type: "com.microsoft:eventhub",
          created_at: createdOn,
          partition_count: types.wrap_int(stream.partitionIds.length),
          // An AMQP array of str8, as the service sends it (clients in other languages cast it to string[]).
          partition_ids: types.wrap_array([...stream.partitionIds], 0xa1, undefined),
        },
      });
      return;
    }
    if (props.type === "com.microsoft:partition") {
      const partitionId = String(props.partition ?? "");
      if (!stream.partitionIds.includes(partitionId)) return fail(partitionOutOfRange(partitionId, stream.partitionIds));
      const last = stream.lastEnqueued(partitionId);
      reply(context, request, {
        application_properties: { operation: "READ", ...ok },
        body: {
          name: hub,
          type: "com.microsoft:partition",
          partition: partitionId,
          begin_sequence_number: types.wrap_long(0),
          last_enqueued_sequence_number: types.wrap_long(last?.sequenceNumber ?? -1),
          last_enqueued_offset: last?.offset ?? "-1",
          last_enqueued_time_utc: new Date(last === undefined ? 0 : Date.parse(last.enqueuedTimeUtc)),
          is_partition_empty: last === undefined,
        },
      });
      return;
    }
    fail({ condition: "com.microsoft:argument-error", description: `Unsupported management type '${String(props.type)}'.` });
  };

  const stopFeed = (sender: Sender): void => {
    const feed = feeds.get(sender);
    if (feed === undefined) return;
    feeds.delete(sender);
    feed.abort.abort();
  };

  const pump = (feed: PartitionFeed): void => {
    const { sender, partitionId } = feed;
    if (feed.abort.signal.aborted) return;
    while (sender.sendable()) {
      const [event] = stream.read(partitionId, feed.next, 1);
      if (event === undefined) {
        if (!feed.waiting) {
          feed.waiting = true;
          void stream.waitFor(partitionId, feed.next, feed.abort.signal).then(() => {
            feed.waiting = false;
            pump(feed);
          });
        }
        return;
      }
      sender.send(toAmqpMessage(event, feed.runtimeMetric ? stream.lastEnqueued(partitionId) : undefined));
      feed.next = event.sequenceNumber + 1;
    }
  };

  const openPartitionFeed = (context: EventContext, sender: Sender): void => {
    const address = String(sender.source?.address ?? "");
    const parts = address.split("/");
    if (parts.length !== 5 || parts[1]?.toLowerCase() !== "consumergroups" || parts[3]?.toLowerCase() !== "partitions") {
      if (address === "$cbs" || address === "$management" || address === `${hub}/$management`) return;
      sender.close(sameHub(entityOf(address)) ? { condition: "amqp:not-found", description: `No such source '${address}': receive from ${hub}/ConsumerGroups/<group>/Partitions/<id>.` } : notFound(entityOf(address)));
      return;
    }
    const [entity, , consumerGroup, , partitionId] = parts as [string, string, string, string, string];
    if (!sameHub(entity)) return sender.close(notFound(entity));
    if (consumerGroup === "") return sender.close(notFound(`${entity}/ConsumerGroups/`));
    if (!authorized(context.connection, address)) {
      return sender.close({ condition: "amqp:unauthorized-access", description: `Unauthorized access. Put a token for the audience of '${address}' first.` });
    }
    if (!stream.partitionIds.includes(partitionId)) return sender.close(partitionOutOfRange(partitionId, stream.partitionIds));
    const start = parseStartFilter(sender.source?.filter?.[selectorFilter]);
    if ("condition" in start) return sender.close(start);

    const properties = (sender.properties ?? {}) as Record<string, unknown>;
    const ownerLevel = typeof properties[epochProperty] === "number" ? (properties[epochProperty] as number) : undefined;
    const rivals = [...feeds.values()].filter((f) => f.partitionId === partitionId && f.consumerGroup.toLowerCase() === consumerGroup.toLowerCase());
    const highest = Math.max(-1, ...rivals.map((f) => f.ownerLevel ?? -1));
    if (ownerLevel === undefined ? highest >= 0 : ownerLevel < highest) {
      return sender.close({
        condition: "amqp:link:stolen",
        description: `A receiver with epoch '${highest}' already reads partition '${partitionId}' of consumer group '${consumerGroup}'; this receiver (epoch '${ownerLevel ?? "none"}') cannot be created.`,
      });
    }
    if (ownerLevel !== undefined) {
      for (const rival of rivals) {
        stopFeed(rival.sender);
        rival.sender.close({
          condition: "amqp:link:stolen",
          description: `New receiver with higher epoch of '${ownerLevel}' is created hence current receiver with epoch '${rival.ownerLevel ?? "none"}' is getting disconnected.`,
        });
      }
    }

    const capabilities = sender.desired_capabilities;
    const runtimeMetric = (Array.isArray(capabilities) ? capabilities : [capabilities]).includes(runtimeMetricCapability);
    const feed: PartitionFeed = {
      sender,
      consumerGroup,
      partitionId,
      ownerLevel,
      runtimeMetric,
      next: startSequenceNumber(stream, partitionId, start),
      waiting: false,
      abort: new AbortController(),
    };
    feeds.set(sender, feed);
    pump(feed);
  };

  container.on("sender_open", (context: EventContext) => {
    const sender = context.sender!;
    sender.set_source(sender.source);
    sender.set_target(sender.target);
    openPartitionFeed(context, sender);
  });
  container.on("receiver_open", (context: EventContext) => {
    const receiver = context.receiver!;
    receiver.set_source(receiver.source);
    receiver.set_target(receiver.target);
    const address = String(receiver.target?.address ?? "");
    if (address !== "$cbs" && address !== "$management" && address !== `${hub}/$management`) {
      receiver.close(
        sameHub(entityOf(address))
          ? { condition: "amqp:not-implemented", description: "The emulator's Event Hubs endpoint serves consumers only: it does not accept events." }
          : notFound(entityOf(address)),
      );
    }
  });
  container.on("message", (context: EventContext) => {
    const receiver = context.receiver as Receiver;
    const address = String(receiver.target?.address ?? "");
    const request = context.message!;
    if (address === "$cbs") onCbs(context, request);
    else if (address === "$management" || address === `${hub}/$management`) onManagement(context, request);
    // Anything else came on a link refused at attach: there is no one to answer.
  });
  container.on("sendable", (context: EventContext) => {
    const feed = feeds.get(context.sender!);
    if (feed !== undefined) pump(feed);
  });
  container.on("sender_draining", (context: EventContext) => {
    const sender = context.sender! as Sender & { set_drained(drained: boolean): void };
    const feed = feeds.get(sender);
    if (feed !== undefined) pump(feed);
    sender.set_drained(true);
  });
  const forget = (context: EventContext): void => {
    if (context.sender !== undefined) stopFeed(context.sender);
  };
  container.on("sender_close", forget);
  container.on("sender_error", forget);
  // A session may end without detaching its links first.
  container.on("session_close", (context: EventContext) => {
    for (const [sender] of feeds) if (sender.session === context.session) stopFeed(sender);
  });
  const dropConnection = (context: EventContext): void => {
    grants.delete(context.connection);
    connections.delete(context.connection);
    for (const [sender] of feeds) if (sender.connection === context.connection) stopFeed(sender);
  };
  container.on("connection_open", (context: EventContext) => connections.add(context.connection));
  container.on("connection_close", dropConnection);
  container.on("disconnected", dropConnection);
  // Errors belong to one client connection; the endpoint keeps serving the others.
  container.on("error", () => undefined);
  container.on("connection_error", () => undefined);
  container.on("protocol_error", () => undefined);

  const server = container.listen({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 }) as Server;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.once("listening", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostName = options.hostName ?? "localhost";
  let closed: Promise<void> | null = null;

  return {
    port,
    eventHubName: hub,
    connectionString: `Endpoint=sb://${hostName}:${port};SharedAccessKeyName=${keyName};SharedAccessKey=${key};EntityPath=${hub};UseDevelopmentEmulator=true`,
    close: () => {
      closed ??= (async () => {
        for (const sender of [...feeds.keys()]) stopFeed(sender);
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Close each connection with an AMQP close (clients see a clean shutdown), then drop what is left.
        for (const connection of connections) if (connection.is_open()) connection.close({ condition: "amqp:connection:forced", description: "The emulator is stopping." });
        const socketsClosed = [...sockets].map((socket) => new Promise<void>((resolve) => socket.once("close", () => resolve())));
        const grace = new Promise<void>((resolve) => setTimeout(resolve, 500).unref());
        await Promise.race([Promise.all(socketsClosed), grace]);
        for (const socket of sockets) socket.destroy();
        await serverClosed;
      })();
      return closed;
    },
  };
}

/** `sb://host:port/hub/…` or `hub/…` → `hub/…` (no leading or trailing slash). */
function audiencePath(audience: string): string {
  const withoutScheme = audience.replace(/^[a-z]+:\/\/[^/]*/i, "");
  return withoutScheme.replace(/^\/+/, "").replace(/\/+$/, "");
}

function partitionOutOfRange(partitionId: string, partitionIds: readonly string[]): AmqpErrorFields {
  return {
    condition: "com.microsoft:argument-out-of-range",
    description: `The specified partition '${partitionId}' is invalid for an EventHub partition sender or receiver. It should be one of ${partitionIds.join(", ")}.`,
  };
}

/**
 * Parses the SDK's selector filter: `amqp.annotation.x-opt-offset > '-1'`, `… >= '120'`,
 * `… > '@latest'`, `amqp.annotation.x-opt-sequence-number >= '5'`,
 * `amqp.annotation.x-opt-enqueued-time > '1700000000000'`. No filter starts at the beginning.
 */
export function parseStartFilter(filter: unknown): StartPosition | AmqpErrorFields {
  const text = typeof filter === "string" ? filter : (filter as { value?: unknown } | undefined)?.value;
  if (text === undefined || text === null) return { sequenceNumber: 0 };
  const match = /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/i.exec(String(text));
  const invalid = { condition: "com.microsoft:argument-error", description: `Invalid start position filter '${String(text)}'.` };
  if (match === null) return invalid;
  const [, annotation, operator, value] = match as unknown as [string, string, string, string];
  const inclusive = operator === ">=";
  switch (annotation.toLowerCase()) {
    case "x-opt-offset":
      if (value === "@latest") return { latest: true };
      return /^-?\d+$/.test(value) ? { offset: value, inclusive } : invalid;
    case "x-opt-sequence-number": {
      if (!/^-?\d+$/.test(value)) return invalid;
      const n = Number(value);
      return { sequenceNumber: Math.max(0, inclusive ? n : n + 1) };
    }
    default: {
      if (!/^-?\d+$/.test(value)) return invalid;
      return { enqueuedAfterMs: inclusive ? Number(value) - 1 : Number(value) };
    }
  }
}

function startSequenceNumber(stream: EventStream, partitionId: string, start: StartPosition): number {
  if ("sequenceNumber" in start) return start.sequenceNumber;
  if ("latest" in start) return (stream.lastEnqueued(partitionId)?.sequenceNumber ?? -1) + 1;
  return stream.seek(partitionId, start);
}

/** One routed event as Event Hubs delivers it (see the file's header for the mapping). */
export function toAmqpMessage(event: ReceivedEvent, last?: { sequenceNumber: number; offset: string; enqueuedTimeUtc: string }): Message {
  const body = Buffer.isBuffer(event.body) ? event.body : Buffer.from(JSON.stringify(event.body) ?? "", "utf8");
  const message: Message = { body: amqpMessage.data_section(body) };
  const fields = message as unknown as Record<string, unknown>;
  const annotations: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event.systemProperties)) {
    if (value === undefined || value === null) continue;
    const field = propertiesSection[name];
    // user-id is binary in AMQP (rhea's typing says string).
    if (field === "user_id") fields.user_id = Buffer.isBuffer(value) ? value : Buffer.from(String(value), "utf8");
    else if (field !== undefined) fields[field] = value;
    else if (name.startsWith("x-opt-")) continue;
    else annotations[name] = timestampAnnotations.has(name) && typeof value === "string" ? new Date(value) : value;
  }
  const deviceId = event.systemProperties["iothub-connection-device-id"];
  const partitionKey = event.systemProperties["x-opt-partition-key"] ?? deviceId;
  message.message_annotations = {
    ...annotations,
    "x-opt-sequence-number": types.wrap_long(event.sequenceNumber),
    "x-opt-offset": event.offset,
    "x-opt-enqueued-time": new Date(event.enqueuedTimeUtc),
    ...(typeof partitionKey === "string" ? { "x-opt-partition-key": partitionKey } : {}),
  };
  message.application_properties = { ...event.properties };
  if (last !== undefined) {
    message.delivery_annotations = {
      last_enqueued_sequence_number: types.wrap_long(last.sequenceNumber),
      last_enqueued_offset: last.offset,
      last_enqueued_time_utc: new Date(last.enqueuedTimeUtc),
      runtime_info_retrieval_time_utc: new Date(),
    };
  }
  return message;
}
