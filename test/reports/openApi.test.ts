import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Ajv2020, { type ErrorObject } from "ajv/dist/2020";
import "../../functions/metricsApi";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { openApiDocument } from "../../shared/reports/openApiDocument";
import { useStore } from "../../shared/reports/getStore";
import { seedComplianceFleet } from "./complianceFixture";
import { invokeComplianceApi, registeredRoutes } from "./invokeComplianceApi";
import { responseSchemas } from "../../shared/reports/responseSchemas";
import { reportStores, type TestStore } from "./reportStores";
import { failingStore } from "../support/failingStore";

interface DocumentedParameter {
  name: string;
  in: "query" | "path";
  schema: { examples?: string[] } & Record<string, unknown>;
}
interface DocumentedResponse {
  content?: Record<string, { schema: Record<string, unknown> }>;
  headers?: Record<string, { required?: boolean; schema: Record<string, unknown> }>;
}
type Doc = {
  paths: Record<string, Record<string, { parameters?: DocumentedParameter[]; responses: Record<string, DocumentedResponse> }>>;
  components: { responses: Record<string, DocumentedResponse> };
};
// The document as a client receives it (JSON), not the module's object.
const doc = JSON.parse(JSON.stringify(openApiDocument)) as Doc & Record<string, unknown>;

/**
 * ajv (JSON Schema 2020-12, strict: an unknown keyword is an error) over the document's schemas. A
 * schema is validated inside a copy of the document's `components`, so its `#/components/schemas/…`
 * references resolve as a client resolves them. ajv-formats is not installed: `date-time` is the
 * RFC 3339 shape checked here.
 */
