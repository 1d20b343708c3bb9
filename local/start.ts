import { parseArgs } from "node:util";
import { COMPLIANCE_STATES, emptyStateCounts, type ComplianceState } from "../shared/compliance/ComplianceState";
import { demoRollout } from "./demoRollout";
import { startEmulator, type Emulator } from "./emulator";
import { deviceBehaviours, type DeviceBehaviour } from "./fleet/DeviceBehaviour";
import { startFleet, type Fleet } from "./fleet/startFleet";
import { startLocalHost, type LocalHost } from "./host/startLocalHost";
import type { LogSink } from "./host/invokeFunction";
import { parseDuration } from "../shared/policy/parseDuration";
import { redact } from "../shared/redact";
import { getStore } from "../shared/reports/getStore";
import { repushCounters } from "../shared/repush";
import { closeRuntime } from "../shared/runtime";

// `npm start`: IoT Hub emulator + simulated fleet + local functions host (all registered
// functions) + PGlite, a demo rollout of desired properties, and a live progress line.

const usage = `Usage: npm start -- [--devices N] [--seed S] [--port P] [--duration 60s]
  --devices N     simulated devices (default 200), a mix of every behaviour
  --seed S        seeds the fleet's behaviours and timings (default 1)
  --port P        HTTP port of the functions host (default 7071)
  --duration D    run for D (e.g. 60s, 5m), stop, and print a JSON summary as the last line of stdout`;

type StateCounts = Record<ComplianceState, number>;

const rollout = demoRollout("rollout-1");

/** Settings for the demo; local.settings.json and the environment may override them. */
const demoDefaults: Record<string, string> = {
  HUB_TWIN_OPS_PER_SECOND: "50",
  REPUSH_SCHEDULE: "*/15 * * * * *",
  REPUSH_BACKOFF_BASE: "15s",
  REPUSH_BACKOFF_CAP: "2m",
  FLEET_SYNC_SCHEDULE: "0 * * * * *",
};

interface Options {
  devices: number;
  seed: number;
  port: number;
  durationMs: number | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      devices: { type: "string" },
      seed: { type: "string" },
      port: { type: "string" },
      duration: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const integer = (name: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    return Number(raw);
  };
  let durationMs: number | undefined;
  if (values.duration !== undefined) {
    durationMs = /^\d+$/.test(values.duration) ? Number(values.duration) * 1000 : parseDuration(values.duration);
    if (durationMs <= 0) throw new Error(`--duration must be above zero, got "${values.duration}"`);
  }
  return {
    devices: integer("devices", values.devices, 200, 1, 5000),
    seed: integer("seed", values.seed, 1, 0, 2 ** 32 - 1),
    port: integer("port", values.port, 7071, 0, 65535),
    durationMs,
  };
}

const tty = process.stdout.isTTY === true;
let progressShown = false;

function clearProgress(): void {
  if (tty && progressShown) {
    process.stdout.write("\r\x1b[2K");
    progressShown = false;
  }
}

function say(line: string): void {
  clearProgress();
  process.stdout.write(`${line}\n`);
}

const logSink: LogSink = (entry) => {
  if (entry.level !== "warning" && entry.level !== "error" && entry.level !== "critical") return;
  clearProgress();
  process.stderr.write(`[${entry.level}] ${entry.functionName}: ${redact(entry.message)}\n`);
};

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return res.json();
}

function toStateCounts(value: unknown): StateCounts {
  const counts = emptyStateCounts();
  if (typeof value === "object" && value !== null) {
    for (const s of COMPLIANCE_STATES) {
      const n = (value as Record<string, unknown>)[s];
      if (typeof n === "number") counts[s] = n;
    }
  }
  return counts;
}

async function summaryByState(apiUrl: string): Promise<StateCounts> {
  const summary = await getJson(`${apiUrl}/compliance/summary`);
  return toStateCounts((summary as { byState?: unknown }).byState);
}

/** Every device's state, paging through GET compliance/devices. */
async function stateByDevice(apiUrl: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor: string | null = null;
  do {
    const page = (await getJson(`${apiUrl}/compliance/devices?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`)) as {
      items?: { deviceId: string; state: string }[];
      nextCursor?: string | null;
    };
    for (const item of page.items ?? []) out.set(item.deviceId, item.state);
    cursor = page.nextCursor ?? null;
  } while (cursor);
  return out;
}

