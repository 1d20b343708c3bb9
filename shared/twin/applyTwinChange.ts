import { isJsonObject, ownValue, type JsonObject } from "./json";
import { mergePatch } from "./mergePatch";
import type { Twin } from "./Twin";
import type { TwinChangeEvent } from "./TwinChangeEvent";

export type ApplyOutcome =
  /** The stored twin after the event; `gap` when the history before it is missing or incomplete. */
  | { kind: "applied"; twin: Twin; gap: GapReason | undefined }
  /** The event's version is not newer than the stored twin: a re-sent or duplicate event. */
  | { kind: "duplicate" };

export type GapReason = "unseen" | "desiredVersionGap" | "reportedVersionGap";

/**
 * Applies one twin-change event to the stored twin (undefined when never seen).
 * `updateTwin` merges the sections the body carries (null deletes, `$metadata` merged, section
 * `$version` kept); `replaceTwin` replaces the sections it carries. An event whose twin version is
 * not newer than the stored one is a duplicate and changes nothing.
 */
export function applyTwinChange(stored: Twin | undefined, event: TwinChangeEvent): ApplyOutcome {
  if (stored && event.version <= stored.version) return { kind: "duplicate" };
  const base: Twin = stored ?? { deviceId: event.key.deviceId, moduleId: event.key.moduleId, version: 0, tags: {}, desired: {}, reported: {} };
  let gap: GapReason | undefined;
  const replace = event.opType === "replaceTwin";
  if (!stored) {
    // A replace that carries both property sections is the whole twin: nothing is missing.
    gap = replace && event.desired && event.reported ? undefined : "unseen";
  } else if (!replace) {
    if (versionGap(stored.desired, event.desired)) gap = "desiredVersionGap";
    else if (versionGap(stored.reported, event.reported)) gap = "reportedVersionGap";
  }
  const section = (current: JsonObject, patch: JsonObject | undefined): JsonObject =>
    patch === undefined ? current : replace ? patch : mergePatch(current, patch);
  return {
    kind: "applied",
    gap,
    twin: {
      deviceId: base.deviceId,
      moduleId: base.moduleId,
      version: event.version,
      etag: event.etag,
      tags: section(base.tags, event.tags),
      desired: section(base.desired, event.desired),
      reported: section(base.reported, event.reported),
    },
  };
}

/** A section patch whose `$version` skips ahead of the stored one: some change was never seen. */
function versionGap(stored: JsonObject, patch: JsonObject | undefined): boolean {
  if (!isJsonObject(patch)) return false;
  const from = ownValue(stored, "$version");
  const to = ownValue(patch, "$version");
  return typeof from === "number" && typeof to === "number" && to > from + 1;
}
