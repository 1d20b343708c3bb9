import { isJsonObject, ownValue, setOwn, type Json, type JsonObject } from "./json";

/**
 * Applies an IoT Hub twin patch to `target`, returning a new object (inputs are not mutated):
 * keys present overwrite, `null` deletes, nested objects merge, arrays are replaced whole.
 * `$metadata` merges the same way, and metadata of a key deleted by the patch is dropped with it.
 * Every key is an ordinary own key, `__proto__`, `constructor` and `prototype` included.
 */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else if (isJsonObject(value)) {
      const current = ownValue(result, key);
      setOwn(result, key, mergePatch(isJsonObject(current) ? current : {}, value));
    } else {
      setOwn(result, key, value);
    }
  }
  const metadata = ownValue(result, "$metadata");
  if (isJsonObject(metadata)) result["$metadata"] = pruneDeleted(metadata, patch);
  return result;
}

/** Drops metadata entries for keys the patch deleted (unless the patch brought their metadata itself). */
function pruneDeleted(metadata: JsonObject, patch: JsonObject): JsonObject {
  const patchMetadata = ownValue(patch, "$metadata");
  const walk = (meta: JsonObject, p: JsonObject, pm: Json | undefined): JsonObject => {
    let out: JsonObject | undefined;
    for (const [key, value] of Object.entries(p)) {
      if (key.startsWith("$")) continue;
      const pmChild = isJsonObject(pm) ? ownValue(pm, key) : undefined;
      const metaChild = ownValue(meta, key);
      if (value === null && pmChild === undefined && metaChild !== undefined) {
        out ??= { ...meta };
        delete out[key];
      } else if (isJsonObject(value) && isJsonObject(metaChild)) {
        const child = walk(metaChild, value, pmChild);
        if (child !== metaChild) {
          out ??= { ...meta };
          setOwn(out, key, child);
        }
      }
    }
    return out ?? meta;
  };
  return walk(metadata, patch, isJsonObject(patchMetadata) ? patchMetadata : {});
}
