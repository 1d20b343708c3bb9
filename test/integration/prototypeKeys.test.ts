/**
 * `__proto__`, `constructor` and `prototype` are ordinary desired keys (issue #15): IoT Hub accepts
 * them, so the stored twin, the property records and the reports must keep them like any other.
 * Bodies travel as JSON text, as the trigger delivers them: an object literal would not hold an own
 * `__proto__` key. Expected values are written by hand.
 */
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges } from "../../shared/reconcile";
import { useStore } from "../../shared/reports/getStore";
import type { Database } from "../../shared/store/Database";
import { invokeComplianceApi } from "../reports/invokeComplianceApi";
import { testDatabases } from "../support/testDatabases";

// Now, so that nothing is stale yet when the API is asked.
const AT = new Date().toISOString();
function twinEvent(opType: "replaceTwin" | "updateTwin", sequenceNumber: number, json: string): ReceivedEvent {
  return {
    body: json,
    properties: { deviceId: "proto-1", opType, operationTimestamp: AT },
    systemProperties: { "iothub-connection-device-id": "proto-1", "iothub-message-source": "twinChangeEvents", "iothub-enqueuedtime": AT },
    enqueuedTimeUtc: AT,
    sequenceNumber,
    offset: String(sequenceNumber),
    partitionId: "0",
  };
}

describe.each(testDatabases)("prototype-named keys on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    useStore(undefined);
    await db.close();
  });

  test("are stored in the twin, decided as records and reported by the API like any other key", async () => {
    // JSON.stringify of an object literal has no own "__proto__": write the body's text by hand.
    // The keys arrive in patches, merged into the stored twin (a replace would take its sections whole).
    const { messages, triggerMetadata } = await toTriggerInput([
      twinEvent("replaceTwin", 1, '{"deviceId":"proto-1","version":2,"properties":{"desired":{"$version":1},"reported":{"$version":1}}}'),
      twinEvent("updateTwin", 2, '{"version":3,"properties":{"desired":{"__proto__":{"x":1},"constructor":"c","prototype":{"polluted":true},"$version":2}}}'),
      twinEvent("updateTwin", 3, '{"version":4,"properties":{"reported":{"__proto__":{"x":1},"prototype":{"polluted":false},"$version":2}}}'),
    ]);
    const result = await reconcileTwinChanges(messages, triggerMetadata, { db, policy: parsePolicy({ staleAfter: "1h" }), clock: () => new Date(AT) });
    expect(result).toMatchObject({ applied: 3, deadLettered: 0 });

    const twin = await db.query<{ keys: string[] }>("SELECT array(SELECT jsonb_object_keys(desired) ORDER BY 1) AS keys FROM twins WHERE device_id = 'proto-1'");
    expect(twin.rows[0]?.keys).toEqual(["$version", "__proto__", "constructor", "prototype"]);
    const records = await db.query<{ path: string; state: string }>("SELECT path, state FROM property_records WHERE device_id = 'proto-1' ORDER BY path");
    expect(records.rows).toEqual([
      { path: "__proto__.x", state: "compliant" },
      { path: "constructor", state: "pending" },
      { path: "prototype.polluted", state: "pending" },
    ]);

    useStore(db);
    const detail = await invokeComplianceApi("GET", "/api/compliance/devices/proto-1");
    expect(detail.status).toBe(200);
    const json = (await detail.json()) as { properties: Array<{ path: string; state: string; desired: unknown }> };
    expect(json.properties.map((p) => [p.path, p.state, p.desired])).toEqual([
      ["__proto__.x", "compliant", 1],
      ["constructor", "pending", "c"],
      ["prototype.polluted", "pending", true],
    ]);
    const csv = await (await invokeComplianceApi("GET", "/api/compliance/devices.csv")).text();
    expect(csv).toContain("__proto__.x");
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
