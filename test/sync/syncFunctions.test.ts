/**
 * The two thin timer functions: their registrations, and real invocations with the app settings of
 * the local setup (IoT Hub emulator over HTTPS, PGlite in memory).
 */
import { InvocationContext, type Timer } from "@azure/functions";
import { resyncTwinsHandler } from "../../functions/resyncTwins";
import { syncFleetTwinsHandler } from "../../functions/syncFleetTwins";
import { closeRuntime, getRuntime } from "../../shared/runtime";
import { startEmulator, type Emulator } from "../../local/emulator";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require("@azure/functions-core") as {
  __state: { functions: Map<string, { metadata: { bindings: Record<string, Record<string, unknown>> } }> };
};

const timer: Timer = { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: "", next: "", lastUpdated: "" } };

function context(name: string): { context: InvocationContext; lines: string[] } {
  const lines: string[] = [];
  const ctx = new InvocationContext({ functionName: name, invocationId: "test", logHandler: (_level, ...args) => lines.push(args.map(String).join(" ")) });
  return { context: ctx, lines };
}

const saved = { ...process.env };
afterEach(async () => {
  await closeRuntime();
  process.env = { ...saved };
});

it.each([
  ["syncFleetTwins", "%FLEET_SYNC_SCHEDULE%"],
  ["resyncTwins", "%RESYNC_SCHEDULE%"],
])("registers %s as a timer on %s", (name, schedule) => {
  const bindings = Object.values(core.__state.functions.get(name)!.metadata.bindings);
  expect(bindings).toEqual([expect.objectContaining({ type: "timerTrigger", direction: "in", schedule })]);
});

it("does nothing, saying why, when no IoT Hub is configured", async () => {
  process.env = { PGLITE_DATA_DIR: "memory" };
  const { context: ctx, lines } = context("syncFleetTwins");
  await syncFleetTwinsHandler(timer, ctx);
  expect(lines.join("\n")).toMatch(/fleet sync disabled: no IoT Hub configured/);
});

describe("with the IoT Hub emulator", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ throttling: "off" });
    for (let i = 0; i < 3; i++) emulator.createDevice(`fn-${i}`);
  });
  afterAll(() => emulator?.stop());

  it("the resync timer starts the first pass on a store that never completed one, and only then", async () => {
    process.env = {
      PGLITE_DATA_DIR: "memory",
      IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
      IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
      IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
      HUB_QUERIES_PER_MINUTE: "600",
    };
    const first = context("resyncTwins");
    await resyncTwinsHandler(timer, first.context);
    expect(first.lines.join("\n")).toMatch(/fleet sync pass 1 \(new\): complete; this run read 3 twins/);
    const { db } = await getRuntime();
    expect((await db.query("SELECT device_id FROM twins ORDER BY 1")).rows).toEqual([{ device_id: "fn-0" }, { device_id: "fn-1" }, { device_id: "fn-2" }]);

    const second = context("resyncTwins");
    await resyncTwinsHandler(timer, second.context);
    expect(second.lines.join("\n")).not.toMatch(/fleet sync pass/);
    // The schedule's timer starts the next one.
    const scheduled = context("syncFleetTwins");
    await syncFleetTwinsHandler(timer, scheduled.context);
    expect(scheduled.lines.join("\n")).toMatch(/fleet sync pass 2 \(new\): complete/);
  });
});
