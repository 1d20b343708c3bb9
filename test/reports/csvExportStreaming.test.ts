/**
 * The CSV export through the function path, at fleet size: 1M property records in PostgreSQL, one
 * HTTP GET of compliance/devices.csv on the local host (run in a child process, so its memory is
 * the serving process's alone). Every row is checked against the seed's own formula, and the
 * host's resident memory may grow by less than 150 MiB while a ~100 MiB body goes through: with the
 * app's HTTP streams the body is never held whole (measured +58 and +69 MiB). Without them the
 * library buffers it, then the host copies it: +355 and +292 MiB, so the test fails.
 */
import { get, type IncomingMessage } from "node:http";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Database } from "../../shared/store/Database";
import { startHostProcess, type HostProcess } from "../support/startHostProcess";
import { openTestPostgres } from "../support/testDatabases";

const DEVICES = 100_000;
const PATHS = 10;
const MB = 1024 * 1024;
const RSS_GROWTH_LIMIT = 150 * MB;
const epoch = Date.parse("2026-11-20T00:00:00.000Z");
const seedStates = ["compliant", "drifted", "failed"] as const;

const url = process.env.DATABASE_URL;
if (!url && process.env.CI === "true") throw new Error("CI=true but DATABASE_URL is not set: the 1M-record CSV export must run on PostgreSQL in CI");
const describeOnPostgres = url ? describe : describe.skip;

/** Record i of the export (in deviceId, path order) as the seed below writes it, encoded by RFC 4180 by hand. */
function expectedRow(i: number): string {
  const d = Math.floor(i / PATHS) + 1;
  const p = i % PATHS;
  const state = seedStates[(d + p) % 3]!;
  const desired = String(d * 10 + p);
  const reported = (d + p) % 3 === 0 ? desired : `"r${d}"`;
  const cell = (text: string) => (/[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  return [
    `dev-${String(d).padStart(6, "0")}`,
    "",
    seedStates[d % 3]!,
    `prop.p${p}`,
    state,
    desired,
    reported,
    String(1 + (d % 7)),
    new Date(epoch + d * 1000).toISOString(),
    new Date(epoch + d * 1000 + p * 60_000).toISOString(),
  ]
    .map(cell)
    .join(",");
}

/** Set-based: 100,000 devices (no module, no staleness) × 10 properties with values derived from (device, property). */
async function seed(db: Database): Promise<void> {
  const at = new Date(epoch).toISOString();
  await db.query(
    `INSERT INTO devices (device_id, module_id, state, state_since, stale_at, updated_at)
     SELECT 'dev-' || lpad(d::text, 6, '0'), '', (ARRAY['compliant','drifted','failed'])[1 + d % 3], $1::timestamptz, NULL, $1::timestamptz
       FROM generate_series(1, $2::int) d`,
    [at, DEVICES],
  );
  await db.query(
    `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired, reported,
                                   desired_version, desired_since, state_since, stale_at, updated_at)
     SELECT 'dev-' || lpad(d::text, 6, '0'), '', 'prop.p' || p, 'prop.p' || p, 'equals', (ARRAY['compliant','drifted','failed'])[1 + (d + p) % 3],
            to_jsonb(d * 10 + p), CASE WHEN (d + p) % 3 = 0 THEN to_jsonb(d * 10 + p) ELSE to_jsonb('r' || d) END, 1 + d % 7,
            $1::timestamptz + make_interval(secs => d), $1::timestamptz + make_interval(secs => d, mins => p),
            $1::timestamptz + interval '3650 days', $1::timestamptz
       FROM generate_series(1, $2::int) d CROSS JOIN generate_series(0, $3::int - 1) p`,
    [at, DEVICES, PATHS],
  );
  await db.query("VACUUM ANALYZE devices");
  await db.query("VACUUM ANALYZE property_records");
}

function httpGet(target: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => get(target, resolve).once("error", reject));
}

describeOnPostgres("CSV export of 1M property records through the local host", () => {
  let db: Database;
  let host: HostProcess;

  beforeAll(async () => {
    db = await openTestPostgres(url!, { max: 1 });
    await seed(db);
    const schema = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")).rows[0]!.schema;
    const storeUrl = new URL(url!);
    storeUrl.searchParams.set("options", `-c search_path=${schema}`);
    host = await startHostProcess({
      modules: [path.resolve(__dirname, "../../functions/complianceApi.ts")],
      settings: { DATABASE_URL: storeUrl.toString() },
    });
  }, 600_000);

  afterAll(async () => {
    await host?.stop();
    await db?.close();
  }, 60_000);

  test("streams every record, in order and as seeded, while the host's RSS grows by less than 150 MiB", async () => {
    // Warm up on a tenth of the export (modules, store connection, and the heap the export works in), so the growth measured
    // next is what the body's size adds: nothing much when it streams, several times the body when it is buffered.
    for (let i = 0; i < 2; i++) {
      const warm = await httpGet(`${host.url}/compliance/devices.csv?property=prop.p0`);
      expect(warm.statusCode).toBe(200);
      for await (const chunk of warm) void chunk;
    }
    const before = host.rss();
    host.resetPeak();

    const response = await httpGet(`${host.url}/compliance/devices.csv`);
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("text/csv; charset=utf-8");
    let bytes = 0;
    response.on("data", (chunk: Buffer) => (bytes += chunk.length));
    let rows = -1;
    let header = "";
    const mismatches: string[] = [];
    for await (const line of createInterface({ input: response, crlfDelay: Infinity })) {
      if (rows === -1) header = line;
      else if (line !== expectedRow(rows) && mismatches.length < 3) mismatches.push(`row ${rows + 1}: got ${line}, expected ${expectedRow(rows)}`);
      rows++;
    }
    const growth = host.peakRss() - before;
    console.log(`CSV export through the host: ${rows} rows, ${(bytes / MB).toFixed(1)} MiB; host RSS ${(before / MB).toFixed(0)} MiB before, peak +${(growth / MB).toFixed(0)} MiB`);

    expect(header).toBe("deviceId,moduleId,deviceState,path,state,desired,reported,desiredVersion,desiredSince,stateSince");
    expect(mismatches).toEqual([]);
    expect(rows).toBe(DEVICES * PATHS);
    expect(bytes).toBeGreaterThan(90 * MB);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
    expect(host.stderr()).toBe("");
  }, 600_000);
});