const ajv = new Ajv2020({ strict: true, allErrors: true });
ajv.addKeyword("components");
ajv.addFormat("date-time", /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/);
const validators = new Map<Record<string, unknown>, ReturnType<typeof ajv.compile>>();
function schemaErrors(value: unknown, schema: Record<string, unknown>): string[] {
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile({ ...schema, components: doc.components });
    validators.set(schema, validate);
  }
  return validate(value) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || "/"} ${e.message ?? e.keyword}`);
}

/** Every route called with a good and the bad inputs it documents: [method, url, documented path, expected status]. */
const calls: [string, string, string, number][] = [
  ["GET", "/api/compliance/summary", "/compliance/summary", 200],
  ["GET", "/api/compliance/summary?tag.site=paris&since=7d", "/compliance/summary", 200],
  ["GET", "/api/compliance/summary?state=nope", "/compliance/summary", 400],
  ["GET", "/api/compliance/devices?limit=2", "/compliance/devices", 200],
  ["GET", "/api/compliance/devices?property=firmware.version&state=stale", "/compliance/devices", 200],
  ["GET", "/api/compliance/devices?cursor=x", "/compliance/devices", 400],
  ["GET", "/api/compliance/devices?resyncNeeded=true", "/compliance/devices", 200],
  ["GET", "/api/compliance/devices?resyncNeeded=yes", "/compliance/devices", 400],
  ["GET", "/api/compliance/devices.csv?tag.site=berlin", "/compliance/devices.csv", 200],
  ["GET", "/api/compliance/devices.csv?limit=1", "/compliance/devices.csv", 400],
  ["GET", "/api/compliance/devices/dev-d", "/compliance/devices/{deviceId}", 200],
  ["GET", "/api/compliance/devices/dev-e?moduleId=m1", "/compliance/devices/{deviceId}", 200],
  ["GET", "/api/compliance/devices/nobody", "/compliance/devices/{deviceId}", 404],
  ["GET", "/api/compliance/devices/dev-d?moduleId=", "/compliance/devices/{deviceId}", 400],
  ["POST", "/api/compliance/devices/dev-c/repush", "/compliance/devices/{deviceId}/repush", 202],
  ["POST", "/api/compliance/devices/dev-a/repush", "/compliance/devices/{deviceId}/repush", 409],
  ["POST", "/api/compliance/devices/nobody/repush", "/compliance/devices/{deviceId}/repush", 404],
  ["POST", "/api/compliance/devices/dev-a/repush?x=1", "/compliance/devices/{deviceId}/repush", 400],
  ["GET", "/api/openapi.json", "/openapi.json", 200],
  ["GET", "/api/dashboard", "/dashboard", 200],
  ["GET", "/api/metrics", "/metrics", 200],
];

const cursorOf = (json: string) => Buffer.from(json).toString("base64url");
const long = (n: number) => "x".repeat(n);
const summary = "/compliance/summary";
const devices = "/compliance/devices";
const csv = "/compliance/devices.csv";
const detail = "/compliance/devices/{deviceId}";
const repush = "/compliance/devices/{deviceId}/repush";

/**
 * One bad value of each kind for each parameter: [method, url, documented path, the parameter
 * `invalid-params` must name]. A lone surrogate cannot travel in a URL (it is sent as U+FFFD), so
 * it is tried where a client's text is decoded by the API itself: inside a forged cursor.
 */
const badParams: [string, string, string, string][] = [
  ["GET", "/api/compliance/summary?state=green", summary, "state"],
  ["GET", "/api/compliance/summary?property=%00", summary, "property"],
  ["GET", "/api/compliance/summary?property=a%00b", summary, "property"],
  ["GET", `/api/compliance/summary?property=${long(513)}`, summary, "property"],
  ["GET", "/api/compliance/summary?property=", summary, "property"],
  ["GET", "/api/compliance/summary?tag.site=%00", summary, "tag.site"],
  ["GET", `/api/compliance/summary?tag.site=${long(257)}`, summary, "tag.site"],
  ["GET", "/api/compliance/summary?tag.si%00te=paris", summary, "tag.si\u0000te"],
  ["GET", `/api/compliance/summary?tag.${long(129)}=paris`, summary, `tag.${long(129)}`],
  ["GET", "/api/compliance/summary?tag.a.b.c.d.e.f.g.h.i=1", summary, "tag.a.b.c.d.e.f.g.h.i"],
  ["GET", `/api/compliance/summary?${Array.from({ length: 11 }, (_, i) => `tag.t${i}=1`).join("&")}`, summary, "tag.*"],
  ["GET", "/api/compliance/summary?since=91d", summary, "since"],
  ["GET", "/api/compliance/summary?since=1w", summary, "since"],
  ["GET", "/api/compliance/summary?since=%00", summary, "since"],
  ["GET", "/api/compliance/summary?state=failed&state=failed", summary, "state"],
  ["GET", "/api/compliance/summary?nope=1", summary, "nope"],
  ["GET", `/api/compliance/summary?${long(300)}=1`, summary, `${long(256)}…`],
  ["GET", "/api/compliance/devices?limit=0", devices, "limit"],
  ["GET", "/api/compliance/devices?limit=1001", devices, "limit"],
  ["GET", "/api/compliance/devices?limit=1.5", devices, "limit"],
  ["GET", `/api/compliance/devices?limit=${"9".repeat(400)}`, devices, "limit"],
  ["GET", "/api/compliance/devices?q=%00", devices, "q"],
  ["GET", "/api/compliance/devices?q=dev%20a", devices, "q"],
  ["GET", `/api/compliance/devices?q=${long(129)}`, devices, "q"],
  ["GET", "/api/compliance/devices?resyncNeeded=1", devices, "resyncNeeded"],
  ["GET", "/api/compliance/devices?property=%00", devices, "property"],
  ["GET", "/api/compliance/devices?tag.site=%00", devices, "tag.site"],
  ["GET", "/api/compliance/devices?cursor=%00", devices, "cursor"],
  ["GET", "/api/compliance/devices?cursor=", devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${"A".repeat(1101)}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf("not json")}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf("[]")}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf('"dev-a"')}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf('{"v":2,"d":"dev-a","m":""}')}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf('{"v":1,"d":"dev-a","m":"","x":1}')}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf('{"v":1,"d":7,"m":""}')}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf('{"v":1,"d":"dev\\u0000a","m":""}')}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf('{"v":1,"d":"dev-a","m":"\\ud800"}')}`, devices, "cursor"],
  ["GET", `/api/compliance/devices?cursor=${cursorOf(`{"v":1,"d":"${long(257)}","m":""}`)}`, devices, "cursor"],
  ["GET", "/api/compliance/devices.csv?tag.site=%00", csv, "tag.site"],
  ["GET", "/api/compliance/devices.csv?property=%00", csv, "property"],
  ["GET", "/api/compliance/devices.csv?state=green", csv, "state"],
  ["GET", "/api/compliance/devices.csv?cursor=x", csv, "cursor"],
  ["GET", "/api/compliance/devices/dev%00a", detail, "deviceId"],
  ["GET", `/api/compliance/devices/${long(129)}`, detail, "deviceId"],
  ["GET", "/api/compliance/devices/d%C3%A9v", detail, "deviceId"],
  ["GET", "/api/compliance/devices/dev-d?moduleId=%00", detail, "moduleId"],
  ["GET", `/api/compliance/devices/dev-d?moduleId=${long(129)}`, detail, "moduleId"],
  ["GET", "/api/compliance/devices/dev-d?state=failed", detail, "state"],
  ["POST", "/api/compliance/devices/dev%00a/repush", repush, "deviceId"],
  ["POST", `/api/compliance/devices/${long(129)}/repush`, repush, "deviceId"],
  ["POST", "/api/compliance/devices/dev-a/repush?moduleId=%00", repush, "moduleId"],
  ["POST", `/api/compliance/devices/dev-a/repush?moduleId=${long(129)}`, repush, "moduleId"],
];

