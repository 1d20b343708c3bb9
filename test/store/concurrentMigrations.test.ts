/**
 * Cold starts racing on an empty database: several Node processes (each as a fresh Functions instance
 * would be) migrate the same empty PostgreSQL database at the same moment. All must succeed, each
 * migration must be applied by exactly one of them, and the schema must be there. The server is the
 * test's own (test/support/privatePostgres), so the database is empty and nobody else's.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { Client } from "pg";
import { postgresBinDir, privatePostgresMode, startPrivatePostgres, type PrivatePostgres } from "../support/privatePostgres";

const bin = postgresBinDir();
const mode = privatePostgresMode(bin);
if (mode === "skip") {
  console.warn("concurrentMigrations: skipped — no PostgreSQL server binaries under /usr/lib/postgresql (in CI it fails instead)");
}
const describeRace = mode === "skip" ? describe.skip : describe;

const repo = path.join(__dirname, "..", "..");
const PROCESSES = 5;

/** The migration versions, from the file names (not from the runner). */
const versions = readdirSync(path.join(repo, "shared", "store", "migrations"))
  .filter((f) => /^\d{3}_.+\.sql$/.test(f))
  .map((f) => Number(f.slice(0, 3)))
  .sort((a, b) => a - b);

/** Tables the migrations create (hand-written from the .sql files). */
const TABLES = [
  "dead_letters",
  "devices",
  "fleet_sync_passes",
  "property_history",
  "property_records",
  "report_compliance_times",
  "report_state_deltas",
  "schema_migrations",
  "twin_lifecycle",
  "twins",
];

interface Outcome {
  code: number | null;
  result: { ok: boolean; applied?: number[]; error?: string } | undefined;
  stderr: string;
}

/** Starts a cold-start process; resolves `ready` once it waits for the go line, `done` when it exits. */
function coldStart(url: string): { ready: Promise<void>; go: () => void; done: Promise<Outcome> } {
  const child = spawn(process.execPath, [path.join(repo, "bin", "run-ts.js"), path.join(repo, "test", "support", "coldStartMigrate.ts")], {
    cwd: repo,
    env: { ...process.env, DATABASE_URL: url },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes("ready\n")) markReady();
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Outcome>((resolve) =>
    child.once("exit", (code) => {
      markReady();
      const last = stdout.trim().split("\n").pop() ?? "";
      let result: Outcome["result"];
      try {
        result = JSON.parse(last) as Outcome["result"];
      } catch {
        result = undefined;
      }
      resolve({ code, result, stderr });
    }),
  );
  return { ready, go: () => child.stdin.end("go\n"), done };
}

describeRace("migrations on cold starts racing", () => {
  let server: PrivatePostgres;
  beforeAll(async () => {
    if (!bin) throw new Error("CI=true but no PostgreSQL server binaries under /usr/lib/postgresql: install postgresql (.ci/run does)");
    server = await startPrivatePostgres(bin);
  }, 120_000);
  afterAll(async () => {
    await server?.dispose();
  });

  test(`${PROCESSES} processes migrating one empty database at once all succeed and apply each migration once`, async () => {
    const starts = Array.from({ length: PROCESSES }, () => coldStart(server.url));
    await Promise.all(starts.map((s) => s.ready));
    for (const s of starts) s.go();
    const outcomes = await Promise.all(starts.map((s) => s.done));

    expect(outcomes.map((o) => ({ code: o.code, ok: o.result?.ok, error: o.result?.error }))).toEqual(
      outcomes.map(() => ({ code: 0, ok: true, error: undefined })),
    );
    // Every version applied by exactly one process.
    const applied = outcomes.flatMap((o) => o.result?.applied ?? []).sort((a, b) => a - b);
    expect(applied).toEqual(versions);

    const client = new Client({ connectionString: server.url });
    await client.connect();
    try {
      const recorded = await client.query<{ version: number; n: string }>(
        "SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version",
      );
      expect(recorded.rows.map((r) => [r.version, Number(r.n)])).toEqual(versions.map((v) => [v, 1]));
      const tables = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(TABLES));
    } finally {
      await client.end();
    }
  }, 180_000);
});
