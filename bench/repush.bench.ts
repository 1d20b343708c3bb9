/**
 * Re-push benchmark: N stale devices (default 10,000) against the local IoT Hub emulator with S1
 * throttling (100 twin reads/s, 50 twin updates/s), through the real azure-iothub Registry over
 * HTTPS, on PGlite. Two scenarios in the same run, each on a fresh emulator and store:
 *   limited  — every call through the token bucket at --rate ops/s (default 100: S1-sized);
 *   baseline — no limiter: timer runs back to back, each stopping at its first 429.
 * Prints achieved push rate vs the configured rate, 429s seen and time to drain.
 *
 *   npm run bench:repush -- [--devices 10000] [--rate 100] [--per-run 1000] [--concurrency 4]
 */
import { iothubTwinRegistry } from "../shared/hub/iothubTwinRegistry";
import { rateLimitedTwinRegistry, TokenBucket } from "../shared/hub/TokenBucket";
import type { TwinRegistry } from "../shared/hub/TwinRegistry";
import { parsePolicy } from "../shared/policy/Policy";
import { repushStaleDesired } from "../shared/repush";
import { evaluateCompliance } from "../shared/compliance/evaluateCompliance";
import { summarizeDevice } from "../shared/compliance/summarizeDevice";
import type { Database } from "../shared/store/Database";
import { writeBatch, type BatchWrite } from "../shared/store/complianceStore";
import { migrate } from "../shared/store/migrate";
import { openPglite } from "../shared/store/openPglite";
import { startEmulator, type Emulator } from "../local/emulator";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a number above 0`);
  return value;
}

const devices = arg("devices", 10_000);
const rate = arg("rate", 100);
const perRun = arg("per-run", 1000);
const concurrency = arg("concurrency", 4);
const policy = parsePolicy({ staleAfter: "1s" });
const settings = { maxDevicesPerRun: perRun, backoffBaseMs: 3_600_000, backoffCapMs: 3_600_000, maxAttempts: 5, dryRun: false, leaseMs: 300_000 };

interface Outcome {
  scenario: string;
  configuredOpsPerSecond: number | null;
  drainSeconds: number;
  pushed: number;
  pushesPerSecond: number;
  hubOpsPerSecond: number;
  throttled429: { reads: number; updates: number };
  runs: number;
  runsStoppedBy429: number;
  maxPushesBefore429: number;
}

/** A fleet of `devices` devices whose desired value was never reported, and their (stale) records. */
async function prepare(): Promise<{ emulator: Emulator; db: Database; registry: TwinRegistry }> {
  const [emulator, db] = await Promise.all([startEmulator({ throttling: "off" }), openPglite()]);
  await migrate(db);
  const ids = Array.from({ length: devices }, (_, i) => `bench-${String(i).padStart(5, "0")}`);
  for (const id of ids) {
    emulator.createDevice(id);
    emulator.updateDesired(id, { telemetryInterval: 30, mode: "eco" });
  }
  // Seed the records as the reconcile path would, reading the twins in process (not part of the figures).
  const local = iothubTwinRegistry({
    getTwin: async (id) => ({ responseBody: emulator.getTwin(id) }),
    getModuleTwin: async (id, m) => ({ responseBody: emulator.getTwin({ deviceId: id, moduleId: m }) }),
    updateTwin: () => Promise.reject(new Error("read only")),
    updateModuleTwin: () => Promise.reject(new Error("read only")),
  });
  const at = new Date().toISOString();
  for (let start = 0; start < ids.length; start += 1000) {
    const write: BatchWrite = { at, twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] };
    for (const id of ids.slice(start, start + 1000)) {
      const key = { deviceId: id, moduleId: null };
      const twin = await local.getTwin(key);
      const evaluation = evaluateCompliance(twin, policy, new Map(), at, "resync");
      write.twins.push({ twin, resyncNeeded: false });
      for (const record of evaluation.records) write.records.push({ key, record });
      write.devices.push({ key, ...summarizeDevice(evaluation.records, undefined, at), tags: twin.tags, resyncNeeded: false });
    }
    await db.transaction((tx) => writeBatch(tx, write));
  }
  await new Promise((r) => setTimeout(r, 1100)); // staleAfter 1s
  emulator.setThrottling("S1");
  return { emulator, db, registry: iothubTwinRegistry(emulator.createRegistryClient()) };
}

async function drain(scenario: string, limited: boolean): Promise<Outcome> {
  const { emulator, db, registry } = await prepare();
  const bucket = new TokenBucket({ ratePerSecond: rate });
  const hub = limited ? rateLimitedTwinRegistry(registry, bucket) : registry;
  let pushed = 0;
  let runs = 0;
  let stoppedBy429 = 0;
  let maxBefore429 = 0;
  let ops = 0;
  const counting: TwinRegistry = {
    getTwin: (key, o) => (ops++, hub.getTwin(key, o)),
    updateTwin: (key, p, e, o) => (ops++, hub.updateTwin(key, p, e, o)),
  };
  const started = performance.now();
  for (;;) {
    const result = await repushStaleDesired({ db, policy, registry: counting, settings, concurrency });
    runs++;
    pushed += result.accepted / 2; // two properties per device
    if (result.throttled) {
      stoppedBy429++;
      maxBefore429 = Math.max(maxBefore429, result.accepted / 2);
    }
    if (result.claimed === 0) break;
    if (runs % 10 === 0) process.stderr.write(`  ${scenario}: ${pushed} pushed after ${runs} runs\n`);
  }
  const seconds = (performance.now() - started) / 1000;
  const refused = emulator.counters.throttled;
  await emulator.stop();
  await db.close();
  return {
    scenario,
    configuredOpsPerSecond: limited ? rate : null,
    drainSeconds: Number(seconds.toFixed(1)),
    pushed,
    pushesPerSecond: Number((pushed / seconds).toFixed(1)),
    hubOpsPerSecond: Number((ops / seconds).toFixed(1)),
    throttled429: { reads: refused.twinRead, updates: refused.twinUpdate },
    runs,
    runsStoppedBy429: stoppedBy429,
    maxPushesBefore429: maxBefore429,
  };
}

async function main(): Promise<void> {
  console.log(`repush bench: ${devices} stale devices (2 desired properties each), emulator S1 (reads 100/s, updates 50/s), ` +
    `PGlite, runs back to back, ${perRun} devices per run, concurrency ${concurrency}`);
  const limited = await drain("limited", true);
  console.log(JSON.stringify(limited));
  const baseline = await drain("baseline (no limiter)", false);
  console.log(JSON.stringify(baseline));
  console.log(
    `\nconfigured ${rate} twin ops/s ⇒ at most ${rate / 2} pushes/s (a read and an update per device)\n` +
      `limited : ${limited.pushesPerSecond} pushes/s, ${limited.hubOpsPerSecond} hub ops/s, ${limited.throttled429.reads + limited.throttled429.updates} × 429, drained in ${limited.drainSeconds} s over ${limited.runs} runs\n` +
      `baseline: ${baseline.pushesPerSecond} pushes/s, ${baseline.hubOpsPerSecond} hub ops/s, ${baseline.throttled429.reads + baseline.throttled429.updates} × 429, drained in ${baseline.drainSeconds} s over ${baseline.runs} runs ` +
      `(${baseline.runsStoppedBy429} stopped by a 429, ≤ ${baseline.maxPushesBefore429} pushes each: on the 1-minute schedule that is ~${baseline.runs} minutes)`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
