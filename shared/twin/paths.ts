import { isJsonObject, type Json, type JsonObject } from "./json";

/** Splits a dot path (`components.climate.maxTemperature`) into segments; "" is the root. */
export function splitPath(path: string): string[] {
  return path === "" ? [] : path.split(".");
}

/** The value at `segments` under `root`, or undefined when any step is missing or not an object. */
export function valueAt(root: Json | undefined, segments: readonly string[]): Json | undefined {
  let node: Json | undefined = root;
  for (const segment of segments) {
    if (!isJsonObject(node) || !Object.prototype.hasOwnProperty.call(node, segment)) return undefined;
    node = node[segment];
  }
  return node;
}

/** Builds `{a: {b: value}}` from `["a", "b"]` into `target` (mutates and returns it). */
export function setAt(target: JsonObject, segments: readonly string[], value: Json): JsonObject {
  let node = target;
  segments.forEach((segment, i) => {
    if (i === segments.length - 1) {
      node[segment] = value;
      return;
    }
    const next = node[segment];
    if (!isJsonObject(next)) node[segment] = {};
    node = node[segment] as JsonObject;
  });
  return target;
}

/** Keys that are twin bookkeeping, never properties: `$metadata`, `$version`, … */
export function isSystemKey(key: string): boolean {
  return key.startsWith("$");
}
