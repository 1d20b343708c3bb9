/**
 * One-time (idempotent) database setup in Azure, run as the PostgreSQL Entra admin — the operator —
 * by azd's postprovision hook or by hand:
 *
 *   POSTGRES_HOST=… POSTGRES_DATABASE=… POSTGRES_ADMIN_USER=<your UPN> POSTGRES_USER=<app identity name> \
 *   APP_IDENTITY_PRINCIPAL_ID=<its object id> node bin/run-ts.js local/cli/postgresSetup.ts
 *
 * (every value is a main.bicep output: `azd env get-values` lists them). It
 *   1. applies the schema migrations as the admin, so the tables belong to the admin and migration 008
 *      creates the least-privilege role twin_reconciler_app and grants it the app's rights;
 *   2. creates the app identity's database principal (pgaadauth_create_principal_with_oid, in the
 *      `postgres` database), unless it exists;
 *   3. makes that principal a member of twin_reconciler_app — and nothing more: not an admin.
 * Signs in with DefaultAzureCredential (azd or az login). SKIP_POSTGRES_SETUP=true skips it (e.g. when
 * this machine cannot reach a private server: run it from inside the virtual network instead).
 */
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { Client } from "pg";
import { loadConfig } from "../../shared/config";
import { redact } from "../../shared/redact";
import { POSTGRES_ENTRA_SCOPE, openStore } from "../../shared/store/openStore";

/** The least-privilege role migration 008 defines; the app's principal becomes a member. */
export const APP_ROLE = "twin_reconciler_app";

/** What the setup runs SQL through: a pg Client or Pool. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

/** Creates the app identity's Entra principal (connected to the `postgres` database as an Entra admin) unless a role of that name exists. */
export async function createAppPrincipal(db: Queryable, name: string, objectId: string): Promise<"created" | "exists"> {
  const existing = await db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name]);
  if (existing.rows.length > 0) return "exists";
  // Arguments: role name, object ID, principal type ('service' for a managed identity), is admin, is MFA.
  await db.query("SELECT * FROM pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", [name, objectId]);
  return "created";
}

/** Grants twin_reconciler_app to the app's principal (connected to the application database). Idempotent. */
export async function grantAppRole(db: Queryable, member: string): Promise<void> {
  const role = await db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [APP_ROLE]);
  if (role.rows.length === 0) {
    throw new Error(`role ${APP_ROLE} does not exist: the schema lacks migration 008 (least-privilege app role); deploy a build that has it and run this setup again`);
  }
  const principal = await db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [member]);
  if (principal.rows.length === 0) throw new Error(`POSTGRES_USER: no database principal named "${member}"; create it first (createAppPrincipal)`);
  // Identifiers cannot be bound parameters: format('%I') quotes them from bound values.
  const { rows } = await db.query("SELECT format('GRANT %I TO %I', $1::text, $2::text) AS sql", [APP_ROLE, member]);
  await db.query(String(rows[0]?.["sql"]));
}

/** The settings the setup reads, each named when missing. */
export function setupSettings(env: Record<string, string | undefined>): { host: string; database: string; adminUser: string; appUser: string; appObjectId: string } {
  const names = ["POSTGRES_HOST", "POSTGRES_DATABASE", "POSTGRES_ADMIN_USER", "POSTGRES_USER", "APP_IDENTITY_PRINCIPAL_ID"] as const;
  const missing = names.filter((name) => !env[name]?.trim());
  if (missing.length > 0) throw new Error(`postgres setup: set ${missing.join(", ")} (main.bicep outputs; \`azd env get-values\` lists them)`);
  const value = (name: (typeof names)[number]) => (env[name] ?? "").trim();
  return { host: value("POSTGRES_HOST"), database: value("POSTGRES_DATABASE"), adminUser: value("POSTGRES_ADMIN_USER"), appUser: value("POSTGRES_USER"), appObjectId: value("APP_IDENTITY_PRINCIPAL_ID") };
}

async function connect(host: string, database: string, user: string, credential: TokenCredential): Promise<Client> {
  const token = await credential.getToken(POSTGRES_ENTRA_SCOPE);
  if (!token) throw new Error("postgres setup: no Entra token for Azure Database for PostgreSQL (sign in with `azd auth login` or `az login`)");
  const client = new Client({ host, port: 5432, database, user, password: token.token, ssl: true });
  await client.connect();
  return client;
}

export async function postgresSetup(env: Record<string, string | undefined>, credential: TokenCredential = new DefaultAzureCredential()): Promise<void> {
  const s = setupSettings(env);
  // 1. Migrations, as the admin (the config the app itself would use, but signed in as the operator).
  const config = loadConfig({ POSTGRES_HOST: s.host, POSTGRES_DATABASE: s.database, POSTGRES_USER: s.adminUser });
  const store = await openStore(config, { credential });
  await store.close();
  console.log(`postgres setup: schema of ${s.database} is current`);
  // 2. The app identity's principal, in the postgres database.
  const admin = await connect(s.host, "postgres", s.adminUser, credential);
  try {
    console.log(`postgres setup: principal "${s.appUser}" ${await createAppPrincipal(admin, s.appUser, s.appObjectId)}`);
  } finally {
    await admin.end();
  }
  // 3. Its role in the application database.
  const app = await connect(s.host, s.database, s.adminUser, credential);
  try {
    await grantAppRole(app, s.appUser);
    console.log(`postgres setup: "${s.appUser}" is a member of ${APP_ROLE}`);
  } finally {
    await app.end();
  }
}

if (require.main === module) {
  if (process.env["SKIP_POSTGRES_SETUP"] === "true") {
    console.log("postgres setup: skipped (SKIP_POSTGRES_SETUP=true); run local/cli/postgresSetup.ts where the server is reachable");
  } else {
    postgresSetup(process.env).catch((error: unknown) => {
      console.error(`postgres setup failed: ${redact(error instanceof Error ? error.message : String(error))}`);
      process.exit(1);
    });
  }
}
