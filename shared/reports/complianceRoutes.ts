import { redact } from "../redact";
import type { Database } from "../store/Database";
import { dashboardPage } from "./dashboardPage";
import { getComplianceSummary } from "./getComplianceSummary";
import { getDeviceDetail } from "./getDeviceDetail";
import { listDevices } from "./listDevices";
import { openApiDocument } from "./openApiDocument";
import { queueRepushNow } from "../store/repushStore";
import { conflictProblem, invalidParamsProblem, notFoundProblem, storeUnavailableProblem, type Problem } from "./Problem";
import { parseQuery, routeQueries, toFilters, twinIdParam } from "./reportQuery";
import { streamDevicesCsv, toByteStream } from "./streamDevicesCsv";

/** What a route needs from an HTTP request (the Functions `HttpRequest` has both). */
export interface ReportRequest {
  query: URLSearchParams;
  params: Record<string, string | undefined>;
}

/** An HTTP response, shaped like the Functions `HttpResponseInit`. */
export interface ReportResponse {
  status: number;
  headers: Record<string, string>;
  jsonBody?: unknown;
  body?: string | ReadableStream<Uint8Array>;
}

/** `log` receives what a failed store said (the host's log), never the client. */
export type ReportRoute = (request: ReportRequest, store: () => Promise<Database>, log?: (message: string) => void) => Promise<ReportResponse>;

const noStore = { "cache-control": "no-store" };
const json = (jsonBody: unknown, status = 200): ReportResponse => ({ status, headers: { ...noStore, "content-type": "application/json" }, jsonBody });
const problem = (p: Problem): ReportResponse => ({ status: p.status, headers: { ...noStore, "content-type": "application/problem+json" }, jsonBody: p });

function pathParam(request: ReportRequest, name: string): { ok: true; value: string } | { ok: false; response: ReportResponse } {
  const parsed = twinIdParam.safeParse(request.params[name] ?? "");
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, response: problem(invalidParamsProblem([{ name, reason: parsed.error.issues[0]?.message ?? "is invalid" }])) };
}

const twinName = (deviceId: string, moduleId: string | null) =>
  moduleId === null ? `device '${deviceId}'` : `module '${moduleId}' of device '${deviceId}'`;

const routes = {
  /** GET compliance/summary */
  async summary(request, store) {
    const q = parseQuery(request.query, routeQueries.summary.params, routeQueries.summary);
    if (!q.ok) return problem(q.problem);
    const sinceSeconds = q.value.since;
    return json(await getComplianceSummary(await store(), toFilters(q.value), sinceSeconds === undefined ? {} : { sinceSeconds }));
  },

  /** GET compliance/devices */
  async devices(request, store) {
    const q = parseQuery(request.query, routeQueries.devices.params, routeQueries.devices);
    if (!q.ok) return problem(q.problem);
    return json(
      await listDevices(await store(), toFilters(q.value), {
        ...(q.value.limit !== undefined ? { limit: q.value.limit } : {}),
        ...(q.value.cursor !== undefined ? { after: q.value.cursor } : {}),
        ...(q.value.q !== undefined ? { deviceIdPrefix: q.value.q } : {}),
        ...(q.value.resyncNeeded !== undefined ? { resyncNeeded: q.value.resyncNeeded } : {}),
      }),
    );
  },

  /** GET compliance/devices/{deviceId}?moduleId= */
  async deviceDetail(request, store) {
    const deviceId = pathParam(request, "deviceId");
    if (!deviceId.ok) return deviceId.response;
    const q = parseQuery(request.query, routeQueries.deviceDetail.params, routeQueries.deviceDetail);
    if (!q.ok) return problem(q.problem);
    const moduleId = q.value.moduleId ?? null;
    const detail = await getDeviceDetail(await store(), deviceId.value, moduleId);
    if (!detail) {
      return problem(notFoundProblem(`No compliance records for ${twinName(deviceId.value, moduleId)}: check the id, or wait until the reconciler has seen its twin.`));
    }
    return json(detail);
  },

  /** GET compliance/devices.csv */
  async devicesCsv(request, store) {
    const q = parseQuery(request.query, routeQueries.devicesCsv.params, routeQueries.devicesCsv);
    if (!q.ok) return problem(q.problem);
    const db = await store();
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    return {
      status: 200,
      headers: {
        ...noStore,
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="compliance-${stamp}.csv"`,
      },
      // The first chunk (header and first rows) is read before answering, so a store failure is a 503, not a cut 200.
      body: toByteStream(await primed(streamDevicesCsv(db, toFilters(q.value)))),
    };
  },

  /** POST compliance/devices/{deviceId}/repush?moduleId= — queue a re-push for the next timer run. */
  async repush(request, store) {
    const deviceId = pathParam(request, "deviceId");
    if (!deviceId.ok) return deviceId.response;
    const q = parseQuery(request.query, routeQueries.repush.params, routeQueries.repush);
    if (!q.ok) return problem(q.problem);
    const key = { deviceId: deviceId.value, moduleId: q.value.moduleId ?? null };
    const db = await store();
    const known = await db.query("SELECT 1 FROM devices WHERE device_id = $1 AND module_id = $2", [key.deviceId, key.moduleId ?? ""]);
    if (known.rows.length === 0) return problem(notFoundProblem(`No compliance records for ${twinName(key.deviceId, key.moduleId)}.`));
    const queuedAt = new Date().toISOString();
    const paths = await queueRepushNow(db, key, queuedAt);
    if (paths.length === 0) {
      return problem(
        conflictProblem(`Nothing to re-push for ${twinName(key.deviceId, key.moduleId)}: every property is compliant or failed (a device that said no is not asked again).`),
      );
    }
    return json({ ...key, queuedAt, paths }, 202);
  },

  /** GET openapi.json */
  async openApi() {
    return { status: 200, headers: { "content-type": "application/json", "cache-control": "max-age=300" }, jsonBody: openApiDocument };
  },

  /** GET dashboard */
  async dashboard() {
    const page = dashboardPage();
    return {
      status: 200,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
        "content-security-policy": page.contentSecurityPolicy,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      },
      body: page.html,
    };
  },
} satisfies Record<string, ReportRoute>;

/**
 * The compliance API's routes, independent of the Functions runtime (functions/complianceApi.ts registers
 * them). Parameters are validated before the store is touched, so whatever a route still throws is the
 * store failing (or its settings): a 503 problem, the cause logged for the operator, not sent.
 */
export const complianceRoutes = Object.fromEntries(
  Object.entries(routes).map(([name, route]) => [name, answeringStoreFailures(name, route)]),
) as Record<keyof typeof routes, ReportRoute>;

function answeringStoreFailures(name: string, route: ReportRoute): ReportRoute {
  return async (request, store, log) => {
    try {
      return await route(request, store, log);
    } catch (error) {
      log?.(`compliance API ${name}: the store failed: ${redact(error instanceof Error ? error.message : String(error))}`);
      return { ...problem(storeUnavailableProblem()), headers: { ...noStore, "content-type": "application/problem+json", "retry-after": "5" } };
    }
  };
}

/** `chunks` with its first chunk already read (so its errors surface now), then the rest. */
async function primed(chunks: AsyncGenerator<string>): Promise<AsyncGenerator<string>> {
  const first = await chunks.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* chunks;
  })();
}
