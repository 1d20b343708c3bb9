import { z } from "zod";
import { isTwinId, TWIN_ID_RULE } from "../twin/isTwinId";
import { isJsonObject, type Json, type JsonObject } from "../twin/json";
import { storableText } from "../twin/storableText";
import { storableTime } from "../twin/storableTime";
import type { Twin, TwinKey } from "../twin/Twin";
import { MAX_DEPTH, storableDeadLetter, type DeadLetter } from "./storableDeadLetter";
import type { LifecycleEvent, TwinChangeEvent } from "../twin/TwinChangeEvent";

export { storableJson, type DeadLetter } from "./storableDeadLetter";

export interface DecodedBatch {
  events: TwinChangeEvent[];
  /** Device and module lifecycle notifications (create/delete), in batch order. */
  lifecycle: LifecycleEvent[];
  /**
   * Events whose system properties name a source other than twin changes and device lifecycle
   * (telemetry, connection state…) on the same hub: counted, not processed. An event whose source
   * cannot be told is a dead letter, never counted here.
   */
  ignored: number;
  deadLetters: DeadLetter[];
}

const TWIN_CHANGE_SOURCE = "twinchangeevents";
const LIFECYCLE_SOURCE = "devicelifecycleevents";

/**
 * Each trigger metadata field is read on its own and leniently: one malformed field makes only that
 * field unusable (a bad partitionId is an unknown partition), never the others.
 */
const metadataArray = z.array(z.unknown());
const partitionIdSchema = z.union([
  z.string().min(1).max(128).refine((text) => storableText(text)),
  z.number().int().nonnegative().transform(String),
]);

interface TriggerMetadata {
  propertiesArray: unknown[] | undefined;
  systemPropertiesArray: unknown[] | undefined;
  enqueuedTimeUtcArray: unknown[] | undefined;
  sequenceNumberArray: unknown[] | undefined;
  partitionId: string | undefined;
}

// Sections are checked for shape here; their content was already walked by findUnusable.
const sectionSchema = z.custom<JsonObject>((value) => isJsonObject(value as Json), { message: "must be a JSON object" });
const twinVersion = z.number().int().nonnegative();
const bodySchema = z.object({
  version: twinVersion,
  etag: z.string().optional(),
  tags: sectionSchema.optional(),
  properties: z.object({ desired: sectionSchema.optional(), reported: sectionSchema.optional() }).optional(),
});
/** A lifecycle body is the twin; a delete's twin may come without a version (then the event carries no twin). */
const lifecycleBodySchema = bodySchema.extend({
  version: twinVersion.optional(),
  deviceId: z.string().optional(),
  moduleId: z.string().nullable().optional(),
});

const twinOpType = z.enum(["updateTwin", "replaceTwin"], { message: 'opType must be "updateTwin" or "replaceTwin"' });
const lifecycleOpType = z.enum(["createDeviceIdentity", "deleteDeviceIdentity"], { message: 'opType must be "createDeviceIdentity" or "deleteDeviceIdentity"' });

/**
 * Decodes the Event Hub trigger's input for `cardinality: 'many'` — the messages array and the
 * trigger metadata (`propertiesArray`, `systemPropertiesArray`, `enqueuedTimeUtcArray`,
 * `sequenceNumberArray`, `partitionContext`). Bodies may be objects, JSON strings or Buffers (a
 * UTF-8 BOM is allowed). Never throws: every message ends as a twin-change event, a lifecycle
 * event, an ignored count or a dead letter. Whatever an event delivers here can be stored and
 * evaluated: ids follow IoT Hub's rule, text holds no NUL or lone surrogate, versions are safe
 * non-negative integers and `$lastUpdated` dates lie in years 0001–9999; anything else is a dead
 * letter naming what and where.
 */
