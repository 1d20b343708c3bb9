import { Agent, request } from "node:https";
import { startEmulator, type Emulator } from "../../local/emulator";
import { createManualClock } from "../../local/emulator/Clock";
import { createRegistryClientFor } from "../../local/emulator/createRegistryClient";
import { createSharedAccessSignature } from "../../local/emulator/sharedAccessSignature";

// Contract tests: the unmodified azure-iothub Registry against the emulator over HTTPS.
const clock = createManualClock(Date.UTC(2026, 0, 1));
let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ clock, throttling: "off" });
  for (const id of ["svc-a", "svc-b", "svc-c", "svc-d", "svc-e"]) emulator.createDevice(id);
  emulator.updateTwin("svc-a", { tags: { site: "north" } });
  emulator.updateTwin("svc-b", { tags: { site: "south" } });
});

afterAll(() => emulator.stop());

function errorOf(promise: Promise<unknown>): Promise<{ name: string; message: string; responseBody?: string }> {
  return promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (error: { name: string; message: string; responseBody?: string }) => error,
  );
}

test("getTwin returns the twin with etag, versions and metadata", async () => {
  const registry = emulator.createRegistryClient();
  const { responseBody: twin } = await registry.getTwin("svc-a");
  expect(twin.deviceId).toBe("svc-a");
  expect(typeof twin.etag).toBe("string");
  expect(twin.tags).toEqual({ site: "north" });
  const desired = twin.properties.desired as Record<string, unknown>;
  expect(desired.$version).toBe(2); // 1 at creation, +1 by the tags update (iothub-facts §1)
  expect(desired.$metadata).toEqual(expect.objectContaining({ $lastUpdated: expect.any(String) }));
});

test("updateTwin with the current etag applies the patch and returns the new twin", async () => {
  const registry = emulator.createRegistryClient();
  const { responseBody: before } = await registry.getTwin("svc-c");
  const { responseBody: after } = await registry.updateTwin("svc-c", { properties: { desired: { interval: 30 } } }, before.etag);
  expect((after.properties.desired as Record<string, unknown>).interval).toBe(30);
  expect(after.etag).not.toBe(before.etag);
  expect(emulator.getTwin("svc-c").version).toBe((before as unknown as { version: number }).version + 1);
});

test("updateTwin with a stale etag fails with InvalidEtagError (412 PreconditionFailed)", async () => {
  const registry = emulator.createRegistryClient();
  const { responseBody: before } = await registry.getTwin("svc-d");
  emulator.updateDesired("svc-d", { interval: 1 });
  const error = await errorOf(registry.updateTwin("svc-d", { properties: { desired: { interval: 2 } } }, before.etag));
  expect(error.name).toBe("InvalidEtagError");
  expect(JSON.parse(error.responseBody ?? "{}").Message).toMatch(/^ErrorCode:PreconditionFailed;/);
  expect(emulator.getTwin("svc-d")).toMatchObject({ properties: { desired: { interval: 1 } } });
});

test("updateTwin with etag '*' forces the write", async () => {
  const registry = emulator.createRegistryClient();
  emulator.updateDesired("svc-d", { interval: 3 });
  const { responseBody: twin } = await registry.updateTwin("svc-d", { properties: { desired: { interval: 4 } } }, "*");
  expect((twin.properties.desired as Record<string, unknown>).interval).toBe(4);
});

test("a paged query follows x-ms-continuation through next() and nextAsTwin()", async () => {
  const registry = emulator.createRegistryClient();
  const query = registry.createQuery("SELECT * FROM devices", 2);
  const ids: string[] = [];
  const pages: number[] = [];
  while (query.hasMoreResults) {
    const { result } = await query.nextAsTwin();
    pages.push(result.length);
    ids.push(...result.map((t) => t.deviceId));
  }
  expect(ids).toEqual(["svc-a", "svc-b", "svc-c", "svc-d", "svc-e"]);
  expect(pages).toEqual([2, 2, 1]);

  const projection = registry.createQuery("SELECT deviceId, tags.site AS site FROM devices WHERE tags.site IN ['north', 'south']", 1);
  const rows: unknown[] = [];
  while (projection.hasMoreResults) {
    // next() without an argument always asks for the first page (SDK quirk): pass the token back.
    const { result, message } = await projection.next(projection.continuationToken ?? undefined);
    expect((message as { headers: Record<string, string> }).headers["x-ms-item-type"]).toBe("Raw");
    rows.push(...(result as unknown[]));
  }
  expect(rows).toEqual([
    { deviceId: "svc-a", site: "north" },
    { deviceId: "svc-b", site: "south" },
  ]);
});

