import { z } from "zod";
import { complianceStates } from "./complianceStates";
import type { ComplianceSummary } from "./getComplianceSummary";
import type { DeviceDetail } from "./getDeviceDetail";
import type { DeviceList } from "./listDevices";
import type { Problem } from "./Problem";

// The compliance API's JSON response bodies as zod schemas. openApiDocument.ts publishes them (zod's
// JSON Schema output) and test/reports/openApi.test.ts parses the routes' real answers with them;
// the type checks at the bottom keep them equal to the types the report code returns.

const state = z.enum(complianceStates);
const dateTime = z.iso.datetime({ offset: true });
const count = z.number().int().min(0);
const moduleId = z.string().nullable().meta({ description: "null for a device twin." });
/** Any JSON value (null when absent); the component JsonValue (it is recursive). */
const jsonValue = z.json();
z.globalRegistry.add(jsonValue, { description: "Any JSON value (null when absent)." });

export const stateCountsSchema = z
  .strictObject(Object.fromEntries(complianceStates.map((s) => [s, count])) as Record<(typeof complianceStates)[number], typeof count>)
  .meta({ description: "Count per state; every state is present." });
const partialCounts = z
  .partialRecord(state, z.number().int().min(1))
  .meta({ description: "Property records per state; only states present." });

export const problemSchema = z
  .strictObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    "invalid-params": z.array(z.strictObject({ name: z.string(), reason: z.string() })).optional(),
  })
  .meta({ description: "RFC 9457 problem details." });

const syncPass = z
  .strictObject({
    id: z.number().int(),
    startedAt: dateTime,
    finishedAt: dateTime.nullable(),
    phase: z.enum(["devices", "modules", "confirm", "done"]).meta({ description: "devices, modules: paging the twin queries; confirm: reading unseen twins; done." }),
    runs: count.meta({ description: "Timer runs that worked on the pass." }),
    twinsRead: count.meta({ description: "Twins read by the twin queries." }),
    twinsChanged: count.meta({ description: "Twins whose stored copy was written (newer, unseen, flagged or re-created)." }),
    twinsRemoved: count.meta({ description: "Twins absent from the complete pass whose getTwin answered 404: records removed, history kept." }),
    twinsConfirmed: count.meta({ description: "Twins absent from the queries but found with getTwin." }),
    queriesUsed: count.meta({ description: "Twin query pages requested (the hub's query quota)." }),
    errors: count.meta({ description: "getTwin failures other than 404 and 429 (those twins were flagged for the resync queue)." }),
  })
  .nullable()
  .meta({ description: "A fleet sync pass: twin queries over every device and module twin, then getTwin of the stored twins it did not see." });

export const summarySchema = z.strictObject({
  generatedAt: dateTime,
  devices: count.meta({ description: "Twins (devices and modules) selected." }),
  properties: count.meta({ description: "Property records selected." }),
  byState: stateCountsSchema.meta({ description: "Twins by their state." }),
  propertiesByState: stateCountsSchema.meta({ description: "Property records by their state." }),
  byProperty: z.array(z.strictObject({ path: z.string(), total: count, byState: stateCountsSchema })),
  timeToCompliance: z
    .strictObject({ sinceSeconds: z.number().int().min(1), count, p50: z.number().nullable(), p95: z.number().nullable() })
    .meta({ description: "Seconds from a desired change to compliance, over transitions to compliant in the window." }),
  fleetSync: z
    .strictObject({ lastComplete: syncPass, inProgress: syncPass })
    .meta({ description: "The fleet sync (whole store, whatever the filters): the last complete pass and the one in progress." }),
  resyncNeeded: z
    .strictObject({ count, oldestSince: dateTime.nullable(), oldestAgeSeconds: count.nullable() })
    .meta({ description: "Twins flagged for the resync queue (whole store, whatever the filters): a change the event path could not fill in, read again with back-off." }),
});

export const deviceListSchema = z.strictObject({
  items: z.array(
    z.strictObject({
      deviceId: z.string(),
      moduleId,
      state,
      stateSince: dateTime,
      counts: partialCounts,
      resyncNeededSince: dateTime.nullable().meta({ description: "When the twin was flagged for the resync queue; null when it is not." }),
    }),
  ),
  nextCursor: z.string().nullable().meta({ description: "Pass as `cursor` for the next page; null on the last page." }),
});

export const repushQueuedSchema = z.strictObject({
  deviceId: z.string(),
  moduleId,
  queuedAt: dateTime,
  paths: z.array(z.string()).meta({ description: "The desired properties queued." }),
});

export const deviceDetailSchema = z.strictObject({
  deviceId: z.string(),
  moduleId,
  state,
  stateSince: dateTime,
  staleAt: dateTime.nullable(),
  counts: partialCounts,
  tags: z.record(z.string(), jsonValue),
  properties: z.array(
    z.strictObject({
      path: z.string(),
      reportedPath: z.string(),
      compare: z.string(),
      state,
      stateSince: dateTime,
      desired: jsonValue,
      reported: jsonValue,
      desiredVersion: z.number().int(),
      desiredSince: dateTime,
      staleAt: dateTime,
      attempts: count,
      nextAttemptAt: dateTime.nullable(),
    }),
  ),
  history: z
    .array(
      z.strictObject({
        id: z.number().int(),
        path: z.string(),
        fromState: z.string().nullable(),
        toState: z.enum([...complianceStates, "removed"]),
        cause: z.string(),
        at: dateTime,
        desiredVersion: z.number().int().nullable(),
        desired: jsonValue,
        reported: jsonValue,
        detail: jsonValue,
      }),
    )
    .meta({ description: "The latest 100 transitions over all the twin's properties, newest first." }),
});

/** The schemas published under components.schemas, by name. */
export const responseSchemas = {
  Problem: problemSchema,
  StateCounts: stateCountsSchema,
  JsonValue: jsonValue,
  Summary: summarySchema,
  DeviceList: deviceListSchema,
  RepushQueued: repushQueuedSchema,
  DeviceDetail: deviceDetailSchema,
};

// Compile-time: each schema's type and the report code's type are assignable both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <A, B>(ok: Same<A, B>) => ok;
same<z.infer<typeof problemSchema>, Problem>(true);
same<z.infer<typeof summarySchema>, ComplianceSummary>(true);
same<z.infer<typeof deviceListSchema>, DeviceList>(true);
same<z.infer<typeof deviceDetailSchema>["properties"], DeviceDetail["properties"]>(true);
same<Omit<z.infer<typeof deviceDetailSchema>, "history" | "properties">, Omit<DeviceDetail, "history" | "properties">>(true);
