/**
 * Fleet sync benchmark: a full pass over N device twins (default 100,000) on the local IoT Hub
 * emulator with S1 throttling on (20 queries/min, 100 twin reads/s), through the real azure-iothub
 * Registry over HTTPS, onto an empty store (a first deployment onto an existing hub). Side by side
 * with the baseline it replaces: one getTwin per device at S1's 100 reads/s, measured on a sample
 * (default 2,000 devices) and extrapolated to N. PostgreSQL when DATABASE_URL is set (in a schema
 * of its own, dropped at the end), PGlite in memory otherwise. The emulator and its fleet run in a
 * child process, so the RSS printed is the reconciler's (with PGlite, the store's too).
 *
 *   npm run bench:sync -- [--twins 100000] [--page-size 1000] [--queries-per-minute 20] [--sample 2000]
 */
import { fork } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { applyHubTwins } from "../shared/applyHubTwins";
import { iothubTwinRegistry } from "../shared/hub/iothubTwinRegistry";
import { queryLimitedTwinQueries, queryLimiter } from "../shared/hub/queryLimitedTwinQueries";
import { rateLimitedTwinRegistry, TokenBucket } from "../shared/hub/TokenBucket";
import { parsePolicy } from "../shared/policy/Policy";
import type { Database } from "../shared/store/Database";
import { syncFleetTwins } from "../shared/sync/syncFleetTwins";
import { createRegistryClientFor } from "../local/emulator/createRegistryClient";
import { startEmulator } from "../local/emulator";
import { openTestPglite, openTestPostgres } from "../test/support/testDatabases";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a whole number above 0`);
  return value;
}

const twins = arg("twins", 100_000);
const pageSize = arg("page-size", 1000);
const queriesPerMinute = arg("queries-per-minute", 20);
const sample = Math.min(arg("sample", 2000), twins);
const policy = parsePolicy({ staleAfter: "1d", rules: [] });
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function openBenchStore(): Promise<{ db: Database; label: string }> {
  const url = process.env.DATABASE_URL?.trim();
  if (!url) return { db: await openTestPglite(), label: "PGlite (in memory)" };
  const db = await openTestPostgres(url, { max: 4 });
  const version = (await db.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v;
  return { db, label: `PostgreSQL ${version}` };
}

/** Samples RSS every 100 ms: the peak of a phase. */
function rssPeak(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

interface HubReady {
  kind: "ready";
  connectionString: string;
  port: number;
  ca: string;
  setupMs: number;
}

/** The child: the emulator (S1) with the fleet created in process; answers `counters` and `stop`. */
async function serveHub(): Promise<void> {
  const emulator = await startEmulator({ throttling: "S1" });
  const setupStart = performance.now();
  for (let i = 0; i < twins; i++) {
    const id = deviceId(i);
    emulator.createDevice(id);
    const desired = { telemetryInterval: 30 + (i % 5), mode: i % 3 === 0 ? "eco" : "full" };
    emulator.updateDesired(id, desired);
    if (i % 2 === 0) emulator.updateReported(id, desired);
  }
  const ready: HubReady = { kind: "ready", connectionString: emulator.serviceConnectionString, port: emulator.httpsPort, ca: emulator.caPem, setupMs: performance.now() - setupStart };
  process.send?.(ready);
  process.on("message", (message: { kind: string }) => {
    if (message.kind === "counters") process.send?.({ kind: "counters", throttled: emulator.counters.throttled });
    if (message.kind === "stop") void emulator.stop().then(() => process.exit(0));
  });
}

const deviceId = (i: number) => `bench-${String(i).padStart(6, "0")}`;

async function main(): Promise<void> {
  const child = fork(join(__dirname, "..", "bin", "run-ts.js"), [__filename, "--serve-hub", "--twins", String(twins)], { stdio: "inherit" });
  const next = <T>(kind: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (message: { kind: string }) => {
        if (message.kind !== kind) return;
        child.off("message", onMessage);
        resolve(message as T);
      };
      child.on("message", onMessage);
      child.once("exit", (code) => reject(new Error(`the hub process exited (${code})`)));
    });
  const hub = await next<HubReady>("ready");
  const setupMs = hub.setupMs;
  const ids = Array.from({ length: twins }, (_, i) => deviceId(i));
  const store = await openBenchStore();
  const client = createRegistryClientFor({ connectionString: hub.connectionString, port: hub.port, ca: hub.ca });
  const registry = iothubTwinRegistry(client.registry);
  console.log(`fleet sync benchmark: ${twins.toLocaleString("en-US")} device twins on the emulator (S1 throttling on), store ${store.label}`);
  console.log(`  hub (a child process) set up in ${seconds(setupMs)}; page size ${pageSize}, ${queriesPerMinute} queries/min, twin reads at 100/s`);

  // --- Fleet sync: one complete pass onto the empty store -------------------------------------
  const rssBefore = process.memoryUsage().rss;
  const peak = rssPeak();
  const queries = queryLimitedTwinQueries(registry, queryLimiter(queriesPerMinute));
  const reads = rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 100 }));
  const syncStart = performance.now();
  const result = await syncFleetTwins(
    { db: store.db, policy, queries, registry: reads, settings: { pageSize, runBudgetMs: 3_600_000 } },
    { startNew: true },
  );
  const syncMs = performance.now() - syncStart;
  const syncPeak = peak.stop();
  if (!result.completed || !result.pass) throw new Error("the pass did not complete");
  const stored = Number((await store.db.query<{ n: unknown }>("SELECT count(*) AS n FROM twins")).rows[0]?.n);
  const records = Number((await store.db.query<{ n: unknown }>("SELECT count(*) AS n FROM property_records")).rows[0]?.n);
  child.send({ kind: "counters" });
  const { throttled: refused } = await next<{ throttled: { query: number; twinRead: number } }>("counters");

  // --- Baseline: one getTwin per device at 100 reads/s, on a sample --------------------------
  await store.db.query("TRUNCATE twins, devices, property_records, property_history");
  const bucket = new TokenBucket({ ratePerSecond: 100 });
  const baseline = rateLimitedTwinRegistry(registry, bucket);
  const baseStart = performance.now();
  // Four readers, so the 100 reads/s bucket, not one read's latency, sets the pace.
  const queue = ids.slice(0, sample);
  const reader = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const twin = await baseline.getTwin({ deviceId: id, moduleId: null });
      await applyHubTwins({ db: store.db, policy }, [twin], { consistency: "strong" });
    }
  };
  await Promise.all([reader(), reader(), reader(), reader()]);
  const baseMs = performance.now() - baseStart;
  const baseRate = sample / (baseMs / 1000);
  const baseFullMs = (twins / baseRate) * 1000;

  const p = result.pass;
  const rate = twins / (syncMs / 1000);
  const rows: Array<[string, string, string]> = [
    ["", "fleet sync (twin queries)", `getTwin per device (baseline)`],
    ["twins/s", rate.toFixed(0), baseRate.toFixed(0)],
    ["hub requests", `${p.queriesUsed} queries`, `${twins.toLocaleString("en-US")} twin reads`],
    ["full pass", seconds(syncMs), `${seconds(baseFullMs)} (extrapolated from ${sample.toLocaleString("en-US")} devices in ${seconds(baseMs)})`],
    ["peak RSS", `${mb(syncPeak)} (${mb(rssBefore)} before the pass)`, "–"],
  ];
  const width = [14, 58];
  console.log("");
  for (const [a, b, c] of rows) console.log(`  ${a.padEnd(width[0]!)}${b.padEnd(width[1]!)}${c}`);
  console.log("");
  console.log(
    `  pass ${p.id}: ${p.twinsRead.toLocaleString("en-US")} twins read, ${p.twinsChanged.toLocaleString("en-US")} changed, ${p.twinsRemoved} removed, ` +
      `${p.queriesUsed} queries; stored ${stored.toLocaleString("en-US")} twins, ${records.toLocaleString("en-US")} records; ` +
      `429s from the hub: ${refused.query} queries, ${refused.twinRead} twin reads`,
  );
  console.log(`  the baseline is extrapolated: ${sample.toLocaleString("en-US")} of ${twins.toLocaleString("en-US")} devices were read one by one`);
  await store.db.close();
  client.close();
  child.removeAllListeners("exit");
  child.send({ kind: "stop" });
}

(process.argv.includes("--serve-hub") ? serveHub() : main()).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
