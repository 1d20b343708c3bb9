import { isJsonObject, type Json, type JsonObject } from "./json";

/**
 * Applies an IoT Hub twin patch to `target`, returning a new object (inputs are not mutated):
 * keys present overwrite, `null` deletes, nested objects merge, arrays are replaced whole.
 * `$metadata` merges the same way, and metadata of a key deleted by the patch is dropped with it.
 */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else if (isJsonObject(value)) {
      const current = result[key];
      result[key] = mergePatch(isJsonObject(current) ? current : {}, value);
    } else {
      result[key] = value;
    }
  }
  const metadata = result["$metadata"];
  if (isJsonObject(metadata)) result["$metadata"] = pruneDeleted(metadata, patch);
  return result;
}

/** Drops metadata entries for keys the patch deleted (unless the patch brought their metadata itself). */
function pruneDeleted(metadata: JsonObject, patch: JsonObject): JsonObject {
  const patchMetadata = isJsonObject(patch["$metadata"]) ? patch["$metadata"] : {};
  const walk = (meta: JsonObject, p: JsonObject, pm: Json | undefined): JsonObject => {
    let out: JsonObject | undefined;
    for (const [key, value] of Object.entries(p)) {
      if (key.startsWith("$")) continue;
      const pmChild = isJsonObject(pm) ? pm[key] : undefined;
      if (value === null && pmChild === undefined && key in meta) {
        out ??= { ...meta };
        delete out[key];
      } else if (isJsonObject(value) && isJsonObject(meta[key])) {
        const child = walk(meta[key] as JsonObject, value, pmChild);
        if (child !== meta[key]) {
          out ??= { ...meta };
          out[key] = child;
        }
      }
    }
    return out ?? meta;
  };
  return walk(metadata, patch, patchMetadata);
}
