import "../shared/enableHttpStreams";
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import { notFoundProblem } from "../shared/reports/Problem";
import { getStore } from "../shared/reports/getStore";
import { readStoreGauges } from "../shared/reports/readStoreGauges";
import { observeStore, startTelemetry } from "../shared/telemetry/startTelemetry";

/**
 * GET /api/metrics: this process's metrics in Prometheus text format (npm start, tests). The
 * observable gauges read the process's store, so it is opened first. In Azure the metrics go to
 * Application Insights instead (shared/telemetry/startTelemetry.ts) and this answers 404; authLevel
 * `function` keeps it from being anonymous there either way.
 */
export async function metricsHandler(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const telemetry = startTelemetry();
  if (telemetry.exporter !== "prometheus") {
    const problem = notFoundProblem("Metrics are exported to Application Insights here (APPLICATIONINSIGHTS_CONNECTION_STRING is set); there is no Prometheus endpoint.");
    return { status: 404, headers: { "content-type": "application/problem+json", "cache-control": "no-store" }, jsonBody: problem };
  }
  try {
    // The process's store (the runtime's, as the reports use it): the gauges read it.
    observeStore(await getStore(), readStoreGauges);
  } catch (error) {
    // The counters and histograms are still worth serving; only the store's gauges are missing.
    context.warn(`metrics without the store's gauges: ${error instanceof Error ? error.name : "Error"}`);
  }
  return { status: 200, headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" }, body: await telemetry.prometheusText() };
}

app.http("metrics", { route: "metrics", methods: ["GET"], authLevel: "function", handler: metricsHandler });