/** The routes that read the store, each with good parameters: a failing store makes each a 503. */
const storeCalls: [string, string, string][] = [
  ["GET", "/api/compliance/summary?since=7d", summary],
  ["GET", "/api/compliance/devices?limit=5", devices],
  ["GET", "/api/compliance/devices.csv", csv],
  ["GET", "/api/compliance/devices/dev-a", detail],
  ["POST", "/api/compliance/devices/dev-a/repush", repush],
];

/** `response` against `documented`: a content type it lists, a body its schema accepts, its required headers with valid values. */
async function checkResponse(response: Response, documented: DocumentedResponse): Promise<unknown> {
  const contentType = (response.headers.get("content-type") ?? "").split(";")[0]!.trim();
  const media = documented.content?.[contentType];
  expect({ contentType, documented: media !== undefined }).toEqual({ contentType, documented: true });
  for (const [name, header] of Object.entries(documented.headers ?? {})) {
    const value = response.headers.get(name);
    if (value === null) {
      expect({ header: name, present: !header.required }).toEqual({ header: name, present: true });
      continue;
    }
    const typed = header.schema.type === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
    expect({ header: name, errors: schemaErrors(typed, header.schema) }).toEqual({ header: name, errors: [] });
  }
  const text = await response.text();
  const body: unknown = contentType.endsWith("json") ? JSON.parse(text) : text;
  expect(schemaErrors(body, media!.schema)).toEqual([]);
  // The same body parsed by the zod schema the document's component was generated from.
  const component = /^#\/components\/schemas\/(\w+)$/.exec(String(media!.schema.$ref ?? ""))?.[1];
  if (component) expect(responseSchemas[component as keyof typeof responseSchemas].safeParse(body).error?.issues ?? []).toEqual([]);
  return body;
}

/** The documented response of `method path` for the status `response` has. */
function documentedResponse(method: string, path: string, response: Response): DocumentedResponse {
  const operation = doc.paths[path]?.[method.toLowerCase()];
  expect(operation).toBeDefined();
  const documented = operation!.responses[String(response.status)];
  expect({ status: response.status, documented: documented !== undefined }).toEqual({ status: response.status, documented: true });
  return documented!;
}

