import { isJsonObject, type JsonObject } from "../twin/json";
import type { Twin, TwinKey } from "../twin/Twin";
import { twinKeyString } from "../twin/Twin";
import { redact } from "../redact";
import type { TwinPatch, TwinQueries, TwinRegistry } from "./TwinRegistry";

/** What azure-iothub's twin calls resolve to: `{ responseBody: Twin }` (the SDK's Twin class, or its JSON). */
interface SdkTwinResult {
  responseBody: unknown;
}

/** The four twin calls of azure-iothub's `Registry` the adapter uses; a `Registry` satisfies it. */
export interface RegistryTwinClient {
  getTwin(deviceId: string): Promise<SdkTwinResult>;
  getModuleTwin(deviceId: string, moduleId: string): Promise<SdkTwinResult>;
  updateTwin(deviceId: string, patch: TwinPatch, etag: string): Promise<SdkTwinResult>;
  updateModuleTwin(deviceId: string, moduleId: string, patch: TwinPatch, etag: string): Promise<SdkTwinResult>;
  /** `Registry.createQuery` (public API); only twin queries need it. */
  createQuery?(sqlQuery: string, pageSize?: number): RegistryQuery;
}

/** What `Registry.createQuery` returns: `next(token)` resolves to one page (`result`: the twins). */
export interface RegistryQuery {
  next(continuationToken?: string): Promise<{ result: unknown }>;
  continuationToken: string | undefined;
  hasMoreResults: boolean;
}

/**
 * An IoT Hub call that failed. `name` is the SDK's error name (`InvalidEtagError`, `ThrottlingError`,
 * `DeviceNotFoundError`…) so `hubErrorKind` works; the message is redacted and the SDK's response
 * object (whose request carries the Authorization header) is not kept.
 */
export class HubRequestError extends Error {
  constructor(
    name: string,
    message: string,
    readonly statusCode: number | undefined,
    /** From a Retry-After header in seconds, when IoT Hub sends one. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = name;
  }
}

/** The TwinRegistry port over azure-iothub's Registry (Azure, or the local emulator), with its twin queries. */
export function iothubTwinRegistry(registry: RegistryTwinClient): TwinRegistry & TwinQueries {
  return {
    async queryTwins(query, options) {
      const createQuery = registry.createQuery?.bind(registry);
      if (!createQuery) throw new Error("this IoT Hub client cannot run twin queries (Registry.createQuery)");
      // A fresh Query per page: the token is all the state a page needs, so a pass can resume from
      // a stored token in another process.
      const sdkQuery = createQuery(query, options.pageSize);
      const token = options.continuationToken;
      const call = async (): Promise<SdkTwinResult> => {
        const page = await (token === undefined ? sdkQuery.next() : sdkQuery.next(token));
        return { responseBody: page.result };
      };
      const items = await guarded("twin query", call, options.signal);
      if (!Array.isArray(items)) throw new Error("IoT Hub answered a twin query without a list of twins");
      const twins = items.map((item: unknown) => {
        const body: JsonObject = isJsonObject(item as never) ? (item as JsonObject) : {};
        const deviceId = typeof body["deviceId"] === "string" ? body["deviceId"] : "";
        const moduleId = typeof body["moduleId"] === "string" && body["moduleId"] !== "" ? body["moduleId"] : null;
        if (deviceId === "") throw new Error("IoT Hub answered a twin query with a twin without a deviceId");
        return toTwin(body, { deviceId, moduleId });
      });
      // The SDK sets hasMoreResults from the x-ms-continuation header; an empty token means the end too.
      const continuationToken = sdkQuery.hasMoreResults && sdkQuery.continuationToken ? sdkQuery.continuationToken : undefined;
      return { twins, continuationToken };
    },
    async getTwin(key, options = {}) {
      const call = () => (key.moduleId === null ? registry.getTwin(key.deviceId) : registry.getModuleTwin(key.deviceId, key.moduleId));
      return toTwin(await guarded(`get twin ${twinKeyString(key)}`, call, options.signal), key);
    },
    async updateTwin(key, patch, etag, options = {}) {
      const call = () =>
        key.moduleId === null
          ? registry.updateTwin(key.deviceId, patch, etag)
          : registry.updateModuleTwin(key.deviceId, key.moduleId, patch, etag);
      return toTwin(await guarded(`update twin ${twinKeyString(key)}`, call, options.signal), key);
    },
  };
}

async function guarded(what: string, call: () => Promise<SdkTwinResult>, signal: AbortSignal | undefined): Promise<unknown> {
  signal?.throwIfAborted();
  try {
    const pending = call();
    if (!signal) return (await pending).responseBody;
    // The SDK cannot cancel a request; an abort stops waiting for it.
    return (
      await new Promise<SdkTwinResult>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        pending.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
      })
    ).responseBody;
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    throw toHubError(what, error);
  }
}