/** The demo's devices are `sim-*`; the emulator starts empty each run, so their old rows would only mislead. */
async function forgetPreviousRun(prefix: string): Promise<number> {
  const db = await getStore();
  const { rows } = await db.query<{ table_name: string }>(
    "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'device_id' AND table_schema = current_schema()",
  );
  let deleted = 0;
  for (const { table_name } of rows) {
    if (!/^[a-z_][a-z0-9_]*$/.test(table_name)) continue;
    const result = await db.query<{ n: number }>(
      `WITH gone AS (DELETE FROM ${table_name} WHERE starts_with(device_id, $1) RETURNING 1) SELECT count(*)::int AS n FROM gone`,
      [prefix],
    );
    if (table_name === "devices") deleted = Number(result.rows[0]?.n ?? 0);
  }
  return deleted;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  let emulator: Emulator | undefined;
  let host: LocalHost | undefined;
  let fleet: Fleet | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;

  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      clearInterval(progressTimer);
      clearProgress();
      await fleet?.stop();
      await host?.stop();
      await closeRuntime();
      await emulator?.stop();
    })();
    return stopping;
  };
  let interrupts = 0;
  const onSignal = (signal: string) => {
    if (++interrupts > 1) process.exit(130);
    say(`\n${signal}: stopping (again to force)…`);
    void shutdown().then(() => process.exit(0));
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  try {
    say(`Twin Reconciler — everything on this machine (${options.devices} simulated devices, seed ${options.seed})`);
    emulator = await startEmulator({ throttling: "off", faults: { seed: options.seed, duplicateProbability: 0.02, resendProbability: 0.01 } });
    host = await startLocalHost({
      eventStream: emulator.events,
      port: options.port,
      defaultSettings: demoDefaults,
      settings: {
        IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
        IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
        IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
      },
      log: logSink,
    });
    const apiUrl = `http://127.0.0.1:${host.port}/api`;
    // Opening the store first (PGlite boots in a few seconds) keeps the first batches from waiting on it.
    const db = await getStore();
    const forgotten = await forgetPreviousRun("sim-");

    const store = db.kind === "pglite" ? `PGlite in ${process.env.PGLITE_DATA_DIR === "memory" ? "memory" : process.env.PGLITE_DATA_DIR}` : `PostgreSQL ${redact(process.env.DATABASE_URL ?? "")}`;
    const fns = host.functions.map((f) => `${f.name} (${f.trigger.replace(/Trigger$/, "")})`).join(", ");
    say(`  IoT Hub emulator  hub "${emulator.hubName}", service API https://localhost:${emulator.httpsPort}, MQTT mqtts://localhost:${emulator.mqttPort}, CA ${emulator.caFile}`);
    say(`  Store             ${store}${forgotten > 0 ? ` (forgot ${forgotten} devices of an earlier run)` : ""}`);
    say(`  Functions host    ${host.url}  app settings: ${host.settingsSource === "local.settings.json" ? "local.settings.json" : "built-in defaults"}`);
    say(`  Functions         ${fns}`);
    say(`  Compliance API    ${host.url}/compliance/summary   ${host.url}/compliance/devices`);
    say(`  Dashboard         ${host.url}/dashboard`);
    say(`  Policy            ${process.env.POLICY_PATH ?? "(POLICY_JSON)"}`);

    fleet = await startFleet({ hub: emulator, devices: options.devices, seed: options.seed, log: (m) => logSink({ level: "warning", category: "fleet", functionName: "fleet", message: m }) });
    const mix = deviceBehaviours.map((b) => `${b} ${fleet!.devices.filter((d) => d.behaviour === b).length}`).join(", ");
    say(`  Fleet             ${options.devices} devices over MQTT: ${mix}`);
    await fleet.ready();
    for (const { deviceId } of fleet.devices) emulator.updateDesired({ deviceId, moduleId: null }, rollout);
    say(`  Rollout           desired ${JSON.stringify(rollout)} to every device`);
    say(tty ? "Ctrl-C stops." : "Progress every 10 s; Ctrl-C stops.");

    let lastEvents = 0;
    let lastAt = Date.now();
    let drawing = false;
    const drawProgress = async () => {
      if (drawing || stopping || !host || !fleet) return;
      drawing = true;
      try {
        const byState = await summaryByState(apiUrl);
        const events = host.stats().eventHub.events;
        const now = Date.now();
        const rate = ((events - lastEvents) * 1000) / Math.max(1, now - lastAt);
        lastEvents = events;
        lastAt = now;
        const seen = COMPLIANCE_STATES.reduce((n, s) => n + byState[s], 0);
        const counts = fleet.counters();
        const line =
          `[${Math.round((now - started) / 1000)}s] ${seen}/${options.devices} devices: ` +
          COMPLIANCE_STATES.map((s) => `${s} ${byState[s]}`).join(" · ") +
          ` | ${events} events (${rate.toFixed(0)}/s) | ${counts.connected}/${counts.devices} online`;
        if (stopping) return;
        if (tty) {
          process.stdout.write(`\r\x1b[2K${line.slice(0, Math.max(20, (process.stdout.columns || 160) - 1))}`);
          progressShown = true;
        } else {
          process.stdout.write(`${line}\n`);
        }
      } catch (error) {
        logSink({ level: "warning", category: "start", functionName: "progress", message: (error as Error).message });
      } finally {
        drawing = false;
      }
    };
    progressTimer = setInterval(() => void drawProgress(), tty ? 1000 : 10_000);
    void drawProgress();

    if (options.durationMs !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, options.durationMs! - (Date.now() - started))));
      if (stopping) return;
      clearInterval(progressTimer);
      await fleet.stop();
      await host.drained();
      const byState = await summaryByState(apiUrl);
      const byDevice = await stateByDevice(apiUrl);
      const byBehaviour: Partial<Record<DeviceBehaviour, Record<string, number>>> = {};
      for (const { deviceId, behaviour } of fleet.devices) {
        const state = byDevice.get(deviceId) ?? "unseen";
        const counts = (byBehaviour[behaviour] ??= {});
        counts[state] = (counts[state] ?? 0) + 1;
      }
      const stats = host.stats().eventHub;
      const emitted = emulator.counters.events;
      const summary = {
        devices: options.devices,
        byState,
        byBehaviour,
        events: {
          emitted: emitted.emitted,
          appended: emitted.appended,
          duplicated: emitted.duplicated,
          resent: emitted.resent,
          delivered: stats.events,
          batches: stats.batches,
          retries: stats.retries,
          lostBatches: stats.failures,
          lostEvents: stats.lostEvents,
        },
        repush: await repushCounters(await getStore()),
      };
      await shutdown();
      say(`Stopped after ${Math.round((Date.now() - started) / 1000)} s.`);
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      process.exit(0);
    }
  } catch (error) {
    clearProgress();
    process.stderr.write(`npm start failed: ${redact(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`);
    await shutdown().catch(() => undefined);
    process.exit(1);
  }
}

void main();
