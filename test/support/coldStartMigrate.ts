/**
 * One cold start, as a process of its own: `node bin/run-ts.js test/support/coldStartMigrate.ts`
 * with DATABASE_URL set. It loads the store code, prints `ready`, waits for a line on stdin (so a test
 * can release several processes at the same moment), migrates, and prints the versions it applied.
 */
import { once } from "node:events";
import { createInterface } from "node:readline";
import { loadConfig } from "../../shared/config";
import { migrate } from "../../shared/store/migrate";
import { openPostgres } from "../../shared/store/openPostgres";

async function main(): Promise<void> {
  const { store } = loadConfig();
  if (store.kind !== "postgres") throw new Error("coldStartMigrate needs DATABASE_URL");
  const db = openPostgres(store.connectionString, { max: 2 });
  const lines = createInterface({ input: process.stdin });
  process.stdout.write("ready\n");
  await once(lines, "line");
  lines.close();
  try {
    const applied = await migrate(db);
    process.stdout.write(`${JSON.stringify({ ok: true, applied })}\n`);
  } finally {
    await db.close();
  }
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) })}\n`);
  process.exitCode = 1;
});