const operations = () => Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));

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
    expect(operations().filter((op) => !called.has(op))).toEqual([]);
  });

  it("calls every documented status of every operation (the document lists no status that never happens)", () => {
    const expected = new Set([
      ...calls.map(([m, , p, status]) => `${m.toLowerCase()} ${p} ${status}`),
      ...badParams.map(([m, , p]) => `${m.toLowerCase()} ${p} 400`),
      ...storeCalls.map(([m, , p]) => `${m.toLowerCase()} ${p} 503`),
    ]);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([m, op]) => Object.keys(op.responses).map((status) => `${m} ${path} ${status}`)),
    );
    expect(documented.filter((d) => !expected.has(d))).toEqual([]);
  });

  it.each(calls)("%s %s answers a documented status with a body its schema accepts", async (method, url, path, status) => {
    const response = await invokeComplianceApi(method, url);
    expect(response.status).toBe(status);
    await checkResponse(response as unknown as Response, documentedResponse(method, path, response as unknown as Response));
  });

  it.each(badParams)("%s %s answers the documented 400 problem naming the parameter", async (method, url, path, name) => {
    const response = await invokeComplianceApi(method, url);
    expect(response.status).toBe(400);
    const body = (await checkResponse(response as unknown as Response, documentedResponse(method, path, response as unknown as Response))) as { "invalid-params"?: { name: string }[] };
    expect(body["invalid-params"]?.map((p) => p.name)).toContain(name);
  });

  it("rejects a body that breaks the schema (the check has teeth)", () => {
    const schema = { $ref: "#/components/schemas/DeviceList" };
    const item = { deviceId: "a", moduleId: null, state: "green", stateSince: "x", counts: {}, resyncNeededSince: null };
    const errors = schemaErrors({ items: [item], nextCursor: null, extra: 1 }, schema);
    expect(errors).toEqual(
      expect.arrayContaining([
        "/items/0/state must be equal to one of the allowed values",
        '/items/0/stateSince must match format "date-time"',
        "/ must NOT have additional properties",
      ]),
    );
    expect(schemaErrors({ items: [{ ...item, state: "failed", stateSince: "2026-01-01T00:00:00.000Z" }], nextCursor: null }, schema)).toEqual([]);
  });

  // Each documented query parameter with its documented example (a cursor: one the API issued) is
  // taken by the route: not a 400.
  const documentedQueryParams = () =>
    Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).flatMap(([m, op]) => (op.parameters ?? []).filter((q) => q.in === "query").map((q) => [m.toUpperCase(), p, q] as const)),
    );
  const concrete = (documentedPath: string) => `/api${documentedPath.replace("{deviceId}", "dev-e")}`;

  it("documents an example for every query parameter the route accepts, and each example fits its schema", () => {
    for (const [, , q] of documentedQueryParams()) {
      if (q.name === "cursor") continue;
      expect({ name: q.name, examples: q.schema.examples?.length ?? 0 }).toEqual({ name: q.name, examples: 1 });
      expect({ name: q.name, errors: schemaErrors(q.schema.examples![0], q.schema) }).toEqual({ name: q.name, errors: [] });
    }
  });

  it("accepts every documented query parameter (its example) on its route", async () => {
    const page = (await (await invokeComplianceApi("GET", "/api/compliance/devices?limit=1")).json()) as { nextCursor: string };
    const answers = [];
    for (const [method, documentedPath, q] of documentedQueryParams()) {
      const value = q.name === "cursor" ? page.nextCursor : q.schema.examples![0]!;
      const name = q.name === "tag.*" ? "tag.site" : q.name;
      const url = `${concrete(documentedPath)}?${new URLSearchParams({ [name]: value })}`;
      const response = await invokeComplianceApi(method, url);
      answers.push({ method, url, rejected: response.status === 400 ? await response.text() : false });
    }
    expect(answers.filter((a) => a.rejected)).toEqual([]);
  });

  /**
   * Bad values the routes reject that the document's parameter schema cannot say (zod refinements and
   * transforms have no JSON Schema): the cursor's content, `since` over 90 days, text PostgreSQL cannot
   * hold in a tag (a NUL), and limits on the tag path (it is in the name, not the value).
   */
  const beyondSchema = [/[?&]cursor=/, /since=91d/, /tag\.site=%00/, /tag\.si%00te=/, /tag\.x{129}=/, /tag\.a\.b\.c/, /tag\.t10=/, /state=failed&state=failed/, /nope=1/, /x{300}=1/, /devices\/dev-d\?state=failed/, /repush\?x=1/];

  it("documents each parameter's schema at least as strict as the route (every bad value the route rejects, the schema rejects)", () => {
    const accepted = [];
    for (const [method, url, documentedPath, name] of badParams) {
      if (beyondSchema.some((r) => r.test(url))) continue;
      const parameter = doc.paths[documentedPath]![method.toLowerCase()]!.parameters!.find((q) => q.name === (name.startsWith("tag.") ? "tag.*" : name));
      expect({ url, documented: parameter !== undefined }).toEqual({ url, documented: true });
      const full = new URL(url, "http://localhost");
      const raw = parameter!.in === "path" ? decodeURIComponent(full.pathname.split("/")[4]!) : full.searchParams.get(name)!;
      if (schemaErrors(raw, parameter!.schema).length === 0) accepted.push(url);
    }
    expect(accepted).toEqual([]);
  });

  it("documents every query parameter each route accepts", async () => {
    const mismatches = [];
    for (const [documentedPath, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        const response = await invokeComplianceApi(m.toUpperCase(), `${concrete(documentedPath)}?undocumented-x=1`);
        // A route that validates its query names the parameters it takes when given an unknown one.
        const body = response.status === 400 ? ((await response.json()) as { "invalid-params": { name: string; reason: string }[] }) : undefined;
        const reason = body?.["invalid-params"].find((i) => i.name === "undocumented-x")?.reason ?? "";
        const accepted = (/\(expected (.*)\)$/.exec(reason)?.[1]?.split(", ") ?? []).map((n) => (n === "tag.<path>" ? "tag.*" : n)).sort();
        const documented = (op.parameters ?? []).filter((q) => q.in === "query").map((q) => q.name).sort();
        if (JSON.stringify(accepted) !== JSON.stringify(documented)) mismatches.push({ operation: `${m} ${documentedPath}`, accepted, documented });
      }
    }
    expect(mismatches).toEqual([]);
  });
});

