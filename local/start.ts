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
import { forgetTwins } from "../shared/store/forgetTwins";
import { startupFailure, UsageError } from "./startupFailure";

// `npm start`: IoT Hub emulator + simulated fleet + local functions host (all registered
// functions) + PGlite, a demo rollout of desired properties, and a live progress line.

const usage = `Usage: npm start -- [--devices N] [--seed S] [--port P] [--duration 60s] [--drop-events F] [--hub-port N] [--mqtt-port N]
  --devices N       simulated devices (default 200), a mix of every behaviour
  --seed S          seeds the fleet's behaviours and timings, and the emulator's event faults (default 1)
  --port P          HTTP port of the functions host (default 7071)
  --duration D      run for D (e.g. 60s, 5m), stop, and print a JSON summary as the last line of stdout
  --drop-events F   the emulator never delivers this fraction of twin-change events (0 to below 1, e.g. 0.3)
  --hub-port N      port of the emulator's HTTPS service API (default: a free one); 443 lets the
                    unmodified azure-iothub use the printed IOTHUB_CONNECTION_STRING as it is
  --mqtt-port N     port of the emulator's MQTT device endpoint (default: a free one); 8883 likewise
                    for azure-iot-device`;

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
  /** Fraction of twin-change events the emulator never delivers. */
  dropEvents: number;
  /** Emulator ports; 0 = a free one. */
  hubPort: number;
  mqttPort: number;
}

const maxDurationMs = 7 * 86_400_000;

