import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { RestApiClient } from "azure-iot-http-base";
import { ConnectionString, Registry, SharedAccessSignature } from "azure-iothub";
import { useLocalHubEndpoint, type LocalHubEndpoint } from "../../shared/hub/createTwinRegistry";

export interface RegistryClientTarget {
  /** `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…` (HostName without a port). */
  connectionString: string;
  /** HTTPS port of the hub; the SDK has no port option, so it goes into the agent. */
  port: number;
  /** CA certificate(s) to trust, PEM. */
  ca: string;
}

export interface RegistryClient {
  registry: Registry;
  /** Closes the client's keep-alive sockets. */
  close(): void;
}

/**
 * An unmodified azure-iothub `Registry` aimed at a hub on any port, without process-wide settings
 * (toolchain §3), through public APIs only: `Registry`'s public constructor takes the REST client,
 * and `azure-iot-http-base` (the SDK's HTTP layer, whose copy azure-iothub bundles privately)
 * exports `RestApiClient`; its agent's `defaultPort` is the port and the CA is given per client.
 * The SAS (made by the SDK's SharedAccessSignature, not the emulator's code) is valid for ten years:
 * the emulator process outlives no decade. The one emulator wiring: the tests, the benches and the
 * product (through `useLocalHubEndpoint`) all use it.
 */
export function createRegistryClientFor(target: { connectionString: string; port: number | undefined; ca: string | undefined }): RegistryClient {
  const { HostName: host, SharedAccessKeyName: keyName, SharedAccessKey: key } = ConnectionString.parse(target.connectionString);
  if (!host || !keyName || !key) throw new Error("connectionString must have HostName, SharedAccessKeyName and SharedAccessKey");
  const expiry = Math.floor(Date.now() / 1000) + 10 * 365 * 24 * 3600;
  const config = { host, sharedAccessSignature: SharedAccessSignature.create(host, keyName, key, expiry).toString() };
  const rest = new RestApiClient(config, "twin-reconciler");
  // https.Agent has defaultPort at run time (@types/node leaves it out): requests without a port use it.
  const agent: Agent & { defaultPort?: number } = new Agent({ keepAlive: true, ...(target.ca === undefined ? {} : { ca: target.ca }) });
  if (target.port !== undefined) agent.defaultPort = target.port;
  // The two packages declare the same class separately (private members make TypeScript see two types).
  const registry = new Registry(config, rest as unknown as ConstructorParameters<typeof Registry>[1]);
  // After the constructor, which installs a default agent of its own through the same setOptions.
  rest.setOptions({ http: { agent }, ...(target.ca === undefined ? {} : { ca: target.ca }) });
  return { registry, close: () => agent.destroy() };
}

/** The product's hub client for IOTHUB_EMULATOR_PORT / IOTHUB_EMULATOR_CA_FILE (local settings only). */
export const emulatorHubEndpoint: LocalHubEndpoint = (connectionString, endpoint) =>
  createRegistryClientFor({
    connectionString,
    port: endpoint.port,
    ca: endpoint.caFile === undefined ? undefined : readFileSync(endpoint.caFile, "utf8"),
  }).registry;

/** Lets this process's product code reach the local emulator (npm start, the CLI, tests, benches). */
export function useEmulatorHubEndpoint(): void {
  useLocalHubEndpoint(emulatorHubEndpoint);
}
