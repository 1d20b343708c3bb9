/**
 * The store settings in Azure: POSTGRES_POOL_MAX (validated, and the cap of each instance's pool, as
 * PostgreSQL's pg_stat_activity sees it), and no PGlite on an Azure Functions instance — a missing
 * store setting there fails naming the settings instead of writing to the instance's local disk.
 * The platform's variables are hand-copied from the Functions host's environment profiles
 * (azure-functions-host: WEBSITE_INSTANCE_ID; CONTAINER_NAME; Flex: WEBSITE_SKU=FlexConsumption,
 * WEBSITE_POD_NAME, CONTAINER_NAME; Core Tools: FUNCTIONS_CORETOOLS_ENVIRONMENT).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { ConfigError, loadConfig } from "../../shared/config";
import { openPostgres } from "../../shared/store/openPostgres";
import { openStore } from "../../shared/store/openStore";

const ENTRA = { POSTGRES_HOST: "psql-x.postgres.database.azure.com", POSTGRES_DATABASE: "twin_reconciler", POSTGRES_USER: "id-twinrec-app" };

/** What the platform sets on an instance (azure-functions-host's environment markers per hosting plan). */
const AZURE: [string, Record<string, string>][] = [
  ["Flex Consumption", { WEBSITE_SKU: "FlexConsumption", WEBSITE_POD_NAME: "pod-1", CONTAINER_NAME: "c-1", WEBSITE_SITE_NAME: "func-twinrec-x" }],
  ["Linux Consumption", { CONTAINER_NAME: "c-1", WEBSITE_SITE_NAME: "func-twinrec-x", WEBSITE_SKU: "Dynamic" }],
  ["an App Service plan", { WEBSITE_INSTANCE_ID: "0123abcd", WEBSITE_SITE_NAME: "func-twinrec-x" }],
];

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("loadConfig accepted the settings");
}

describe("POSTGRES_POOL_MAX", () => {
  it("sets the pool size of either PostgreSQL store", () => {
    expect(loadConfig({ DATABASE_URL: "postgres://app@localhost/twins", POSTGRES_POOL_MAX: "8" }).store).toMatchObject({ kind: "postgres", poolMax: 8 });
    expect(loadConfig({ ...ENTRA, POSTGRES_POOL_MAX: "2" }).store).toMatchObject({ kind: "postgresEntra", poolMax: 2 });
  });

  it.each(["0", "101", "five", "2.5", "-1"])("refuses %p naming the setting", (value) => {
    expect(configError({ DATABASE_URL: "postgres://app@localhost/twins", POSTGRES_POOL_MAX: value }).issues).toEqual([
      { setting: "POSTGRES_POOL_MAX", problem: "must be a whole number from 1 to 100" },
    ]);
  });

  (process.env.DATABASE_URL ? it : it.skip)("caps the connections one store opens on PostgreSQL (pg_stat_activity)", async () => {
    const base = process.env.DATABASE_URL as string;
    const schema = `t_pool_${randomBytes(4).toString("hex")}`;
    const admin = openPostgres(base, { max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(base);
    url.searchParams.set("application_name", schema);
    url.searchParams.set("options", `-c search_path=${schema}`);
    const db = await openStore(loadConfig({ DATABASE_URL: url.toString(), POSTGRES_POOL_MAX: "2" }));
    try {
      let most = 0;
      const sleeping = Promise.all(Array.from({ length: 6 }, () => db.query("SELECT pg_sleep(0.4)")));
      for (let i = 0; i < 8; i++) {
        const { rows } = await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [schema]);
        most = Math.max(most, Number(rows[0]?.n));
        await new Promise((r) => setTimeout(r, 100));
      }
      await sleeping;
      expect(most).toBe(2);
    } finally {
      await db.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    }
  }, 120_000);
});

describe("the store on an Azure Functions instance", () => {
  /** What opening the store the settings name fails with, on `platform`. */
  async function openError(platform: Record<string, string>, settings: Record<string, string> = {}): Promise<unknown> {
    return openStore(loadConfig({ ...platform, ...settings }), { env: platform }).then(
      (db) => db.close().then(() => "opened"),
      (e: unknown) => e,
    );
  }

  it.each(AZURE)("on %s, fails without a store setting, naming the settings to set", async (_, platform) => {
    const error = await openError(platform);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.setting)).toEqual(["POSTGRES_HOST"]);
    expect((error as Error).message).toMatch(
      /^Invalid settings \(1\):\n {2}POSTGRES_HOST: is required on an Azure Functions instance \((WEBSITE_SKU=FlexConsumption|CONTAINER_NAME and WEBSITE_SITE_NAME|WEBSITE_INSTANCE_ID)\): set POSTGRES_HOST, POSTGRES_DATABASE and POSTGRES_USER .* or DATABASE_URL\. The local PGlite store is never used in Azure$/,
    );
  });

  it("fails even when PGLITE_DATA_DIR names a folder, and creates none", async () => {
    const parent = mkdtempSync(path.join(tmpdir(), "azure-pglite-"));
    try {
      const dataDir = path.join(parent, "pglite");
      expect(await openError(AZURE[0]![1], { PGLITE_DATA_DIR: dataDir })).toBeInstanceOf(ConfigError);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it.each(AZURE)("on %s, selects PostgreSQL when the settings are there", (_, platform) => {
    expect(loadConfig({ ...platform, ...ENTRA }).store.kind).toBe("postgresEntra");
    expect(loadConfig({ ...platform, DATABASE_URL: "postgres://app@db/twins" }).store.kind).toBe("postgres");
  });

  it("keeps PGlite locally: under `func start` (Core Tools), and in a container that sets CONTAINER_NAME", async () => {
    expect(await openError({}, { PGLITE_DATA_DIR: "memory" })).toBe("opened");
    expect(await openError({ FUNCTIONS_CORETOOLS_ENVIRONMENT: "true", FUNCTIONS_WORKER_RUNTIME: "node" }, { PGLITE_DATA_DIR: "memory" })).toBe("opened");
    expect(await openError({ CONTAINER_NAME: "ci-runner" }, { PGLITE_DATA_DIR: "memory" })).toBe("opened");
  }, 120_000);
});