test("unsupported query syntax fails with ArgumentError and a BadRequest body", async () => {
  const registry = emulator.createRegistryClient();
  const error = await errorOf(registry.createQuery("SELECT * FROM devices GROUP BY status").next());
  expect(error.name).toBe("ArgumentError");
  expect(JSON.parse(error.responseBody ?? "{}").Message).toMatch(/^ErrorCode:BadRequest;.*GROUP BY/);
});

test("an unknown device fails with DeviceNotFoundError", async () => {
  const registry = emulator.createRegistryClient();
  const error = await errorOf(registry.getTwin("no-such-device"));
  expect(error.name).toBe("DeviceNotFoundError");
});

test("device identities can be created, read, listed and deleted through the Registry", async () => {
  const registry = emulator.createRegistryClient();
  const { responseBody: created } = await registry.create({ deviceId: "svc-new" });
  expect(created.authentication?.symmetricKey?.primaryKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  expect((await registry.get("svc-new")).responseBody.status).toBe("enabled");
  expect((await registry.list()).responseBody.map((d) => d.deviceId)).toContain("svc-new");
  const duplicate = await errorOf(registry.create({ deviceId: "svc-new" }));
  expect(duplicate.name).toBe("DeviceAlreadyExistsError");
  await registry.update({ deviceId: "svc-new", status: "disabled" });
  expect(emulator.getDevice("svc-new").status).toBe("disabled");
  await registry.delete("svc-new");
  expect((await errorOf(registry.get("svc-new"))).name).toBe("DeviceNotFoundError");
});

test("module twins are served under /twins/{id}/modules/{mid}", async () => {
  const registry = emulator.createRegistryClient();
  emulator.createModule("svc-e", "agent");
  const { responseBody: twin } = await registry.getModuleTwin("svc-e", "agent");
  expect(twin).toMatchObject({ deviceId: "svc-e", moduleId: "agent" });
  const { responseBody: updated } = await registry.updateModuleTwin("svc-e", "agent", { properties: { desired: { level: 2 } } }, twin.etag);
  expect((updated.properties.desired as Record<string, unknown>).level).toBe(2);
});

test("exceeding the S1 twin-read quota fails with ThrottlingError until the bucket refills", async () => {
  const registry = emulator.createRegistryClient();
  emulator.setThrottling("S1");
  try {
    for (let i = 0; i < 100; i++) await registry.getTwin("svc-a");
    const error = await errorOf(registry.getTwin("svc-a"));
    expect(error.name).toBe("ThrottlingError");
    expect(JSON.parse(error.responseBody ?? "{}").Message).toMatch(/^ErrorCode:ThrottlingException;/);
    clock.advance(1000);
    await expect(registry.getTwin("svc-a")).resolves.toBeDefined();
    expect(emulator.counters.throttled.twinRead).toBe(1);
  } finally {
    emulator.setThrottling("off");
  }
});

test("a SAS signed with the wrong key is refused with UnauthorizedError (401)", async () => {
  const wrongKey = Buffer.alloc(32, 7).toString("base64");
  const client = createRegistryClientFor({
    connectionString: `HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=${wrongKey}`,
    port: emulator.httpsPort,
    ca: emulator.caPem,
  });
  try {
    const error = await errorOf(client.registry.getTwin("svc-a"));
    expect(error.name).toBe("UnauthorizedError");
  } finally {
    client.close();
  }
});

interface RawResponse {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

/** A request as any IoT Hub client would send it, signed with the emulator's iothubowner key unless `auth` is given. */
function rawRequest(method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; auth?: string } = {}): Promise<RawResponse> {
  const key = /SharedAccessKey=([^;]+)/.exec(emulator.serviceConnectionString)![1]!;
  const authorization = options.auth ?? createSharedAccessSignature("localhost", key, Math.floor(Date.now() / 1000) + 600, "iothubowner");
  const agent = new Agent({ ca: emulator.caPem });
  const text = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise<RawResponse>((resolve, reject) => {
    const req = request(
      {
        host: "localhost",
        port: emulator.httpsPort,
        method,
        path: `${path}?api-version=2021-04-12`,
        agent,
        headers: { ...(authorization === "" ? {} : { authorization }), "content-type": "application/json; charset=utf-8", ...options.headers },
      },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => {
          agent.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

test("PUT /twins/{id} replaces tags and desired, honours If-Match and emits a replaceTwin event", async () => {
  emulator.createDevice("svc-put");
  emulator.updateTwin("svc-put", { tags: { old: 1 }, properties: { desired: { a: 1, b: 2 } } });
  const stale = await rawRequest("PUT", "/twins/svc-put", { body: { tags: { t: 1 } }, headers: { "if-match": '"AAAAAAAAAAA="' } });
  expect(stale.status).toBe(412);
  expect(stale.headers["iothub-errorcode"]).toBe("PreconditionFailed");

  const current = emulator.getTwin("svc-put");
  const replaced = await rawRequest("PUT", "/twins/svc-put", {
    body: { deviceId: "svc-put", tags: { fresh: true }, properties: { desired: { c: 3, $version: 99 } } },
    headers: { "if-match": `"${String(current.etag)}"` },
  });
  expect(replaced.status).toBe(200);
  const twin = JSON.parse(replaced.body);
  expect(replaced.headers.etag).toBe(`"${twin.etag}"`);
  expect(twin.tags).toEqual({ fresh: true });
  expect(twin.properties.desired).toMatchObject({ c: 3, $version: 3 });
  expect(twin.properties.desired.a).toBeUndefined();

  const p = emulator.events.partitionOf("svc-put");
  const events = emulator.events.read(p, 0, 1000).filter((e) => e.properties.deviceId === "svc-put" && e.properties["iothub-message-schema"] === "twinChangeNotification");
  expect(events.map((e) => e.properties.opType)).toEqual(["updateTwin", "replaceTwin"]);
  expect(events[1]!.body).toMatchObject({ deviceId: "svc-put", etag: twin.etag, version: twin.version, tags: { fresh: true } });
});

test("POST /devices/query answers an array with x-ms-item-type and x-ms-continuation headers", async () => {
  const first = await rawRequest("POST", "/devices/query", { body: { query: "SELECT deviceId FROM devices" }, headers: { "x-ms-max-item-count": "2" } });
  expect(first.status).toBe(200);
  expect(JSON.parse(first.body)).toEqual([{ deviceId: "svc-a" }, { deviceId: "svc-b" }]);
  expect(first.headers["x-ms-item-type"]).toBe("Raw");
  const token = String(first.headers["x-ms-continuation"]);
  const second = await rawRequest("POST", "/devices/query", {
    body: { query: "SELECT deviceId FROM devices" },
    headers: { "x-ms-max-item-count": "2", "x-ms-continuation": token },
  });
  expect(JSON.parse(second.body)).toEqual([{ deviceId: "svc-c" }, { deviceId: "svc-d" }]);
});

test("malformed bodies are refused with 400 ArgumentInvalid", async () => {
  const response = await rawRequest("PATCH", "/twins/svc-a", { body: { properties: { desired: [1, 2] } }, headers: { "if-match": "*" } });
  expect(response.status).toBe(400);
  expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:ArgumentInvalid;/);
});

test("a twin over the desired size limit is refused with 400 and stays unchanged", async () => {
  const before = emulator.getTwin("svc-b").version;
  const big: Record<string, string> = {};
  for (let i = 0; i < 9; i++) big[`k${i}`] = "x".repeat(4000);
  const response = await rawRequest("PATCH", "/twins/svc-b", { body: { properties: { desired: big } }, headers: { "if-match": "*" } });
  expect(response.status).toBe(400);
  expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:ArgumentInvalid;Twin desired size \d+ bytes exceeds the limit of 32768 bytes/);
  expect(emulator.getTwin("svc-b").version).toBe(before);
});

test("S1 allows 50 twin updates and 20 queries before answering 429", async () => {
  emulator.setThrottling("S1");
  try {
    const updates = await Promise.all(
      Array.from({ length: 51 }, () => rawRequest("PATCH", "/twins/svc-e", { body: { tags: { n: 1 } }, headers: { "if-match": "*" } })),
    );
    expect(updates.filter((r) => r.status === 429)).toHaveLength(1);
    const queries: RawResponse[] = [];
    for (let i = 0; i < 21; i++) queries.push(await rawRequest("POST", "/devices/query", { body: { query: "SELECT * FROM devices" } }));
    expect(queries.map((r) => r.status).slice(19)).toEqual([200, 429]);
    expect(JSON.parse(queries[20]!.body).Message).toMatch(/^ErrorCode:ThrottlingException;.*Query/);
  } finally {
    emulator.setThrottling("off");
  }
});

test("an expired SAS is refused with 401", async () => {
  const key = /SharedAccessKey=([^;]+)/.exec(emulator.serviceConnectionString)![1]!;
  const expired = createSharedAccessSignature("localhost", key, Math.floor(Date.now() / 1000) - 1, "iothubowner");
  expect((await rawRequest("GET", "/twins/svc-a", { auth: expired })).status).toBe(401);
});

test("every response, errors included, is JSON with IoT Hub's error body and iothub-errorcode header", async () => {
  const response = await rawRequest("GET", "/twins/svc-a", { auth: "" });
  expect(response.status).toBe(401);
  expect(response.headers["content-type"]).toMatch(/^application\/json/);
  expect(response.headers["iothub-errorcode"]).toBe("IotHubUnauthorizedAccess");
  const body = JSON.parse(response.body);
  expect(body.Message).toMatch(/^ErrorCode:IotHubUnauthorizedAccess;/);
  expect(body.ExceptionMessage).toMatch(/^Tracking ID:.+-TimeStamp:/);
});