describe("OpenAPI document when the store fails", () => {
  let hostLog: jest.SpyInstance;
  // The handlers log the store's failure through their InvocationContext, which writes to the console here.
  beforeEach(() => (hostLog = jest.spyOn(console, "error").mockImplementation(() => undefined)));
  afterEach(() => {
    useStore(undefined);
    hostLog.mockRestore();
  });

  it.each(storeCalls)("%s %s answers the documented 503 problem with Retry-After", async (method, url, path) => {
    useStore(failingStore());
    const response = (await invokeComplianceApi(method, url)) as unknown as Response;
    expect(response.status).toBe(503);
    const documented = documentedResponse(method, path, response);
    expect(documented.headers?.["Retry-After"]?.required).toBe(true);
    await checkResponse(response, documented);
  });
});

describe("OpenAPI document on the local host", () => {
  let host: LocalHost;
  const rootDir = mkdtempSync(path.join(tmpdir(), "openapi-host-"));
  beforeAll(async () => {
    host = await startLocalHost({ modules: ["complianceApi.ts", "metricsApi.ts"].map((f) => path.join(__dirname, "..", "..", "functions", f)), rootDir, port: 0, scheduleTimers: false, log: () => undefined });
  });
  afterAll(async () => {
    await host?.stop();
    rmSync(rootDir, { recursive: true, force: true });
  });

  const methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
  const notTaken = Object.entries(doc.paths).flatMap(([p, ops]) =>
    methods.filter((m) => !(m.toLowerCase() in ops)).map((m) => [m, p, Object.keys(ops).map((o) => o.toUpperCase()).sort().join(", ")] as const),
  );

  it.each(notTaken)("%s %s answers components.responses.MethodNotAllowed with Allow: %s", async (method, documentedPath, allow) => {
    const response = await fetch(`http://127.0.0.1:${host.port}/api${documentedPath.replace("{deviceId}", "dev-a")}`, { method });
    expect([response.status, response.headers.get("allow")]).toEqual([405, allow]);
    await checkResponse(response, doc.components.responses.MethodNotAllowed!);
  });

  it.each(["/api/compliance", "/api/compliance/devices/dev-a/history", "/api/openapi.yaml", "/compliance/summary"])(
    "GET %s (no documented path) answers components.responses.NotFound",
    async (url) => {
      const response = await fetch(`http://127.0.0.1:${host.port}${url}`);
      expect(response.status).toBe(404);
      await checkResponse(response, doc.components.responses.NotFound!);
    },
  );
});
