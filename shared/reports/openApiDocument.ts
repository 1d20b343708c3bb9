import { complianceStates } from "./complianceStates";
import { csvColumns } from "./streamDevicesCsv";

// The compliance API as OpenAPI 3.1. test/reports/openApi.test.ts calls every route and validates
// each response against these schemas, so keep them exact (additionalProperties: false).

const state = { type: "string", enum: [...complianceStates] };
const stateCounts = {
  type: "object",
  description: "Count per state; every state is present.",
  properties: Object.fromEntries(complianceStates.map((s) => [s, { type: "integer", minimum: 0 }])),
  required: [...complianceStates],
  additionalProperties: false,
};
const partialCounts = {
  type: "object",
  description: "Property records per state; only states present.",
  properties: Object.fromEntries(complianceStates.map((s) => [s, { type: "integer", minimum: 1 }])),
  additionalProperties: false,
};
const dateTime = { type: "string", format: "date-time" };
const nullableDateTime = { type: ["string", "null"], format: "date-time" };
const anyJson = { description: "Any JSON value (null when absent)." };
const moduleId = { type: ["string", "null"], description: "null for a device twin." };
const count = { type: "integer", minimum: 0 };
const syncPass = {
  type: ["object", "null"],
  description: "A fleet sync pass: twin queries over every device and module twin, then getTwin of the stored twins it did not see.",
  properties: {
    id: { type: "integer" },
    startedAt: dateTime,
    finishedAt: nullableDateTime,
    phase: { type: "string", enum: ["devices", "modules", "confirm", "done"], description: "devices, modules: paging the twin queries; confirm: reading unseen twins; done." },
    runs: { type: "integer", minimum: 0, description: "Timer runs that worked on the pass." },
    twinsRead: { ...count, description: "Twins read by the twin queries." },
    twinsChanged: { ...count, description: "Twins whose stored copy was written (newer, unseen, flagged or re-created)." },
    twinsRemoved: { ...count, description: "Twins absent from the complete pass whose getTwin answered 404: records removed, history kept." },
    twinsConfirmed: { ...count, description: "Twins absent from the queries but found with getTwin." },
    queriesUsed: { ...count, description: "Twin query pages requested (the hub's query quota)." },
    errors: { ...count, description: "getTwin failures other than 404 and 429 (those twins were flagged for the resync queue)." },
  },
  required: ["id", "startedAt", "finishedAt", "phase", "runs", "twinsRead", "twinsChanged", "twinsRemoved", "twinsConfirmed", "queriesUsed", "errors"],
  additionalProperties: false,
};

