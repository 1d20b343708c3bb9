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
