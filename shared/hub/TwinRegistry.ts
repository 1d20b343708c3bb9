import type { Twin, TwinKey } from "../twin/Twin";

/**
 * The port to IoT Hub's twin service. One production adapter (`iothubTwinRegistry`, over
 * azure-iothub's Registry) serves both Azure and the local emulator. Errors keep the SDK's
 * names: branch on `hubErrorKind(err)`, never `instanceof` (the SDK bundles private error classes).
 */
export interface TwinRegistry {
  getTwin(key: TwinKey, options?: { signal?: AbortSignal }): Promise<Twin>;
  /** Applies a patch (`{tags?, properties: {desired}}`) if the twin's etag is still `etag`. */
  updateTwin(key: TwinKey, patch: TwinPatch, etag: string, options?: { signal?: AbortSignal }): Promise<Twin>;
}

/**
 * Twin queries (`SELECT * FROM devices`, `… FROM devices.modules`), one page per call: the fleet
 * sync's read path. Results can be up to 30 minutes behind the twins (iothub-facts §7), and each
 * page counts against the hub's query quota (20/min/unit on S1), not the twin-read quota.
 */
export interface TwinQueries {
  queryTwins(query: string, options: TwinQueryOptions): Promise<TwinQueryPage>;
}

export interface TwinQueryOptions {
  /** x-ms-max-item-count: the hub may answer fewer. */
  pageSize: number;
  /** The previous page's token; absent for the first page. */
  continuationToken?: string | undefined;
  signal?: AbortSignal;
}

export interface TwinQueryPage {
  twins: Twin[];
  /** Absent on the last page. */
  continuationToken: string | undefined;
}

export interface TwinPatch {
  tags?: Record<string, unknown>;
  properties?: { desired?: Record<string, unknown> };
}

export type HubErrorKind = "etagMismatch" | "throttled" | "notFound" | "other";

/** Classifies an azure-iothub error by its `name` (412, 429, 404). */
export function hubErrorKind(error: unknown): HubErrorKind {
  const name = typeof error === "object" && error !== null && "name" in error ? String((error as { name: unknown }).name) : "";
  switch (name) {
    case "InvalidEtagError":
    case "PreconditionFailedError":
      return "etagMismatch";
    case "ThrottlingError":
      return "throttled";
    case "DeviceNotFoundError":
    case "ModuleNotFoundError":
      return "notFound";
    default:
      return "other";
  }
}