const filterParams = [
  { name: "state", in: "query", schema: state, description: "With `property`: that property's state. Otherwise, on device lists the device's state, on property records the record's state." },
  { name: "property", in: "query", schema: { type: "string", minLength: 1, maxLength: 512 }, description: "A desired property path (dot path)." },
  {
    name: "tag.*",
    in: "query",
    schema: { type: "string", maxLength: 256 },
    description: "Any number of `tag.<dot.path>=<value>` (at most 10): the twin tag at that path equals the value (as a string, or as the number/boolean it spells).",
  },
];
const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});
const badRequest = problemResponse("A parameter is invalid; `invalid-params` names it.");
const storeUnavailable = {
  ...problemResponse("The compliance store could not be reached or failed; retry later (the host log has the cause)."),
  headers: { "Retry-After": { description: "Seconds to wait before retrying.", required: true, schema: { type: "integer", minimum: 1 } } },
};
const jsonResponse = (ref: string, description: string) => ({
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
    schemas: {
      Problem: {
        type: "object",
        description: "RFC 9457 problem details.",
        properties: {
          type: { type: "string" },
          title: { type: "string" },
          status: { type: "integer" },
          detail: { type: "string" },
          "invalid-params": {
            type: "array",
            items: {
              type: "object",
              properties: { name: { type: "string" }, reason: { type: "string" } },
              required: ["name", "reason"],
              additionalProperties: false,
            },
          },
        },
        required: ["type", "title", "status", "detail"],
        additionalProperties: false,
      },
      StateCounts: stateCounts,
      Summary: {
        type: "object",
        properties: {
          generatedAt: dateTime,
          devices: { type: "integer", minimum: 0, description: "Twins (devices and modules) selected." },
          properties: { type: "integer", minimum: 0, description: "Property records selected." },
          byState: { $ref: "#/components/schemas/StateCounts", description: "Twins by their state." },
          propertiesByState: { $ref: "#/components/schemas/StateCounts", description: "Property records by their state." },
          byProperty: {
            type: "array",
            items: {
              type: "object",
              properties: { path: { type: "string" }, total: { type: "integer", minimum: 0 }, byState: { $ref: "#/components/schemas/StateCounts" } },
              required: ["path", "total", "byState"],
              additionalProperties: false,
            },
          },
          timeToCompliance: {
            type: "object",
            description: "Seconds from a desired change to compliance, over transitions to compliant in the window.",
            properties: {
              sinceSeconds: { type: "integer", minimum: 1 },
              count: { type: "integer", minimum: 0 },
              p50: { type: ["number", "null"] },
              p95: { type: ["number", "null"] },
            },
            required: ["sinceSeconds", "count", "p50", "p95"],
            additionalProperties: false,
          },
          fleetSync: {
            type: "object",
            description: "The fleet sync (whole store, whatever the filters): the last complete pass and the one in progress.",
            properties: { lastComplete: syncPass, inProgress: syncPass },
            required: ["lastComplete", "inProgress"],
            additionalProperties: false,
          },
          resyncNeeded: {
            type: "object",
            description: "Twins flagged for the resync queue (whole store, whatever the filters): a change the event path could not fill in, read again with back-off.",
            properties: { count, oldestSince: nullableDateTime, oldestAgeSeconds: { type: ["integer", "null"], minimum: 0 } },
            required: ["count", "oldestSince", "oldestAgeSeconds"],
            additionalProperties: false,
          },
        },
        required: ["generatedAt", "devices", "properties", "byState", "propertiesByState", "byProperty", "timeToCompliance", "fleetSync", "resyncNeeded"],
        additionalProperties: false,
      },
      DeviceList: {
        type: "object",
        properties: {
          items: {
            type: "array",
            items: {
              type: "object",
              properties: {
                deviceId: { type: "string" },
                moduleId,
                state,
                stateSince: dateTime,
                counts: partialCounts,
                resyncNeededSince: { ...nullableDateTime, description: "When the twin was flagged for the resync queue; null when it is not." },
              },
              required: ["deviceId", "moduleId", "state", "stateSince", "counts", "resyncNeededSince"],
              additionalProperties: false,
            },
          },
          nextCursor: { type: ["string", "null"], description: "Pass as `cursor` for the next page; null on the last page." },
        },
        required: ["items", "nextCursor"],
        additionalProperties: false,
      },
      RepushQueued: {
        type: "object",
        properties: {
          deviceId: { type: "string" },
          moduleId,
          queuedAt: dateTime,
          paths: { type: "array", items: { type: "string" }, description: "The desired properties queued." },
        },
        required: ["deviceId", "moduleId", "queuedAt", "paths"],
        additionalProperties: false,
      },
      DeviceDetail: {
        type: "object",
        properties: {
          deviceId: { type: "string" },
          moduleId,
          state,
          stateSince: dateTime,
          staleAt: nullableDateTime,
          counts: partialCounts,
          tags: { type: "object" },
          properties: {
            type: "array",
            items: {
              type: "object",
              properties: {
                path: { type: "string" },
                reportedPath: { type: "string" },
                compare: { type: "string" },
                state,
                stateSince: dateTime,
                desired: anyJson,
                reported: anyJson,
                desiredVersion: { type: "integer" },
                desiredSince: dateTime,
                staleAt: dateTime,
                attempts: { type: "integer", minimum: 0 },
                nextAttemptAt: nullableDateTime,
              },
              required: ["path", "reportedPath", "compare", "state", "stateSince", "desired", "reported", "desiredVersion", "desiredSince", "staleAt", "attempts", "nextAttemptAt"],
              additionalProperties: false,
            },
          },
          history: {
            type: "array",
            description: "The latest 100 transitions over all the twin's properties, newest first.",
            items: {
              type: "object",
              properties: {
                id: { type: "integer" },
                path: { type: "string" },
                fromState: { type: ["string", "null"] },
                toState: { type: "string", enum: [...complianceStates, "removed"] },
                cause: { type: "string" },
                at: dateTime,
                desiredVersion: { type: ["integer", "null"] },
                desired: anyJson,
                reported: anyJson,
                detail: anyJson,
              },
              required: ["id", "path", "fromState", "toState", "cause", "at", "desiredVersion", "desired", "reported", "detail"],
              additionalProperties: false,
            },
          },
        },
        required: ["deviceId", "moduleId", "state", "stateSince", "staleAt", "counts", "tags", "properties", "history"],
        additionalProperties: false,
      },
    },
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
        parameters: [
          ...filterParams,
          { name: "since", in: "query", schema: { type: "string", pattern: "^\\d{1,7}[smhd]$" }, description: "Time-to-compliance window, e.g. 30m, 24h (default), 7d; at most 90d." },
        ],
        responses: { "200": jsonResponse("Summary", "The summary."), "400": badRequest, "503": storeUnavailable },
      },
    },
    "/compliance/devices": {
      get: {
        operationId: "listComplianceDevices",
        summary: "Twins with their state and counts, in (deviceId, moduleId) order, one page at a time.",
        parameters: [
          ...filterParams,
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
          { name: "cursor", in: "query", schema: { type: "string" }, description: "`nextCursor` of the previous page." },
          { name: "q", in: "query", schema: { type: "string", maxLength: 128 }, description: "Device id prefix." },
          { name: "resyncNeeded", in: "query", schema: { type: "string", enum: ["true", "false"] }, description: "Only twins flagged (true) or not flagged (false) for the resync queue." },
        ],
        responses: { "200": jsonResponse("DeviceList", "One page of twins."), "400": badRequest, "503": storeUnavailable },
      },
    },
    "/compliance/devices.csv": {
      get: {
        operationId: "exportComplianceCsv",
        summary: "Every selected property record as CSV (streamed), with a header row.",
        parameters: filterParams,
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
        parameters: [
          { name: "deviceId", in: "path", required: true, schema: { type: "string", maxLength: 128 } },
          { name: "moduleId", in: "query", schema: { type: "string", maxLength: 128 }, description: "For a module twin." },
        ],
        responses: { "200": jsonResponse("DeviceDetail", "The twin's compliance."), "400": badRequest, "404": problemResponse("No such twin."), "503": storeUnavailable },
      },
    },
    "/compliance/devices/{deviceId}/repush": {
      post: {
        operationId: "repushDevice",
        summary: "Re-push now: the next repushStaleDesired run re-sends the twin's pending, stale, drifted and escalated desired properties (admin key).",
        parameters: [
          { name: "deviceId", in: "path", required: true, schema: { type: "string", maxLength: 128 } },
          { name: "moduleId", in: "query", schema: { type: "string", maxLength: 128 }, description: "For a module twin." },
        ],
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
    "/dashboard": {
      get: { operationId: "getDashboard", summary: "The compliance dashboard (HTML).", responses: { "200": { description: "HTML page.", content: { "text/html": { schema: { type: "string" } } } } } },
    },
  },
} as const;
