/** A JSON value as twins hold it. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The value of `key` only when `node` holds it itself. IoT Hub allows keys such as `__proto__`,
 * `constructor` or `toString`; a plain `node[key]` would answer those from Object.prototype.
 */
export function ownValue(node: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(node, key) ? node[key] : undefined;
}

/**
 * Sets `key` as an ordinary own property. Assigning `__proto__` would replace the object's
 * prototype instead (and lose the key), so that one key is defined rather than assigned.
 */
export function setOwn(node: JsonObject, key: string, value: Json): void {
  if (key === "__proto__") Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
  else node[key] = value;
}

/**
 * Structural equality of JSON values (key order ignored), on own keys only. General deep-equal
 * libraries consult `constructor`, `valueOf` and `toString` first — a twin key named `valueOf`
 * makes fast-deep-equal call a number and throw — so JSON is compared as JSON.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && jsonEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}
