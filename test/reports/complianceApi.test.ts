import { getComplianceSummary } from "../../shared/reports/getComplianceSummary";
import { compactReportCounters } from "../../shared/store/reportCounters";
import { useStore } from "../../shared/reports/getStore";
import { streamDevicesCsv } from "../../shared/reports/streamDevicesCsv";
import type { Database } from "../../shared/store/Database";
import { seedComplianceFleet } from "./complianceFixture";
import { invokeComplianceApi, registeredRoutes } from "./invokeComplianceApi";
import { reportStores, type TestStore } from "./reportStores";
import { seedDevices, seedHistory } from "./seedCompliance";

const get = (url: string) => invokeComplianceApi("GET", url);
async function getJson(url: string): Promise<{ status: number; contentType: string | null; body: Record<string, unknown> }> {
  const response = await get(url);
  return { status: response.status, contentType: response.headers.get("content-type"), body: (await response.json()) as Record<string, unknown> };
}
interface DeviceItem {
  deviceId: string;
  moduleId: string | null;
  state: string;
  stateSince: string;
  counts: Record<string, number>;
}
async function deviceIds(query: string): Promise<string[]> {
  const { body } = await getJson(`/api/compliance/devices${query}`);
  return (body.items as DeviceItem[]).map((d) => d.deviceId);
}
const parseCsv = (text: string) => text.trimEnd().split("\n");

