import { isJsonObject, ownValue, setOwn, type Json, type JsonObject } from "./json";

/** Splits a dot path (`components.climate.maxTemperature`) into segments; "" is the root. */
export function splitPath(path: string): string[] {
  return path === "" ? [] : path.split(".");
}

/** The value at `segments` under `root`, or undefined when any step is missing (own keys only) or not an object. */
export function valueAt(root: Json | undefined, segments: readonly string[]): Json | undefined {
  let node: Json | undefined = root;
  for (const segment of segments) {
    if (!isJsonObject(node)) return undefined;
    node = ownValue(node, segment);
  }
  return node;
}

/** Builds `{a: {b: value}}` from `["a", "b"]` into `target` (mutates and returns it); every segment is an own key. */
export function setAt(target: JsonObject, segments: readonly string[], value: Json): JsonObject {
  let node = target;
  segments.forEach((segment, i) => {
    if (i === segments.length - 1) {
      setOwn(node, segment, value);
      return;
    }
    let next = ownValue(node, segment);
    if (!isJsonObject(next)) {
      next = {};
      setOwn(node, segment, next);
    }
    node = next;
  });
  return target;
}

/** Keys that are twin bookkeeping, never properties: `$metadata`, `$version`, … */
export function isSystemKey(key: string): boolean {
  return key.startsWith("$");
}
