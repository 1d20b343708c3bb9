import { z } from "zod";
import { isJsonObject, type Json, type JsonObject } from "../twin/json";
import type { LifecycleEvent, TwinChangeEvent } from "./TwinChangeEvent";

/** An event we could not use, kept whole with the reason so nothing is lost. */
export interface DeadLetter {
  index: number;
  reason: string;
  deviceId: string | undefined;
  partitionId: string | undefined;
  sequenceNumber: number | undefined;
  /** The event as received (body, properties, system properties), made storable as JSON. */
  raw: JsonObject;
}

export interface DecodedBatch {
  events: TwinChangeEvent[];
  /** Device and module lifecycle notifications (create/delete), in batch order. */
  lifecycle: LifecycleEvent[];
  /** Events from other sources (telemetry, lifecycle…) on the same hub: counted, not processed. */
  ignored: number;
  deadLetters: DeadLetter[];
}

const TWIN_CHANGE_SOURCE = "twinChangeEvents";
const MAX_DEPTH = 32;

const metadataSchema = z
  .object({
    propertiesArray: z.array(z.unknown()).optional(),
    systemPropertiesArray: z.array(z.unknown()).optional(),
    enqueuedTimeUtcArray: z.array(z.unknown()).optional(),
    sequenceNumberArray: z.array(z.unknown()).optional(),
    partitionContext: z.object({ partitionId: z.union([z.string(), z.number()]).optional() }).passthrough().optional(),
  })
  .passthrough();

// Sections are checked for shape here; their content was already walked by findUnstorable.
const sectionSchema = z.custom<JsonObject>((value) => isJsonObject(value as Json), { message: "must be a JSON object" });
const bodySchema = z.object({
  version: z.number().int().nonnegative(),
  etag: z.string().optional(),
  tags: sectionSchema.optional(),
  properties: z.object({ desired: sectionSchema.optional(), reported: sectionSchema.optional() }).optional(),
});

const appPropertiesSchema = z
  .object({
    deviceId: z.string().min(1).max(128).optional(),
    moduleId: z.string().min(1).max(128).optional(),
    opType: z.enum(["updateTwin", "replaceTwin"], { message: 'opType must be "updateTwin" or "replaceTwin"' }),
    operationTimestamp: z.string().optional(),
  });

/**
 * Decodes the Event Hub trigger's input for `cardinality: 'many'` — the messages array and the
 * trigger metadata (`propertiesArray`, `systemPropertiesArray`, `enqueuedTimeUtcArray`,
 * `sequenceNumberArray`, `partitionContext`). Bodies may be objects, JSON strings or Buffers.
 * Never throws: every message ends as an event, an ignored count or a dead letter.
 */
export function decodeTwinChanges(messages: unknown, triggerMetadata: unknown): DecodedBatch {
  const out: DecodedBatch = { events: [], lifecycle: [], ignored: 0, deadLetters: [] };
  const list = Array.isArray(messages) ? messages : [messages];
  const parsedMetadata = metadataSchema.safeParse(triggerMetadata ?? {});
  const metadata = parsedMetadata.success ? parsedMetadata.data : {};
  const partitionRaw = metadata.partitionContext?.partitionId;
  const partitionId = partitionRaw === undefined ? undefined : String(partitionRaw);

  list.forEach((message, index) => {
    const properties = asRecord(metadata.propertiesArray?.[index]);
    const systemProperties = asRecord(metadata.systemPropertiesArray?.[index]);
    const sequenceNumber = toInteger(metadata.sequenceNumberArray?.[index] ?? systemProperties["x-opt-sequence-number"] ?? systemProperties.sequenceNumber);
    const deviceIdHint = typeof properties.deviceId === "string" ? properties.deviceId : stringOr(systemProperties["iothub-connection-device-id"]);
    const deadLetter = (reason: string): void => {
      out.deadLetters.push({
        index,
        reason,
        deviceId: deviceIdHint,
        partitionId,
        sequenceNumber,
        raw: storableJson({ body: bodyForRecord(message), properties, systemProperties, enqueuedTimeUtc: metadata.enqueuedTimeUtcArray?.[index] ?? null }) as JsonObject,
      });
    };
    try {
      if (systemProperties["iothub-message-source"] !== TWIN_CHANGE_SOURCE) {
        out.ignored++;
        return;
      }
      const result = decodeOne(message, properties, systemProperties, metadata.enqueuedTimeUtcArray?.[index]);
      if (typeof result === "string") return deadLetter(result);
      out.events.push({ ...result, sequenceNumber, partitionId, index });
    } catch (error) {
      deadLetter(`could not decode the event: ${(error as Error).message}`);
    }
  });
  return out;
}

type DecodedFields = Omit<TwinChangeEvent, "sequenceNumber" | "partitionId" | "index">;

