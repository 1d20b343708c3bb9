import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { redact } from "../../shared/redact";
import { applyAppSettings, defaultAppSettings, defaultsNotReplaced, readLocalSettings, resolveAppSettingReferences } from "./appSettings";
import { isRecord, triggerOf, type FunctionRegistration } from "./functionRegistration";
import { invokeFunction, type LogLevel, type LogSink, type RpcInvocationRequest } from "./invokeFunction";
import { defaultFunctionModules, loadFunctions } from "./loadFunctions";
import { eventHubConnection } from "./eventHubConnection";
import { forgetRuntimeCheckpoints, runtimeCheckpointStore } from "./runtimeCheckpointStore";
import { sleep } from "./sleep";
import { startEventHubConsumer, type EventHubConsumer, type EventHubConsumerTuning, type EventHubCounters } from "./startEventHubConsumer";
import { startHttpServer, type HttpServer } from "./startHttpServer";
import { startTimer, type TimerCounters, type TimerJob } from "./startTimer";
import { workerCapabilities } from "./workerCapabilities";

export interface LocalHostOptions {
  /** Function modules to load; default every `functions/*.ts` of this repository. */
  modules?: readonly string[];
  /** Where `local.settings.json` and `host.json` are read from; default the repository root. */
  rootDir?: string;
  /** App settings that win over local.settings.json and the environment (e.g. the emulator's connection string). */
  settings?: Record<string, string>;
  /** App settings used only when neither local.settings.json nor the environment sets them (above `defaultAppSettings`). */
  defaultSettings?: Record<string, string>;
  /**
   * How the Event Hub functions' consumers claim partitions and wait (tests shorten the load-balancing
   * intervals). Each consumer connects through its trigger's `connection` app setting (a connection
   * string, e.g. the emulator's `eventHubs.connectionString`, or `<connection>__fullyQualifiedNamespace`);
   * without one the function is registered but never triggered.
   */
  eventHubs?: EventHubConsumerTuning & {
    /**
     * Delete the stored checkpoints and partition ownership of each Event Hub function's consumer
     * group before consuming (default false): for a hub that starts empty on every run, as the
     * emulator's does under `npm start`, whose new events an earlier run's checkpoints would skip.
     */
    forgetCheckpoints?: boolean;
  };
  /** HTTP port; `func start`'s 7071 unless local.settings.json `Host.LocalHttpPort` says otherwise; 0 picks a free one. */
  port?: number;
  /** Fire timers on their schedules (default true); `runTimer` works either way. */
  scheduleTimers?: boolean;
  /** Overrides host.json's `extensions.eventHubs.maxEventBatchSize` (default 100). */
  maxBatchSize?: number;
  /** Where function and host logs go; default: warnings and errors to stderr. */
  log?: LogSink;
}

export interface HostedFunction {
  name: string;
  /** The trigger binding type: `eventHubTrigger`, `timerTrigger`, `httpTrigger`… */
  trigger: string;
}

export interface LocalHostStats {
  eventHub: EventHubCounters & {
    byFunction: Record<string, EventHubCounters & { checkpoints: Record<string, number>; ownedPartitions: string[] }>;
  };
  timers: Record<string, TimerCounters & { schedule: string; nextRun: string | null }>;
  http: { requests: number; errors: number };
}

export interface LocalHost {
  readonly functions: readonly HostedFunction[];
  /** Where the app settings came from besides the defaults and overrides. */
  readonly settingsSource: "local.settings.json" | "defaults";
  /** `http://localhost:<port>/api` */
  readonly url: string;
  readonly port: number;
  stats(): LocalHostStats;
  /**
   * Resolves once every Event Hub function's consumer group is caught up — every partition of its hub
   * empty or checkpointed at its last enqueued event, by this host or another on the same store — or
   * the host stopped.
   */
  drained(): Promise<void>;
  /** Fires a timer function now (after its running occurrence, if any); rejects if the function throws. */
  runTimer(name: string): Promise<void>;
  /** Stops loops, timers and the server, and restores process.env. Idempotent. */
  stop(): Promise<void>;
}

const repoRoot = path.resolve(__dirname, "..", "..");

/**
 * Runs the app's functions on this machine the way the Azure Functions host would: loads the
 * function modules with the `@azure/functions-core` stand-in, then consumes Event Hub functions' hubs
 * through `@azure/event-hubs` (checkpoints and partition ownership in the project's store), fires
 * timers on their NCRONTAB schedules and serves HTTP functions — every
 * invocation going through @azure/functions' own ProgrammingModel, with RPC input shaped as the
 * real host sends it.
 */
