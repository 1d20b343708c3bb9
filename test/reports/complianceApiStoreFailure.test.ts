import { complianceRoutes } from "../../shared/reports/complianceRoutes";
import { useStore } from "../../shared/reports/getStore";
import { invokeComplianceApi } from "./invokeComplianceApi";
import { failingStore } from "../support/failingStore";

describe("compliance API when the store fails", () => {
  let hostLog: jest.SpyInstance;
  // The handler logs through its InvocationContext, which writes to the console here.
  beforeEach(() => (hostLog = jest.spyOn(console, "error").mockImplementation(() => undefined)));
  afterEach(() => {
    useStore(undefined);
    hostLog.mockRestore();
  });

  it.each([
    ["GET", "/api/compliance/summary"],
    ["GET", "/api/compliance/devices?limit=5"],
    ["GET", "/api/compliance/devices.csv"],
    ["GET", "/api/compliance/devices/dev-a"],
    ["POST", "/api/compliance/devices/dev-a/repush"],
  ])("%s %s answers 503 problem+json with Retry-After, not a crash or a cut 200", async (method, url) => {
    useStore(failingStore());
    const response = await invokeComplianceApi(method, url);
    expect([response.status, response.headers.get("content-type"), response.headers.get("retry-after")]).toEqual([503, "application/problem+json", "5"]);
    expect(await response.json()).toMatchObject({ type: expect.stringMatching(/store-unavailable$/), status: 503, title: expect.any(String) });
    expect(hostLog).toHaveBeenCalledWith(expect.stringMatching(/the store failed: Connection terminated unexpectedly/));
  });

  it("answers 503 when the store cannot be opened at all", async () => {
    const response = await complianceRoutes.summary({ query: new URLSearchParams(), params: {} }, () => Promise.reject(new Error("ECONNREFUSED")));
    expect(response.status).toBe(503);
  });

  it("logs the cause for the operator without a password, and never sends it to the client", async () => {
    const logged: string[] = [];
    const store = failingStore("could not connect to postgresql://app:hunter2-secret@db.example:5432/app");
    const response = await complianceRoutes.devices({ query: new URLSearchParams(), params: {} }, async () => store, (m) => logged.push(m));
    expect(JSON.stringify(response.jsonBody)).not.toMatch(/hunter2|db\.example/);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/could not connect/);
    expect(logged[0]).not.toContain("hunter2-secret");
  });

  it("still answers a bad parameter with 400 before touching the store", async () => {
    useStore(failingStore());
    expect((await invokeComplianceApi("GET", "/api/compliance/summary?state=green")).status).toBe(400);
  });
});
