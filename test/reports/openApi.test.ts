import { openApiDocument } from "../../shared/reports/openApiDocument";
import { useStore } from "../../shared/reports/getStore";
import { seedComplianceFleet } from "./complianceFixture";
import { invokeComplianceApi, registeredRoutes } from "./invokeComplianceApi";
import { validateJsonSchema } from "./jsonSchema";
import { reportStores, type TestStore } from "./reportStores";

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }> }>> };
const doc = openApiDocument as unknown as Doc & Record<string, unknown>;

/** Every route called with a good and the bad inputs it documents: [method, url, documented path]. */
const calls: [string, string, string][] = [
  ["GET", "/api/compliance/summary", "/compliance/summary"],
  ["GET", "/api/compliance/summary?tag.site=paris&since=7d", "/compliance/summary"],
  ["GET", "/api/compliance/summary?state=nope", "/compliance/summary"],
  ["GET", "/api/compliance/devices?limit=2", "/compliance/devices"],
  ["GET", "/api/compliance/devices?property=firmware.version&state=stale", "/compliance/devices"],
  ["GET", "/api/compliance/devices?cursor=x", "/compliance/devices"],
  ["GET", "/api/compliance/devices?resyncNeeded=true", "/compliance/devices"],
  ["GET", "/api/compliance/devices?resyncNeeded=yes", "/compliance/devices"],
  ["GET", "/api/compliance/devices.csv?tag.site=berlin", "/compliance/devices.csv"],
  ["GET", "/api/compliance/devices.csv?limit=1", "/compliance/devices.csv"],
  ["GET", "/api/compliance/devices/dev-d", "/compliance/devices/{deviceId}"],
  ["GET", "/api/compliance/devices/dev-e?moduleId=m1", "/compliance/devices/{deviceId}"],
  ["GET", "/api/compliance/devices/nobody", "/compliance/devices/{deviceId}"],
  ["GET", "/api/compliance/devices/dev-d?moduleId=", "/compliance/devices/{deviceId}"],
  ["POST", "/api/compliance/devices/dev-c/repush", "/compliance/devices/{deviceId}/repush"],
  ["POST", "/api/compliance/devices/dev-a/repush", "/compliance/devices/{deviceId}/repush"],
  ["POST", "/api/compliance/devices/nobody/repush", "/compliance/devices/{deviceId}/repush"],
  ["POST", "/api/compliance/devices/dev-a/repush?x=1", "/compliance/devices/{deviceId}/repush"],
  ["GET", "/api/openapi.json", "/openapi.json"],
  ["GET", "/api/dashboard", "/dashboard"],
];

describe.each(reportStores())("OpenAPI document on %s", (_name, openStore) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await openStore();
    await seedComplianceFleet(store.db, Date.now());
    // A fleet sync pass complete and one in progress, and a twin flagged for the resync queue: the
    // summary and device list then carry every field their schemas describe.
    await store.db.query(
      `INSERT INTO fleet_sync_passes (started_at, finished_at, phase, twins_read, queries_used, updated_at)
       VALUES (now() - interval '1 hour', now() - interval '50 minutes', 'done', 5, 2, now()), (now(), NULL, 'modules', 3, 1, now())`,
    );
    await store.db.query(
      `INSERT INTO twins (device_id, module_id, version, resync_needed, updated_at)
       SELECT device_id, module_id, 1, true, now() FROM devices ORDER BY device_id, module_id LIMIT 1`,
    );
    useStore(store.db);
  });
  afterAll(async () => {
    useStore(undefined);
    await store?.dispose();
  });

  it("documents exactly the registered routes", () => {
    const registered = registeredRoutes().flatMap((r) => r.methods.map((m) => `${m.toLowerCase()} /${r.route}`)).sort();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)).sort();
    expect(documented).toEqual(registered);
  });

  it("is called on every documented operation by this suite", () => {
    const called = new Set(calls.map(([m, , p]) => `${m.toLowerCase()} ${p}`));
    expect(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)).filter((op) => !called.has(op))).toEqual([]);
  });

  it.each(calls)("%s %s answers a documented status with a body its schema accepts", async (method, url, path) => {
    const response = await invokeComplianceApi(method, url);
    const operation = doc.paths[path]?.[method.toLowerCase()];
    expect(operation).toBeDefined();
    const documented = operation!.responses[String(response.status)];
    expect({ status: response.status, documented: documented !== undefined }).toEqual({ status: response.status, documented: true });
    const contentType = (response.headers.get("content-type") ?? "").split(";")[0]!.trim();
    const media = documented!.content?.[contentType];
    expect({ contentType, documented: media !== undefined }).toEqual({ contentType, documented: true });
    const text = await response.text();
    const body: unknown = contentType.endsWith("json") ? JSON.parse(text) : text;
    expect(validateJsonSchema(body, media!.schema, doc)).toEqual([]);
  });

  it("rejects a body that breaks the schema (the check has teeth)", () => {
    const schema = { $ref: "#/components/schemas/DeviceList" };
    const item = { deviceId: "a", moduleId: null, state: "green", stateSince: "x", counts: {}, resyncNeededSince: null };
    expect(validateJsonSchema({ items: [item], nextCursor: null, extra: 1 }, schema, doc)).toEqual([
      "$.items[0].state: \"green\" is not one of [\"compliant\",\"pending\",\"drifted\",\"stale\",\"failed\",\"escalated\"]",
      "$.items[0].stateSince: not a date-time",
      "$: unexpected property 'extra'",
    ]);
  });
});
