import { mkdirSync } from "node:fs";
import type { AccessToken, TokenCredential } from "@azure/identity";
import { DefaultAzureCredential } from "@azure/identity";
import { azureFunctionsMarker, ConfigError, type Config } from "../config";
import { redact } from "../redact";
import type { Database } from "./Database";
import { migrate } from "./migrate";
import { openPostgres } from "./openPostgres";

/** The Entra ID scope of Azure Database for PostgreSQL (and MySQL) access tokens. */
export const POSTGRES_ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default";

export interface OpenStoreOptions {
  /** Credential for the Entra case; default DefaultAzureCredential (managed identity AZURE_CLIENT_ID when set). */
  credential?: TokenCredential;
  /** The process environment, read only for the platform's markers of an Azure Functions instance (where PGlite is refused); default process.env. */
  env?: Record<string, string | undefined>;
}

/**
 * Opens the store the config names — PostgreSQL by URL, Azure Database for PostgreSQL with an
 * Entra access token as the password, or PGlite — and applies the pending migrations.
 */
export async function openStore(config: Pick<Config, "store">, options: OpenStoreOptions = {}): Promise<Database> {
  const store = config.store;
  let db: Database;
  switch (store.kind) {
    case "postgres":
      db = openPostgres(store.connectionString, { max: store.poolMax });
      break;
    case "postgresEntra": {
      const credential =
        options.credential ?? new DefaultAzureCredential(store.clientId ? { managedIdentityClientId: store.clientId } : {});
      db = openPostgres(
        { host: store.host, port: store.port, database: store.database, user: store.user, ssl: true },
        { password: entraTokenPassword(credential), max: store.poolMax },
      );
      break;
    }
    case "pglite": {
      // In Azure the store is PostgreSQL, always: PGlite would write to an instance's local disk,
      // lost at scale-in and never shared with the other instances.
      const marker = azureFunctionsMarker(options.env ?? process.env);
      if (marker !== undefined) {
        throw new ConfigError([
          {
            setting: "POSTGRES_HOST",
            problem:
              `is required on an Azure Functions instance (${marker}): set POSTGRES_HOST, POSTGRES_DATABASE and POSTGRES_USER ` +
              "(Entra token auth; infra/main.bicep sets them) or DATABASE_URL. The local PGlite store is never used in Azure",
          },
        ]);
      }
      if (store.dataDir !== null) mkdirSync(store.dataDir, { recursive: true });
      // Loaded here, never at start-up: PGlite is a devDependency, left out of the Azure package.
      const { openPglite } = await import("./openPglite");
      db = await openPglite(store.dataDir ?? undefined);
      break;
    }
  }
  try {
    await migrate(db);
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  return db;
}

export interface TokenPasswordOptions {
  /** Fetch a new token this long before the cached one expires (default 5 minutes). */
  refreshBeforeMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * A pg `password` function that returns an Entra access token for PostgreSQL: cached, fetched again
 * `refreshBeforeMs` before it expires (or at the token's own `refreshAfterTimestamp`), one fetch at a
 * time. If a refresh fails while the cached token is still valid, the cached token is used.
 */
export function entraTokenPassword(credential: TokenCredential, options: TokenPasswordOptions = {}): () => Promise<string> {
  const refreshBeforeMs = options.refreshBeforeMs ?? 5 * 60_000;
  const now = options.now ?? Date.now;
  let cached: AccessToken | undefined;
  let inFlight: Promise<string> | undefined;

  const isFresh = (token: AccessToken) =>
    now() < Math.min(token.expiresOnTimestamp - refreshBeforeMs, token.refreshAfterTimestamp ?? Number.POSITIVE_INFINITY);

  const fetchToken = async (): Promise<string> => {
    let token: AccessToken | null;
    try {
      token = await credential.getToken(POSTGRES_ENTRA_SCOPE);
    } catch (error) {
      if (cached && now() < cached.expiresOnTimestamp) return cached.token;
      throw new Error(
        `Could not get an Entra access token for PostgreSQL (${redact(error instanceof Error ? error.message : String(error))}). ` +
          "Check the app's managed identity (AZURE_CLIENT_ID) or sign in with `az login` locally.",
      );
    }
    if (!token) {
      if (cached && now() < cached.expiresOnTimestamp) return cached.token;
      throw new Error("Could not get an Entra access token for PostgreSQL: the credential returned none.");
    }
    cached = token;
    return token.token;
  };

  return () => {
    if (cached && isFresh(cached)) return Promise.resolve(cached.token);
    inFlight ??= fetchToken().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
