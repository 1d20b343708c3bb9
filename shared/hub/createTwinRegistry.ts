import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { Registry } from "azure-iothub";
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

/**
 * Builds the Registry for a connection string with the local-only endpoint settings
 * (IOTHUB_EMULATOR_PORT, IOTHUB_EMULATOR_CA_FILE: a hub on a port of its own with a local CA, which
 * the SDK's public factories cannot reach). shared/hub knows no emulator: local code installs its
 * wiring (local/emulator/createRegistryClient.ts, useEmulatorHubEndpoint) before the product runs.
 */
export type LocalHubEndpoint = (connectionString: string, endpoint: { port: number | undefined; caFile: string | undefined }) => Registry;

let localHubEndpoint: LocalHubEndpoint | undefined;

/** Installs (or, with undefined, removes) how this process reaches a hub at a local endpoint. */
export function useLocalHubEndpoint(build: LocalHubEndpoint | undefined): void {
  localHubEndpoint = build;
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
      if (hub.emulator === undefined) return Registry.fromConnectionString(hub.connectionString);
      if (localHubEndpoint === undefined) {
        throw new Error("IOTHUB_EMULATOR_PORT / IOTHUB_EMULATOR_CA_FILE are local settings: this process has not installed the local emulator's client (local/emulator useEmulatorHubEndpoint)");
      }
      return localHubEndpoint(hub.connectionString, hub.emulator);
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
