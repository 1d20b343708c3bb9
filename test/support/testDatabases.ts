/**
 * The stores an integration suite runs on: PGlite (in memory) always, and PostgreSQL when
 * DATABASE_URL is set (CI). Each PostgreSQL store lives in a schema of its own, dropped at close,
 * so suites running at once on the same database never see each other's rows.
 */
import { randomBytes } from "node:crypto";
import type { Database } from "../../shared/store/Database";
import { migrate } from "../../shared/store/migrate";
import { openPglite } from "../../shared/store/openPglite";
import { openPostgres } from "../../shared/store/openPostgres";

export interface TestDatabase {
  name: "pglite" | "postgres";
  open(): Promise<Database>;
}

export const testDatabases: TestDatabase[] = (
  [
    { name: "pglite", open: openTestPglite },
    { name: "postgres", open: () => openTestPostgres(process.env.DATABASE_URL as string) },
  ] satisfies TestDatabase[]
).filter((t) => t.name === "pglite" || postgresConfigured());

/**
 * Whether the suites run on PostgreSQL too. In CI (CI=true) a missing DATABASE_URL would silently drop
 * half of every store suite, so it fails the suite instead; elsewhere it says once that it skipped.
 */
function postgresConfigured(): boolean {
  if (process.env.DATABASE_URL) return true;
  if (process.env.CI === "true") {
    throw new Error("CI=true but DATABASE_URL is not set: the store suites must run on PostgreSQL in CI (.ci/run sets it)");
  }
  console.warn("DATABASE_URL is not set: store suites run on PGlite only (PostgreSQL skipped)");
  return false;
}

export async function openTestPglite(): Promise<Database> {
  const db = await openPglite();
  await migrate(db);
  return db;
}

/** A migrated PostgreSQL store in a fresh schema; close() drops the schema. */
export async function openTestPostgres(url: string, options: { max?: number } = {}): Promise<Database> {
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const admin = openPostgres(url, { max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.close();
  const db = openPostgres({ connectionString: url, options: `-c search_path=${schema}` }, { max: options.max ?? 4 });
  await migrate(db);
  return {
    kind: db.kind,
    query: (sql, params) => db.query(sql, params),
    transaction: (work) => db.transaction(work),
    async close() {
      await db.close();
      const cleanup = openPostgres(url, { max: 1 });
      await cleanup.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
      await cleanup.close();
    },
  };
}

/** Empties every table (between tests sharing one store). */
export async function truncateAll(db: Database): Promise<void> {
  await db.query("TRUNCATE twins, devices, property_records, property_history, dead_letters, twin_lifecycle");
}
