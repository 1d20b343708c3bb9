import type { Json, JsonObject } from "../twin/json";
import { storableText } from "../twin/storableText";

/** An event we could not use, kept whole with the reason so nothing is lost. */
export interface DeadLetter {
  index: number;
  /** Why; ends with "[stored altered: …]" when making the letter storable changed anything. */
  reason: string;
  /** A hint for operators (application deviceId, else iothub-connection-device-id), at most 128 characters. */
  deviceId: string | undefined;
  partitionId: string | undefined;
  sequenceNumber: number | undefined;
  /** The event as received (body, properties, system properties), made storable as JSON. */
  raw: JsonObject;
  /**
   * Something was cut to make the letter storable: the device id hint (past 128 characters), the
   * reason (past 2,000), a part of `raw` whose JSON passed 256 KB (kept as the start of that JSON
   * text), or nesting past 32 levels. Set by `storableDeadLetter`; absent on letters built by hand.
   */
  truncated?: boolean;
  /** NUL was escaped as `\u0000` or lone surrogates replaced by U+FFFD somewhere in the letter. */
  escaped?: boolean;
}

/** Deeper than any twin (IoT Hub allows 10 levels): what lies below is cut from a dead letter. */
export const MAX_DEPTH = 32;
/** The longest id IoT Hub issues: a longer device id hint (or partition id) is cut to this. */
const MAX_ID = 128;
/** A reason is a sentence; one that grew past this (a very long path in it) is cut. */
const MAX_REASON = 2_000;
/** Per part of `raw` (body, properties, …): a part whose JSON is longer is kept as the start of that text. */
export const MAX_RAW_PART = 256 * 1024;

/** What making a value storable changed, collected while copying. */
interface Alterations {
  escaped: boolean;
  tooDeep: boolean;
}

/**
 * A dead letter PostgreSQL can always store: NUL escaped as the six characters `\u0000` and lone
 * surrogates replaced by U+FFFD in every text (jsonb and text columns refuse both); the device id
 * hint cut to 128 characters; each part of `raw` whose JSON exceeds 256 KB kept as the start of
 * that JSON text; nesting past 32 levels cut. Whatever was changed is said twice: in `escaped` /
 * `truncated`, and in a note ending the reason, so the stored row says it even where the store
 * keeps no such column.
 */
export function storableDeadLetter(letter: {
  index: number;
  reason: string;
  deviceId: string | undefined;
  partitionId: string | undefined;
  sequenceNumber: number | undefined;
  raw: Record<string, unknown>;
}): DeadLetter {
  const notes: string[] = [];
  const changes: Alterations = { escaped: false, tooDeep: false };
  let truncated = false;
  const cut = (note: string): void => {
    truncated = true;
    notes.push(note);
  };
  const text = (value: string, limit: number, what: string): string => {
    const clean = escapeText(value, changes);
    if (clean.length <= limit) return clean;
    cut(`${what} cut to ${limit} of ${clean.length} characters`);
    return clean.slice(0, limit).toWellFormed();
  };

  const raw: JsonObject = {};
  for (const [part, value] of Object.entries(letter.raw)) {
    let copy = copyStorable(value, 0, changes);
    const json = JSON.stringify(copy) ?? "null";
    if (json.length > MAX_RAW_PART) {
      cut(`raw.${part} (${json.length} characters of JSON) kept as the first ${MAX_RAW_PART} characters of its JSON text`);
      copy = json.slice(0, MAX_RAW_PART).toWellFormed();
    }
    Object.defineProperty(raw, escapeText(part, changes), { value: copy, enumerable: true, writable: true, configurable: true });
  }
  const deviceId = letter.deviceId === undefined ? undefined : text(letter.deviceId, MAX_ID, "device id");
  const partitionId = letter.partitionId === undefined ? undefined : text(letter.partitionId, MAX_ID, "partition id");
  let reason = text(letter.reason, MAX_REASON, "reason");
  if (changes.tooDeep) cut(`raw nested deeper than ${MAX_DEPTH} levels cut`);
  if (changes.escaped) notes.push("NUL escaped as \\u0000 and lone surrogates replaced by U+FFFD");
  if (notes.length > 0) reason += ` [stored altered: ${notes.join("; ")}]`;
  return {
    index: letter.index,
    reason,
    deviceId,
    partitionId,
    sequenceNumber: letter.sequenceNumber,
    raw,
    truncated,
    escaped: changes.escaped,
  };
}

/** A JSON-safe, jsonb-storable copy of anything (NUL escaped, lone surrogates replaced, own keys kept as keys). */
export function storableJson(value: unknown, depth = 0): Json {
  return copyStorable(value, depth, { escaped: false, tooDeep: false });
}

function copyStorable(value: unknown, depth: number, changes: Alterations): Json {
  if (depth > MAX_DEPTH) {
    changes.tooDeep = true;
    return "[truncated: nested too deep]";
  }
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return escapeText(value, changes);
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value)) return { $base64: value.toString("base64") };
  if (Array.isArray(value)) return value.map((v) => copyStorable(v, depth + 1, changes));
  if (typeof value === "object") {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, escapeText(k, changes), { value: copyStorable(v, depth + 1, changes), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return `[${typeof value}]`;
}

function escapeText(value: string, changes: Alterations): string {
  if (storableText(value)) return value;
  changes.escaped = true;
  return value.replaceAll("\u0000", "\\u0000").toWellFormed();
}
