/**
 * The least-privilege role (migration 008): a login role granted twin_reconciler_app — as the app's
 * managed identity is in Azure — runs the reconcile path, the summary, retention and the counter
 * repair, and starts (migrate finds nothing pending and needs no DDL), but cannot drop, alter,
 * truncate or create tables, nor record migrations. The server is the test's own
 * (test/support/privatePostgres): roles are cluster-wide.
 */
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges } from "../../shared/reconcile";
import { complianceRoutes } from "../../shared/reports/complianceRoutes";
import type { Database, Queryable } from "../../shared/store/Database";
import { migrate, MigrationError, migrationFiles } from "../../shared/store/migrate";
import { openPostgres } from "../../shared/store/openPostgres";
import { pruneRetention } from "../../shared/store/pruneRetention";
import { repairReportCounters } from "../../shared/store/reportCounters";
import { SEED_POLICY, seedTutorialStream } from "../fixtures/twinEvents";
import { postgresBinDir, privatePostgresMode, startPrivatePostgres, type PrivatePostgres } from "../support/privatePostgres";
import { openTestPostgres } from "../support/testDatabases";

const bin = postgresBinDir();
const mode = privatePostgresMode(bin);
if (mode === "skip") {
  console.warn("appRole: skipped — no PostgreSQL server binaries under /usr/lib/postgresql (in CI it fails instead)");
}
const describeRole = mode === "skip" ? describe.skip : describe;

const policy = parsePolicy(SEED_POLICY);
const clock = () => new Date("2026-01-01T00:05:00.000Z");

async function batch() {
  const { messages, triggerMetadata } = await toTriggerInput([...seedTutorialStream("role-a").events, ...seedTutorialStream("role-b").events]);
  return { messages, triggerMetadata };
}

/** Every row of the tables a batch writes, without generated ids and write timestamps. */
async function storedRows(db: Queryable): Promise<Record<string, unknown[]>> {
  const tables: [string, string][] = [
    ["twins", "device_id, module_id"],
    ["devices", "device_id, module_id"],
    ["property_records", "device_id, module_id, path"],
    ["property_history", "id"],
  ];
  const out: Record<string, unknown[]> = {};
  for (const [table, order] of tables) {
    const { rows } = await db.query<{ row: unknown }>(`SELECT to_jsonb(t) - 'id' - 'updated_at' - 'received_at' AS row FROM ${table} t ORDER BY ${order}`);
    out[table] = rows.map((r) => r.row);
  }
  return out;
}

describeRole("the app's least-privilege role (twin_reconciler_app)", () => {
  let server: PrivatePostgres;
  let owner: Database;
  let app: Database;

  beforeAll(async () => {
    if (!bin) throw new Error("CI=true but no PostgreSQL server binaries under /usr/lib/postgresql: install postgresql (.ci/run does)");
    server = await startPrivatePostgres(bin);
    owner = openPostgres(server.url, { max: 1 });
    await migrate(owner);
    // As the infra maps the app's managed identity: a login role that is a member of the app role.
    await owner.query("CREATE ROLE twin_app_login LOGIN IN ROLE twin_reconciler_app");
    app = openPostgres(server.url.replace("//postgres@", "//twin_app_login@"), { max: 2 });
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await owner?.close();
    await server?.dispose();
  });

  test("signs in as a role that is neither superuser nor owner", async () => {
    const { rows } = await app.query<{ user: string; superuser: boolean; owns: boolean }>(
      "SELECT current_user AS user, rolsuper AS superuser, pg_has_role(current_user, (SELECT tableowner FROM pg_tables WHERE tablename = 'twins'), 'USAGE') AS owns FROM pg_roles WHERE rolname = current_user",
    );
    expect(rows).toEqual([{ user: "twin_app_login", superuser: false, owns: false }]);
  });

  test("starts: every migration is applied, so migrate reads schema_migrations and changes nothing", async () => {
    expect(await migrate(app)).toEqual([]);
  });

  test("runs the reconcile path and stores what the owner stores for the same batch", async () => {
    const reference = await openTestPostgres(server.url);
    try {
      const b = await batch();
      await reconcileTwinChanges(b.messages, b.triggerMetadata, { db: reference, policy, clock });
      const expected = await storedRows(reference);
      expect(expected.property_records!.length).toBeGreaterThan(0);

      await reconcileTwinChanges(b.messages, b.triggerMetadata, { db: app, policy, clock });
      expect(await storedRows(app)).toEqual(expected);
    } finally {
      await reference.close();
    }
  });

  test("answers the summary, prunes retention and repairs the counters (functions, LOCK TABLE)", async () => {
    const summary = await complianceRoutes.summary({ query: new URLSearchParams(), params: {} }, async () => app, () => undefined);
    expect(summary.status).toBe(200);
    await expect(pruneRetention(app, { historyMs: 1, deadLetterMs: 1, complianceTimesMs: 1 }, new Date("2027-01-01T00:00:00Z"))).resolves.toMatchObject({
      done: true,
    });
    await expect(repairReportCounters(app)).resolves.toEqual([]);
  });

  test.each([
    ["DROP TABLE twins"],
    ["ALTER TABLE devices ADD COLUMN sneaky integer"],
    ["TRUNCATE property_records"],
    ["CREATE TABLE sneaky (id integer)"],
    ["CREATE INDEX sneaky_idx ON twins (updated_at)"],
    ["DROP FUNCTION repair_report_counters()"],
    ["DROP TRIGGER report_count_devices_insert ON devices"],
    ["INSERT INTO schema_migrations (version, name) VALUES (999, '999_sneaky.sql')"],
    ["DELETE FROM schema_migrations"],
  ])("is refused: %s", async (sql) => {
    await expect(app.query(sql)).rejects.toMatchObject({ code: "42501" });
  });

  test("a pending migration fails as the app, naming the migration and saying who must apply it", async () => {
    const files = [...migrationFiles(), { version: 999, name: "999_later.sql", sql: "CREATE TABLE later (id integer)" }];
    const error = await migrate(app, files).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MigrationError);
    expect(error).toMatchObject({ code: "42501", migration: "999_later.sql" });
    expect((error as Error).message).toMatch(/^migration 999_later\.sql failed and was rolled back: .*apply migrations as the schema's owner/);
  });

  test("gets rights on what the owner's later migrations create (default privileges)", async () => {
    const later = { version: 998, name: "998_later.sql", sql: "CREATE TABLE later_rows (id bigserial PRIMARY KEY, note text NOT NULL)" };
    expect(await migrate(owner, [...migrationFiles(), later])).toEqual([998]);
    await app.query("INSERT INTO later_rows (note) VALUES ($1)", ["written by the app"]);
    expect((await app.query("SELECT id, note FROM later_rows")).rows).toEqual([{ id: "1", note: "written by the app" }]);
    await expect(app.query("DROP TABLE later_rows")).rejects.toMatchObject({ code: "42501" });
  });
});