export function decodeTwinChanges(messages: unknown, triggerMetadata: unknown): DecodedBatch {
  const out: DecodedBatch = { events: [], lifecycle: [], ignored: 0, deadLetters: [] };
  const list = Array.isArray(messages) ? messages : [messages];
  const metadata = readMetadata(triggerMetadata);
  const { partitionId } = metadata;

  list.forEach((message, index) => {
    let properties: Record<string, unknown> = {};
    let systemProperties: Record<string, unknown> | undefined;
    let sequenceNumber: number | undefined;
    const deadLetter = (reason: string): void => {
      let enqueuedTimeUtc: unknown = null;
      let hint: string | undefined;
      try {
        enqueuedTimeUtc = metadata.enqueuedTimeUtcArray?.[index] ?? null;
        const appId = own(properties, "deviceId");
        hint = typeof appId === "string" && appId !== "" ? appId : stringOr(own(systemProperties ?? {}, "iothub-connection-device-id"));
      } catch {
        // a hostile object's getter: the letter goes without the hint
      }
      const letter = { index, reason, deviceId: hint, partitionId, sequenceNumber };
      try {
        out.deadLetters.push(storableDeadLetter({ ...letter, raw: { body: bodyForRecord(message), properties, systemProperties: systemProperties ?? null, enqueuedTimeUtc } }));
      } catch (error) {
        // Only an object whose reading throws (a proxy, a getter) gets here: keep the reason, say the raw event could not be copied.
        const why = error instanceof Error ? error.name : "error";
        out.deadLetters.push(storableDeadLetter({ ...letter, raw: { unreadable: `the event could not be copied (${why})` } }));
      }
    };
    try {
      properties = asRecord(metadata.propertiesArray?.[index]) ?? {};
      systemProperties = asRecord(metadata.systemPropertiesArray?.[index]);
      // Known before anything can fail, so that even an unattributable event's dead letter has its position.
      sequenceNumber = toSequenceNumber(metadata.sequenceNumberArray?.[index] ?? own(systemProperties ?? {}, "x-opt-sequence-number") ?? own(systemProperties ?? {}, "sequenceNumber"));
      if (!systemProperties) {
        return deadLetter("cannot attribute the event: the trigger metadata holds no system properties for it (systemPropertiesArray), so its source is unknown");
      }
      const source = own(systemProperties, "iothub-message-source");
      if (typeof source !== "string" || source === "") {
        return deadLetter("cannot attribute the event: its system properties carry no iothub-message-source");
      }
      const kind = source.toLowerCase();
      if (kind !== TWIN_CHANGE_SOURCE && kind !== LIFECYCLE_SOURCE) {
        out.ignored++;
        return;
      }
      const enqueuedTimeUtc = metadata.enqueuedTimeUtcArray?.[index];
      if (kind === TWIN_CHANGE_SOURCE) {
        const event = decodeTwinChange(message, properties, systemProperties, enqueuedTimeUtc);
        if (typeof event === "string") return deadLetter(event);
        out.events.push({ ...event, sequenceNumber, partitionId, index });
      } else {
        const event = decodeLifecycle(message, properties, systemProperties, enqueuedTimeUtc);
        if (typeof event === "string") return deadLetter(event);
        out.lifecycle.push({ ...event, sequenceNumber, partitionId, index });
      }
    } catch (error) {
      deadLetter(`could not decode the event: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  return out;
}

function readMetadata(triggerMetadata: unknown): TriggerMetadata {
  const source = asRecord(triggerMetadata) ?? {};
  const field = <T>(schema: z.ZodType<T>, read: () => unknown): T | undefined => {
    try {
      const parsed = schema.safeParse(read());
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    propertiesArray: field(metadataArray, () => own(source, "propertiesArray")),
    systemPropertiesArray: field(metadataArray, () => own(source, "systemPropertiesArray")),
    enqueuedTimeUtcArray: field(metadataArray, () => own(source, "enqueuedTimeUtcArray")),
    sequenceNumberArray: field(metadataArray, () => own(source, "sequenceNumberArray")),
    partitionId: field(partitionIdSchema, () => own(asRecord(own(source, "partitionContext")) ?? {}, "partitionId")),
  };
}

type DecodedTwinChange = Omit<TwinChangeEvent, "sequenceNumber" | "partitionId" | "index">;
type DecodedLifecycle = Omit<LifecycleEvent, "sequenceNumber" | "partitionId" | "index">;

interface DecodedEnvelope<Op, Body> {
  opType: Op;
  key: TwinKey;
  body: Body;
  enqueuedTime: string;
}

/**
 * What every notification this decoder takes has in common: its opType (from `opTypes`), the twin
 * it is about (application or connection properties), a JSON body of `schema`'s shape with nothing
 * the store cannot hold, and a usable enqueued time. A string is the dead letter's reason.
 */
function decodeEnvelope<Op extends string, Body>(
  opTypes: z.ZodType<Op>,
  schema: z.ZodType<Body>,
  message: unknown,
  properties: Record<string, unknown>,
  systemProperties: Record<string, unknown>,
  enqueuedTimeUtc: unknown,
): DecodedEnvelope<Op, Body> | string {
  const opType = opTypes.safeParse(own(properties, "opType"));
  if (!opType.success) return `application properties: opType: ${opType.error.issues[0]?.message ?? "invalid"}`;
  const key = twinKeyOf(properties, systemProperties);
  if (typeof key === "string") return key;

  const body = parseBody(message);
  if (typeof body === "string") return body;
  const unusable = findUnusable(body);
  if (unusable) return `body ${unusable}`;
  const parsed = schema.safeParse(body);
  if (!parsed.success) return `body: ${formatIssues(parsed.error)}`;

  const enqueuedTime = enqueuedTimeOf(properties, systemProperties, enqueuedTimeUtc);
  if (!enqueuedTime) return "no usable enqueued time (enqueuedTimeUtc, iothub-enqueuedtime or operationTimestamp)";
  return { opType: opType.data, key, body: parsed.data, enqueuedTime };
}

function decodeTwinChange(message: unknown, properties: Record<string, unknown>, systemProperties: Record<string, unknown>, enqueuedTimeUtc: unknown): DecodedTwinChange | string {
  const envelope = decodeEnvelope(twinOpType, bodySchema, message, properties, systemProperties, enqueuedTimeUtc);
  if (typeof envelope === "string") return envelope;
  const { version, etag, tags, properties: sections } = envelope.body;
  return {
    key: envelope.key,
    opType: envelope.opType,
    version,
    etag,
    tags: tags as JsonObject | undefined,
    desired: sections?.desired as JsonObject | undefined,
    reported: sections?.reported as JsonObject | undefined,
    enqueuedTime: envelope.enqueuedTime,
  };
}

/**
 * A device or module lifecycle notification: opType createDeviceIdentity / deleteDeviceIdentity,
 * ids as for twin changes, the body the twin at that moment (IoT Hub sends it on delete too).
 */
function decodeLifecycle(message: unknown, properties: Record<string, unknown>, systemProperties: Record<string, unknown>, enqueuedTimeUtc: unknown): DecodedLifecycle | string {
  const envelope = decodeEnvelope(lifecycleOpType, lifecycleBodySchema, message, properties, systemProperties, enqueuedTimeUtc);
  if (typeof envelope === "string") return envelope;
  const { key, opType, enqueuedTime } = envelope;
  const { version, etag, tags, properties: sections, deviceId, moduleId } = envelope.body;
  if (deviceId !== undefined && deviceId !== key.deviceId) return "body: deviceId differs from the event's device id";
  if (typeof moduleId === "string" && moduleId !== "" && moduleId !== key.moduleId) return "body: moduleId differs from the event's module id";
  if (version === undefined && opType === "createDeviceIdentity") return "body: version: a created identity's twin must carry its version";

  const twin: Twin | undefined =
    version === undefined
      ? undefined
      : {
          deviceId: key.deviceId,
          moduleId: key.moduleId,
          version,
          etag,
          tags: (tags as JsonObject | undefined) ?? {},
          desired: (sections?.desired as JsonObject | undefined) ?? {},
          reported: (sections?.reported as JsonObject | undefined) ?? {},
        };
  return { key, opType, twin, enqueuedTime };
}

/** "Now" for event-time evaluation: the first usable of the enqueued times, else IoT Hub's operation timestamp. */
function enqueuedTimeOf(properties: Record<string, unknown>, systemProperties: Record<string, unknown>, enqueuedTimeUtc: unknown): string | undefined {
  return (
    parseTime(enqueuedTimeUtc) ??
    parseTime(own(systemProperties, "iothub-enqueuedtime")) ??
    parseTime(own(systemProperties, "x-opt-enqueued-time")) ??
    parseTime(own(properties, "operationTimestamp"))
  );
}

/**
 * The twin an event is about: the application properties' deviceId / moduleId, else the system
 * properties' iothub-connection-device-id / -module-id. Whichever is used must be an id IoT Hub
 * could have issued — which also keeps NUL, lone surrogates and megabyte ids out of the store.
 */
function twinKeyOf(properties: Record<string, unknown>, systemProperties: Record<string, unknown>): TwinKey | string {
  const pick = (appKey: string, systemKey: string): { value: unknown; from: string } | undefined => {
    const app = own(properties, appKey);
    if (app !== undefined) return { value: app, from: `application property ${appKey}` };
    const system = own(systemProperties, systemKey);
    return system === undefined || system === null ? undefined : { value: system, from: `system property ${systemKey}` };
  };
  const device = pick("deviceId", "iothub-connection-device-id");
  if (!device) return "no deviceId in the application properties nor iothub-connection-device-id in the system properties";
  if (!isTwinId(device.value)) return `${device.from} is not an IoT Hub id (${TWIN_ID_RULE}): ${preview(device.value)}`;
  const module = pick("moduleId", "iothub-connection-module-id");
  if (module && !isTwinId(module.value)) return `${module.from} is not an IoT Hub id (${TWIN_ID_RULE}): ${preview(module.value)}`;
  return { deviceId: device.value, moduleId: module ? (module.value as string) : null };
}

/** Objects pass; JSON strings and Buffers (UTF-8, with or without a byte order mark) are parsed; anything else is a reason. */
function parseBody(message: unknown): JsonObject | string {
  let value: unknown = message;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) value = Buffer.from(value).toString("utf8");
  if (typeof value === "string") {
    try {
      value = JSON.parse(value.startsWith("\uFEFF") ? value.slice(1) : value);
    } catch {
      return "body is not JSON";
    }
  }
  if (!isJsonObject(value as Json)) return `body must be a JSON object, got ${describe(value)}`;
  return value as JsonObject;
}

/** Parses IoT Hub and Event Hubs timestamps: ISO strings (with or without "Z"), epoch milliseconds, Dates. */
export function parseTime(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : parseTime(value.getTime());
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return inRange(value);
  if (typeof value !== "string" || value.trim() === "") return undefined;
  const text = value.trim();
  if (/^\d{10,}$/.test(text)) return parseTime(Number(text));
  const withZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`;
  const ms = Date.parse(withZone);
  return Number.isNaN(ms) ? undefined : inRange(ms);
}

function inRange(ms: number): string | undefined {
  return ms < Date.UTC(2000, 0, 1) || ms > Date.UTC(2200, 0, 1) ? undefined : new Date(ms).toISOString();
}

/**
 * Walks the body once, without recursion (hostile input cannot overflow the stack), for what would
 * break the batch: nesting deeper than any twin; what PostgreSQL's jsonb cannot hold (U+0000,
 * lone UTF-16 surrogates) or JSON cannot carry (undefined, NaN, functions); and twin bookkeeping
 * the store or the evaluator cannot use — a `$version` or `$lastUpdatedVersion` that is not a safe
 * non-negative integer (bigint columns), a `$lastUpdated` that is not a date of years 0001–9999.
 * Such a body would fail the whole batch's transaction, so it is refused with the path where it was found.
 */
function findUnusable(body: unknown): string | undefined {
  const stack: Array<[unknown, string, number]> = [[body, "", 1]];
  while (stack.length > 0) {
    const [node, path, depth] = stack.pop() as [unknown, string, number];
    const where = path || "(root)";
    if (typeof node === "string") {
      if (!storableText(node)) return `has a string that PostgreSQL cannot store at ${where}`;
    } else if (typeof node === "number") {
      if (!Number.isFinite(node)) return `has a non-finite number at ${where}`;
    } else if (typeof node === "object" && node !== null) {
      if (depth > MAX_DEPTH) return `is nested more than ${MAX_DEPTH} levels deep (a twin allows 10)`;
      const isArray = Array.isArray(node);
      for (const key of Object.keys(node)) {
        if (!storableText(key)) return `has a key that PostgreSQL cannot store at ${where}`;
        const child = (node as Record<string, unknown>)[key];
        const childPath = path ? `${path}.${key}` : key;
        if (!isArray) {
          const bad = badBookkeeping(key, child);
          if (bad) return `has ${bad} at ${childPath}: ${preview(child)}`;
        }
        stack.push([child, childPath, depth + 1]);
      }
    } else if (node !== null && typeof node !== "boolean") {
      return `has a ${typeof node} at ${where}, which JSON cannot carry`;
    }
  }
  return undefined;
}

function badBookkeeping(key: string, value: unknown): string | undefined {
  if (key === "$version" || key === "$lastUpdatedVersion") {
    return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? undefined : `a ${key} that is not a non-negative safe integer`;
  }
  if (key === "$lastUpdated") return storableTime(value) === undefined ? "a $lastUpdated that is not a date within years 0001–9999" : undefined;
  return undefined;
}

function bodyForRecord(message: unknown): unknown {
  if (Buffer.isBuffer(message) || message instanceof Uint8Array) {
    const buffer = Buffer.from(message);
    const text = buffer.toString("utf8");
    return text.isWellFormed() && !text.includes("\uFFFD") ? text : { $base64: buffer.toString("base64") };
  }
  return message;
}

/** A plain record, or undefined; arrays and primitives are not records. */
function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** A property the record holds itself: a system property named `constructor` must not answer from Object.prototype. */
function own(record: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function stringOr(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** Event Hubs sequence numbers are non-negative int64; what a JavaScript number holds exactly is kept. */
function toSequenceNumber(value: unknown): number | undefined {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** A short, storable description of a bad value for a reason (JSON escapes NUL and lone surrogates). */
function preview(value: unknown): string {
  if (typeof value === "string") return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}… (${value.length} characters)` : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  return describe(value);
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");
}
