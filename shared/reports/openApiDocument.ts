import { z } from "zod";
import { complianceStates } from "./complianceStates";
import { routeQueries, tagValue, twinIdParam } from "./reportQuery";
import { responseSchemas } from "./responseSchemas";
import { csvColumns } from "./streamDevicesCsv";

// The compliance API as OpenAPI 3.1. Every schema in it is zod's JSON Schema output of the schemas
// the code uses: query and path parameters from reportQuery.ts (what the routes validate, as the text
// a client sends: io "input"), response bodies from responseSchemas.ts. test/reports/openApi.test.ts
// calls every route and validates each response against this document with ajv.

type JsonSchema = Record<string, unknown>;

/** Drops what zod adds that says nothing here: the safe-integer bounds, and the pattern it adds to `format: date-time`. */
const tidy: NonNullable<Parameters<typeof z.toJSONSchema>[1]>["override"] = ({ jsonSchema }) => {
  const schema = jsonSchema as JsonSchema;
  if (schema.maximum === Number.MAX_SAFE_INTEGER) delete schema.maximum;
  if (schema.minimum === Number.MIN_SAFE_INTEGER) delete schema.minimum;
  if (schema.format === "date-time") delete schema.pattern;
};

/** zod's JSON Schema (2020-12) for `schema`, without the `$schema`/`$id` a standalone document carries. */
function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _s, $id: _i, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "throw", override: tidy }) as JsonSchema;
  return rest;
}

/** components.schemas: the response schemas, referring to one another by `$ref`. */
function componentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(responseSchemas)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, unrepresentable: "throw", override: tidy });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, { $schema: _s, $id: _i, ...rest }]) => [id, rest as JsonSchema]),
  );
}

/** An OpenAPI parameter: the JSON Schema zod derives, with the zod schema's `meta` description and examples. */
function parameter(name: string, location: "query" | "path", schema: z.ZodType) {
  const { description: _d, examples: _e, ...rest } = jsonSchemaOf(schema);
  const meta = schema.meta();
  return {
    name,
    in: location,
    ...(location === "path" ? { required: true } : {}),
    schema: { ...rest, ...(meta?.examples ? { examples: meta.examples } : {}) },
    ...(meta?.description ? { description: meta.description } : {}),
  };
}

const queryParams = (route: keyof typeof routeQueries) => {
  const query = routeQueries[route];
  return [
    ...Object.entries(query.params).map(([name, schema]) => parameter(name, "query", schema)),
    ...(query.tags ? [parameter("tag.*", "query", tagValue)] : []),
  ];
};
const deviceIdParam = parameter("deviceId", "path", twinIdParam);

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});
const badRequest = problemResponse("A parameter is invalid; `invalid-params` names it.");
const storeUnavailable = {
  ...problemResponse("The compliance store could not be reached or failed; retry later (the host log has the cause)."),
  headers: { "Retry-After": { description: "Seconds to wait before retrying.", required: true, schema: { type: "integer", minimum: 1 } } },
};
const jsonResponse = (ref: keyof typeof responseSchemas, description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } },
});

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "Twin Reconciler compliance API",
    version: "1.0.0",
    description:
      "Per-device, per-property compliance of IoT Hub device twins (desired vs reported). States, best first: " +
      complianceStates.join(" < ") +
      ". A pending record past its staleAfter is reported stale at the time you ask. Errors are application/problem+json " +
      "(components.schemas.Problem). On the local host (npm start), a path no route serves answers components.responses.NotFound " +
      "and a method a route does not take answers components.responses.MethodNotAllowed.",
  },
  servers: [{ url: "/api" }],
  components: {
    securitySchemes: {
      functionKey: { type: "apiKey", in: "header", name: "x-functions-key", description: "A function key (or `?code=`); not needed on the local host." },
    },
    schemas: componentSchemas(),
    responses: {
      NotFound: problemResponse("No route serves this path."),
      MethodNotAllowed: {
        ...problemResponse("The route does not take this method."),
        headers: { Allow: { description: "The methods the route takes.", required: true, schema: { type: "string" } } },
      },
    },
  },
  security: [{ functionKey: [] }],
  paths: {
    "/compliance/summary": {
      get: {
        operationId: "getComplianceSummary",
        summary: "Fleet compliance by state and by property, and time-to-compliance percentiles.",
        parameters: queryParams("summary"),
        responses: { "200": jsonResponse("Summary", "The summary."), "400": badRequest, "503": storeUnavailable },
      },
    },
    "/compliance/devices": {
      get: {
        operationId: "listComplianceDevices",
        summary: "Twins with their state and counts, in (deviceId, moduleId) order, one page at a time.",
        parameters: queryParams("devices"),
        responses: { "200": jsonResponse("DeviceList", "One page of twins."), "400": badRequest, "503": storeUnavailable },
      },
    },
    "/compliance/devices.csv": {
      get: {
        operationId: "exportComplianceCsv",
        summary: "Every selected property record as CSV (streamed), with a header row.",
        parameters: queryParams("devicesCsv"),
        responses: {
          "200": { description: `CSV columns: ${csvColumns.join(", ")}.`, content: { "text/csv": { schema: { type: "string" } } } },
          "400": badRequest,
          "503": storeUnavailable,
        },
      },
    },
    "/compliance/devices/{deviceId}": {
      get: {
        operationId: "getComplianceDevice",
        summary: "One twin's state, tags, property records and latest history.",
        parameters: [deviceIdParam, ...queryParams("deviceDetail")],
        responses: { "200": jsonResponse("DeviceDetail", "The twin's compliance."), "400": badRequest, "404": problemResponse("No such twin."), "503": storeUnavailable },
      },
    },
    "/compliance/devices/{deviceId}/repush": {
      post: {
        operationId: "repushDevice",
        summary: "Re-push now: the next repushStaleDesired run re-sends the twin's pending, stale, drifted and escalated desired properties (admin key).",
        parameters: [deviceIdParam, ...queryParams("repush")],
        responses: {
          "202": jsonResponse("RepushQueued", "Queued for the next timer run."),
          "400": badRequest,
          "404": problemResponse("No such twin."),
          "409": problemResponse("Nothing to re-push: every property is compliant or failed."),
          "503": storeUnavailable,
        },
      },
    },
    "/openapi.json": {
      get: { operationId: "getOpenApi", summary: "This document.", responses: { "200": { description: "OpenAPI 3.1.", content: { "application/json": { schema: { type: "object" } } } } } },
    },
    "/metrics": {
      get: {
        operationId: "getMetrics",
        summary:
          "This process's metrics (shared/telemetry/metricNames.ts) in Prometheus text format, on the local host and in tests. " +
          "In Azure the metrics go to Application Insights and this answers a 404 problem.",
        responses: { "200": { description: "Prometheus text exposition format 0.0.4.", content: { "text/plain": { schema: { type: "string" } } } } },
      },
    },
    "/dashboard": {
      get: { operationId: "getDashboard", summary: "The compliance dashboard (HTML).", responses: { "200": { description: "HTML page.", content: { "text/html": { schema: { type: "string" } } } } } },
    },
  },
} as const;
