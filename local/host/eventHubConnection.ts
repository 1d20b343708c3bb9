import { DefaultAzureCredential } from "@azure/identity";
import { parseEventHubConnectionString, type TokenCredential } from "@azure/event-hubs";

/** Where an Event Hub trigger connects, read from its `connection` app setting(s). */
export type EventHubConnection =
  | { kind: "connectionString"; connectionString: string; fullyQualifiedNamespace: string; entityPath: string | undefined }
  | { kind: "identity"; fullyQualifiedNamespace: string; credential: TokenCredential };

/** The connection's settings are there but unusable: names the setting, never quotes its value. */
export class EventHubConnectionError extends Error {
  override readonly name = "EventHubConnectionError";
}

/**
 * Resolves a trigger's `connection` the way the Functions Event Hubs extension does: the app setting
 * of that name holding a connection string (the local emulator's, or a namespace's SAS one), else the
 * identity-based `<name>__fullyQualifiedNamespace` (with `<name>__clientId` for a user-assigned
 * identity) through DefaultAzureCredential. Undefined when neither is set.
 */
export function eventHubConnection(name: string, env: NodeJS.ProcessEnv = process.env): EventHubConnection | undefined {
  const value = env[name]?.trim();
  if (value) {
    let parsed: ReturnType<typeof parseEventHubConnectionString>;
    try {
      parsed = parseEventHubConnectionString(value);
    } catch {
      throw new EventHubConnectionError(
        `app setting ${name} is not an Event Hubs connection string: it needs Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=… (npm start prints the emulator's as TWIN_EVENTS_CONNECTION)`,
      );
    }
    if (!parsed.fullyQualifiedNamespace || !/^sb:\/\//i.test(parsed.endpoint)) {
      throw new EventHubConnectionError(`app setting ${name}: its Endpoint must be sb://<namespace>[:port]`);
    }
    if (!parsed.sharedAccessKey && !parsed.sharedAccessSignature) {
      throw new EventHubConnectionError(`app setting ${name}: the connection string has no SharedAccessKey or SharedAccessSignature`);
    }
    return { kind: "connectionString", connectionString: value, fullyQualifiedNamespace: parsed.fullyQualifiedNamespace, entityPath: parsed.eventHubName };
  }
  const namespace = env[`${name}__fullyQualifiedNamespace`]?.trim();
  if (namespace) {
    const clientId = env[`${name}__clientId`]?.trim();
    return { kind: "identity", fullyQualifiedNamespace: namespace, credential: new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {}) };
  }
  return undefined;
}
