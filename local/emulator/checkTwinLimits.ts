import type { Json, JsonObject } from "../../shared/twin/json";
import { hubErrors } from "./IotHubError";

export type TwinSectionKind = "tags" | "desired" | "reported";

/** IoT Hub's documented limits (iothub-facts §2). */
export const twinLimits = {
  sectionBytes: { tags: 8 * 1024, desired: 32 * 1024, reported: 32 * 1024 } as Record<TwinSectionKind, number>,
  maxDepth: 10,
  maxKeyBytes: 1024,
  maxStringBytes: 4 * 1024,
  minInteger: -4503599627370496,
  maxInteger: 4503599627370495,
};

/**
 * Refuses, with IoT Hub's 400 `ArgumentInvalid`, a patch whose keys or values break the rules, or
 * whose resulting section is too large. Size is counted as IoT Hub documents it: key lengths plus
 * value lengths, numbers 8 bytes, booleans 4; `$metadata`/`$version` excluded. Depth: `{"a":1}` is 1.
 */
export function checkTwinLimits(kind: TwinSectionKind, patch: JsonObject, result: JsonObject): void {
  checkValue(kind, patch, 0, "");
  const size = twinSize(result);
  const limit = twinLimits.sectionBytes[kind];
  if (size > limit) {
    throw hubErrors.argumentInvalid(`Twin ${kind} size ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** The size IoT Hub counts against a section's limit. */
export function twinSize(value: Json): number {
  if (value === null) return 0;
  if (typeof value === "string") return Buffer.byteLength(value, "utf8");
  if (typeof value === "number") return 8;
  if (typeof value === "boolean") return 4;
  if (Array.isArray(value)) return value.reduce<number>((sum, item) => sum + twinSize(item), 0);
  let sum = 0;
  for (const [key, item] of Object.entries(value)) sum += Buffer.byteLength(key, "utf8") + twinSize(item);
  return sum;
}

// eslint-disable-next-line no-control-regex
const forbiddenKey = /[.$ \u0000-\u001f\u007f-\u009f]/;

function checkValue(kind: TwinSectionKind, value: Json, depth: number, path: string): void {
  if (typeof value === "string") {
    if (Buffer.byteLength(value, "utf8") > twinLimits.maxStringBytes) {
      throw hubErrors.argumentInvalid(`Twin ${kind} value at '${path}' is longer than ${twinLimits.maxStringBytes} bytes`);
    }
    return;
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value) || (Number.isInteger(value) && (value < twinLimits.minInteger || value > twinLimits.maxInteger))) {
      throw hubErrors.argumentInvalid(`Twin ${kind} value at '${path}' is out of range`);
    }
    return;
  }
  if (value === null || typeof value === "boolean") return;
  if (depth + 1 > twinLimits.maxDepth) {
    throw hubErrors.argumentInvalid(`Twin ${kind} nesting depth exceeds the maximum of ${twinLimits.maxDepth} at '${path}'`);
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkValue(kind, item, depth + 1, `${path}[${i}]`));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const keyPath = path === "" ? key : `${path}.${key}`;
    if (key.length === 0 || forbiddenKey.test(key)) {
      throw hubErrors.argumentInvalid(
        `Twin ${kind} property name '${keyPath}' is invalid: names cannot be empty or contain '.', '$', space or control characters`,
      );
    }
    if (Buffer.byteLength(key, "utf8") > twinLimits.maxKeyBytes) {
      throw hubErrors.argumentInvalid(`Twin ${kind} property name at '${path}' is longer than ${twinLimits.maxKeyBytes} bytes`);
    }
    checkValue(kind, item, depth + 1, keyPath);
  }
}