describe.each(reportStores())("compliance API on %s", (_name, openStore) => {
  let store: TestStore;
  let db: Database;
  const now = Date.now();

  beforeAll(async () => {
    store = await openStore();
    db = store.db;
    await seedComplianceFleet(db, now);
    useStore(db);
  });
  afterAll(async () => {
    useStore(undefined);
    await store?.dispose();
  });

  describe("registration", () => {
    it("registers every route with function auth, and re-push with admin auth", () => {
      const routes = Object.fromEntries(registeredRoutes().map((r) => [r.route, `${r.methods.join(",")} ${r.authLevel}`]));
      expect(routes).toEqual({
        "compliance/summary": "GET function",
        "compliance/devices": "GET function",
        "compliance/devices.csv": "GET function",
        "compliance/devices/{deviceId}": "GET function",
        "compliance/devices/{deviceId}/repush": "POST admin",
        "openapi.json": "GET function",
        dashboard: "GET function",
      });
    });
  });

  describe("summary", () => {
    it("counts twins and property records in every state, a pending record past stale_at as stale", async () => {
      const { status, body } = await getJson("/api/compliance/summary");
      expect(status).toBe(200);
      expect(body).toMatchObject({
        devices: 6,
        properties: 10,
        byState: { compliant: 1, pending: 1, drifted: 1, stale: 1, failed: 1, escalated: 1 },
        propertiesByState: { compliant: 4, pending: 1, drifted: 2, stale: 1, failed: 1, escalated: 1 },
        byProperty: [
          { path: "firmware.version", total: 5, byState: { compliant: 1, pending: 1, drifted: 0, stale: 1, failed: 1, escalated: 1 } },
          { path: "telemetry.interval", total: 5, byState: { compliant: 3, pending: 0, drifted: 2, stale: 0, failed: 0, escalated: 0 } },
        ],
      });
      expect(Date.parse(body.generatedAt as string)).toBeGreaterThanOrEqual(now);
    });

    it("gives time-to-compliance percentiles over the window's transitions to compliant, timed from their desired change", async () => {
      const { body } = await getJson("/api/compliance/summary");
      expect(body.timeToCompliance).toEqual({ sinceSeconds: 86400, count: 4, p50: 150, p95: 231 });
      // Timed when the transition was written: a later desired change does not rewrite it.
      await db.query("UPDATE property_records SET desired_version = 2, desired_since = now() WHERE device_id = 'dev-a'");
      expect((await getJson("/api/compliance/summary")).body.timeToCompliance).toMatchObject({ count: 4, p50: 150 });
      await db.query("UPDATE property_records SET desired_version = 1, desired_since = $1 WHERE device_id = 'dev-a'", [new Date(now - 7200_000).toISOString()]);
      const wide = await getJson("/api/compliance/summary?since=7d");
      expect(wide.body.timeToCompliance).toMatchObject({ sinceSeconds: 7 * 86400, count: 5 });
      const narrow = await getJson("/api/compliance/summary?since=1h");
      expect(narrow.body.timeToCompliance).toEqual({ sinceSeconds: 3600, count: 0, p50: null, p95: null });
    });

    it("filters by tag, nested tag path, and a number tag given as text", async () => {
      expect((await getJson("/api/compliance/summary?tag.site=paris")).body).toMatchObject({ devices: 2, properties: 4, byState: { stale: 1, failed: 1 } });
      expect((await getJson("/api/compliance/summary?tag.env.tier=prod")).body).toMatchObject({ devices: 1, properties: 2 });
      expect((await getJson("/api/compliance/summary?tag.floor=3")).body).toMatchObject({ devices: 2 });
      expect((await getJson("/api/compliance/summary?tag.site=berlin&tag.floor=3")).body).toMatchObject({ devices: 1 });
      expect((await getJson("/api/compliance/summary?tag.site=berlin")).body.timeToCompliance).toMatchObject({ count: 3 });
      expect((await getJson("/api/compliance/summary?property=firmware.version")).body.timeToCompliance).toMatchObject({ count: 1, p50: 60 });
    });

    it("keeps its counters equal to a live count through upserts, deletes, truncation and compaction", async () => {
      // Every column but the generated path_key (004_integrity.sql), which INSERT cannot set.
      const recordColumns = `device_id, module_id, path, reported_path, compare, state, desired, reported, desired_version,
        desired_since, state_since, stale_at, repush_drift, attempts, next_attempt_at, updated_at`;
      const live = () => getComplianceSummary(db, { tags: [] }, { useCounters: false });
      const counted = () => getComplianceSummary(db, { tags: [] });
      const same = async () => {
        const [a, b] = await Promise.all([counted(), live()]);
        expect({ ...a, generatedAt: "" }).toEqual({ ...b, generatedAt: "" });
      };
      await same();
      await db.query("CREATE TABLE saved_records AS SELECT * FROM property_records");
      await db.query("CREATE TABLE saved_devices AS SELECT * FROM devices");
      try {
        await db.query(
          `INSERT INTO property_records (${recordColumns}) SELECT ${recordColumns} FROM property_records WHERE device_id IN ('dev-a', 'dev-b')
           ON CONFLICT (device_id, module_id, path_key) DO UPDATE SET state = 'failed'`,
        );
        await db.query("UPDATE devices SET state = 'failed' WHERE device_id IN ('dev-a', 'dev-b')");
        await db.query("DELETE FROM property_records WHERE device_id = 'dev-f'");
        await same();
        await compactReportCounters(db);
        expect((await db.query("SELECT count(*)::int AS n FROM report_state_deltas")).rows).toEqual([{ n: expect.any(Number) }]);
        await same();
        await db.query("TRUNCATE property_records");
        await same();
      } finally {
        await db.query("DELETE FROM property_records");
        await db.query("DELETE FROM devices");
        await db.query(`INSERT INTO property_records (${recordColumns}) SELECT ${recordColumns} FROM saved_records`);
        await db.query("INSERT INTO devices SELECT * FROM saved_devices");
        await db.query("DROP TABLE saved_records");
        await db.query("DROP TABLE saved_devices");
      }
      await same();
    });

    it("filters by state: twins in that state, property records in that state", async () => {
      const { body } = await getJson("/api/compliance/summary?state=stale");
      expect(body).toMatchObject({ devices: 1, properties: 1, byState: { stale: 1, pending: 0 }, propertiesByState: { stale: 1 } });
    });

    it("filters by property: twins that have it, and only its records", async () => {
      const { body } = await getJson("/api/compliance/summary?property=telemetry.interval&state=drifted");
      expect(body).toMatchObject({ devices: 2, properties: 2, byState: { failed: 1, drifted: 1 } });
      expect(body.byProperty).toEqual([{ path: "telemetry.interval", total: 2, byState: expect.objectContaining({ drifted: 2 }) }]);
    });
  });

  describe("device list", () => {
    it("lists twins in id order with their state, state since and record counts", async () => {
      const { status, body } = await getJson("/api/compliance/devices");
      expect(status).toBe(200);
      const items = body.items as DeviceItem[];
      expect(items.map((d) => [d.deviceId, d.moduleId, d.state])).toEqual([
        ["dev-a", null, "compliant"],
        ["dev-b", null, "pending"],
        ["dev-c", null, "stale"],
        ["dev-d", null, "failed"],
        ["dev-e", "m1", "escalated"],
        ["dev-f", null, "drifted"],
      ]);
      expect(items[2]).toMatchObject({ stateSince: new Date(now - 600_000).toISOString(), counts: { stale: 1, compliant: 1 } });
      expect(items[3]?.counts).toEqual({ failed: 1, drifted: 1 });
      expect(body.nextCursor).toBeNull();
    });

    it("pages with an opaque cursor that survives writes between pages", async () => {
      const first = await getJson("/api/compliance/devices?limit=2");
      expect((first.body.items as DeviceItem[]).map((d) => d.deviceId)).toEqual(["dev-a", "dev-b"]);
      const cursor = first.body.nextCursor as string;
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      // A twin appears before the cursor and one after it; dev-c is removed, dev-a rewritten.
      await seedDevices(db, [
        { deviceId: "dev-0", state: "compliant" },
        { deviceId: "dev-bb", state: "failed" },
      ]);
      await db.query("DELETE FROM devices WHERE device_id = 'dev-c'");
      await db.query("UPDATE devices SET state = 'drifted' WHERE device_id = 'dev-a'");
      try {
        const seen: string[] = [];
        let next: string | null = cursor;
        while (next) {
          const page = await getJson(`/api/compliance/devices?limit=2&cursor=${next}`);
          seen.push(...(page.body.items as DeviceItem[]).map((d) => d.deviceId));
          next = page.body.nextCursor as string | null;
        }
        expect(seen).toEqual(["dev-bb", "dev-d", "dev-e", "dev-f"]);
      } finally {
        await db.query("DELETE FROM devices WHERE device_id IN ('dev-0', 'dev-bb')");
        await db.query("UPDATE devices SET state = 'compliant' WHERE device_id = 'dev-a'");
        await seedDevices(db, [{ deviceId: "dev-c", state: "pending", stateSince: new Date(now - 7000_000).toISOString(), staleAt: new Date(now - 600_000).toISOString(), tags: { site: "paris" } }]);
      }
    });

    it("filters by state, property with state, tags and id prefix", async () => {
      expect(await deviceIds("?state=stale")).toEqual(["dev-c"]);
      expect(await deviceIds("?state=pending")).toEqual(["dev-b"]);
      expect(await deviceIds("?property=firmware.version&state=stale")).toEqual(["dev-c"]);
      expect(await deviceIds("?property=telemetry.interval")).toEqual(["dev-a", "dev-b", "dev-c", "dev-d", "dev-f"]);
      expect(await deviceIds("?tag.site=paris&state=failed")).toEqual(["dev-d"]);
      expect(await deviceIds("?q=dev-e")).toEqual(["dev-e"]);
    });
  });

  describe("device detail", () => {
    it("returns the twin's state, tags, records and history newest first", async () => {
      const { status, body } = await getJson("/api/compliance/devices/dev-d");
      expect(status).toBe(200);
      expect(body).toMatchObject({ deviceId: "dev-d", moduleId: null, state: "failed", tags: { site: "paris", floor: "3" }, counts: { failed: 1, drifted: 1 } });
      expect((body.properties as { path: string; state: string }[]).map((p) => [p.path, p.state])).toEqual([
        ["firmware.version", "failed"],
        ["telemetry.interval", "drifted"],
      ]);
      expect((body.history as { toState: string }[]).map((h) => h.toState)).toEqual(["removed", "drifted", "failed", "compliant"]);
    });

    it("finds a module twin by moduleId and keeps only the latest 100 history entries", async () => {
      const at = (i: number) => new Date(now - (200 - i) * 1000).toISOString();
      await seedHistory(db, Array.from({ length: 120 }, (_, i) => ({ deviceId: "dev-e", moduleId: "m1", path: "firmware.version", fromState: "pending", toState: "escalated", at: at(i) })));
      const { body } = await getJson("/api/compliance/devices/dev-e?moduleId=m1");
      const history = body.history as { id: number; at: string }[];
      expect(body).toMatchObject({ deviceId: "dev-e", moduleId: "m1", state: "escalated" });
      expect(history).toHaveLength(100);
      expect(history[0]?.at).toBe(at(119));
      expect(history.map((h) => h.id)).toEqual([...history.map((h) => h.id)].sort((a, b) => b - a));
    });

    it("answers 404 with a problem body for an unknown twin", async () => {
      for (const url of ["/api/compliance/devices/nope", "/api/compliance/devices/dev-e"]) {
        const { status, contentType, body } = await getJson(url);
        expect([status, contentType]).toEqual([404, "application/problem+json"]);
        expect(body).toMatchObject({ status: 404, title: expect.any(String), detail: expect.stringContaining(url.endsWith("nope") ? "'nope'" : "'dev-e'") });
      }
    });
  });

  describe("CSV export", () => {
    it("streams one quoted row per property record after a header row, values as JSON text", async () => {
      const response = await get("/api/compliance/devices.csv");
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
      expect(response.headers.get("content-disposition")).toMatch(/^attachment; filename="compliance-.+\.csv"$/);
      const lines = parseCsv(await response.text());
      expect(lines[0]).toBe("deviceId,moduleId,deviceState,path,state,desired,reported,desiredVersion,desiredSince,stateSince");
      expect(lines).toHaveLength(11);
      expect(lines).toContain(
        `dev-d,,failed,firmware.version,failed,"{""url"": ""https://x/fw,1.bin"", ""note"": ""say \\""hi\\""""}","{""status"": ""error""}",1,${new Date(now - 7200_000).toISOString()},${new Date(now - 7200_000).toISOString()}`,
      );
      expect(lines.find((l) => l.startsWith("dev-c,,stale,firmware.version,stale,"))).toBeDefined();
      expect(lines.find((l) => l.startsWith("dev-e,m1,escalated,"))).toBeDefined();
    });

    it("keeps cells a spreadsheet would run as formulas inert", async () => {
      await seedDevices(db, [{ deviceId: "=HYPERLINK(1)", state: "drifted", records: [{ path: "@cmd", state: "drifted", desired: -5, reported: "=1+2" }] }]);
      try {
        const lines = parseCsv(await (await get("/api/compliance/devices.csv?property=%40cmd")).text());
        expect(lines[1]).toMatch(/^'=HYPERLINK\(1\),,drifted,'@cmd,drifted,-5,"""=1\+2""",1,/);
      } finally {
        await db.query(`DELETE FROM property_records WHERE device_id = '=HYPERLINK(1)'`);
        await db.query(`DELETE FROM devices WHERE device_id = '=HYPERLINK(1)'`);
      }
    });

    it("reads in chunks without losing or repeating a record at chunk boundaries", async () => {
      const collect = async (chunkSize: number) => {
        let text = "";
        for await (const chunk of streamDevicesCsv(db, { tags: [] }, { chunkSize })) text += chunk;
        return text;
      };
      expect(await collect(3)).toBe(await collect(1000));
      expect(await collect(5)).toBe(await collect(1000));
    });

    it("applies the same filters", async () => {
      const lines = parseCsv(await (await get("/api/compliance/devices.csv?tag.site=berlin&state=pending")).text());
      expect(lines.slice(1).map((l) => l.split(",").slice(0, 5).join(","))).toEqual(["dev-b,,pending,firmware.version,pending"]);
    });
  });

  describe("re-push", () => {
    it("queues the twin's stale, pending, drifted and escalated properties for the next timer run", async () => {
      const response = await invokeComplianceApi("POST", "/api/compliance/devices/dev-d/repush");
      expect(response.status).toBe(202);
      expect(await response.json()).toMatchObject({ deviceId: "dev-d", moduleId: null, paths: ["telemetry.interval"] });
      const { rows } = await db.query("SELECT path FROM property_records WHERE device_id = 'dev-d' AND next_attempt_at IS NOT NULL");
      expect(rows).toEqual([{ path: "telemetry.interval" }]);
      await db.query("UPDATE property_records SET next_attempt_at = NULL WHERE device_id = 'dev-d'");
    });

    it("answers 409 when nothing is due, 404 for an unknown twin", async () => {
      const none = await invokeComplianceApi("POST", "/api/compliance/devices/dev-a/repush");
      expect([none.status, none.headers.get("content-type")]).toEqual([409, "application/problem+json"]);
      expect(await none.json()).toMatchObject({ status: 409, detail: expect.stringContaining("dev-a") });
      const unknown = await invokeComplianceApi("POST", "/api/compliance/devices/dev-e/repush");
      expect(unknown.status).toBe(404);
      const moduleTwin = await invokeComplianceApi("POST", "/api/compliance/devices/dev-e/repush?moduleId=m1");
      expect(moduleTwin.status).toBe(202);
      await db.query("UPDATE property_records SET next_attempt_at = NULL, attempts = 0 WHERE device_id = 'dev-e'");
    });
  });

  describe("bad parameters", () => {
    it.each([
      ["/api/compliance/devices?limit=0", "limit"],
      ["/api/compliance/devices?limit=1001", "limit"],
      ["/api/compliance/devices?limit=ten", "limit"],
      ["/api/compliance/devices?cursor=not-a-cursor", "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from('{"v":1,"d":1}').toString("base64url")}`, "cursor"],
      ["/api/compliance/devices?state=green", "state"],
      ["/api/compliance/summary?state=compliant'%20OR%201=1--", "state"],
      ["/api/compliance/summary?since=forever", "since"],
      ["/api/compliance/summary?since=91d", "since"],
      ["/api/compliance/summary?tag..site=x", "tag..site"],
      ["/api/compliance/summary?tag.site=a&tag.site=b", "tag.site"],
      ["/api/compliance/summary?stat=failed", "stat"],
      ["/api/compliance/devices.csv?property=", "property"],
      ["/api/compliance/devices/dev-a?moduleId=", "moduleId"],
      ["/api/compliance/devices/dev%20a", "deviceId"],
      // NUL, which PostgreSQL text cannot hold, in every filter of every report
      ["/api/compliance/summary?tag.site=%00", "tag.site"],
      ["/api/compliance/devices?tag.site=%00", "tag.site"],
      ["/api/compliance/devices.csv?tag.site=%00", "tag.site"],
      ["/api/compliance/summary?tag.site=paris%00", "tag.site"],
      ["/api/compliance/devices?property=firmware%00.version", "property"],
      ["/api/compliance/devices?q=dev%00", "q"],
      ["/api/compliance/devices/dev-a?moduleId=m%00", "moduleId"],
      ["/api/compliance/devices/dev%00a", "deviceId"],
      // oversized values
      [`/api/compliance/summary?tag.site=${"p".repeat(257)}`, "tag.site"],
      [`/api/compliance/summary?tag.${"s".repeat(129)}=x`, `tag.${"s".repeat(129)}`],
      [`/api/compliance/devices?property=${"a".repeat(513)}`, "property"],
      [`/api/compliance/devices?q=${"d".repeat(129)}`, "q"],
      [`/api/compliance/devices/${"d".repeat(129)}`, "deviceId"],
      [`/api/compliance/devices?${"n".repeat(300)}=1`, `${"n".repeat(256)}…`],
      // forged cursors of every shape
      ["/api/compliance/devices?cursor=%21%21%21", "cursor"],
      [`/api/compliance/devices?cursor=${"A".repeat(1200)}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from("not json at all").toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from("[1,2]").toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from('{"v":2,"d":"dev-a","m":""}').toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from('{"v":1,"d":"dev-a","m":"","x":1}').toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from('{"v":1,"d":"dev-a","m":null}').toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from('{"v":1,"d":"dev\\u0000a","m":""}').toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from('{"v":1,"d":"dev-a","m":"\\u0000"}').toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from('{"v":1,"d":"dev\\ud800a","m":""}').toString("base64url")}`, "cursor"],
      [`/api/compliance/devices?cursor=${Buffer.from(`{"v":1,"d":"${"d".repeat(300)}","m":""}`).toString("base64url")}`, "cursor"],
    ])("%s answers 400 naming %s", async (url, name) => {
      const { status, contentType, body } = await getJson(url);
      expect([status, contentType]).toEqual([400, "application/problem+json"]);
      expect(body).toMatchObject({ type: expect.any(String), title: expect.any(String), status: 400, detail: expect.stringContaining(name) });
      expect(body["invalid-params"]).toEqual(expect.arrayContaining([{ name, reason: expect.any(String) }]));
    });

    it("names every bad parameter at once", async () => {
      const { body } = await getJson("/api/compliance/devices?limit=0&state=green");
      expect((body["invalid-params"] as { name: string }[]).map((p) => p.name)).toEqual(["limit", "state"]);
    });
  });

  describe("SQL injection", () => {
    const cursor = (d: string) => Buffer.from(JSON.stringify({ v: 1, d, m: "" })).toString("base64url");
    it.each([
      ["/api/compliance/summary?tag.site'%20OR%20'1'='1=x", { devices: 0 }],
      ["/api/compliance/summary?tag.site')%3BDROP%20TABLE%20devices%3B--=x", { devices: 0 }],
      ["/api/compliance/summary?tag.site=paris'%20OR%20'1'='1", { devices: 0 }],
      ["/api/compliance/summary?tag.site=x%22%7D'%3A%3Ajsonb%20OR%20true--", { devices: 0 }],
      ["/api/compliance/summary?property=x'%20OR%20'1'='1", { devices: 0, properties: 0 }],
      ["/api/compliance/devices?property=x')%3B%20DELETE%20FROM%20devices%3B--", { items: [], nextCursor: null }],
      [`/api/compliance/devices?cursor=${cursor("dev-f') OR 1=1; DELETE FROM devices;--")}`, { items: [], nextCursor: null }],
      ["/api/compliance/devices?q=dev'OR'1'='1'--", { items: [] }],
      ["/api/compliance/devices.csv?tag.site=%24%24%3BDELETE%20FROM%20devices%3B%24%24", "header only"],
    ])("treats %s as data", async (url, expected) => {
      const response = await get(url);
      expect(response.status).toBe(200);
      const text = await response.text();
      if (expected === "header only") expect(parseCsv(text)).toHaveLength(1);
      else expect(JSON.parse(text)).toMatchObject(expected);
      expect((await getJson("/api/compliance/summary")).body).toMatchObject({ devices: 6, properties: 10 });
    });
  });
});
