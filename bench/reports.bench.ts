/**
 * Compliance reports on a large fleet: 100,000 devices × 10 properties (1M property records) and
 * 1M history rows over the last 30 days. PostgreSQL when DATABASE_URL is set (in a schema of its
 * own, dropped at the end), else PGlite in memory. Prints median latencies with a baseline from the
 * same run (live counting instead of the counters of 003_reports.sql; a naive, non-sargable filter),
 * the full CSV export time and peak RSS (read straight from the store, and as an HTTP GET through
 * the local host with the app's HTTP streams: on PostgreSQL the host runs in a child process and its
 * own peak RSS is reported; on PGlite in memory it runs in the bench process, which holds the
 * database too), and the write cost of the counters on the reconcile path.
 *
 *   npm run bench:reports                     # PGlite
 *   DATABASE_URL=postgresql://… npm run bench:reports
 */
import { mkdtempSync, rmSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { startLocalHost } from "../local/host/startLocalHost";
import { emptyStateCounts } from "../shared/compliance/ComplianceState";
import type { PropertyRecord } from "../shared/compliance/PropertyRecord";
import { getComplianceSummary } from "../shared/reports/getComplianceSummary";
import { getDeviceDetail } from "../shared/reports/getDeviceDetail";
import { useStore } from "../shared/reports/getStore";
import { listDevices } from "../shared/reports/listDevices";
import { streamDevicesCsv } from "../shared/reports/streamDevicesCsv";
import { writeBatch, type BatchWrite } from "../shared/store/complianceStore";
import type { Database } from "../shared/store/Database";
import { startHostProcess } from "../test/support/startHostProcess";
import { openTestPglite, openTestPostgres } from "../test/support/testDatabases";

const DEVICES = Number(process.env.BENCH_DEVICES ?? 100_000);
const PATHS = 10;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const SITES = ["berlin", "paris", "oslo", "lyon", "madrid"];

async function openBenchStore(): Promise<{ db: Database; label: string; url?: string; close(): Promise<void> }> {
  const url = process.env.DATABASE_URL?.trim();
  if (!url) {
    const db = await openTestPglite();
    return { db, label: "PGlite (in memory)", close: () => db.close() };
  }
  // A schema of its own, dropped at close (the test suites' helper).
  const db = await openTestPostgres(url, { max: 4 });
  const version = (await db.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v;
  const schema = (await db.query<{ s: string }>("SELECT current_schema() AS s")).rows[0]?.s ?? "public";
  const schemaUrl = new URL(url);
  schemaUrl.searchParams.set("options", `-c search_path=${schema}`);
  return { db, label: `PostgreSQL ${version}`, url: schemaUrl.toString(), close: () => db.close() };
}

const complianceApi = path.resolve(__dirname, "..", "functions", "complianceApi.ts");

/** GET `url` and read the body as fast as it comes: bytes, rows, time to the first byte and to the end. */
async function download(url: string): Promise<{ status: number; bytes: number; rows: number; firstByteMs: number; totalMs: number }> {
  const start = performance.now();
  const response = await new Promise<IncomingMessage>((resolve, reject) => get(url, resolve).once("error", reject));
  let bytes = 0;
  let lines = 0;
  let firstByteMs = Number.NaN;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (bytes === 0) firstByteMs = performance.now() - start;
    bytes += chunk.length;
    for (let k = chunk.indexOf(10); k >= 0; k = chunk.indexOf(10, k + 1)) lines++;
  }
  return { status: response.statusCode ?? 0, bytes, rows: lines - 1, firstByteMs, totalMs: performance.now() - start };
}

/**
 * The full export as `GET compliance/devices.csv` on the local host (HTTP streams on, as in Azure). With a PostgreSQL URL the
 * host is a child process and the figure is its own peak RSS; otherwise the host serves `db` from this process.
 */
async function exportOverHttp(db: Database, storeUrl: string | undefined): Promise<string> {
  const warmUp = "/compliance/devices.csv?property=prop.p0&state=failed";
  if (storeUrl) {
    const host = await startHostProcess({ modules: [complianceApi], settings: { DATABASE_URL: storeUrl } });
    try {
      await download(host.url + warmUp);
      const before = host.rss();
      host.resetPeak();
      const r = await download(`${host.url}/compliance/devices.csv`);
      const peak = host.peakRss();
      return describeExport("host process (child)", r, before, peak);
    } finally {
      await host.stop();
    }
  }
  const rootDir = mkdtempSync(path.join(tmpdir(), "bench-host-"));
  useStore(db);
  const host = await startLocalHost({ modules: [complianceApi], rootDir, port: 0, scheduleTimers: false, log: () => undefined });
  try {
    await download(host.url + warmUp);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    const r = await download(`${host.url}/compliance/devices.csv`);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    return describeExport("bench process (host in-process, with PGlite)", r, before, peak);
  } finally {
    await host.stop();
    useStore(undefined);
    rmSync(rootDir, { recursive: true, force: true });
  }
}

function describeExport(whose: string, r: Awaited<ReturnType<typeof download>>, before: number, peak: number): string {
  return (
    `CSV export over HTTP (local host, HTTP streams): HTTP ${r.status}, ${r.rows.toLocaleString()} rows, ${(r.bytes / 1e6).toFixed(0)} MB in ${(r.totalMs / 1000).toFixed(2)} s ` +
    `(first byte after ${r.firstByteMs.toFixed(0)} ms); ${whose} RSS ${(before / 1e6).toFixed(0)} MB before, peak ${(peak / 1e6).toFixed(0)} MB (+${((peak - before) / 1e6).toFixed(0)} MB)`
  );
}

/** Set-based seed: records first (state by a hash of device and path), devices = worst of their records, one history row per record. */
async function seed(db: Database, now: string): Promise<void> {
  const states = `ARRAY['compliant','pending','drifted','stale','failed','escalated']`;
  await db.query(
    `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired, reported,
                                   desired_version, desired_since, state_since, stale_at, updated_at)
     SELECT 'dev-' || lpad(d::text, 6, '0'), '', 'prop.p' || p, 'prop.p' || p, 'equals', s.state,
            to_jsonb(d % 97), to_jsonb(CASE WHEN s.state = 'compliant' THEN d % 97 ELSE d % 89 END), 1 + (d + p) % 5,
            t.since, t.since + make_interval(secs => 30 + h.h % 1800), t.since + interval '1 hour', t.since
       FROM generate_series(1, $2::int) d CROSS JOIN generate_series(0, ${PATHS - 1}) p
       CROSS JOIN LATERAL (SELECT ((d::bigint * 2654435761 + p * 40503) % 2147483647)::int AS h) h
       CROSS JOIN LATERAL (SELECT CASE WHEN h.h % 100 < 82 THEN 'compliant' WHEN h.h % 100 < 90 THEN 'pending'
                                       WHEN h.h % 100 < 94 THEN 'drifted' WHEN h.h % 100 < 96 THEN 'stale'
                                       WHEN h.h % 100 < 98 THEN 'failed' ELSE 'escalated' END AS state) s
       CROSS JOIN LATERAL (SELECT $1::timestamptz - make_interval(secs => CASE WHEN s.state = 'pending' THEN h.h % 7200
                                                                           ELSE 1800 + h.h % (30 * 86400) END) AS since) t`,
    [now, DEVICES],
  );
  await db.query(
    `INSERT INTO devices (device_id, module_id, state, state_since, stale_at, counts, tags, updated_at)
     SELECT device_id, '', (${states})[max(array_position(${states}, state))], max(state_since),
            min(stale_at) FILTER (WHERE state = 'pending'),
            jsonb_strip_nulls(jsonb_build_object(
              'compliant', nullif(count(*) FILTER (WHERE state = 'compliant'), 0), 'pending', nullif(count(*) FILTER (WHERE state = 'pending'), 0),
              'drifted', nullif(count(*) FILTER (WHERE state = 'drifted'), 0), 'stale', nullif(count(*) FILTER (WHERE state = 'stale'), 0),
              'failed', nullif(count(*) FILTER (WHERE state = 'failed'), 0), 'escalated', nullif(count(*) FILTER (WHERE state = 'escalated'), 0))),
            jsonb_build_object('site', ($2::text[])[1 + substr(device_id, 5)::int % 5], 'floor', substr(device_id, 5)::int % 12,
                               'env', jsonb_build_object('tier', CASE WHEN substr(device_id, 5)::int % 3 = 0 THEN 'prod' ELSE 'test' END)),
            $1::timestamptz
       FROM property_records GROUP BY device_id`,
    [now, SITES],
  );
  await db.query(
    `INSERT INTO property_history (device_id, module_id, path, from_state, to_state, cause, at, desired_version, desired, reported)
     SELECT device_id, module_id, path, 'pending', state, 'event', state_since, desired_version, desired, reported
       FROM property_records ORDER BY state_since`,
  );
  // Steady state: autovacuum has set the visibility map (index-only scans) and the statistics.
  for (const table of ["property_records", "devices", "property_history", "report_state_deltas", "report_compliance_times"]) await db.query(`VACUUM ANALYZE ${table}`);
}

async function median(fn: () => Promise<unknown>, runs = RUNS): Promise<number> {
  await fn();
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

const ms = (n: number) => `${n.toFixed(1).padStart(8)} ms`;

/** The obvious filter: the device's effective state as an expression and the tag read by ->> (neither can use an index). */
async function naivePage(db: Database, now: string) {
  return db.query(
    `SELECT d.device_id, d.module_id, CASE WHEN d.stale_at <= $1 AND d.state IN ('compliant','pending','drifted') THEN 'stale' ELSE d.state END AS state,
            (SELECT jsonb_object_agg(state, n) FROM (SELECT state, count(*) n FROM property_records r
              WHERE r.device_id = d.device_id AND r.module_id = d.module_id GROUP BY 1) c) AS counts
       FROM devices d
      WHERE CASE WHEN d.stale_at <= $1 AND d.state IN ('compliant','pending','drifted') THEN 'stale' ELSE d.state END = 'failed'
        AND d.tags->>'site' = 'paris'
      ORDER BY d.device_id, d.module_id LIMIT 101`,
    [now],
  );
}

/** The reconcile path's store writes (writeBatch): `events` events in batches of `batchSize`, each changing one record's state. */
async function reconcileWrites(db: Database, events: number, batchSize: number, round: number): Promise<number> {
  const start = performance.now();
  const at = new Date().toISOString();
  for (let b = 0; b < events / batchSize; b++) {
    const batch: BatchWrite = { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] };
    for (let e = 0; e < batchSize; e++) {
      const n = 1 + ((b * batchSize + e) * 7919) % DEVICES;
      const key = { deviceId: `dev-${String(n).padStart(6, "0")}`, moduleId: null };
      const state = (b + round) % 2 === 0 ? "pending" : "compliant";
      const record: PropertyRecord = {
        path: `prop.p${e % PATHS}`,
        reportedPath: `prop.p${e % PATHS}`,
        compare: "equals",
        state,
        desired: n % 97,
        reported: state === "compliant" ? n % 97 : 0,
        desiredVersion: 7,
        desiredSince: at,
        stateSince: at,
        staleAt: new Date(Date.parse(at) + 3600_000).toISOString(),
        repushDrift: true,
      };
      batch.records.push({ key, record });
      batch.history.push({ key, transition: { path: record.path, from: null, to: state, cause: "event", at, desiredVersion: 7, desired: record.desired, reported: record.reported } });
      const counts = emptyStateCounts();
      counts[state] = 1;
      batch.devices.push({ key, state, stateSince: at, staleAt: undefined, counts, tags: { site: "berlin" }, resyncNeeded: false });
    }
    await db.transaction((tx) => writeBatch(tx, batch));
  }
  return events / ((performance.now() - start) / 1000);
}

async function main() {
  const { db, label, url: storeUrl, close } = await openBenchStore();
  try {
    console.log(`Compliance reports bench on ${label}: ${DEVICES.toLocaleString()} devices × ${PATHS} properties, median of ${RUNS} runs`);
    const now = new Date().toISOString();
    let t = performance.now();
    await seed(db, now);
    const counts = (await db.query<{ r: string; h: string }>("SELECT (SELECT count(*) FROM property_records) AS r, (SELECT count(*) FROM property_history) AS h")).rows[0];
    console.log(`seeded ${Number(counts?.r).toLocaleString()} records, ${Number(counts?.h).toLocaleString()} history rows in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);

    const filters = { tags: [] };
    const summary = await getComplianceSummary(db, filters);
    console.log(`summary: ${summary.devices} devices, byState ${JSON.stringify(summary.byState)}, time-to-compliance ${JSON.stringify(summary.timeToCompliance)}\n`);
    const rows: [string, number, number | undefined][] = [];
    rows.push(["summary (counters)", await median(() => getComplianceSummary(db, filters)), await median(() => getComplianceSummary(db, filters, { useCounters: false }), 5)]);
    rows.push(["summary ?tag.site=paris", await median(() => getComplianceSummary(db, { tags: [{ path: ["site"], value: "paris" }] })), undefined]);
    const pageFilters = { state: "failed" as const, tags: [{ path: ["site"], value: "paris" }] };
    rows.push(["page ?state=failed&tag.site=paris", await median(() => listDevices(db, pageFilters, { limit: 100 })), await median(() => naivePage(db, now))]);
    const first = await listDevices(db, { tags: [] }, { limit: 100 });
    rows.push(["page 2 (cursor), no filter", await median(() => listDevices(db, { tags: [] }, { limit: 100, after: { deviceId: first.items.at(-1)!.deviceId, moduleId: "" } })), undefined]);
    let i = 0;
    rows.push(["device detail", await median(() => getDeviceDetail(db, `dev-${String(1 + ((i++ * 7919) % DEVICES)).padStart(6, "0")}`, null)), undefined]);
    console.log(`${"".padEnd(36)}${"ours".padStart(11)}${"baseline".padStart(11)}`);
    for (const [name, ours, base] of rows) console.log(`${name.padEnd(36)}${ms(ours)}${base === undefined ? "" : ms(base)}`);
    console.log("  (baselines: summary counting every record live; page with the effective state and the tag as expressions)");

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    t = performance.now();
    let bytes = 0;
    let lines = 0;
    for await (const chunk of streamDevicesCsv(db, { tags: [] })) {
      bytes += Buffer.byteLength(chunk);
      for (let k = chunk.indexOf("\n"); k >= 0; k = chunk.indexOf("\n", k + 1)) lines++;
    }
    const csvMs = performance.now() - t;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(
      `\nCSV export: ${(lines - 1).toLocaleString()} rows, ${(bytes / 1e6).toFixed(0)} MB in ${(csvMs / 1000).toFixed(2)} s; ` +
        `RSS ${(rssBefore / 1e6).toFixed(0)} MB before, peak ${(peak / 1e6).toFixed(0)} MB (+${((peak - rssBefore) / 1e6).toFixed(0)} MB)`,
    );
    console.log(await exportOverHttp(db, storeUrl));

    // Alternating rounds so drift (autovacuum, cache) hits both sides alike.
    const events = Number(process.env.BENCH_WRITE_EVENTS ?? 20_000);
    const on: number[] = [];
    const off: number[] = [];
    for (let round = 0; round < 3; round++) {
      on.push(await reconcileWrites(db, events, 500, 2 * round));
      await db.query("ALTER TABLE property_records DISABLE TRIGGER USER");
      await db.query("ALTER TABLE devices DISABLE TRIGGER USER");
      await db.query("ALTER TABLE property_history DISABLE TRIGGER USER");
      off.push(await reconcileWrites(db, events, 500, 2 * round + 1));
      await db.query("ALTER TABLE property_records ENABLE TRIGGER USER");
      await db.query("ALTER TABLE devices ENABLE TRIGGER USER");
      await db.query("ALTER TABLE property_history ENABLE TRIGGER USER");
    }
    const mid = (xs: number[]) => Math.round([...xs].sort((a, b) => a - b)[1] ?? Number.NaN);
    console.log(
      `\nreconcile store writes (writeBatch: ${events.toLocaleString()} events in batches of 500; each one record upsert + history row + device upsert), median of 3:\n` +
        `  with 003 triggers ${mid(on).toLocaleString()} events/s [${on.map(Math.round).join(", ")}]` +
        `  without ${mid(off).toLocaleString()} events/s [${off.map(Math.round).join(", ")}]  → cost ${(100 * (1 - mid(on) / mid(off))).toFixed(0)}%`,
    );
  } finally {
    await close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