function toHubError(what: string, error: unknown): HubRequestError {
  const source = typeof error === "object" && error !== null ? (error as { name?: unknown; message?: unknown; response?: unknown }) : {};
  const sdkName = typeof source.name === "string" && source.name !== "" ? source.name : "Error";
  const message = typeof source.message === "string" ? source.message : String(error);
  const response = typeof source.response === "object" && source.response !== null ? (source.response as { statusCode?: unknown; headers?: unknown }) : {};
  const statusCode = typeof response.statusCode === "number" ? response.statusCode : undefined;
  const headers = typeof response.headers === "object" && response.headers !== null ? (response.headers as Record<string, unknown>) : {};
  const retryAfterSeconds = Number(headers["retry-after"]);
  const retryAfterMs = Number.isFinite(retryAfterSeconds) && retryAfterSeconds >= 0 && headers["retry-after"] !== undefined ? retryAfterSeconds * 1000 : undefined;
  // azure-iothub names only DeviceNotFound and IotHubNotFound; a 404 with any other code (a module
  // twin that is gone: ModuleNotFound) comes as a plain Error('Not found'). IoT Hub's own code says.
  const code = /ErrorCode:(\w+)/.exec(typeof (error as { responseBody?: unknown })?.responseBody === "string" ? (error as { responseBody: string }).responseBody : "")?.[1];
  const name = sdkName === "Error" && statusCode === 404 && code === "ModuleNotFound" ? "ModuleNotFoundError" : sdkName;
  return new HubRequestError(name, redact(`IoT Hub: ${what} failed: ${name}: ${message}`), statusCode, retryAfterMs);
}

/** Maps the SDK's twin (`properties.desired`…) to ours. */
function toTwin(body: unknown, key: TwinKey): Twin {
  if (!isJsonObject(body)) throw new Error(`IoT Hub returned no twin for ${twinKeyString(key)}`);
  const version = body["version"];
  if (typeof version !== "number") throw new Error(`IoT Hub returned a twin without a version for ${twinKeyString(key)}`);
  const properties = isJsonObject(body["properties"]) ? body["properties"] : {};
  const etag = body["etag"];
  const moduleId = body["moduleId"];
  return {
    deviceId: typeof body["deviceId"] === "string" ? body["deviceId"] : key.deviceId,
    moduleId: typeof moduleId === "string" && moduleId !== "" ? moduleId : key.moduleId,
    version,
    // The SDK's Twin puts '*' (match any) where the service sent no etag: never hand that on as a real etag.
    etag: typeof etag === "string" && etag !== "*" ? etag : undefined,
    tags: plain(body["tags"]),
    desired: plain(properties["desired"]),
    reported: plain(properties["reported"]),
  };
}

/** A JSON copy: drops the SDK's class instances and anything that isn't JSON. */
function plain(value: unknown): JsonObject {
  return isJsonObject(value) ? (JSON.parse(JSON.stringify(value)) as JsonObject) : {};
}