export async function startLocalHost(options: LocalHostOptions = {}): Promise<LocalHost> {
  const rootDir = options.rootDir ?? repoRoot;
  const log = options.log ?? stderrSink;
  const hostLog = (level: LogLevel, message: string) => log({ level, category: "host", functionName: "host", message });

  const local = readLocalSettings(rootDir);
  const defaults = defaultsNotReplaced({ ...defaultAppSettings, ...options.defaultSettings }, [process.env, local.values, options.settings ?? {}]);
  const restoreEnv = applyAppSettings({ ...defaults, ...local.values }, options.settings);
  const hostJson = readHostJson(rootDir);

  const cleanups: (() => Promise<void>)[] = [];
  try {
    const { programmingModel, registrations } = loadFunctions(options.modules ?? defaultFunctionModules());
    const invoke = (registration: FunctionRegistration, request: RpcInvocationRequest) => {
      // Set whenever anything was registered, which is the only way to get a registration to invoke.
      if (!programmingModel) return Promise.reject(new Error("no programming model registered"));
      return invokeFunction(programmingModel, registration, request, log);
    };
    const functions = registrations.map((r) => ({ name: r.name, trigger: triggerOf(r).binding.type }));
    // The worker's init handshake, after the modules are loaded: locks app.setup; HttpUri when the app enabled HTTP streams.
    const capabilities = programmingModel ? await workerCapabilities(programmingModel) : {};

    let stopped = false;
    const stopSignal = new AbortController();
    const consumers: EventHubConsumer[] = [];
    let progress = new AbortController();
    const onProgress = () => {
      progress.abort();
      progress = new AbortController();
    };

    const maxBatchSize = options.maxBatchSize ?? eventHubBatchSize(hostJson);
    cleanups.push(() => Promise.all(consumers.map((c) => c.stop())).then(() => undefined));
    const checkpointStore = runtimeCheckpointStore();
    for (const registration of registrations) {
      const trigger = triggerOf(registration).binding;
      if (trigger.type.toLowerCase() !== "eventhubtrigger") continue;
      const what = `${registration.name}'s Event Hub trigger`;
      const connectionName = String(trigger.connection ?? "");
      const connection = connectionName ? eventHubConnection(connectionName) : undefined;
      if (!connection) {
        hostLog(
          "warning",
          `${registration.name}: app setting ${connectionName || "(no connection on the trigger)"} is not set, so this Event Hub function will not be triggered ` +
            `(npm start prints the emulator's connection string as TWIN_EVENTS_CONNECTION)`,
        );
        continue;
      }
      consumers.push(
        startEventHubConsumer({
          registration,
          connection,
          eventHubName: resolveAppSettingReferences(String(trigger.eventHubName ?? ""), `${what} eventHubName`),
          consumerGroup: resolveAppSettingReferences(String(trigger.consumerGroup ?? "$Default"), `${what} consumerGroup`),
          checkpointStore,
          ...(options.eventHubs?.forgetCheckpoints ? { forgetCheckpoints: forgetRuntimeCheckpoints } : {}),
          maxBatchSize,
          ...(options.eventHubs ? { tuning: options.eventHubs } : {}),
          invoke: (request) => invoke(registration, request),
          onProgress,
          warn: (m) => hostLog("warning", m),
          error: (m) => hostLog("error", m),
        }),
      );
    }
    /** Whether every consumer group is caught up; a failed check counts as not yet (warned once per drained() call). */
    const caughtUp = async (warned: { once: boolean }): Promise<boolean> => {
      for (const consumer of consumers) {
        try {
          if (!(await consumer.caughtUp())) return false;
        } catch (error) {
          if (!stopped && !warned.once) hostLog("warning", `${consumer.functionName}: checking whether it caught up failed: ${redact(error instanceof Error ? error.message : String(error))}`);
          warned.once = true;
          return false;
        }
      }
      return true;
    };

    const timers = new Map<string, TimerJob>();
    cleanups.push(() => Promise.all([...timers.values()].map((t) => t.stop())).then(() => undefined));
    for (const registration of registrations) {
      const trigger = triggerOf(registration).binding;
      if (trigger.type.toLowerCase() !== "timertrigger") continue;
      const schedule = resolveAppSettingReferences(String(trigger.schedule ?? ""), `${registration.name}'s timer schedule`);
      const job = startTimer({
        registration,
        schedule,
        timezone: process.env.WEBSITE_TIME_ZONE,
        scheduled: options.scheduleTimers !== false,
        invoke: (request) => invoke(registration, request),
        error: (m) => hostLog("error", m),
      });
      timers.set(registration.name, job);
    }

    const server: HttpServer = await startHttpServer({
      registrations,
      port: options.port ?? local.localHttpPort ?? 7071,
      routePrefix: httpRoutePrefix(hostJson),
      invoke,
      ...(capabilities.HttpUri !== undefined ? { httpUri: capabilities.HttpUri } : {}),
      health: () => ({ status: stopped ? "stopping" : "ok", functions: functions.map((f) => f.name) }),
      error: (m) => hostLog("error", m),
    });
    cleanups.push(() => server.close());

    let stopping: Promise<void> | undefined;
    return {
      functions,
      settingsSource: local.source,
      url: server.baseUrl,
      port: server.port,
      stats: () => stats(consumers, timers, server),
      drained: async () => {
        // Polled: progress of another host on the same store is only seen in the store.
        const warned = { once: false };
        while (!stopped && !(await caughtUp(warned))) {
          const wake = AbortSignal.any([progress.signal, stopSignal.signal]);
          await sleep(100, wake);
        }
      },
      runTimer: (name) => {
        const job = timers.get(name);
        if (!job) return Promise.reject(new Error(`no timer function named "${name}"; timers: ${[...timers.keys()].join(", ") || "none"}`));
        return job.runNow();
      },
      stop: () => {
        stopping ??= (async () => {
          stopped = true;
          stopSignal.abort();
          await runCleanups(cleanups);
          restoreEnv();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await runCleanups(cleanups);
    restoreEnv();
    throw error;
  }
}

async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}

function stats(consumers: readonly EventHubConsumer[], timers: Map<string, TimerJob>, server: HttpServer): LocalHostStats {
  const total: EventHubCounters = { batches: 0, events: 0, retries: 0, failures: 0, lostEvents: 0 };
  const byFunction: LocalHostStats["eventHub"]["byFunction"] = {};
  for (const c of consumers) {
    for (const key of Object.keys(total) as (keyof EventHubCounters)[]) total[key] += c.counters[key];
    byFunction[c.functionName] = { ...c.counters, checkpoints: c.checkpoints(), ownedPartitions: c.ownedPartitions() };
  }
  const timerStats: LocalHostStats["timers"] = {};
  for (const [name, job] of timers) timerStats[name] = { ...job.counters, schedule: job.schedule, nextRun: job.nextRun()?.toISOString() ?? null };
  return { eventHub: { ...total, byFunction }, timers: timerStats, http: { ...server.counters } };
}

function readHostJson(rootDir: string): Record<string, unknown> {
  const file = path.join(rootDir, "host.json");
  if (!existsSync(file)) return {};
  const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
  return isRecord(parsed) ? parsed : {};
}

/** host.json `extensions.eventHubs.maxEventBatchSize` (extension 5+), else the v4 name, else 100. */
function eventHubBatchSize(hostJson: Record<string, unknown>): number {
  const eh = isRecord(hostJson.extensions) && isRecord(hostJson.extensions.eventHubs) ? hostJson.extensions.eventHubs : {};
  if (typeof eh.maxEventBatchSize === "number" && eh.maxEventBatchSize > 0) return eh.maxEventBatchSize;
  const legacy = isRecord(eh.eventProcessorOptions) ? eh.eventProcessorOptions.maxBatchSize : undefined;
  return typeof legacy === "number" && legacy > 0 ? legacy : 100;
}

function httpRoutePrefix(hostJson: Record<string, unknown>): string {
  const http = isRecord(hostJson.extensions) && isRecord(hostJson.extensions.http) ? hostJson.extensions.http : {};
  return typeof http.routePrefix === "string" ? http.routePrefix : "api";
}

const loud: ReadonlySet<LogLevel> = new Set(["warning", "error", "critical"]);

function stderrSink(entry: Parameters<LogSink>[0]): void {
  if (loud.has(entry.level)) process.stderr.write(`[${entry.level}] ${entry.functionName}: ${entry.message}\n`);
}