function decodeOne(message: unknown, properties: Record<string, unknown>, systemProperties: Record<string, unknown>, enqueuedTimeUtc: unknown): DecodedFields | string {
  const app = appPropertiesSchema.safeParse(properties);
  if (!app.success) return `application properties: ${formatIssues(app.error)}`;
  const deviceId = app.data.deviceId ?? stringOr(systemProperties["iothub-connection-device-id"]);
  if (!deviceId) return "no deviceId in the application properties nor iothub-connection-device-id in the system properties";
  const moduleId = app.data.moduleId ?? stringOr(systemProperties["iothub-connection-module-id"]) ?? null;

  const body = parseBody(message);
  if (typeof body === "string") return body;
  const unstorable = findUnstorable(body);
  if (unstorable) return `body ${unstorable}`;
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) return `body: ${formatIssues(parsed.error)}`;

  const enqueuedTime =
    parseTime(enqueuedTimeUtc) ?? parseTime(systemProperties["iothub-enqueuedtime"]) ?? parseTime(systemProperties["x-opt-enqueued-time"]) ?? parseTime(app.data.operationTimestamp);
  if (!enqueuedTime) return "no usable enqueued time (enqueuedTimeUtc, iothub-enqueuedtime or operationTimestamp)";

  const { version, etag, tags, properties: sections } = parsed.data;
  return {
    key: { deviceId, moduleId },
    opType: app.data.opType,
    version,
    etag,
    tags: tags as JsonObject | undefined,
    desired: sections?.desired as JsonObject | undefined,
    reported: sections?.reported as JsonObject | undefined,
    enqueuedTime,
  };
}

/** Objects pass; JSON strings and Buffers (UTF-8) are parsed; anything else is a reason. */
function parseBody(message: unknown): JsonObject | string {
  let value: unknown = message;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) value = Buffer.from(value).toString("utf8");
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return "body is not JSON";
    }
  }
  if (!isJsonObject(value as Json)) return `body must be a JSON object, got ${describe(value)}`;
  return value as JsonObject;
}

/** Parses IoT Hub and Event Hubs timestamps: ISO strings (with or without "Z"), epoch milliseconds, Dates. */
export function parseTime(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return new Date(value).toISOString();
  if (typeof value !== "string" || value.trim() === "") return undefined;
  const text = value.trim();
  if (/^\d{10,}$/.test(text)) return parseTime(Number(text));
  const withZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`;
  const ms = Date.parse(withZone);
  return Number.isNaN(ms) || ms < Date.UTC(2000, 0, 1) || ms > Date.UTC(2200, 0, 1) ? undefined : new Date(ms).toISOString();
}

/**
 * Walks the body once, without recursion (hostile input cannot overflow the stack), for what would
 * break the batch: nesting deeper than any twin, and what PostgreSQL's jsonb cannot hold (U+0000,
 * lone UTF-16 surrogates) or JSON cannot carry (undefined, NaN, functions). Such a body would fail
 * the whole batch's transaction, so it is refused here with the path where it was found.
 */
function findUnstorable(body: unknown): string | undefined {
  const stack: Array<[unknown, string, number]> = [[body, "", 1]];
  while (stack.length > 0) {
    const [node, path, depth] = stack.pop() as [unknown, string, number];
    const where = path || "(root)";
    if (typeof node === "string") {
      if (!storableString(node)) return `has a string that PostgreSQL cannot store at ${where}`;
    } else if (typeof node === "number") {
      if (!Number.isFinite(node)) return `has a non-finite number at ${where}`;
    } else if (typeof node === "object" && node !== null) {
      if (depth > MAX_DEPTH) return `is nested more than ${MAX_DEPTH} levels deep (a twin allows 10)`;
      for (const key of Object.keys(node)) {
        if (!storableString(key)) return `has a key that PostgreSQL cannot store at ${where}`;
        stack.push([(node as Record<string, unknown>)[key], path ? `${path}.${key}` : key, depth + 1]);
      }
    } else if (node !== null && typeof node !== "boolean") {
      return `has a ${typeof node} at ${where}, which JSON cannot carry`;
    }
  }
  return undefined;
}

function storableString(text: string): boolean {
  return !text.includes("\u0000") && text.isWellFormed();
}

/** A JSON-safe, jsonb-storable copy of anything, for dead-letter records. */
export function storableJson(value: unknown, depth = 0): Json {
  if (depth > MAX_DEPTH) return "[truncated: nested too deep]";
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value.replaceAll("\u0000", "\\u0000").toWellFormed();
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value)) return { $base64: value.toString("base64") };
  if (Array.isArray(value)) return value.map((v) => storableJson(v, depth + 1));
  if (typeof value === "object") {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[storableJson(k) as string] = storableJson(v, depth + 1);
    return out;
  }
  return `[${typeof value}]`;
}

function bodyForRecord(message: unknown): unknown {
  if (Buffer.isBuffer(message) || message instanceof Uint8Array) {
    const buffer = Buffer.from(message);
    const text = buffer.toString("utf8");
    return text.isWellFormed() && !text.includes("\uFFFD") ? text : { $base64: buffer.toString("base64") };
  }
  return message;
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function stringOr(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function toInteger(value: unknown): number | undefined {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof n === "number" && Number.isSafeInteger(n) ? n : undefined;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");
}