/** Unusable arguments: one line on stderr, exit code 2, no stack trace. */
function usageError(message: string): never {
  process.stderr.write(`npm start: ${message} (npm start -- --help for the options)\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        devices: { type: "string" },
        seed: { type: "string" },
        port: { type: "string" },
        duration: { type: "string" },
        "drop-events": { type: "string" },
        "hub-port": { type: "string" },
        "mqtt-port": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    usageError((error as Error).message.split("\n")[0]!);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const text = (name: string): string | undefined => {
    const raw = values[name];
    return typeof raw === "string" ? raw : undefined;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) usageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    return Number(raw);
  };
  let durationMs: number | undefined;
  const duration = text("duration");
  if (duration !== undefined) {
    try {
      durationMs = /^\d+$/.test(duration) ? Number(duration) * 1000 : parseDuration(duration);
    } catch (error) {
      usageError(`--duration: ${(error as Error).message}`);
    }
    if (!(durationMs > 0)) usageError(`--duration must be above zero, got "${duration}"`);
    // setTimeout fires at once beyond 2^31 - 1 ms.
    if (durationMs > maxDurationMs) usageError(`--duration must be at most 7d, got "${duration}"`);
  }
  const dropRaw = text("drop-events");
  let dropEvents = 0;
  if (dropRaw !== undefined) {
    dropEvents = Number(dropRaw);
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(dropRaw) || !(dropEvents < 1)) {
      usageError(`--drop-events must be a fraction from 0 to below 1 (e.g. 0.3), got "${dropRaw}"`);
    }
  }
  const options: Options = {
    devices: integer("devices", 200, 1, 5000),
    seed: integer("seed", 1, 0, 2 ** 32 - 1),
    port: integer("port", 7071, 0, 65535),
    durationMs,
    dropEvents,
    hubPort: integer("hub-port", 0, 0, 65535),
    mqttPort: integer("mqtt-port", 0, 0, 65535),
  };
  const fixed = [
    ["--port", options.port],
    ["--hub-port", options.hubPort],
    ["--mqtt-port", options.mqttPort],
  ].filter(([, port]) => port !== 0);
  for (let i = 0; i < fixed.length; i++) {
    for (let j = i + 1; j < fixed.length; j++) {
      if (fixed[i]![1] === fixed[j]![1]) usageError(`${fixed[i]![0]} and ${fixed[j]![0]} cannot both be ${fixed[i]![1]}`);
    }
  }
  return options;
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

/** Set once the store opened: a timer that fires before then fails on the same store, which start-up itself reports in one line. */
let storeOpened = false;

const logSink: LogSink = (entry) => {
  if (entry.level !== "warning" && entry.level !== "error" && entry.level !== "critical") return;
  if (!storeOpened && entry.category === "host" && entry.message.startsWith("timer ")) return;
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
  return forgetTwins(await getStore(), prefix);
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    exitOnFailure(new UsageError(`${(error as Error).message} (npm start -- --help lists the options)`));
  }
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
    emulator = await startEmulator({
      throttling: "off",
      httpsPort: options.hubPort,
      mqttPort: options.mqttPort,
      faults: { seed: options.seed, duplicateProbability: 0.02, resendProbability: 0.01, dropRate: options.dropEvents },
    }).catch((error: unknown) => {
      // A port given on the command line that cannot be bound is a usage problem, not a crash.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" || code === "EACCES") {
        const port = (error as { port?: number }).port;
        usageError(`cannot bind the IoT Hub emulator to port ${String(port)} (${code === "EACCES" ? "permission denied: ports below 1024 need root" : "already in use"})`);
      }
      throw error;
    });
    host = await startLocalHost({
      port: options.port,
      defaultSettings: demoDefaults,
      settings: {
        IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
        IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
        IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
        // The reconcile trigger's connection, as in Azure: every event reaches it through @azure/event-hubs.
        TwinEvents: emulator.eventHubs.connectionString,
      },
      // The emulator's hub is new and empty on every run: an earlier run's checkpoints would skip its events.
      eventHubs: { forgetCheckpoints: true },
      log: logSink,
    });
    const apiUrl = `http://127.0.0.1:${host.port}/api`;
    // Opening the store first (PGlite boots in a few seconds) keeps the first batches from waiting on it.
    const db = await getStore();
    storeOpened = true;
    const forgotten = await forgetPreviousRun("sim-");
    // One fleet-sync pass at start (then every minute, FLEET_SYNC_SCHEDULE): the store then holds
    // exactly the twins of the hub it runs against, whatever an earlier run left in the data folder.
    void host.runTimer("syncFleetTwins").catch((error: unknown) => logSink({ level: "warning", category: "start", functionName: "syncFleetTwins", message: (error as Error).message }));

    const store = db.kind === "pglite" ? `PGlite in ${process.env.PGLITE_DATA_DIR === "memory" ? "memory" : process.env.PGLITE_DATA_DIR}` : `PostgreSQL ${redact(process.env.DATABASE_URL ?? "")}`;
    const fns = host.functions.map((f) => `${f.name} (${f.trigger.replace(/Trigger$/, "")})`).join(", ");
    say(`  IoT Hub emulator  hub "${emulator.hubName}", service API https://localhost:${emulator.httpsPort}, MQTT mqtts://localhost:${emulator.mqttPort}, CA ${emulator.caFile}`);
    if (options.dropEvents > 0) say(`  Event loss        ${Math.round(options.dropEvents * 1000) / 10}% of twin-change events never delivered (--drop-events)`);
    // A deliberate exception to "never print a key", so a user can point their own back-end code
    // or tools (az, the SDKs, `twin-reconciler capture`, `func start`) at the emulator: the hub and
    // its Event Hubs endpoint are local only (bound to 127.0.0.1) and their keys are random per run
    // (only the TLS CA and certificate persist, in .data/emulator), so a key is worthless once this
    // process ends.
    say(`IOTHUB_CONNECTION_STRING=${emulator.serviceConnectionString}`);
    say(`TWIN_EVENTS_CONNECTION=${emulator.eventHubs.connectionString}`);
    say(`NODE_EXTRA_CA_CERTS=${emulator.caFile}`);
    if (emulator.httpsPort !== 443) {
      say(`  (the unmodified azure-iothub cannot name a port: with --hub-port 443 --mqtt-port 8883 these work as printed)`);
    }
    say(`  Store             ${store}${forgotten > 0 ? ` (forgot ${forgotten} devices of an earlier run)` : ""}`);
    say(`  Functions host    ${host.url}  app settings: ${host.settingsSource === "local.settings.json" ? "local.settings.json" : "built-in defaults"}`);
    say(`  Functions         ${fns}`);
    say(`  Compliance API    ${host.url}/compliance/summary   ${host.url}/compliance/devices`);
    say(`  Dashboard         ${host.url}/dashboard`);
    say(`  Metrics           ${host.url}/metrics   (Prometheus text)`);
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
          dropped: emitted.dropped,
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
    await shutdown().catch(() => undefined);
    exitOnFailure(error);
  }
}

/** Prints why npm start could not run — one line per bad setting, no stack trace for those — and exits (2: fix a setting). */
function exitOnFailure(error: unknown): never {
  clearProgress();
  const { lines, exitCode } = startupFailure(error);
  for (const line of lines) process.stderr.write(`npm start: ${line}\n`);
  process.exit(exitCode);
}

main().catch(exitOnFailure);
