import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { ConnectionString, Registry, SharedAccessSignature } from "azure-iothub";
import { RestApiClient } from "azure-iothub/dist/common-http/rest_api_client";
import type { Config, HubConfig } from "../config";
import { iothubTwinRegistry } from "./iothubTwinRegistry";
import { queryLimitedTwinQueries, queryLimiter } from "./queryLimitedTwinQueries";
import { rateLimitedTwinRegistry, TokenBucket } from "./TokenBucket";
import type { TwinQueries, TwinRegistry } from "./TwinRegistry";

export interface CreateTwinRegistryOptions {
  /** Credential for IOTHUB_HOST_NAME; default DefaultAzureCredential (managed identity AZURE_CLIENT_ID when set). */
  credential?: TokenCredential;
  /** The token bucket every twin call takes from; default a new one at HUB_TWIN_OPS_PER_SECOND. */
  bucket?: TokenBucket;
}

/** The azure-iothub Registry the config names, or null when no hub is configured (resync and re-push disabled). */
export function createIothubRegistry(hub: HubConfig, options: CreateTwinRegistryOptions = {}): Registry | null {
  switch (hub.kind) {
    case "none":
      return null;
    case "identity":
      return Registry.fromTokenCredential(
        hub.hostName,
        options.credential ?? new DefaultAzureCredential(hub.clientId ? { managedIdentityClientId: hub.clientId } : {}),
      );
    case "connectionString":
      return hub.emulator ? emulatorRegistry(hub.connectionString, hub.emulator) : Registry.fromConnectionString(hub.connectionString);
  }
}

/**
 * The TwinRegistry port for the configured hub, every call rate-limited by one token bucket
 * (HUB_TWIN_OPS_PER_SECOND), or null when no hub is configured.
 */
export function createTwinRegistry(
  config: Pick<Config, "hub" | "hubTwinOpsPerSecond">,
  options: CreateTwinRegistryOptions = {},
): TwinRegistry | null {
  const registry = createIothubRegistry(config.hub, options);
  if (registry === null) return null;
  const bucket = options.bucket ?? new TokenBucket({ ratePerSecond: config.hubTwinOpsPerSecond });
  return rateLimitedTwinRegistry(iothubTwinRegistry(registry), bucket);
}

/**
 * Twin queries on the configured hub behind a query-quota bucket of their own
 * (HUB_QUERIES_PER_MINUTE), or null when no hub is configured.
 */
export function createTwinQueries(
  config: Pick<Config, "hub"> & { fleetSync: Pick<Config["fleetSync"], "queriesPerMinute"> },
  options: Omit<CreateTwinRegistryOptions, "bucket"> & { bucket?: TokenBucket } = {},
): TwinQueries | null {
  const registry = createIothubRegistry(config.hub, options);
  if (registry === null) return null;
  return queryLimitedTwinQueries(iothubTwinRegistry(registry), options.bucket ?? queryLimiter(config.fleetSync.queriesPerMinute));
}

/**
 * The local emulator listens on a port of its own with a local CA. A connection string has no port
 * (the SDK passes `HostName` verbatim to https.request), so this builds the Registry through its public
 * constructor with a RestApiClient whose agent carries the port and CA (toolchain.md §3).
 */
function emulatorRegistry(connectionString: string, emulator: { port: number | undefined; caFile: string | undefined }): Registry {
  const { HostName: host, SharedAccessKeyName: keyName, SharedAccessKey: key } = ConnectionString.parse(connectionString);
  if (!host || !keyName || !key) throw new Error("IOTHUB_CONNECTION_STRING needs HostName, SharedAccessKeyName and SharedAccessKey");
  // A local, long-lived token (seconds since the epoch): the emulator process outlives no decade.
  const expiry = Math.floor(Date.now() / 1000) + 10 * 365 * 24 * 3600;
  const config = { host, sharedAccessSignature: SharedAccessSignature.create(host, keyName, key, expiry) };
  const rest = new RestApiClient(config, "twin-reconciler");
  const ca = emulator.caFile === undefined ? undefined : readFileSync(emulator.caFile, "utf8");
  // https.Agent has defaultPort at run time (@types/node leaves it out): requests without a port use it.
  const agent: Agent & { defaultPort?: number } = new Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) });
  if (emulator.port !== undefined) agent.defaultPort = emulator.port;
  const registry = new Registry(config, rest);
  // After the constructor: it installs a default agent of its own through the same setOptions.
  rest.setOptions({ http: { agent }, ...(ca === undefined ? {} : { ca }) });
  return registry;
}
