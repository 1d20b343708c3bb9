import { isJsonObject, setOwn, type Json, type JsonObject } from "../twin/json";
import { setAt, splitPath, valueAt } from "../twin/paths";

/**
 * The desired patch that rewrites exactly `paths` with the values `desired` holds now: a nested
 * object built from the dot paths (`{a: {b: 1}}` for `a.b`), so IoT Hub's merge leaves every other
 * desired property untouched. `$` keys are dropped; a path no longer in `desired` is left out.
 */
export function desiredPatch(desired: JsonObject, paths: Iterable<string>): JsonObject {
  const patch: JsonObject = {};
  for (const path of [...paths].sort()) {
    const segments = splitPath(path);
    const value = valueAt(desired, segments);
    if (value === undefined || value === null || segments.length === 0 || segments.some((s) => s.startsWith("$"))) continue;
    setAt(patch, segments, withoutSystemKeys(value));
  }
  return patch;
}

function withoutSystemKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutSystemKeys);
  if (!isJsonObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, child] of Object.entries(value)) if (!key.startsWith("$")) setOwn(out, key, withoutSystemKeys(child));
  return out;
}
