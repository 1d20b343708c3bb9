/**
 * The thin function: its timer registration, and one real invocation with the app settings of the
 * local setup (IoT Hub emulator over HTTPS, PGlite in memory).
 */
import { InvocationContext, type Timer } from "@azure/functions";
import { repushStaleDesiredHandler } from "../../functions/repushStaleDesired";
import { iothubTwinRegistry } from "../../shared/hub/iothubTwinRegistry";
import { closeRuntime, getRuntime } from "../../shared/runtime";
import { startEmulator, type Emulator } from "../../local/emulator";
import { device, seedFromHub } from "./repushSupport";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require("@azure/functions-core") as {
  __state: { functions: Map<string, { metadata: { bindings: Record<string, Record<string, unknown>> } }> };
};

const timer: Timer = { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: "", next: "", lastUpdated: "" } };

function context(): { context: InvocationContext; lines: string[] } {
  const lines: string[] = [];
  const ctx = new InvocationContext({
    functionName: "repushStaleDesired",
    invocationId: "test",
    logHandler: (_level, ...args) => lines.push(args.map(String).join(" ")),
  });
  return { context: ctx, lines };
}

const saved = { ...process.env };
afterEach(async () => {
  await closeRuntime();
  process.env = { ...saved };
});

it("registers a timer on the REPUSH_SCHEDULE setting", () => {
  const bindings = Object.values(core.__state.functions.get("repushStaleDesired")!.metadata.bindings);
  expect(bindings).toEqual([expect.objectContaining({ type: "timerTrigger", direction: "in", schedule: "%REPUSH_SCHEDULE%" })]);
});

it("does nothing, saying why, when no IoT Hub is configured", async () => {
  process.env = { PGLITE_DATA_DIR: "memory" };
  const { context: ctx, lines } = context();
  await repushStaleDesiredHandler(timer, ctx);
  expect(lines.join("\n")).toMatch(/re-push disabled: no IoT Hub configured/);
});

describe("with the IoT Hub emulator", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ throttling: "off" });
  });
  afterAll(() => emulator?.stop());

  it("re-pushes a stale device and logs what it did", async () => {
    process.env = {
      PGLITE_DATA_DIR: "memory",
      IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
      IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
      IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
      POLICY_JSON: JSON.stringify({ staleAfter: "1ms" }),
    };
    emulator.createDevice("fn-1");
    emulator.updateDesired("fn-1", { interval: 30 });
    const { db, policy } = await getRuntime();
    await seedFromHub(db, iothubTwinRegistry(emulator.createRegistryClient()), policy, [device("fn-1")], new Date().toISOString());
    const before = (emulator.getTwin("fn-1").properties as { desired: { $version: number } }).desired.$version;

    const { context: ctx, lines } = context();
    await repushStaleDesiredHandler(timer, ctx);

    expect(lines.join("\n")).toMatch(/re-push: claimed 1, pushed 1, resolved 0, attempts 1, escalated 0/);
    expect((emulator.getTwin("fn-1").properties as { desired: { $version: number } }).desired.$version).toBe(before + 1);
  });
});
