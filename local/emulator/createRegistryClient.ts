import { Agent } from "node:https";
import { Registry } from "azure-iothub";
import { RestApiClient } from "azure-iothub/dist/common-http/rest_api_client";
import { createSharedAccessSignature } from "./sharedAccessSignature";

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
 * (toolchain §3): the public constructor with our own `RestApiClient`, an agent whose
 * `defaultPort` is the port, and the CA given per client. The SAS is valid for ten years.
 */
export function createRegistryClientFor(target: RegistryClientTarget): RegistryClient {
  const fields = new Map(
    target.connectionString.split(";").filter((part) => part.includes("=")).map((part) => {
      const eq = part.indexOf("=");
      return [part.slice(0, eq), part.slice(eq + 1)] as const;
    }),
  );
  const host = fields.get("HostName");
  const keyName = fields.get("SharedAccessKeyName");
  const key = fields.get("SharedAccessKey");
  if (host === undefined || keyName === undefined || key === undefined) {
    throw new Error("connectionString must have HostName, SharedAccessKeyName and SharedAccessKey");
  }
  const expiry = Math.floor(Date.now() / 1000) + 10 * 365 * 24 * 3600;
  const config = { host, sharedAccessSignature: createSharedAccessSignature(host, key, expiry, keyName) };
  const rest = new RestApiClient(config, "twin-reconciler-emulator-client/1.0");
  const agent = new Agent({ keepAlive: true, ca: target.ca });
  (agent as Agent & { defaultPort: number }).defaultPort = target.port;
  const registry = new Registry(config, rest);
  // After the constructor, which installs its own default agent.
  rest.setOptions({ http: { agent }, ca: target.ca });
  return { registry, close: () => agent.destroy() };
}
