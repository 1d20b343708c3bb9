import { ManagedIdentityCredential, type TokenCredential } from "@azure/identity";
import { metrics as otelMetricsApi, type Meter } from "@opentelemetry/api";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type * as AzureMonitor from "@azure/monitor-opentelemetry";
import type { Queryable } from "../store/Database";
import { setMetrics } from "./metrics";
import { createOtelMetrics, observeStoreGauges } from "./otelMetrics";
import { cachedReader, type StoreGauges } from "./storeGauges";

/**
 * Where the metrics go — decided once per process:
 *
 * - In Azure (APPLICATIONINSIGHTS_CONNECTION_STRING set, as infra/main.bicep sets it): the Azure
 *   Monitor OpenTelemetry distro, `useAzureMonitor()`, in this worker process. Microsoft's
 *   "Use OpenTelemetry with Azure Functions" (preview, Flex Consumption only) switches the *host's*
 *   logs and traces to OpenTelemetry (`telemetryMode` in host.json); for a Node.js app it still has
 *   the worker set up its own exporter with `@azure/monitor-opentelemetry` — the host exports no
 *   meter of the worker. So the distro is needed either way, works whatever host.json says, and is
 *   GA; host.json keeps the default mode. Its auto-instrumentation (http, pg, Azure SDK) is off:
 *   the host already records each invocation, and a span per SQL statement of the reconcile path
 *   would cost more ingestion than it tells. Its MeterProvider is its own (sdk-node's sdk-metrics);
 *   no reader of ours is mixed into it.
 * - Elsewhere (npm start, tests): our own MeterProvider with the Prometheus exporter as a pull
 *   reader, no server of its own (`preventServerStart`): GET /api/metrics (functions/metricsApi.ts)
 *   collects and serializes on request.
 */
export interface Telemetry {
  readonly exporter: "azureMonitor" | "prometheus";
  /** The metrics in Prometheus text format (exposition 0.0.4); undefined when exporting to Azure Monitor. */
  prometheusText(): Promise<string> | undefined;
}

export interface StartTelemetryOptions {
  /** How long one store read serves the observable gauges (default 5 s). */
  gaugeCacheMs?: number;
}

const SERVICE_NAME = "twin-reconciler";

let started: { telemetry: Telemetry; shutdown: () => Promise<void> } | undefined;
let gaugeCacheMs = 5_000;
let readGauges: (() => Promise<StoreGauges>) | undefined;
let observed: Queryable | undefined;

/** Starts telemetry once per process (later calls return the first one's). Never throws for a missing exporter. */
export function startTelemetry(env: Record<string, string | undefined> = process.env, options: StartTelemetryOptions = {}): Telemetry {
  if (started) return started.telemetry;
  gaugeCacheMs = options.gaugeCacheMs ?? gaugeCacheMs;
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
  started = connectionString ? startAzureMonitor(connectionString, env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING) : startPrometheus();
  return started.telemetry;
}

/**
 * The gauges read this store (the runtime's) with `read` (shared/reports/readStoreGauges.ts: the
 * reports read the store, telemetry only records), or nothing once it is closed.
 */
export function observeStore(db: Queryable | undefined, read: (db: Queryable) => Promise<StoreGauges>): void {
  if (db === observed) return;
  observed = db;
  readGauges = db ? cachedReader(() => read(db), gaugeCacheMs) : undefined;
}

/** Stops telemetry (tests): metrics go back to no-ops, the next startTelemetry starts afresh. */
export async function stopTelemetry(): Promise<void> {
  const current = started;
  started = undefined;
  setMetrics(undefined);
  await current?.shutdown();
}

function instrument(meter: Meter): void {
  setMetrics(createOtelMetrics(meter));
  observeStoreGauges(meter, async () => readGauges?.());
}

function startPrometheus(): NonNullable<typeof started> {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ resource: resourceFromAttributes({ "service.name": SERVICE_NAME }), readers: [exporter] });
  instrument(provider.getMeter(SERVICE_NAME));
  const serializer = new PrometheusSerializer();
  return {
    telemetry: {
      exporter: "prometheus",
      prometheusText: async () => {
        // A failing gauge read (store down) is reported in `errors`; the rest is still served.
        const { resourceMetrics } = await exporter.collect();
        return serializer.serialize(resourceMetrics);
      },
    },
    shutdown: () => provider.shutdown(),
  };
}

/**
 * The credential APPLICATIONINSIGHTS_AUTHENTICATION_STRING names (`Authorization=AAD[;ClientId=…]`,
 * what the host itself honours; infra/main.bicep sets it, Application Insights takes no keys). The
 * distro does not read that setting, so it is handed the same managed identity explicitly.
 */
export function appInsightsCredential(authentication: string | undefined): TokenCredential | undefined {
  if (!authentication?.trim()) return undefined;
  const parts = new Map(
    authentication.split(";").flatMap((part) => {
      const at = part.indexOf("=");
      return at > 0 ? [[part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim()] as const] : [];
    }),
  );
  if (parts.get("authorization")?.toLowerCase() !== "aad") {
    throw new Error("APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be 'Authorization=AAD' or 'Authorization=AAD;ClientId=<client id of a managed identity>'");
  }
  const clientId = parts.get("clientid");
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

function startAzureMonitor(connectionString: string, authentication: string | undefined): NonNullable<typeof started> {
  const credential = appInsightsCredential(authentication);
  // Loaded only here: the distro pulls in the whole OpenTelemetry Node SDK.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on demand, in Azure only
  const distro = require("@azure/monitor-opentelemetry") as typeof AzureMonitor;
  distro.useAzureMonitor({
    azureMonitorExporterOptions: { connectionString, ...(credential ? { credential } : {}) },
    instrumentationOptions: { http: { enabled: false }, postgreSql: { enabled: false }, azureSdk: { enabled: false } },
    // The host's Application Insights integration already feeds Live Metrics.
    enableLiveMetrics: false,
  });
  instrument(otelMetricsApi.getMeter(SERVICE_NAME));
  return { telemetry: { exporter: "azureMonitor", prometheusText: () => undefined }, shutdown: () => distro.shutdownAzureMonitor() };
}
