import { InvocationContext } from "@azure/functions";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { closeRuntime, getRuntime } from "../../shared/runtime";
import { readFleetReport } from "../../shared/reports/readFleetReport";
import { seedTutorialStream, SEED_POLICY } from "../fixtures/twinEvents";

// The stand-in for @azure/functions-core (jest moduleNameMapper) captures what app.eventHub registers.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require("@azure/functions-core") as {
  __state: { functions: Map<string, { metadata: { bindings: Record<string, Record<string, unknown>>; retryOptions?: Record<string, unknown> }; callback: (...a: unknown[]) => Promise<unknown> }> };
};

describe("reconcileTwinChanges function", () => {
  const saved = { ...process.env };
  beforeAll(async () => {
    process.env.PGLITE_DATA_DIR = "memory";
    delete process.env.DATABASE_URL;
    delete process.env.IOTHUB_CONNECTION_STRING;
    process.env.POLICY_JSON = JSON.stringify(SEED_POLICY);
    await import("../../functions/reconcileTwinChanges");
  });
  afterAll(async () => {
    await closeRuntime();
    process.env = saved;
  });

  test("registers an Event Hub trigger for many events with settings-driven names and a retry policy that never gives up", () => {
    const registration = core.__state.functions.get("reconcileTwinChanges");
    expect(registration).toBeDefined();
    const trigger = Object.values(registration!.metadata.bindings).find((b) => b.direction === "in");
    expect(trigger).toMatchObject({
      type: "eventHubTrigger",
      cardinality: "many",
      connection: "TwinEvents",
      eventHubName: "%TWIN_EVENTS_HUB_NAME%",
      consumerGroup: "%TWIN_EVENTS_CONSUMER_GROUP%",
    });
    expect(registration!.metadata.retryOptions).toMatchObject({ strategy: "exponentialBackoff", maxRetryCount: -1 });
  });

  test("reconciles a batch handed over as the trigger does, logging dead letters instead of throwing", async () => {
    const { events } = seedTutorialStream("fn-device");
    const { messages, triggerMetadata } = await toTriggerInput(events);
    messages.push("not json");
    const logs: string[] = [];
    const context = new InvocationContext({ functionName: "reconcileTwinChanges", triggerMetadata, logHandler: (_level, ...args) => logs.push(args.join(" ")) });
    (triggerMetadata.propertiesArray as unknown[]).push({ deviceId: "fn-device", opType: "updateTwin" });
    (triggerMetadata.systemPropertiesArray as unknown[]).push({ "iothub-message-source": "twinChangeEvents" });
    await core.__state.functions.get("reconcileTwinChanges")!.callback(messages, context);
    expect(logs.join("\n")).toMatch(/applied 9, duplicates 0, ignored 0, dead-lettered 1/);
    expect(logs.join("\n")).toMatch(/event 9 dead-lettered: body is not JSON/);
    const { db } = await getRuntime();
    expect((await readFleetReport(db, { now: new Date("2026-01-01T00:05:00Z") })).devices[0]).toMatchObject({ deviceId: "fn-device", state: "compliant" });
  });
});
