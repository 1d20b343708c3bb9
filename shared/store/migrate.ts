import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Database, Queryable } from "./Database";

const migrationsDir = join(__dirname, "migrations");

/**
 * The advisory lock every migration transaction takes first (pg_advisory_xact_lock, so it is released
 * at commit or rollback and holds no session state: it also works through a transaction-mode pooler).
 * Fixed for good: deployed instances of every version must take the same one. Advisory locks are per
 * database, so stores in other databases never wait on each other.
 */
export const MIGRATION_LOCK_KEY = 7_254_963_071_201;

/**
 * Whether schema_migrations exists where an unqualified name finds it. Read from pg_class with the
 * statement's snapshot: to_regclass() takes no lock, so it may answer from the backend's catalog cache,
 * which still says "missing" after waiting for the lock of a process that has just created the table.
 */
const SCHEMA_MIGRATIONS_EXISTS =
  "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.relname = 'schema_migrations' AND c.relkind = 'r' AND pg_catalog.pg_table_is_visible(c.oid)) AS found";

const CREATE_SCHEMA_MIGRATIONS =
  "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

export interface MigrationFile {
  version: number;
  name: string;
  sql: string;
}

/** The numbered migrations (`NNN_name.sql`), in order. */
export function migrationFiles(dir = migrationsDir): MigrationFile[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort()
    .map((name) => ({ version: Number(name.slice(0, 3)), name, sql: readFileSync(join(dir, name), "utf8") }));
}

/**
 * Applies the migrations not yet recorded in schema_migrations and returns their versions. Safe to
 * call at every start, from any number of processes at once (cold starts of several instances):
 *
 * - each migration runs whole (one script, so PL/pgSQL bodies and DO blocks need no workaround) in a
 *   transaction of its own that first takes pg_advisory_xact_lock(MIGRATION_LOCK_KEY), then (under
 *   the lock) creates schema_migrations if it is missing and re-reads it: a process that waited for
 *   another's migration finds it recorded and skips it, so each one is applied once;
 * - when nothing is pending it only reads schema_migrations — no lock, no DDL — so an app signed in
 *   as the least-privilege role (008_app_role.sql) starts on a migrated database.
 *
 * A small runner rather than a library. node-pg-migrate, the obvious one: records runs in its own
 * table (pgmigrations: id, name, run_on), not in the schema_migrations (version, name, applied_at)
 * deployed stores hold; takes a session-level pg_try_advisory_lock, so a racing cold start stops with
 * "Another migration is already running" instead of waiting (and a transaction-mode pooler cannot
 * hold the lock); and wants a `pg` client, where PGlite would need an adapter.
 */
export async function migrate(db: Database, files: MigrationFile[] = migrationFiles()): Promise<number[]> {
  const recorded = await recordedVersions(db);
  const pending = files.filter((f) => !recorded?.has(f.version));
  const applied: number[] = [];
  for (const file of pending) {
    const ran = await db
      .transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
        const exists = await tx.query<{ found: boolean }>(SCHEMA_MIGRATIONS_EXISTS);
        if (!exists.rows[0]?.found) await tx.query(CREATE_SCHEMA_MIGRATIONS);
        const done = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [file.version]);
        if (done.rows.length > 0) return false;
        await runScript(tx, file.sql);
        await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [file.version, file.name]);
        return true;
      })
      .catch((error: unknown) => {
        throw new MigrationError(file.name, error);
      });
    if (ran) applied.push(file.version);
  }
  return applied;
}

/** The recorded versions, or undefined when schema_migrations does not exist yet. */
async function recordedVersions(db: Queryable): Promise<Set<number> | undefined> {
  const exists = await db.query<{ found: boolean }>(SCHEMA_MIGRATIONS_EXISTS);
  if (!exists.rows[0]?.found) return undefined;
  const { rows } = await db.query<{ version: number }>("SELECT version FROM schema_migrations");
  return new Set(rows.map((r) => Number(r.version)));
}

async function runScript(tx: Queryable, sql: string): Promise<void> {
  if (!tx.exec) throw new Error("this store's transactions cannot run a script (no exec): open it with openPostgres or openPglite");
  await tx.exec(sql);
}

/** A migration that failed (rolled back); `code` is the PostgreSQL error's (SQLSTATE) when there is one. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
  readonly code: string | undefined;
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    const message = cause instanceof Error ? cause.message : String(cause);
    const code = typeof (cause as { code?: unknown } | null)?.code === "string" ? (cause as { code: string }).code : undefined;
    const hint =
      code === "42501"
        ? " The database user may not change the schema: apply migrations as the schema's owner (the migrating admin), not as the app's least-privilege role."
        : "";
    super(`migration ${migration} failed and was rolled back: ${message}.${hint}`, { cause });
    this.code = code;
  }
}
