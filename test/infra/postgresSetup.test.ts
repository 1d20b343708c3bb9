/**
 * local/cli/postgresSetup.ts on real PostgreSQL (DATABASE_URL). What only Azure has is stood in for:
 * - the role migration 008 defines (twin_reconciler_app) is created by the test as a NOLOGIN role
 *   under a unique name (roles are cluster-wide, so a fixed name would collide with other suites);
 *   the module's APP_ROLE is therefore not exercised by name, only the grant logic against it;
 * - pgaadauth_create_principal_with_oid (Azure's extension) is a SQL function in the test's own schema
 *   that records its arguments and creates a plain LOGIN role, i.e. it fakes the call's effect on
 *   pg_roles, not Entra's validation of the object ID.
 * Membership is read back from the catalog (pg_has_role), not from the module.
 */
import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { APP_ROLE, createAppPrincipal, grantAppRole, setupSettings } from "../../local/cli/postgresSetup";

const url = process.env.DATABASE_URL;
// As the store suites do (test/support/testDatabases.ts): in CI a missing DATABASE_URL fails, never skips.
if (!url && process.env.CI === "true") throw new Error("CI=true but DATABASE_URL is not set: the postgres setup suite must run on PostgreSQL in CI");
const suffix = randomBytes(4).toString("hex");
const schema = `setup_${suffix}`;
const appRole = `${APP_ROLE}_${suffix}`;
// Managed identity names carry dashes, and a name may hold a quote: both must survive quoting.
const appUser = `id-twinrec-app-${suffix}"x`;

(url ? describe : describe.skip)("postgres setup (real PostgreSQL)", () => {
  let db: Client;

  beforeAll(async () => {
    db = new Client({ connectionString: url });
    await db.connect();
    await db.query(`CREATE SCHEMA ${schema}`);
    await db.query(`SET search_path TO ${schema}`);
    await db.query(`CREATE TABLE ${schema}.pgaadauth_calls (name text, oid text, kind text, is_admin boolean, is_mfa boolean)`);
    await db.query(`CREATE FUNCTION ${schema}.pgaadauth_create_principal_with_oid(name text, oid text, kind text, is_admin boolean, is_mfa boolean)
      RETURNS text LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO ${schema}.pgaadauth_calls VALUES (name, oid, kind, is_admin, is_mfa);
        EXECUTE format('CREATE ROLE %I LOGIN', name);
        RETURN 'Created role for ' || name;
      END $$`);
  });

  afterAll(async () => {
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.query(`SELECT format('DROP ROLE IF EXISTS %I', r) AS sql FROM unnest($1::text[]) AS r`, [[appUser, appRole]]).then(async ({ rows }) => {
      for (const row of rows as { sql: string }[]) await db.query(row.sql);
    });
    await db.end();
  });

  // The module grants APP_ROLE; a query wrapper points it at this run's role (which another suite's
  // migration 008 cannot have created).
  const renaming = { query: (sql: string, params?: unknown[]) => db.query(sql, params?.map((p) => (p === APP_ROLE ? appRole : p))) };
  const isMember = async () =>
    (await db.query("SELECT pg_has_role($1, $2, 'MEMBER') AS member", [appUser, appRole])).rows[0]?.member as boolean;

  it("creates the app identity's principal through pgaadauth_create_principal_with_oid, as a non-admin service principal", async () => {
    await expect(createAppPrincipal(db, appUser, "00000000-1111-2222-3333-444444444444")).resolves.toBe("created");
    const calls = await db.query(`SELECT * FROM ${schema}.pgaadauth_calls`);
    expect(calls.rows).toEqual([{ name: appUser, oid: "00000000-1111-2222-3333-444444444444", kind: "service", is_admin: false, is_mfa: false }]);
  });

  it("leaves an existing principal alone", async () => {
    await expect(createAppPrincipal(db, appUser, "00000000-1111-2222-3333-444444444444")).resolves.toBe("exists");
    expect((await db.query(`SELECT count(*)::int AS n FROM ${schema}.pgaadauth_calls`)).rows[0]?.n).toBe(1);
  });

  it("fails naming migration 008 while the least-privilege role does not exist", async () => {
    await expect(grantAppRole(renaming, appUser)).rejects.toThrow(/twin_reconciler_app does not exist: the schema lacks migration 008/);
  });

  it("makes the principal a member of the app role, once, however often it runs", async () => {
    await db.query(`SELECT format('CREATE ROLE %I NOLOGIN', $1::text) AS sql`, [appRole]).then(({ rows }) => db.query((rows[0] as { sql: string }).sql));
    expect(await isMember()).toBe(false);
    await grantAppRole(renaming, appUser);
    await grantAppRole(renaming, appUser);
    expect(await isMember()).toBe(true);
    // Membership only: the principal is no superuser and cannot create roles or databases.
    const attrs = await db.query("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1", [appUser]);
    expect(attrs.rows).toEqual([{ rolsuper: false, rolcreaterole: false, rolcreatedb: false }]);
  });

  it("refuses a principal that does not exist, naming POSTGRES_USER", async () => {
    await expect(grantAppRole(renaming, `nobody-${suffix}`)).rejects.toThrow(/POSTGRES_USER: no database principal named "nobody-/);
  });
});

describe("postgres setup settings", () => {
  it("names every missing setting", () => {
    expect(() => setupSettings({ POSTGRES_HOST: "h", POSTGRES_USER: " " })).toThrow(
      "postgres setup: set POSTGRES_DATABASE, POSTGRES_ADMIN_USER, POSTGRES_USER, APP_IDENTITY_PRINCIPAL_ID (main.bicep outputs; `azd env get-values` lists them)",
    );
  });
});
