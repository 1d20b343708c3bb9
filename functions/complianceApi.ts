import "../shared/enableHttpStreams";
import { app, type HttpHandler, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import { complianceRoutes, type ReportRoute } from "../shared/reports/complianceRoutes";
import { getStore } from "../shared/reports/getStore";

// complianceApi: the compliance reports over HTTP. Each route is a thin adapter over
// shared/reports; the store is opened once per process, on first use.

function handler(route: ReportRoute): HttpHandler {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    route({ query: request.query, params: request.params }, getStore, (message) => context.error(message));
}

const routes: { name: string; route: string; methods: ("GET" | "POST")[]; authLevel: "function" | "admin"; run: ReportRoute }[] = [
  { name: "complianceSummary", route: "compliance/summary", methods: ["GET"], authLevel: "function", run: complianceRoutes.summary },
  { name: "complianceDevices", route: "compliance/devices", methods: ["GET"], authLevel: "function", run: complianceRoutes.devices },
  { name: "complianceDevicesCsv", route: "compliance/devices.csv", methods: ["GET"], authLevel: "function", run: complianceRoutes.devicesCsv },
  { name: "complianceDevice", route: "compliance/devices/{deviceId}", methods: ["GET"], authLevel: "function", run: complianceRoutes.deviceDetail },
  // Re-pushing writes to IoT Hub: admin (host master key) only.
  { name: "complianceRepush", route: "compliance/devices/{deviceId}/repush", methods: ["POST"], authLevel: "admin", run: complianceRoutes.repush },
  { name: "complianceOpenApi", route: "openapi.json", methods: ["GET"], authLevel: "function", run: complianceRoutes.openApi },
  { name: "complianceDashboard", route: "dashboard", methods: ["GET"], authLevel: "function", run: complianceRoutes.dashboard },
];

for (const r of routes) {
  app.http(r.name, { route: r.route, methods: r.methods, authLevel: r.authLevel, handler: handler(r.run) });
}
