import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "./Database";

const migrationsDir = join(__dirname, "migrations");

/**
 * Applies the numbered SQL migrations (`NNN_name.sql`) not yet recorded in schema_migrations,
 * each in its own transaction. Safe to call at every start; two processes racing are serialised
 * by the primary key on schema_migrations (the loser's transaction fails and it re-reads).
 */
export async function migrate(db: Database): Promise<number[]> {
  await db.query(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
  );
  const files = readdirSync(migrationsDir)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort();
  const applied: number[] = [];
  for (const file of files) {
    const version = Number(file.slice(0, 3));
    const done = await db.query<{ version: number }>("SELECT version FROM schema_migrations WHERE version = $1", [version]);
    if (done.rows.length > 0) continue;
    const sql = readFileSync(join(migrationsDir, file), "utf8");
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [version, file]);
      for (const statement of splitStatements(sql)) await tx.query(statement);
    });
    applied.push(version);
  }
  return applied;
}

/** Splits a migration file into statements (our migrations contain no semicolons inside literals). */
function splitStatements(sql: string): string[] {
  return sql
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("--"))
    .join("\n")
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
